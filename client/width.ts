/**
 * How many terminal columns text takes: two for East Asian wide and
 * fullwidth characters and most emoji, none for combining marks and
 * joiners, one for the rest.
 *
 * When unsure, it errs wide: the client wraps long lines itself (to indent
 * the rows after the first), and counting a character wider than the
 * terminal does only wraps a little early, while counting it narrower would
 * let the terminal wrap first, at the left edge.
 *
 * @module
 */

// Wide and fullwidth ranges (East_Asian_Width W and F), first and last code
// point, sorted. Emoji blocks are taken whole: a few narrow symbols in them
// count as wide, which errs in the safe direction.
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x231a, 0x231b],
  [0x2329, 0x232a],
  [0x23e9, 0x23ec],
  [0x23f0, 0x23f0],
  [0x23f3, 0x23f3],
  [0x25fd, 0x25fe],
  [0x2614, 0x2615],
  [0x2648, 0x2653],
  [0x267f, 0x267f],
  [0x2693, 0x2693],
  [0x26a1, 0x26a1],
  [0x26aa, 0x26ab],
  [0x26bd, 0x26be],
  [0x26c4, 0x26c5],
  [0x26ce, 0x26ce],
  [0x26d4, 0x26d4],
  [0x26ea, 0x26ea],
  [0x26f2, 0x26f3],
  [0x26f5, 0x26f5],
  [0x26fa, 0x26fa],
  [0x26fd, 0x26fd],
  [0x2705, 0x2705],
  [0x270a, 0x270b],
  [0x2728, 0x2728],
  [0x274c, 0x274c],
  [0x274e, 0x274e],
  [0x2753, 0x2755],
  [0x2757, 0x2757],
  [0x2795, 0x2797],
  [0x27b0, 0x27b0],
  [0x27bf, 0x27bf],
  [0x2b1b, 0x2b1c],
  [0x2b50, 0x2b50],
  [0x2b55, 0x2b55],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x16fe0, 0x16fe4],
  [0x16ff0, 0x16ff1],
  [0x17000, 0x18cff],
  [0x18d00, 0x18d08],
  [0x1aff0, 0x1b2ff],
  [0x1f004, 0x1f004],
  [0x1f0cf, 0x1f0cf],
  [0x1f18e, 0x1f18e],
  [0x1f191, 0x1f19a],
  [0x1f200, 0x1f2ff],
  [0x1f300, 0x1f64f],
  [0x1f680, 0x1f6ff],
  [0x1f7e0, 0x1f7f0],
  [0x1f900, 0x1f9ff],
  [0x1fa70, 0x1faff],
  [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
];

/** Marks, joiners and selectors that draw nothing of their own. */
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200d\u2060\ufe00-\ufe0e\u{e0100}-\u{e01ef}]$/u;

/**
 * U+FE0F, the emoji presentation selector, is a mark, but it can turn a
 * narrow symbol such as U+2764 into a wide emoji: it counts one column,
 * erring wide.
 */
const EMOJI_PRESENTATION = 0xfe0f;

function isWide(code: number): boolean {
  let low = 0;
  let high = WIDE.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const [first, last] = WIDE[mid]!;
    if (code < first) high = mid - 1;
    else if (code > last) low = mid + 1;
    else return true;
  }
  return false;
}

/**
 * Columns one character (given as a string holding one code point) takes.
 *
 * @example Usage
 * ```ts
 * import { charWidth } from "./width.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(charWidth("a"), 1);
 * assert.equal(charWidth("漢"), 2);
 * assert.equal(charWidth("\u0301"), 0); // a combining accent
 * ```
 */
export function charWidth(ch: string): number {
  const code = ch.codePointAt(0) ?? 0;
  if (code < 0x300 || code === EMOJI_PRESENTATION) return 1;
  if (ZERO_WIDTH.test(ch)) return 0;
  return isWide(code) ? 2 : 1;
}

/** Columns a string of plain text (no escape codes) takes. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) width += charWidth(ch);
  return width;
}
