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
 * Longest wait (ms) for the byte to come back; past it, the loopback pair
 * is given up for timers (it cannot happen unless something broke it).
 */
const TURN_MS = 250;

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
  #pending: Promise<void> | undefined;
  #closed = false;
  /** Set once the pair failed: timers from then on. */
  #broken = false;
  readonly #byte = new Uint8Array(1);
  readonly #buffer = new Uint8Array(64);

  /**
   * Resolves once the runtime has polled its sockets since the call (or,
   * where no loopback connection could be made, after a timer); callers
   * waiting at the same time share one turn. Never rejects.
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
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#ready;
    const pair = this.#pair;
    this.#pair = undefined;
    for (const conn of pair ?? []) closeQuietly(conn);
    await this.#pending;
  }

  async #turn(): Promise<void> {
    const pair = this.#pair ?? await (this.#ready ??= this.#open());
    if (pair === undefined || this.#closed || this.#broken) {
      return new Promise((resolve) => setTimeout(resolve, 0));
    }
    const [out, back] = pair;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), TURN_MS));
    try {
      // The write goes out on the runtime's next pass; the read completes
      // only once a poll has found the byte waiting.
      const io = Promise.all([out.write(this.#byte), back.read(this.#buffer)]);
      // Given up on below, it may still fail later, when the pair closes.
      io.catch(() => {});
      const [, read] = await Promise.race([io, late]) || [0, null];
      // A byte that never came back (or an end of input) means the pair
      // is no good: timers from now on.
      if (read === null) this.#break();
    } catch {
      // Closed meanwhile (or failed): whoever waits goes on.
      this.#break();
    } finally {
      clearTimeout(timer);
    }
  }

  #break(): void {
    if (this.#broken || this.#closed) return;
    this.#broken = true;
    for (const conn of this.#pair ?? []) closeQuietly(conn);
    this.#pair = undefined;
  }

  async #open(): Promise<[Deno.Conn, Deno.Conn] | undefined> {
    let listener: Deno.Listener | undefined;
    const strays: Deno.Conn[] = [];
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const { port } = listener.addr as Deno.NetAddr;
      const out = await Deno.connect({ hostname: "127.0.0.1", port });
      const ours = (out.localAddr as Deno.NetAddr).port;
      // Anyone on this machine may connect first: take only our own.
      let back: Deno.Conn | undefined;
      for (let tries = 0; back === undefined && tries < 8; tries++) {
        const conn = await listener.accept();
        if ((conn.remoteAddr as Deno.NetAddr).port === ours) back = conn;
        else strays.push(conn);
      }
      if (back === undefined || this.#closed) {
        closeQuietly(out);
        if (back !== undefined) closeQuietly(back);
        return undefined;
      }
      out.setNoDelay(true);
      this.#pair = [out, back];
      return this.#pair;
    } catch {
      // No loopback (or no permission for it): a timer does instead.
      return undefined;
    } finally {
      for (const conn of strays) closeQuietly(conn);
      listener?.close();
    }
  }
}
