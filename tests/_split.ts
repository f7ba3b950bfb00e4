/**
 * Feeding bytes in every possible split, for code that keeps state across
 * reads (the line reader, the telnet filter).
 */

import assert from "node:assert/strict";

/** `bytes` cut at the offsets in `at` (in order): `at.length + 1` parts. */
export function cut(bytes: Uint8Array, at: number[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const to of at) {
    parts.push(bytes.subarray(from, to));
    from = to;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

/**
 * Steps of `t` that give `run` the bytes split at every offset, at every
 * pair of offsets, and one byte at a time, and expect `expected` each time.
 */
export async function assertSameWhereverSplit<T>(
  t: Deno.TestContext,
  bytes: Uint8Array,
  run: (chunks: Uint8Array[]) => T,
  expected: T,
): Promise<void> {
  await t.step("one split at every offset", () => {
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(run(cut(bytes, [i])), expected, `split at ${i}`);
    }
  });
  await t.step("two splits at every pair of offsets", () => {
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        assert.deepEqual(run(cut(bytes, [i, j])), expected, `split at ${i} and ${j}`);
      }
    }
  });
  await t.step("one byte at a time", () => {
    assert.deepEqual(run(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))), expected);
  });
}
