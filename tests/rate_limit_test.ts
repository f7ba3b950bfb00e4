import assert from "node:assert/strict";
import { RateLimiter, type RateVerdict } from "../server/rate_limit.ts";

/** Verdicts for `count` lines all arriving at `now`. */
function burst(limiter: RateLimiter, now: number, count: number): RateVerdict[] {
  return Array.from({ length: count }, () => limiter.check(now));
}

Deno.test("RateLimiter.check() allows a burst, then throttles", () => {
  const limiter = new RateLimiter({ rate: 2, burst: 5, floodLines: 100 });
  assert.equal(limiter.enabled, true);
  assert.deepEqual(burst(limiter, 1000, 5), ["ok", "ok", "ok", "ok", "ok"]);
  assert.deepEqual(burst(limiter, 1000, 3), ["throttled", "throttled", "throttled"]);
});

Deno.test("RateLimiter.check() refills at `rate` lines per second", () => {
  const limiter = new RateLimiter({ rate: 2, burst: 3, floodLines: 100 });
  const t0 = 50_000;
  assert.deepEqual(burst(limiter, t0, 3), ["ok", "ok", "ok"]);
  assert.equal(limiter.check(t0), "throttled");
  // Half a token after a quarter second: still nothing.
  assert.equal(limiter.check(t0 + 250), "throttled");
  // One token after half a second.
  assert.equal(limiter.check(t0 + 500), "ok");
  assert.equal(limiter.check(t0 + 500), "throttled");
  // Two tokens one second later.
  assert.deepEqual(burst(limiter, t0 + 1500, 3), ["ok", "ok", "throttled"]);
});

Deno.test("RateLimiter.check() never refills beyond the burst", () => {
  const limiter = new RateLimiter({ rate: 10, burst: 4, floodLines: 100 });
  assert.deepEqual(burst(limiter, 0, 4), ["ok", "ok", "ok", "ok"]);
  // An hour of quiet earns 36000 tokens, capped at 4.
  assert.deepEqual(burst(limiter, 3_600_000, 5), ["ok", "ok", "ok", "ok", "throttled"]);
});

Deno.test("RateLimiter.check() earns nothing when the clock goes backwards", () => {
  const limiter = new RateLimiter({ rate: 1, burst: 1, floodLines: 100 });
  assert.equal(limiter.check(10_000), "ok");
  assert.equal(limiter.check(5_000), "throttled");
  // Time is measured from the latest instant seen, 10 s, not from 5 s.
  assert.equal(limiter.check(10_500), "throttled");
  assert.equal(limiter.check(11_000), "ok");
});

Deno.test("RateLimiter.check() says flood after more than floodLines refusals", () => {
  const limiter = new RateLimiter({ rate: 1, burst: 2, floodLines: 3 });
  assert.deepEqual(burst(limiter, 0, 2), ["ok", "ok"]);
  assert.deepEqual(burst(limiter, 0, 3), ["throttled", "throttled", "throttled"]);
  assert.equal(limiter.check(0), "flood");
  assert.equal(limiter.check(0), "flood");
});

Deno.test("RateLimiter.check() lets refused lines leak away over time", async (t) => {
  await t.step("partly, at `rate` per second", () => {
    const limiter = new RateLimiter({ rate: 1, burst: 1, floodLines: 3 });
    assert.equal(limiter.check(0), "ok");
    assert.deepEqual(burst(limiter, 0, 3), ["throttled", "throttled", "throttled"]);
    // Two seconds leak two refusals and earn a token (the bucket holds one).
    assert.equal(limiter.check(2000), "ok");
    // One refusal is left: two more are throttled, the third floods.
    assert.deepEqual(burst(limiter, 2000, 3), ["throttled", "throttled", "flood"]);
  });

  await t.step("completely after a long pause", () => {
    const limiter = new RateLimiter({ rate: 1, burst: 1, floodLines: 3 });
    assert.equal(limiter.check(0), "ok");
    assert.deepEqual(burst(limiter, 0, 3), ["throttled", "throttled", "throttled"]);
    assert.equal(limiter.check(60_000), "ok");
    assert.deepEqual(burst(limiter, 60_000, 4), ["throttled", "throttled", "throttled", "flood"]);
  });
});

Deno.test("RateLimiter with rate 0 is disabled and allows everything", () => {
  const limiter = new RateLimiter({ rate: 0, burst: 1, floodLines: 1 });
  assert.equal(limiter.enabled, false);
  const verdicts = new Set(burst(limiter, 0, 10_000));
  assert.deepEqual([...verdicts], ["ok"]);
});
