/**
 * Per-client flood control: a token bucket with a burst allowance, and a
 * second, leaky counter of refused lines that tells a client who is merely
 * over the limit (throttled) from one who keeps flooding far past it
 * (disconnected).
 *
 * @module
 */

/** Options for {@linkcode RateLimiter}. */
export interface RateLimitOptions {
  /** Sustained lines per second; 0 turns the limiter off. */
  rate: number;
  /** Lines that may arrive at once after a quiet spell. */
  burst: number;
  /**
   * Refused lines (leaking away at `rate` per second) after which the client
   * counts as flooding.
   */
  floodLines: number;
}

/** The verdict on one line: pass it on, drop it, or drop the client. */
export type RateVerdict = "ok" | "throttled" | "flood";

/**
 * Decides, line by line, whether a client is within its rate.
 *
 * @example Usage
 * ```ts
 * import { RateLimiter } from "./rate_limit.ts";
 * import assert from "node:assert/strict";
 *
 * const limiter = new RateLimiter({ rate: 1, burst: 2, floodLines: 3 });
 * assert.equal(limiter.check(0), "ok");
 * assert.equal(limiter.check(0), "ok");
 * assert.equal(limiter.check(0), "throttled");
 * assert.equal(limiter.check(1000), "ok"); // one token back after a second
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #floodLines: number;
  #tokens: number;
  #refused = 0;
  #last = -1;

  /** Makes a limiter that starts with a full bucket. */
  constructor(options: RateLimitOptions) {
    this.#rate = options.rate;
    this.#burst = options.burst;
    this.#floodLines = options.floodLines;
    this.#tokens = options.burst;
  }

  /** Whether this limiter limits anything. */
  get enabled(): boolean {
    return this.#rate > 0;
  }

  /** Judges one line arriving at `now` (ms). */
  check(now: number): RateVerdict {
    if (this.#rate <= 0) return "ok";
    if (this.#last >= 0 && now > this.#last) {
      const earned = ((now - this.#last) / 1000) * this.#rate;
      this.#tokens = Math.min(this.#burst, this.#tokens + earned);
      this.#refused = Math.max(0, this.#refused - earned);
    }
    this.#last = Math.max(this.#last, now);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return "ok";
    }
    this.#refused += 1;
    return this.#refused > this.#floodLines ? "flood" : "throttled";
  }
}
