/**
 * A room's shared log: every line said in a room is encoded once and
 * appended here, and each member's writer sends what it has not sent yet
 * straight out of it, so a line costs the room one copy however many read
 * it.
 *
 * The log is a chain of segments. A position is a byte offset from the
 * start of the log; a {@linkcode LogCursor} holds one and the segment it
 * falls in. The log itself keeps only the segment being filled: older ones
 * live exactly as long as some cursor still needs them, and the garbage
 * collector takes the rest, so a member far behind costs memory and one
 * that is caught up costs none. A line never spans two segments, so every
 * slice holds whole lines. Bytes once appended are never changed.
 *
 * @module
 */

/** The first segment of a room, and the smallest one. */
const MIN_SEGMENT = 4 * 1024;
/** The largest segment: a busy room writes its members slices of these. */
const MAX_SEGMENT = 256 * 1024;
/** A segment filled faster than this is followed by a bigger one. */
const GROW_BELOW_MS = 1000;
/** A segment that took longer than this to fill is followed by a smaller one. */
const SHRINK_ABOVE_MS = 10_000;

/** One run of the log. */
class Segment {
  /** Where it begins in the log. */
  readonly start: number;
  readonly bytes: Uint8Array;
  /** Bytes appended so far. */
  length = 0;
  /** The next segment, once this one is full. */
  next: Segment | undefined;
  /** When it was begun (ms, `performance.now()`), to size the next one. */
  readonly begun = performance.now();

  constructor(start: number, size: number) {
    this.start = start;
    this.bytes = new Uint8Array(size);
  }

  get end(): number {
    return this.start + this.length;
  }
}

/**
 * An append-only log of encoded lines; see the module documentation.
 *
 * @example Usage
 * ```ts
 * import { RoomLog } from "./room_log.ts";
 * import assert from "node:assert/strict";
 *
 * const log = new RoomLog();
 * const cursor = log.cursor();
 * log.append(new TextEncoder().encode("one\n"));
 * log.append(new TextEncoder().encode("two\n"));
 * assert.equal(new TextDecoder().decode(cursor.peek(log.end)), "one\ntwo\n");
 * cursor.advance(8);
 * assert.equal(cursor.position, log.end);
 * ```
 */
export class RoomLog {
  #tail = new Segment(0, MIN_SEGMENT);

  /** Where the next line will begin: everything before it has been appended. */
  get end(): number {
    return this.#tail.end;
  }

  /** Appends one encoded line (or several), returning where it begins. */
  append(line: Uint8Array): number {
    let tail = this.#tail;
    if (tail.length + line.length > tail.bytes.length) {
      // Sized to how busy the room is: a quiet room keeps no big buffer.
      const took = performance.now() - tail.begun;
      const size = took < GROW_BELOW_MS
        ? Math.min(MAX_SEGMENT, tail.bytes.length * 2)
        : took > SHRINK_ABOVE_MS
        ? Math.max(MIN_SEGMENT, tail.bytes.length / 2)
        : tail.bytes.length;
      const next = new Segment(tail.end, Math.max(size, line.length));
      tail.next = next;
      tail = this.#tail = next;
    }
    const start = tail.end;
    tail.bytes.set(line, tail.length);
    tail.length += line.length;
    return start;
  }

  /** A cursor at the end of the log: it will read what is appended from now on. */
  cursor(): LogCursor {
    return new LogCursor(this.#tail, this.#tail.end);
  }
}

/**
 * A read position in a {@linkcode RoomLog}. It keeps alive the segments
 * from its position on, and nothing before.
 */
export class LogCursor {
  #segment: Segment;
  #position: number;

  /** Use {@linkcode RoomLog.cursor}. */
  constructor(segment: Segment, position: number) {
    this.#segment = segment;
    this.#position = position;
  }

  /** The log position it reads from next. */
  get position(): number {
    return this.#position;
  }

  /**
   * The bytes from its position up to `end`, as far as one segment goes:
   * a view into the log, not a copy. Empty when there is nothing to read.
   */
  peek(end: number): Uint8Array {
    let segment = this.#segment;
    if (this.#position === segment.end && segment.next !== undefined) {
      segment = this.#segment = segment.next;
    }
    const stop = Math.min(end, segment.end);
    if (stop <= this.#position) return segment.bytes.subarray(0, 0);
    return segment.bytes.subarray(this.#position - segment.start, stop - segment.start);
  }

  /** Moves its position `n` bytes on (bytes that {@linkcode LogCursor.peek} returned). */
  advance(n: number): void {
    this.#position += n;
  }

  /** Moves its position on to `position`, which may be in a later segment. */
  skipTo(position: number): void {
    while (position > this.#segment.end && this.#segment.next !== undefined) {
      this.#segment = this.#segment.next;
    }
    this.#position = position;
  }
}
