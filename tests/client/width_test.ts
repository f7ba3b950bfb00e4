/**
 * client/width.ts: how many terminal columns a character takes, and that
 * `wrap()` from client/io.ts, which counts with it, never makes a row wider
 * than it was asked for.
 */

import assert from "node:assert/strict";
import { wrap } from "../../client/io.ts";
import { charWidth, displayWidth } from "../../client/width.ts";

// deno-lint-ignore no-control-regex -- colour codes are what is being removed
const SGR = /\x1b\[[0-9;]*m/g;

/** Names a code point in failure messages. */
const hex = (ch: string) => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;

function assertWidth(chars: string[], width: number): void {
  for (const ch of chars) assert.equal(charWidth(ch), width, `charWidth of ${hex(ch)}`);
}

Deno.test("charWidth() gives printable ASCII and Latin letters one column", () => {
  assertWidth(["a", "Z", "0", " ", "~", "é", "ß", "Ω", "Я"], 1);
});

Deno.test("charWidth() gives CJK and fullwidth characters two columns", () => {
  assertWidth(["漢", "字", "あ", "カ", "한", "Ａ", "！", "\u3000", "\u{20000}"], 2);
});

Deno.test("charWidth() gives combining marks, joiners and variation selectors no column", () => {
  assertWidth(["\u0301", "\u0308", "\u20dd", "\u200b", "\u200d", "\ufe0e"], 0);
  assertWidth(["\u{e0100}"], 0);
});

Deno.test("displayWidth() counts a narrow symbol made an emoji by U+FE0F as two columns", () => {
  // U+2764 HEAVY BLACK HEART is narrow; with the emoji selector most
  // terminals draw it two columns wide. Counting wide is the safe error.
  assert.equal(displayWidth("\u2764"), 1);
  assert.equal(displayWidth("\u2764\ufe0f"), 2);
});

Deno.test("charWidth() gives wide emoji and symbols two columns", () => {
  // Watch, umbrella with rain, mahjong tile, grinning face, and others from
  // the ranges terminals draw two columns wide.
  assertWidth(["\u231a", "\u2614", "\u{1f004}", "\u{1f600}", "\u26a1", "\u2705", "\u2b50"], 2);
  assertWidth(["\u{1f680}", "\u{1f914}", "\u{1fa70}", "\u{1f30d}", "\u{1f0cf}"], 2);
});

Deno.test("displayWidth() adds up the columns of a string", () => {
  assert.equal(displayWidth(""), 0);
  assert.equal(displayWidth("hello"), 5);
  assert.equal(displayWidth("漢字ab"), 6);
  // "e" and a combining acute accent: one column.
  assert.equal(displayWidth("e\u0301"), 1);
  // Three faces joined by ZWJs: the faces count, the joiners do not (a
  // terminal that draws the family as one picture gets a row that ends early).
  assert.equal(displayWidth("\u{1f468}\u200d\u{1f469}\u200d\u{1f467}"), 6);
  assert.equal(displayWidth("\u231a\u2614\u{1f004}\u{1f600}"), 8);
});

Deno.test("wrap() never makes a row wider than the width, whatever the characters", () => {
  const pieces = [
    "plain words ",
    "漢字かな ",
    "\u231a",
    "\u2614",
    "\u{1f004}",
    "\u{1f600}",
    "e\u0301",
    "\u{1f468}\u200d\u{1f469}",
    "\x1b[31mred\x1b[0m",
    "\u2764\ufe0f",
    " ",
  ];
  for (const columns of [4, 5, 7, 10, 13, 20, 33, 79]) {
    for (let shift = 0; shift < pieces.length; shift++) {
      const text = [...pieces.slice(shift), ...pieces.slice(0, shift)].join("").repeat(3);
      const wrapped = wrap(text, columns);
      for (const [i, row] of wrapped.split("\n").entries()) {
        const width = displayWidth(row.replace(SGR, ""));
        assert.ok(
          width <= columns,
          `row ${i} of ${JSON.stringify(text)} at ${columns} columns is ${width} wide: ${row}`,
        );
      }
      // Nothing is lost: the rows, less their indent, are the text again.
      const rows = wrapped.split("\n");
      assert.equal(rows.map((r, i) => (i === 0 ? r : r.slice(2))).join(""), text);
    }
  }
});

Deno.test("wrap() moves a wide emoji that would stick out to the next row", () => {
  assert.equal(wrap("abcd\u231a", 5), "abcd\n  \u231a");
  assert.equal(wrap("abc\u{1f004}", 5), "abc\u{1f004}");
  assert.equal(wrap("abcd\u{1f004}x", 5), "abcd\n  \u{1f004}x");
  // A combining accent stays on the row of the letter it belongs to.
  assert.equal(wrap("abcde\u0301f", 5), "abcde\u0301\n  f");
});
