/**
 * Splits a byte stream into UTF-8 text lines, with a cap on line length that
 * holds while reading: a peer's unterminated input never costs more than the
 * cap in memory.
 *
 * Framing works on bytes, not decoded text, so the cap is exact and a
 * multi-byte character split across two reads is put back together before it
 * is decoded. Each complete line is decoded once; invalid UTF-8 becomes
 * U+FFFD instead of an error.
 *
 * @module
 */

import { MAX_LINE_BYTES } from "./wire.ts";

const LF = 0x0a;
const CR = 0x0d;
/** Decoding whole lines needs no state, so every reader shares one decoder. */
const decoder = new TextDecoder();
/** A partial-line buffer larger than this is released once it is empty. */
const KEEP_PENDING_BYTES = 1024;

/** Options for {@linkcode LineReader}. */
export interface LineReaderOptions {
  /**
   * Longest line accepted, in bytes, not counting its LF or CRLF.
   *
   * @default {4096}
   */
  maxLineBytes?: number;
  /**
   * Called with each complete line, decoded, without its line ending.
   * Returning `false` (exactly) stops {@linkcode LineReader.push} right after this
   * line (see there).
   */
  onLine: (line: string) => unknown;
  /**
   * Called once for each line that was longer than `maxLineBytes`, when its
   * end is reached, with its length in bytes (not counting its LF or CRLF).
   * Its bytes were dropped as they arrived. Returning `false` (exactly) stops
   * {@linkcode LineReader.push} as `onLine` does.
   */
  onOverflow?: (bytes: number) => unknown;
}

/**
 * A capped, push-driven line splitter: feed it chunks as they are read; it
 * calls back synchronously for each line, so a chunk of many lines is handled
 * in one go without a promise per line. A callback that returns `false`
 * pauses it: `push()` returns how much of the chunk it used, and the caller
 * pushes the rest when it is ready for more lines.
 *
 * @example Usage
 * ```ts
 * import { LineReader } from "./line_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const reader = new LineReader({ maxLineBytes: 8, onLine: (l) => lines.push(l) });
 * const bytes = new TextEncoder().encode("héllo\r\nwor");
 * reader.push(bytes.subarray(0, 2)); // splits the é in two
 * reader.push(bytes.subarray(2));
 * reader.push(new TextEncoder().encode("ld\n"));
 * assert.deepEqual(lines, ["héllo", "world"]);
 * ```
 */
export class LineReader {
  readonly #max: number;
  readonly #onLine: (line: string) => unknown;
  readonly #onOverflow: (bytes: number) => unknown;
  #pending: Uint8Array | undefined;
  #pendingLength = 0;
  /** Bytes dropped so far of the over-long line being skipped, or -1. */
  #skipped = -1;
  /** Whether the last byte dropped while skipping was a CR. */
  #skippedCr = false;

  /** Makes a reader; see {@linkcode LineReaderOptions}. */
  constructor(options: LineReaderOptions) {
    const max = options.maxLineBytes ?? MAX_LINE_BYTES;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, received ${max}`);
    }
    this.#max = max;
    this.#onLine = options.onLine;
    this.#onOverflow = options.onOverflow ?? (() => {});
  }

  /** Bytes held for the current, unfinished line. */
  get pendingBytes(): number {
    return this.#pendingLength;
  }

  /**
   * Feeds one chunk and returns how many of its bytes were used: all of
   * them, unless a callback returned `false`; then the bytes after the line
   * it was called for are left for a later `push()`. The chunk may be reused
   * by the caller once this returns: whatever is kept is copied.
   */
  push(chunk: Uint8Array): number {
    let start = 0;
    const end = chunk.length;
    while (start < end) {
      const lf = chunk.indexOf(LF, start);
      let more: unknown;
      if (this.#skipped >= 0) {
        // Dropping an over-long line until its end.
        if (lf < 0) {
          this.#skipped += end - start;
          this.#skippedCr = chunk[end - 1] === CR;
          return end;
        }
        // A CR right before the LF is part of the line ending, not the line.
        const cr = lf > start ? chunk[lf - 1] === CR : this.#skippedCr;
        const total = this.#skipped + (lf - start) - (cr ? 1 : 0);
        this.#skipped = -1;
        more = this.#onOverflow(total);
      } else if (lf < 0) {
        this.#keep(chunk, start, end);
        return end;
      } else if (this.#pendingLength === 0) {
        more = this.#emit(chunk, start, lf);
      } else {
        this.#keep(chunk, start, lf);
        if (this.#skipped < 0) {
          const pending = this.#pending!;
          const length = this.#pendingLength;
          this.#pendingLength = 0;
          more = this.#emit(pending, 0, length);
          this.#release();
        } else {
          // #keep found the line too long: finish skipping at this LF.
          const total = this.#skipped - (this.#skippedCr ? 1 : 0);
          this.#skipped = -1;
          more = this.#onOverflow(total);
        }
      }
      start = lf + 1;
      if (more === false) return start;
    }
    return end;
  }

  /**
   * Ends the stream: a last line without a line ending is delivered as a line
   * (as a terminal sends it after Ctrl-D), and an over-long one is reported.
   */
  end(): void {
    if (this.#skipped >= 0) {
      const skipped = this.#skipped - (this.#skippedCr ? 1 : 0);
      this.#skipped = -1;
      this.#onOverflow(skipped);
    } else if (this.#pendingLength > 0) {
      const length = this.#pendingLength;
      this.#pendingLength = 0;
      this.#emit(this.#pending!, 0, length);
    }
    this.#pending = undefined;
  }

  #emit(bytes: Uint8Array, start: number, end: number): unknown {
    if (end > start && bytes[end - 1] === CR) end--;
    if (end - start > this.#max) return this.#onOverflow(end - start);
    return this.#onLine(decoder.decode(bytes.subarray(start, end)));
  }

  /** Appends bytes to the partial line, or starts skipping if it grows too long. */
  #keep(chunk: Uint8Array, start: number, end: number): void {
    const length = this.#pendingLength + (end - start);
    // One byte of slack for a CR that may come right before the LF.
    if (length > this.#max + 1) {
      this.#skipped = length;
      this.#skippedCr = chunk[end - 1] === CR;
      this.#pendingLength = 0;
      this.#release();
      return;
    }
    let pending = this.#pending;
    if (pending === undefined || pending.length < length) {
      const grown = new Uint8Array(Math.min(this.#max + 1, Math.max(64, length * 2)));
      if (pending !== undefined) grown.set(pending.subarray(0, this.#pendingLength));
      pending = this.#pending = grown;
    }
    pending.set(chunk.subarray(start, end), this.#pendingLength);
    this.#pendingLength = length;
  }

  #release(): void {
    if (this.#pending !== undefined && this.#pending.length > KEEP_PENDING_BYTES) {
      this.#pending = undefined;
    }
  }
}
