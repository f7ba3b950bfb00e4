/**
 * Keeps the client under the server's flood limit, so piped input is sent
 * as fast as the room allows and no line is dropped for speed.
 *
 * @module
 */

import { DEFAULT_BURST, DEFAULT_RATE } from "../protocol/wire.ts";

/** Fraction of the server's rate the client allows itself, for jitter. */
const MARGIN = 0.9;

/**
 * A token bucket that waits instead of refusing.
 *
 * @example Usage
 * ```ts
 * import { Pacer } from "./pacer.ts";
 *
 * const pacer = new Pacer();
 * pacer.set(0, 0); // no limit
 * await pacer.wait(); // returns at once
 * ```
 */
export class Pacer {
  #rate = DEFAULT_RATE * MARGIN;
  #burst = DEFAULT_BURST - 1;
  #tokens = this.#burst;
  #last = Date.now();

  /** Adopts the server's announced limits; a rate of 0 means none. */
  set(rate: number, burst: number): void {
    this.#rate = rate * MARGIN;
    this.#burst = Math.max(1, burst - 1);
    this.#tokens = Math.min(this.#tokens, this.#burst);
  }

  /** Resolves when one more line may be sent, and counts it. */
  async wait(): Promise<void> {
    if (this.#rate <= 0) return;
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < 1) {
      const ms = Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
      await new Promise((resolve) => setTimeout(resolve, ms));
      this.#tokens += (ms / 1000) * this.#rate;
      this.#last = Date.now();
    }
    this.#tokens -= 1;
  }
}
