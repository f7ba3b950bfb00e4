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
    for (const conn of pair ?? []) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    await this.#pending;
  }

  async #turn(): Promise<void> {
    const pair = this.#pair ?? await (this.#ready ??= this.#open());
    if (pair === undefined || this.#closed) {
      return new Promise((resolve) => setTimeout(resolve, 0));
    }
    const [out, back] = pair;
    try {
      // The write goes out on the runtime's next pass; the read completes
      // only once a poll has found the byte waiting.
      await Promise.all([out.write(this.#byte), back.read(this.#buffer)]);
    } catch {
      // Closed meanwhile: whoever waits goes on.
    }
  }

  async #open(): Promise<[Deno.Conn, Deno.Conn] | undefined> {
    let listener: Deno.Listener | undefined;
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const { port } = listener.addr as Deno.NetAddr;
      const [out, back] = await Promise.all([
        Deno.connect({ hostname: "127.0.0.1", port }),
        listener.accept(),
      ]);
      out.setNoDelay(true);
      if (this.#closed) {
        out.close();
        back.close();
        return undefined;
      }
      this.#pair = [out, back];
      return this.#pair;
    } catch {
      // No loopback (or no permission for it): a timer does instead.
      return undefined;
    } finally {
      listener?.close();
    }
  }
}
