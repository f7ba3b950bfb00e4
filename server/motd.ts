/**
 * The message of the day: lines an operator writes in a file, shown to each
 * newcomer as notices, made safe for terminals and small enough for any
 * newcomer's queue.
 *
 * @module
 */

import { formatNotice } from "../protocol/wire.ts";
import { sanitize } from "../protocol/sanitize.ts";

/** Most lines of a message of the day; more are cut off. */
export const MOTD_MAX_LINES = 20;
/**
 * Most bytes a message of the day may take on the wire (escaped, each line
 * with its time stamp and newline); more are cut off. The server lowers it to
 * a quarter of the outbox if that is less: replayed history may take half.
 */
export const MOTD_MAX_BYTES = 4096;

/** The lines of a message of the day file: line endings dropped, trailing blank lines too. */
export function motdLines(text: string): string[] {
  const lines = text.split("\n").map((line) => line.replace(/\r$/, ""));
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  return lines;
}

const encoder = new TextEncoder();
/** What a notice adds to its text: `[HH:MM:SS] -- ` and the newline. */
const NOTICE_BYTES = encoder.encode(formatNotice(0, "") + "\n").length;

/** A message of the day ready to send, and whether the original had to be cut. */
export interface Motd {
  /** The lines, escaped, within the caps. */
  readonly lines: readonly string[];
  /** Whether lines or bytes were cut off to fit the caps. */
  readonly cut: boolean;
}

/**
 * Escapes every line with {@linkcode sanitize} and keeps at most
 * {@linkcode MOTD_MAX_LINES} lines and `maxBytes` bytes as sent (UTF-8,
 * escaped, each line with the time stamp and newline of a notice); a line
 * that crosses the byte cap is cut at a character boundary.
 *
 * @example Usage
 * ```ts
 * import { prepareMotd } from "./motd.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(prepareMotd(["hello", "\x1b[2Jred"]), {
 *   lines: ["hello", "^[[2Jred"],
 *   cut: false,
 * });
 * // Each line costs 15 bytes more on the wire: "[HH:MM:SS] -- " and "\n".
assert.deepEqual(prepareMotd(["abcdef", "more"], 19), { lines: ["abcd"], cut: true });
 * ```
 */
export function prepareMotd(lines: readonly string[], maxBytes: number = MOTD_MAX_BYTES): Motd {
  const kept: string[] = [];
  let left = maxBytes;
  for (const line of lines) {
    if (kept.length === MOTD_MAX_LINES || left <= NOTICE_BYTES) return { lines: kept, cut: true };
    const safe = sanitize(line);
    left -= NOTICE_BYTES;
    const bytes = encoder.encode(safe).length;
    if (bytes <= left) {
      kept.push(safe);
      left -= bytes;
      continue;
    }
    let end = 0;
    let used = 0;
    for (const ch of safe) {
      const size = encoder.encode(ch).length;
      if (used + size > left) break;
      used += size;
      end += ch.length;
    }
    if (end > 0) kept.push(safe.slice(0, end));
    return { lines: kept, cut: true };
  }
  return { lines: kept, cut: false };
}
