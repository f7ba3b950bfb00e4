/**
 * Per-client flood control: a token bucket with a burst allowance. It never
 * refuses a line; it says how long the next one has to wait, and the session
 * stops reading that client's socket for that long, so a fast sender is
 * slowed down by TCP itself and nothing it sent is lost.
 *
 * @module
 */

/** Options for {@linkcode RateLimiter}. */
export interface RateLimitOptions {
  /** Sustained lines per second; 0 turns the limiter off. */
  rate: number;
  /** Lines that may arrive at once after a quiet spell. */
  burst: number;
}

/**
 * A token bucket, consulted line by line, on a clock that should never go
 * backwards (the server uses `performance.now()`): {@linkcode RateLimiter.take} spends
 * a token for a line that passes, {@linkcode RateLimiter.delay} says how long
 * until the next line may.
 *
 * @example Usage
 * ```ts
 * import { RateLimiter } from "./rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * const limiter = new RateLimiter({ rate: 2, burst: 2 });
 * limiter.take(0);
 * assert.equal(limiter.delay(0), 0);
 * limiter.take(0);
 * assert.equal(limiter.delay(0), 500); // the bucket is empty: one token in half a second
 * assert.equal(limiter.delay(500), 0);
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = -1;

  /** Makes a limiter that starts with a full bucket. */
  constructor(options: RateLimitOptions) {
    this.#rate = options.rate;
    this.#burst = options.burst;
    this.#tokens = options.burst;
  }

  /** Whether this limiter limits anything. */
  get enabled(): boolean {
    return this.#rate > 0;
  }

  /**
   * Whether the bucket is full at `now` (ms): the client has been quiet long
   * enough to earn back its whole burst.
   */
  full(now: number): boolean {
    this.#refill(now);
    return this.#rate <= 0 || this.#tokens >= this.#burst;
  }

  /**
   * Spends a token for a line passing at `now` (ms). Call it only when
   * {@linkcode RateLimiter.delay} is 0; a line spent early is owed.
   */
  take(now: number): void {
    if (this.#rate <= 0) return;
    this.#refill(now);
    this.#tokens -= 1;
  }

  /** How long (ms, a whole number) from `now` until the next line may pass; 0 if now. */
  delay(now: number): number {
    if (this.#rate <= 0) return 0;
    this.#refill(now);
    if (this.#tokens >= 1) return 0;
    return Math.max(1, Math.ceil(((1 - this.#tokens) / this.#rate) * 1000));
  }

  #refill(now: number): void {
    if (this.#last >= 0 && now > this.#last) {
      const earned = ((now - this.#last) / 1000) * this.#rate;
      this.#tokens = Math.min(this.#burst, this.#tokens + earned);
    }
    // A clock that went back earns nothing for the gap, and the wait counts
    // from where it is now, so the bucket is never stuck until the clock
    // catches up (feed it a monotonic clock and this never happens).
    this.#last = now;
  }
}
