/**
 * Seeded random testing of the input path: LineReader framing followed by
 * sanitize(). Set CONFAB_FUZZ_SEED to replay a particular run; the seed in use
 * is part of the test name and of every failure message.
 */

import assert from "node:assert/strict";
import { LineReader } from "../../protocol/line_reader.ts";
import { sanitize } from "../../protocol/sanitize.ts";

const DEFAULT_SEED = 0x5eed_c0fe;
const SEED = (Number.parseInt(Deno.env.get("CONFAB_FUZZ_SEED") ?? "", 0) || DEFAULT_SEED) >>> 0;
const SEED_TEXT = `0x${SEED.toString(16).padStart(8, "0")}`;
const ROUNDS = 1500;

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Event = { line: string } | { overflow: number };

const encoder = new TextEncoder();
const LF = 0x0a;
const CR = 0x0d;

/** Byte sequences a line body is built from; none contains an LF. */
const PIECES: number[][] = [
  // Control bytes, including a lone CR.
  [0x00],
  [0x07],
  [0x08],
  [0x09],
  [0x1b],
  [0x1b, 0x5b, 0x32, 0x4a],
  [0x7f],
  [CR],
  // Valid multi-byte characters: 2, 3 and 4 bytes, some of them unsafe
  // (C1 NEL and CSI, RLO, LRI, line separator, BOM).
  [0xc3, 0xa9],
  [0xe2, 0x82, 0xac],
  [0xf0, 0x9d, 0x84, 0x9e],
  [0xc2, 0x85],
  [0xc2, 0x9b],
  [0xe2, 0x80, 0xae],
  [0xe2, 0x81, 0xa6],
  [0xe2, 0x80, 0xa8],
  [0xef, 0xbb, 0xbf],
  // Invalid UTF-8: stray continuation, lone lead bytes, a truncated
  // sequence, an encoded surrogate, an overlong encoding.
  [0x80],
  [0xc3],
  [0xff],
  [0xe2, 0x82],
  [0xed, 0xa0, 0x80],
  [0xc0, 0xaf],
];

/** Code point ranges a random character is drawn from, unsafe ones included. */
const CHAR_RANGES: [number, number][] = [
  [0x80, 0x9f],
  [0xa0, 0x2ff],
  [0x061c, 0x061c],
  [0x0600, 0x06ff],
  [0x200b, 0x200f],
  [0x2028, 0x202f],
  [0x2060, 0x206f],
  [0x3040, 0x30ff],
  [0xfeff, 0xfeff],
  [0xfff0, 0xfffd],
  [0x1f300, 0x1f64f],
];

/** What sanitize() must never let through: controls, bidi, separators, BOM. */
function isUnsafe(cp: number): boolean {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0x061c || cp === 0x200e ||
    cp === 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0xfeff;
}

function hasUnsafe(text: string): boolean {
  for (const ch of text) if (isUnsafe(ch.codePointAt(0)!)) return true;
  return false;
}

/**
 * The events a reader should produce for the whole stream, worked out from
 * the complete bytes at once: split at every LF, drop one CR before it, and
 * decode each line on its own as a standalone UTF-8 text (so one leading
 * U+FEFF is dropped, as the WHATWG decoder does).
 */
function expectedEvents(stream: Uint8Array, max: number): Event[] {
  const decoder = new TextDecoder();
  const events: Event[] = [];
  let start = 0;
  while (start <= stream.length) {
    const lf = stream.indexOf(LF, start);
    const end = lf < 0 ? stream.length : lf;
    if (lf < 0 && end === start) break;
    const stop = end > start && stream[end - 1] === CR ? end - 1 : end;
    const length = stop - start;
    events.push(
      length > max ? { overflow: length } : { line: decoder.decode(stream.subarray(start, stop)) },
    );
    if (lf < 0) break;
    start = lf + 1;
  }
  return events;
}

/** One round's input: the whole stream, and the limit it is read with. */
interface Round {
  max: number;
  stream: Uint8Array;
}

function makeRound(random: () => number): Round {
  const int = (n: number) => Math.floor(random() * n);
  const max = 1 + int(random() < 0.3 ? 8 : 80);
  const bytes: number[] = [];
  if (random() < 0.25) {
    // Raw noise: any byte, with LF and CR a little more common.
    const length = int(max * 40);
    for (let i = 0; i < length; i++) {
      const r = random();
      bytes.push(r < 0.05 ? LF : r < 0.08 ? CR : int(256));
    }
  } else {
    // Lines whose lengths cluster around the limit.
    const lines = 5 + int(30);
    for (let n = 0; n < lines; n++) {
      const pick = random();
      const target = pick < 0.1 ? 0 : pick < 0.6
        ? Math.max(0, max - 2 + int(5)) // max-2 .. max+2
        : pick < 0.8
        ? int(max)
        : max + int(max * 4);
      const line: number[] = [];
      while (line.length < target) {
        const kind = random();
        if (kind < 0.5) line.push(0x20 + int(0x5f));
        else if (kind < 0.8) line.push(...PIECES[int(PIECES.length)]!);
        else {
          const [low, high] = CHAR_RANGES[int(CHAR_RANGES.length)]!;
          line.push(...encoder.encode(String.fromCodePoint(low + int(high - low + 1))));
        }
      }
      bytes.push(...line);
      const last = n === lines - 1;
      const ending = random();
      if (last && ending < 0.3) break; // no line ending at all
      if (ending < 0.55) bytes.push(LF);
      else if (ending < 0.9) bytes.push(CR, LF);
      else bytes.push(CR, CR, LF);
    }
  }
  return { max, stream: Uint8Array.from(bytes) };
}

Deno.test(`LineReader and sanitize() keep their invariants on random input (seed ${SEED_TEXT})`, () => {
  const random = mulberry32(SEED);
  const int = (n: number) => Math.floor(random() * n);
  // One buffer reused for every chunk, and scribbled over after each push:
  // the reader must have copied whatever it kept.
  const scratch = new Uint8Array(1024);
  let chunks = 0;
  let linesOut = 0;
  let overflows = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const where = `seed ${SEED_TEXT}, round ${round}`;
    const { max, stream } = makeRound(random);
    const events: Event[] = [];
    const reader = new LineReader({
      maxLineBytes: max,
      onLine: (line) => events.push({ line }),
      onOverflow: (bytes) => events.push({ overflow: bytes }),
    });

    try {
      let offset = 0;
      while (offset < stream.length) {
        const pick = random();
        const size = pick < 0.05
          ? 0
          : pick < 0.35
          ? 1 + int(3)
          : pick < 0.85
          ? 1 + int(max + 2)
          : 1 + int(Math.min(scratch.length, max * 4));
        const chunk = stream.subarray(offset, Math.min(stream.length, offset + size));
        scratch.set(chunk);
        reader.push(scratch.subarray(0, chunk.length));
        scratch.fill(int(256), 0, chunk.length);
        offset += chunk.length;
        chunks++;
        assert.ok(
          reader.pendingBytes <= max + 1,
          `${where}: pendingBytes ${reader.pendingBytes} over ${max + 1}`,
        );
      }
      reader.end();
    } catch (error) {
      throw new Error(`${where}: the reader threw`, { cause: error });
    }

    assert.deepEqual(events, expectedEvents(stream, max), `${where}: events differ`);

    for (const event of events) {
      if (!("line" in event)) {
        overflows++;
        assert.ok(event.overflow > max, `${where}: overflow of ${event.overflow} bytes`);
        continue;
      }
      linesOut++;
      const line = event.line;
      // Every character comes from at least one byte of the line.
      assert.ok([...line].length <= max, `${where}: ${JSON.stringify(line)} is over ${max}`);
      if (!line.includes("\uFFFD")) {
        assert.ok(
          new TextEncoder().encode(line).length <= max,
          `${where}: ${JSON.stringify(line)}`,
        );
      }
      assert.ok(!line.includes("\n"), `${where}: LF inside ${JSON.stringify(line)}`);

      const safe = sanitize(line);
      assert.ok(!hasUnsafe(safe), `${where}: sanitize left ${JSON.stringify(safe)}`);
      if (!hasUnsafe(line)) assert.equal(safe, line, `${where}: clean line changed`);
    }
  }

  // The run really covered a lot of ground.
  assert.ok(chunks > 5000, `only ${chunks} chunks`);
  assert.ok(linesOut > 1000, `only ${linesOut} lines`);
  assert.ok(overflows > 100, `only ${overflows} overflows`);
});

Deno.test("mulberry32() is deterministic for a seed", () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const c = mulberry32(43);
  const fromA = Array.from({ length: 5 }, a);
  assert.deepEqual(Array.from({ length: 5 }, b), fromA);
  assert.notDeepEqual(Array.from({ length: 5 }, c), fromA);
  assert.ok(fromA.every((x) => x >= 0 && x < 1));
});
