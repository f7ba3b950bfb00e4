import assert from "node:assert/strict";
import { type LogCursor, RoomLog } from "../../server/room_log.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The first segment's size: lines past it go in a second segment. */
const FIRST_SEGMENT = 4 * 1024;

/** Reads everything `cursor` can read up to `end`, one peek at a time. */
function readAll(cursor: LogCursor, end: number): string[] {
  const pieces: string[] = [];
  for (let piece = cursor.peek(end); piece.length > 0; piece = cursor.peek(end)) {
    pieces.push(decoder.decode(piece));
    cursor.advance(piece.length);
  }
  return pieces;
}

/** `count` numbered lines of `width` bytes each, LF included. */
function lines(count: number, width: number, tag = "line"): string[] {
  return Array.from({ length: count }, (_, i) => {
    const head = `${tag} ${i} `;
    return head + "x".repeat(width - head.length - 1) + "\n";
  });
}

Deno.test("RoomLog.append() returns where each line begins, and end where the next will", () => {
  const log = new RoomLog();
  assert.equal(log.end, 0);
  assert.equal(log.append(encoder.encode("one\n")), 0);
  assert.equal(log.append(encoder.encode("two\n")), 4);
  assert.equal(log.end, 8);
  // Positions go on across segments, with no gap.
  let expected = 8;
  for (const line of lines(100, 100)) {
    assert.equal(log.append(encoder.encode(line)), expected);
    expected += 100;
  }
  assert.equal(log.end, expected);
});

Deno.test("LogCursor.peek() reads from its position up to end, as a view of the log", () => {
  const log = new RoomLog();
  const cursor = log.cursor();
  assert.equal(cursor.peek(log.end).length, 0, "nothing to read yet");
  log.append(encoder.encode("one\n"));
  const [two] = [log.append(encoder.encode("two\n"))];
  assert.equal(decoder.decode(cursor.peek(two!)), "one\n", "stops at end");
  assert.equal(decoder.decode(cursor.peek(log.end)), "one\ntwo\n");
  assert.equal(cursor.position, 0, "peek() does not move it");
  cursor.advance(4);
  assert.equal(cursor.position, 4);
  assert.equal(decoder.decode(cursor.peek(log.end)), "two\n");
  cursor.advance(4);
  assert.equal(cursor.peek(log.end).length, 0);
  // Another cursor's view is of the same bytes, not a copy.
  const other = log.cursor();
  log.append(encoder.encode("three\n"));
  const a = cursor.peek(log.end);
  const b = other.peek(log.end);
  assert.equal(a.buffer, b.buffer);
  assert.equal(a.byteOffset, b.byteOffset);
});

Deno.test("RoomLog.cursor() made later reads only the lines appended after it", () => {
  const log = new RoomLog();
  const early = log.cursor();
  for (const line of lines(60, 100, "old")) log.append(encoder.encode(line));
  const late = log.cursor();
  assert.equal(late.position, log.end);
  assert.deepEqual(readAll(late, log.end), []);
  const fresh = lines(5, 50, "new");
  for (const line of fresh) log.append(encoder.encode(line));
  assert.equal(readAll(late, log.end).join(""), fresh.join(""));
  const all = readAll(early, log.end).join("");
  assert.ok(all.startsWith("old 0 "));
  assert.ok(all.endsWith(fresh.join("")));
});

Deno.test("LogCursor.peek() goes no further than one segment, and a line never spans two", () => {
  const log = new RoomLog();
  const cursor = log.cursor();
  // 30 + 100 bytes: no segment size is a multiple of it.
  const all = lines(200, 130);
  for (const line of all) log.append(encoder.encode(line));
  const pieces = readAll(cursor, log.end);
  assert.ok(pieces.length >= 2, `${pieces.length} pieces`);
  assert.ok(encoder.encode(pieces[0]!).length <= FIRST_SEGMENT, "the first segment's worth");
  for (const piece of pieces) assert.ok(piece.endsWith("\n"), "whole lines only");
  assert.equal(pieces.join(""), all.join(""));
  assert.equal(cursor.position, log.end);
});

Deno.test("LogCursor.peek() moves on from the end of a segment to the next", () => {
  const log = new RoomLog();
  // Fill the first segment exactly; the cursor is made at its very end.
  log.append(encoder.encode("f".repeat(FIRST_SEGMENT - 1) + "\n"));
  const cursor = log.cursor();
  assert.equal(cursor.position, FIRST_SEGMENT);
  log.append(encoder.encode("next\n"));
  assert.equal(decoder.decode(cursor.peek(log.end)), "next\n");
  cursor.advance(5);
  // And from a segment left empty by a line too big for it.
  const fresh = new RoomLog();
  const first = fresh.cursor();
  const big = "B".repeat(FIRST_SEGMENT * 3) + "\n";
  fresh.append(encoder.encode(big));
  assert.equal(decoder.decode(first.peek(fresh.end)), big);
});

Deno.test("RoomLog gives a line bigger than a segment a segment of its own", () => {
  const log = new RoomLog();
  const cursor = log.cursor();
  log.append(encoder.encode("before\n"));
  const big = "B".repeat(300 * 1024) + "\n";
  const at = log.append(encoder.encode(big));
  assert.equal(at, 7);
  log.append(encoder.encode("after\n"));
  assert.deepEqual(readAll(cursor, log.end), ["before\n", big, "after\n"]);
});

Deno.test("LogCursor.skipTo() moves across segments", () => {
  const log = new RoomLog();
  const cursor = log.cursor();
  const all = lines(200, 130);
  const starts = all.map((line) => log.append(encoder.encode(line)));
  // A line well past the first segment.
  const k = 150;
  assert.ok(starts[k]! > FIRST_SEGMENT * 2);
  cursor.skipTo(starts[k]!);
  assert.equal(cursor.position, starts[k]);
  assert.equal(readAll(cursor, log.end).join(""), all.slice(k).join(""));
  // To the very end, then on with what comes next.
  const other = log.cursor();
  const first = log.cursor();
  log.append(encoder.encode("x\n"));
  const end = log.append(encoder.encode("y\n"));
  other.skipTo(end);
  assert.deepEqual(readAll(other, log.end), ["y\n"]);
  first.skipTo(log.end);
  assert.deepEqual(readAll(first, log.end), []);
});

Deno.test("RoomLog never changes bytes once appended", () => {
  const log = new RoomLog();
  const cursor = log.cursor();
  log.append(encoder.encode("kept\n"));
  const view = cursor.peek(log.end);
  for (const line of lines(3000, 100)) log.append(encoder.encode(line));
  assert.equal(decoder.decode(view), "kept\n");
});
