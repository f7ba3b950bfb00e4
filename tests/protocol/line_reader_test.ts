import assert from "node:assert/strict";
import { LineReader } from "../../protocol/line_reader.ts";
import { MAX_LINE_BYTES } from "../../protocol/wire.ts";
import { assertSameWhereverSplit, cut } from "../_split.ts";

const encoder = new TextEncoder();

/** One callback from a reader: a line, or the size of a dropped line. */
type Event = { line: string } | { overflow: number };

/** A reader that records every callback, in order. */
function recorder(maxLineBytes?: number): { reader: LineReader; events: Event[] } {
  const events: Event[] = [];
  const reader = new LineReader({
    ...(maxLineBytes === undefined ? {} : { maxLineBytes }),
    onLine: (line) => events.push({ line }),
    onOverflow: (bytes) => events.push({ overflow: bytes }),
  });
  return { reader, events };
}

/** Feeds `chunks` (strings are UTF-8 encoded), then ends the stream. */
function feed(chunks: (string | Uint8Array)[], maxLineBytes?: number): Event[] {
  const { reader, events } = recorder(maxLineBytes);
  for (const chunk of chunks) {
    reader.push(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
  }
  reader.end();
  return events;
}

const lines = (...texts: string[]): Event[] => texts.map((line) => ({ line }));

Deno.test("LineReader.push() yields the same lines wherever the chunks are split", async (t) => {
  const text = "hello\nwörld\r\n\n€uro 𝄞 a\rb\r\nlast";
  const bytes = encoder.encode(text);
  const expected = lines("hello", "wörld", "", "€uro 𝄞 a\rb", "last");
  assert.deepEqual(feed([bytes]), expected);

  await assertSameWhereverSplit(t, bytes, (chunks) => feed(chunks), expected);
});

Deno.test("LineReader.push() reassembles multi-byte characters split across chunks", async (t) => {
  for (const [name, ch] of [["2-byte", "é"], ["3-byte", "€"], ["4-byte", "𝄞"]] as const) {
    await t.step(`${name} character "${ch}"`, () => {
      const bytes = encoder.encode(`a${ch}b\n${ch}\n`);
      const width = encoder.encode(ch).length;
      assert.equal(width, Number(name[0]));
      // Every cut inside the first and inside the second copy of the character.
      for (let k = 1; k < width; k++) {
        assert.deepEqual(feed(cut(bytes, [1 + k])), lines(`a${ch}b`, ch), `cut ${k} into it`);
        const second = 1 + width + 2 + k;
        assert.deepEqual(feed(cut(bytes, [second])), lines(`a${ch}b`, ch));
        assert.deepEqual(feed(cut(bytes, [1 + k, second])), lines(`a${ch}b`, ch));
      }
      assert.deepEqual(feed([...bytes].map((b) => Uint8Array.of(b))), lines(`a${ch}b`, ch));
    });
  }
});

Deno.test("LineReader.push() ends lines at LF and at CRLF", () => {
  assert.deepEqual(feed(["one\ntwo\r\nthree\n\r\n\n"]), lines("one", "two", "three", "", ""));
  // The CR and the LF of one line ending in different chunks.
  assert.deepEqual(feed(["one\r", "\ntwo\r", "\n"]), lines("one", "two"));
});

Deno.test("LineReader.push() keeps a lone CR that is not right before the LF", () => {
  assert.deepEqual(feed(["a\rb\n"]), lines("a\rb"));
  assert.deepEqual(feed(["\rhi\n"]), lines("\rhi"));
  // Only the one CR that belongs to the line ending is taken off.
  assert.deepEqual(feed(["x\r\r\n"]), lines("x\r"));
  assert.deepEqual(feed(["hi\r[12:00:00] server: x\n"]), lines("hi\r[12:00:00] server: x"));
});

Deno.test("LineReader.push() drops an over-long line up to its newline and reports it once", async (t) => {
  await t.step("whole line in one chunk", () => {
    assert.deepEqual(feed(["abcdefghij\nok\n"], 5), [{ overflow: 10 }, { line: "ok" }]);
  });

  await t.step("over-long part spread over many chunks", () => {
    const long = "x".repeat(100);
    const chunks: string[] = [];
    for (let i = 0; i < long.length; i += 7) chunks.push(long.slice(i, i + 7));
    chunks.push("\nok\n");
    assert.deepEqual(feed(chunks, 5), [{ overflow: 100 }, { line: "ok" }]);
  });

  await t.step("reported only when the newline arrives in a later chunk", () => {
    const { reader, events } = recorder(5);
    reader.push(encoder.encode("before\nabcdefg"));
    assert.deepEqual(events, [{ overflow: 6 }]);
    reader.push(encoder.encode("hij"));
    reader.push(encoder.encode("klm"));
    assert.deepEqual(events, [{ overflow: 6 }], "nothing more until the line ends");
    reader.push(encoder.encode("\nnext\n"));
    assert.deepEqual(events, [{ overflow: 6 }, { overflow: 13 }, { line: "next" }]);
  });

  await t.step("newline alone in the next chunk", () => {
    assert.deepEqual(feed(["abcdefgh", "\n", "ok\n"], 5), [{ overflow: 8 }, { line: "ok" }]);
  });

  await t.step("the count leaves out a CRLF wherever the chunks are split", () => {
    const bytes = encoder.encode("abcdefghij\r\nok\r\n");
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        assert.deepEqual(
          feed(cut(bytes, [i, j]), 5),
          [{ overflow: 10 }, { line: "ok" }],
          `split at ${i} and ${j}`,
        );
      }
    }
  });

  await t.step("several over-long lines in a row, each reported once", () => {
    const events = feed(["aaaaaa\nbbbbbbb\r\n", "cccc", "cccc\nd\n"], 5);
    assert.deepEqual(events, [{ overflow: 6 }, { overflow: 7 }, { overflow: 8 }, {
      line: "d",
    }]);
  });

  await t.step("an over-long line counts bytes, not characters", () => {
    // Three 2-byte characters are 6 bytes: over a limit of 5.
    assert.deepEqual(feed(["ééé\néé\n"], 5), [{ overflow: 6 }, { line: "éé" }]);
  });
});

Deno.test("LineReader.pendingBytes never exceeds maxLineBytes + 1 without a newline", () => {
  const max = 16;
  const { reader, events } = recorder(max);
  reader.push(encoder.encode("abc"));
  assert.equal(reader.pendingBytes, 3);
  let total = 3;
  for (let size = 1; size <= 40; size++) {
    reader.push(new Uint8Array(size).fill(0x61));
    total += size;
    assert.ok(reader.pendingBytes <= max + 1, `pendingBytes ${reader.pendingBytes} after ${total}`);
  }
  assert.deepEqual(events, []);
  reader.push(encoder.encode("\n"));
  assert.equal(reader.pendingBytes, 0);
  assert.deepEqual(events, [{ overflow: total }]);
});

Deno.test("LineReader.pendingBytes holds up to maxLineBytes + 1 bytes for a trailing CR", () => {
  const { reader, events } = recorder(4);
  reader.push(encoder.encode("abcd\r"));
  assert.equal(reader.pendingBytes, 5);
  reader.push(encoder.encode("\n"));
  assert.equal(reader.pendingBytes, 0);
  assert.deepEqual(events, lines("abcd"));
});

Deno.test("LineReader.push() copies what it keeps, so the caller may reuse its buffer", () => {
  const { reader, events } = recorder();
  const buffer = encoder.encode("hello");
  reader.push(buffer);
  buffer.fill(0x7a);
  reader.push(encoder.encode(" world\n"));
  assert.deepEqual(events, lines("hello world"));
});

Deno.test("LineReader.push() replaces invalid UTF-8 with U+FFFD", () => {
  const bytes = (...b: number[]) => Uint8Array.of(...b);
  // A stray byte, a lone continuation byte, a truncated 3-byte sequence.
  assert.deepEqual(feed([bytes(0x61, 0xff, 0x62, 0x0a)]), lines("a\uFFFDb"));
  assert.deepEqual(feed([bytes(0x80, 0x0a)]), lines("\uFFFD"));
  assert.deepEqual(feed([bytes(0xe2, 0x82, 0x0a, 0x61, 0x0a)]), lines("\uFFFD", "a"));
  // A truncated sequence at the end of one line does not swallow the next.
  assert.deepEqual(feed([bytes(0x61, 0xf0, 0x9f), bytes(0x0a, 0x62, 0x0a)]), lines("a\uFFFD", "b"));
});

Deno.test("LineReader.end() delivers a last line without a line ending", async (t) => {
  await t.step("plain last line", () => {
    assert.deepEqual(feed(["one\ntwo"]), lines("one", "two"));
  });
  await t.step("last line ending in a CR", () => {
    assert.deepEqual(feed(["tail\r"]), lines("tail"));
  });
  await t.step("nothing pending delivers nothing", () => {
    assert.deepEqual(feed(["one\n"]), lines("one"));
    assert.deepEqual(feed([]), []);
  });
  await t.step("an over-long last line is reported instead", () => {
    assert.deepEqual(feed(["ok\nabcdefgh"], 5), [{ line: "ok" }, { overflow: 8 }]);
    assert.deepEqual(feed(["abcdef"], 5), [{ overflow: 6 }]);
    assert.deepEqual(feed(["abcdefgh\r"], 5), [{ overflow: 8 }]);
  });
  await t.step("pending bytes are released", () => {
    const { reader } = recorder();
    reader.push(encoder.encode("partial"));
    reader.end();
    assert.equal(reader.pendingBytes, 0);
  });
});

Deno.test("LineReader accepts a line of exactly maxLineBytes, with LF or CRLF", () => {
  for (const ending of ["\n", "\r\n"]) {
    const bytes = encoder.encode(`abcde${ending}abcdef${ending}`);
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(
        feed(cut(bytes, [i]), 5),
        [{ line: "abcde" }, { overflow: 6 }],
        `${JSON.stringify(ending)} split at ${i}`,
      );
    }
  }
});

Deno.test("LineReader defaults maxLineBytes to MAX_LINE_BYTES", () => {
  const atLimit = "a".repeat(MAX_LINE_BYTES);
  assert.deepEqual(feed([`${atLimit}\n${atLimit}b\n`]), [
    { line: atLimit },
    { overflow: MAX_LINE_BYTES + 1 },
  ]);
});

Deno.test("new LineReader() rejects a maxLineBytes that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new LineReader({ maxLineBytes: bad, onLine: () => {} }), RangeError);
  }
});

Deno.test("LineReader without onOverflow still drops over-long lines", () => {
  const seen: string[] = [];
  const reader = new LineReader({ maxLineBytes: 3, onLine: (line) => seen.push(line) });
  reader.push(encoder.encode("toolong\nok\n"));
  reader.end();
  assert.deepEqual(seen, ["ok"]);
});

Deno.test("LineReader.push() stops after a callback returns false and goes on from there", async (t) => {
  const text = "one\ntoo long!\r\ntwo\r\nthree\nfour";
  const bytes = encoder.encode(text);
  const expected: Event[] = [
    { line: "one" },
    { overflow: 9 },
    { line: "two" },
    { line: "three" },
    { line: "four" },
  ];
  /**
   * Feeds `chunks`; every callback asks to stop, so each push delivers at
   * most one event, and the rest of the chunk is pushed again. Returns the
   * events and how many pushes it took.
   */
  const paused = (chunks: Uint8Array[]) => {
    const events: Event[] = [];
    const reader = new LineReader({
      maxLineBytes: 8,
      onLine: (line) => events.push({ line }) < 0,
      onOverflow: (bytes) => events.push({ overflow: bytes }) < 0,
    });
    let pushes = 0;
    for (const chunk of chunks) {
      let rest = chunk;
      // Each push uses at least one byte, so this ends.
      for (let i = 0; i <= chunk.length && rest.length > 0; i++) {
        const before = events.length;
        const used = reader.push(rest);
        pushes++;
        assert.ok(used > 0 && used <= rest.length, `push used ${used} of ${rest.length}`);
        assert.ok(events.length - before <= 1, "more than one event after a stop");
        if (used < rest.length) assert.equal(events.length - before, 1, "stopped for nothing");
        rest = rest.subarray(used);
      }
      assert.equal(rest.length, 0);
    }
    reader.end();
    return { events, pushes };
  };

  await t.step("all in one chunk: one push per line, and one for the unfinished last", () => {
    const { events, pushes } = paused([bytes]);
    assert.deepEqual(events, expected);
    assert.equal(pushes, 5);
  });

  await t.step("split at every position", () => {
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(paused(cut(bytes, [i])).events, expected, `split at ${i}`);
    }
  });

  await t.step("a callback that returns anything else does not stop it", () => {
    const seen: string[] = [];
    const reader = new LineReader({ onLine: (line) => seen.push(line) });
    assert.equal(reader.push(bytes), bytes.length);
    assert.deepEqual(seen, ["one", "too long!", "two", "three"]);
  });
});
