/**
 * Waiting for the runtime to look at the sockets.
 *
 * Deno runs JavaScript and polls its sockets on one thread. As long as
 * callbacks keep finding work (a round of writes over thousands of
 * members: each write that completes starts the next), the runtime asks
 * the operating system which sockets are readable only once every few
 * dozen turns of its loop, so a line a member sent can wait tens of
 * milliseconds before it is read. {@linkcode IoTurn} gives a long round a
 * way to let input in between its steps: it sends one byte to itself over
 * a loopback connection and waits for it, and that byte can only be seen
 * by the same poll that sees everyone else's input. One turn costs a
 * couple of system calls; a timer would cost a millisecond or more.
 *
 * @module
 */

import { closeQuietly } from "../protocol/io_util.ts";

/**
 * Longest wait (ms) for one turn. A turn that takes longer (the event loop
 * was blocked) ends anyway; the byte still on its way is waited for by the
 * next turn.
 */
const TURN_MS = 250;
/**
 * Late turns in a row, waiting on one byte, after which it is taken as
 * lost: a blocked loop makes one turn late, not several.
 */
const LATE_TURNS = 3;
/** Longest wait (ms) for the loopback connection to open. */
const OPEN_MS = 2000;

/**
 * One process's way to wait for the runtime's next look at its sockets.
 *
 * @example Usage
 * ```ts
 * import { IoTurn } from "./io_turn.ts";
 *
 * const turn = new IoTurn();
 * await turn.next(); // input that had arrived has now been seen
 * await turn.close();
 * ```
 */
export class IoTurn {
  #ready: Promise<[Deno.Conn, Deno.Conn] | undefined> | undefined;
  #pair: [Deno.Conn, Deno.Conn] | undefined;
  /** The turn callers share while it runs. */
  #pending: Promise<void> | undefined;
  /** The byte on its way back, while it is. */
  #reading: Promise<void> | undefined;
  /** Turns in a row that ended before the byte came back. */
  #late = 0;
  #closing: Promise<void> | undefined;
  /** Set once the pair failed or was closed: timers from then on. */
  #broken = false;
  readonly #onFallback: (why: string) => void;
  readonly #byte = new Uint8Array(1);
  readonly #buffer = new Uint8Array(64);

  /**
   * `onFallback` hears, once, why turns are timers instead (no loopback,
   * no permission for it, or the connection failed).
   */
  constructor(onFallback: (why: string) => void = () => {}) {
    this.#onFallback = onFallback;
  }

  /** Whether turns go over the loopback connection (rather than a timer). */
  get loopback(): boolean {
    return this.#pair !== undefined;
  }

  /**
   * Resolves once the runtime has polled its sockets (or, where no
   * loopback connection could be made, after a timer); callers waiting at
   * the same time share one turn. Never rejects.
   */
  next(): Promise<void> {
    return this.#pending ??= this.#turn().finally(() => {
      this.#pending = undefined;
    });
  }

  /**
   * Closes the loopback connection, once it is open if it is being opened;
   * later turns fall back to a timer.
   */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#broken = true;
      await this.#ready;
      this.#closePair();
      await this.#pending;
    })();
  }

  async #turn(): Promise<void> {
    const pair = this.#broken ? undefined : this.#pair ?? await (this.#ready ??= this.#open());
    if (pair === undefined || this.#broken) {
      return new Promise((resolve) => setTimeout(resolve, 0));
    }
    if (this.#reading === undefined) {
      const [out, back] = pair;
      // The write goes out at once; the read completes only once a poll
      // has found the byte waiting.
      out.write(this.#byte).catch((error) => this.#fail(error));
      this.#reading = back.read(this.#buffer).then(
        (n) => {
          this.#reading = undefined;
          this.#late = 0;
          if (n === null) this.#fail("the loopback connection ended");
        },
        (error) => {
          this.#reading = undefined;
          this.#fail(error);
        },
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, TURN_MS, true)));
    if (await Promise.race([this.#reading, late]) === true && ++this.#late >= LATE_TURNS) {
      this.#fail(`no byte came back in ${LATE_TURNS} turns`);
    }
    clearTimeout(timer);
  }

  #fail(error: unknown): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#closePair();
    this.#onFallback(`the loopback connection failed (${describe(error)})`);
  }

  #closePair(): void {
    const pair = this.#pair;
    this.#pair = undefined;
    for (const conn of pair ?? []) closeQuietly(conn);
  }

  async #open(): Promise<[Deno.Conn, Deno.Conn] | undefined> {
    const where = { name: "net", host: "127.0.0.1" } as const;
    if (Deno.permissions.querySync(where).state !== "granted") {
      // Asking would prompt a user in the middle of serving.
      this.#broken = true;
      this.#onFallback("no permission for a loopback connection (127.0.0.1)");
      return undefined;
    }
    let listener: Deno.Listener | undefined;
    let out: Deno.TcpConn | undefined;
    let back: Deno.Conn | undefined;
    const strays: Deno.Conn[] = [];
    // Nothing should hang here; if something does, closing the listener
    // ends the wait.
    const timer = setTimeout(() => listener?.close(), OPEN_MS);
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const { port } = listener.addr as Deno.NetAddr;
      out = await Deno.connect({ hostname: "127.0.0.1", port });
      const ours = out.localAddr as Deno.NetAddr;
      // Anyone on this machine may connect first: take only our own.
      for (let tries = 0; back === undefined && tries < 8; tries++) {
        const conn = await listener.accept();
        const from = conn.remoteAddr as Deno.NetAddr;
        if (from.port === ours.port && from.hostname === ours.hostname) back = conn;
        else strays.push(conn);
      }
      if (back === undefined) throw new Error("another connection kept coming first");
      out.setNoDelay(true);
      if (this.#broken) throw new Error("closed");
      this.#pair = [out, back];
      return this.#pair;
    } catch (error) {
      if (out !== undefined) closeQuietly(out);
      if (back !== undefined) closeQuietly(back);
      if (!this.#broken) {
        this.#broken = true;
        this.#onFallback(`no loopback connection (${describe(error)})`);
      }
      return undefined;
    } finally {
      clearTimeout(timer);
      for (const conn of strays) closeQuietly(conn);
      if (listener !== undefined) closeQuietly(listener);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
