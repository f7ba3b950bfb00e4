/**
 * `wrap()` from client/io.ts: how the join client breaks a long line for a
 * terminal of a given width.
 */

import assert from "node:assert/strict";
import { wrap } from "../../client/io.ts";

const RED = "\x1b[31m";
const BOLD = "\x1b[1m";
const RESET = "\x1b[0m";

// deno-lint-ignore no-control-regex -- colour codes are what is being measured
const SGR = /\x1b\[[0-9;]*m/g;

/** Columns taken by plain text here: two for the CJK characters used, one otherwise. */
function columnsOf(row: string): number {
  let width = 0;
  for (const ch of row.replace(SGR, "")) width += /[\u3000-\u9fff]/.test(ch) ? 2 : 1;
  return width;
}

/** Checks the rows of a wrapped line: none too wide, every continuation indented. */
function assertRows(wrapped: string, columns: number): string[] {
  const rows = wrapped.split("\n");
  for (const [i, row] of rows.entries()) {
    assert.ok(columnsOf(row) <= columns, `row ${i} is ${columnsOf(row)} columns: ${row}`);
    if (i > 0) assert.match(row.replace(SGR, ""), /^ {2}/, `row ${i} is not indented: ${row}`);
    // Every escape in a row is a whole colour code.
    assert.equal(row.replace(SGR, "").includes("\x1b"), false, `split colour code in ${row}`);
  }
  return rows;
}

Deno.test("wrap() leaves a line that fits alone", () => {
  assert.equal(wrap("", 10), "");
  assert.equal(wrap("abcde", 5), "abcde");
  assert.equal(wrap("short line", 80), "short line");
});

Deno.test("wrap() breaks a long line at the width and indents each continuation row by two", () => {
  assert.equal(wrap("abcdefgh", 5), "abcde\n  fgh");
  // Continuation rows hold width - 2 characters after their indent.
  assert.equal(wrap("a".repeat(12), 5), "aaaaa\n  aaa\n  aaa\n  a");
  const long = Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ");
  const rows = assertRows(wrap(long, 40), 40);
  assert.equal(rows[0], long.slice(0, 40));
  assert.equal(rows.length, Math.ceil((long.length - 40) / 38) + 1);
  assert.equal(rows.map((row, i) => (i === 0 ? row : row.slice(2))).join(""), long);
});

Deno.test("wrap() gives colour codes no width and never splits one", () => {
  // Fits: the codes take no columns.
  assert.equal(wrap(`${BOLD}abc${RESET}de`, 5), `${BOLD}abc${RESET}de`);
  assert.equal(wrap(`${RED}abcdefg${RESET}`, 5), `${RED}abcde\n  fg${RESET}`);
  // A code right at the edge stays whole, on the row it started on.
  assert.equal(wrap(`abcde${RED}fg`, 5), `abcde${RED}\n  fg`);
  // Codes between every character: the text still wraps by what is visible.
  const painted = [..."abcdefghijkl"].map((ch) => `${RED}${ch}${RESET}`).join("");
  const rows = assertRows(wrap(painted, 6), 6);
  assert.deepEqual(rows.map((row) => row.replace(SGR, "")), ["abcdef", "  ghij", "  kl"]);
});

Deno.test("wrap() counts wide (CJK) characters as two columns", () => {
  assert.equal(wrap("漢字漢", 6), "漢字漢");
  assert.equal(wrap("漢字漢字", 6), "漢字漢\n  字");
  // A wide character that would stick out past the edge moves to the next row.
  assert.equal(wrap("漢字漢字", 5), "漢字\n  漢\n  字");
  assert.equal(wrap("ab漢字", 5), "ab漢\n  字");
  const mixed = `${BOLD}日本語${RESET}のテキストと English text mixed`;
  assertRows(wrap(mixed, 12), 12);
});
