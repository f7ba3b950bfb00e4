import assert from "node:assert/strict";
import { ReadBuffers } from "../../server/read_buffers.ts";

Deno.test("ReadBuffers hands out slices that never overlap, and hands back ones given back", () => {
  const pool = new ReadBuffers(256);
  const taken = Array.from({ length: 600 }, () => pool.take());
  // Each slice writes only its own bytes, across blocks too.
  taken.forEach((buffer, i) => buffer.fill(i % 251));
  taken.forEach((buffer, i) => {
    assert.equal(buffer.length, 256);
    assert.ok(buffer.every((byte) => byte === i % 251), `slice ${i} was written by another`);
  });
  pool.give(taken[7]!);
  assert.equal(pool.take(), taken[7]);
  // A buffer of another size (a grown one) is not the pool's.
  pool.give(new Uint8Array(1024));
  assert.equal(pool.take().length, 256);
});
