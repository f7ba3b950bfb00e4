/**
 * Makes untrusted text safe to put on someone's terminal.
 *
 * Control characters can move the cursor, recolour or clear the screen,
 * rewrite the window title, or (with a stray CR) overwrite the start of a line
 * so it looks as if someone else said it. {@linkcode sanitize} shows every
 * such character escaped instead of letting it act: C0 controls and DEL in
 * caret notation (`^[` for ESC), C1 controls as `\x9B`, bidirectional
 * overrides and line/paragraph separators as `\u202E`. A tab becomes a space. What is
 * left is plain printable text on one line.
 *
 * @module
 */

// C0 (U+0000-U+001F), DEL, C1 (U+0080-U+009F), the bidi embeddings, overrides
// and isolates (which reorder what follows them), line and paragraph
// separators, and the byte order mark / zero width no-break space.
/** A regular expression source matching one unsafe character. */
export const UNSAFE_CHAR =
  "[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069\\ufeff]";
const UNSAFE = new RegExp(UNSAFE_CHAR);
const UNSAFE_ALL = new RegExp(UNSAFE_CHAR, "g");

/**
 * At most how many times longer, in UTF-8 bytes, sanitised text can be than
 * the original: U+061C (two bytes) becomes `\u061C` (six).
 */
export const MAX_EXPANSION = 3;

function escapeChar(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code === 0x09) return " ";
  if (code < 0x20) return "^" + String.fromCharCode(code + 0x40);
  if (code === 0x7f) return "^?";
  const hex = code.toString(16).toUpperCase();
  return code <= 0xff ? `\\x${hex}` : `\\u${hex.padStart(4, "0")}`;
}

/**
 * Returns `text` with every control or reordering character shown escaped.
 * Text that needs nothing is returned as it is, without copying.
 *
 * @example Usage
 * ```ts
 * import { sanitize } from "./sanitize.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sanitize("hi\x1b[2J\rbob: lies"), "hi^[[2J^Mbob: lies");
 * assert.equal(sanitize("plain"), "plain");
 * ```
 */
export function sanitize(text: string): string {
  return UNSAFE.test(text) ? text.replace(UNSAFE_ALL, escapeChar) : text;
}

/** Whether `text` holds any character that {@linkcode sanitize} would escape. */
export function isClean(text: string): boolean {
  return !UNSAFE.test(text);
}
