import assert from "node:assert/strict";
import { RateLimiter } from "../../server/rate_limit.ts";

/** Spends `count` tokens at `now`, each only once `delay()` allows it. */
function spend(limiter: RateLimiter, now: number, count: number): void {
  for (let i = 0; i < count; i++) {
    assert.equal(limiter.delay(now), 0, `line ${i} may not pass yet`);
    limiter.take(now);
  }
}

Deno.test("RateLimiter lets a burst through at once, then says how long the next line waits", () => {
  const limiter = new RateLimiter({ rate: 2, burst: 5 });
  assert.equal(limiter.enabled, true);
  assert.equal(limiter.full(1000), true);
  spend(limiter, 1000, 5);
  assert.equal(limiter.full(1000), false);
  // Two lines per second: the sixth waits half a second.
  assert.equal(limiter.delay(1000), 500);
  assert.equal(limiter.delay(1200), 300);
  assert.equal(limiter.delay(1500), 0);
});

Deno.test("RateLimiter paces lines that wait their turn to exactly `rate` per second", () => {
  const rate = 50;
  const burst = 10;
  const limiter = new RateLimiter({ rate, burst });
  let now = 0;
  spend(limiter, now, burst);
  // 190 more lines, each let through the moment delay() allows it.
  for (let i = 0; i < 190; i++) {
    now += limiter.delay(now);
    spend(limiter, now, 1);
  }
  // (200 - 10) / 50 = 3.8 s, give or take the rounding up of each wait.
  assert.ok(now >= 3800 && now <= 3800 + 190, `200 lines took ${now} ms`);
});

Deno.test("RateLimiter never refills beyond the burst", () => {
  const limiter = new RateLimiter({ rate: 10, burst: 4 });
  spend(limiter, 0, 4);
  // An hour of quiet earns 36000 tokens, capped at 4.
  assert.equal(limiter.full(3_600_000), true);
  spend(limiter, 3_600_000, 4);
  assert.equal(limiter.delay(3_600_000), 100);
});

Deno.test("RateLimiter earns nothing for a clock that goes back, and is not stuck until it catches up", () => {
  const limiter = new RateLimiter({ rate: 1, burst: 1 });
  spend(limiter, 10_000, 1);
  // Back by 5 s: no token for the gap, and one second from there, not
  // six seconds until the clock is past 10 s again.
  assert.equal(limiter.delay(5_000), 1000);
  assert.equal(limiter.delay(5_500), 500);
  assert.equal(limiter.delay(6_000), 0);
});

Deno.test("RateLimiter.delay() is a whole number of ms, at least 1 while the bucket is short", () => {
  const limiter = new RateLimiter({ rate: 3, burst: 1 });
  spend(limiter, 0, 1);
  // A third of a second is 333.33... ms: rounded up, so waiting it is enough.
  const wait = limiter.delay(0);
  assert.equal(wait, 334);
  assert.equal(limiter.delay(wait - 1), 1);
  assert.equal(limiter.delay(wait), 0);
});

Deno.test("RateLimiter with rate 0 is disabled and never makes a line wait", () => {
  const limiter = new RateLimiter({ rate: 0, burst: 1 });
  assert.equal(limiter.enabled, false);
  for (let i = 0; i < 10_000; i++) limiter.take(0);
  assert.equal(limiter.delay(0), 0);
  assert.equal(limiter.full(0), true);
});
