import assert from "node:assert/strict";
import { isClean, MAX_EXPANSION, sanitize } from "../../protocol/sanitize.ts";

const hex = (code: number) => code.toString(16).toUpperCase().padStart(4, "0");

Deno.test("sanitize() shows C0 controls in caret notation", async (t) => {
  const named: [string, string, string][] = [
    ["NUL", "\x00", "^@"],
    ["BEL", "\x07", "^G"],
    ["BS", "\x08", "^H"],
    ["LF", "\n", "^J"],
    ["VT", "\x0b", "^K"],
    ["FF", "\x0c", "^L"],
    ["CR", "\r", "^M"],
    ["ESC", "\x1b", "^["],
    ["US", "\x1f", "^_"],
  ];
  for (const [name, raw, shown] of named) {
    await t.step(name, () => {
      assert.equal(sanitize(`a${raw}b`), `a${shown}b`);
      assert.equal(isClean(`a${raw}b`), false);
    });
  }
  await t.step("every C0 control but tab becomes ^ and a printable character", () => {
    for (let code = 0; code < 0x20; code++) {
      if (code === 0x09) continue;
      const out = sanitize(String.fromCharCode(code));
      assert.equal(out.length, 2, `U+${hex(code)}`);
      assert.equal(out[0], "^");
      assert.ok(out.charCodeAt(1) >= 0x40 && out.charCodeAt(1) <= 0x5f, `U+${hex(code)}: ${out}`);
    }
  });
});

Deno.test("sanitize() shows DEL as ^?", () => {
  assert.equal(sanitize("a\x7fb"), "a^?b");
});

Deno.test("sanitize() turns a tab into a space", () => {
  assert.equal(sanitize("a\tb\t"), "a b ");
});

Deno.test("sanitize() shows C1 controls as \\xXX", () => {
  // U+009B is the one-character CSI: on some terminals it starts an escape
  // sequence by itself.
  assert.equal(sanitize("\u009b2J"), "\\x9B2J");
  assert.equal(sanitize("a\u0085b"), "a\\x85b");
  for (let code = 0x80; code <= 0x9f; code++) {
    assert.equal(sanitize(String.fromCharCode(code)), `\\x${code.toString(16).toUpperCase()}`);
  }
});

Deno.test("sanitize() shows bidi controls, separators and the BOM as \\uXXXX", () => {
  const codes = [
    0x061c, // arabic letter mark
    0x200e, // left-to-right mark
    0x200f, // right-to-left mark
    0x202a, // embeddings and overrides
    0x202b,
    0x202c,
    0x202d,
    0x202e,
    0x2066, // isolates
    0x2067,
    0x2068,
    0x2069,
    0x2028, // line separator
    0x2029, // paragraph separator
    0xfeff, // byte order mark
  ];
  for (const code of codes) {
    const ch = String.fromCharCode(code);
    assert.equal(sanitize(`x${ch}y`), `x\\u${hex(code)}y`);
    assert.equal(isClean(ch), false, `U+${hex(code)}`);
  }
  assert.equal(sanitize("user\u202Etxt.exe"), "user\\u202Etxt.exe");
});

Deno.test("sanitize() returns clean text unchanged", () => {
  const samples = [
    "",
    "plain ASCII: !\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}~",
    "Zoë, crème brûlée, Ñandú",
    "日本語のテキスト, 中文, 한국어",
    "emoji 😀👍🏽 and a family 👨‍👩‍👧 (with zero width joiners)",
    "combining: e\u0301 a\u0308",
    "right-to-left script: مرحبا שלום",
    // Neighbours of the escaped ranges stay as they are.
    "\u00a0 \u00a1 \u200b \u200d \u2027 \u202f \u2065 \u206a \ufefe \ufffd",
  ];
  for (const text of samples) {
    assert.equal(sanitize(text), text);
    assert.equal(isClean(text), true, JSON.stringify(text));
  }
});

Deno.test("sanitize() leaves no raw CR in a forged line", () => {
  const forged = "hi\r[12:00:00] server: x";
  const out = sanitize(forged);
  assert.equal(out.includes("\r"), false);
  assert.equal(out, "hi^M[12:00:00] server: x");
  assert.equal(isClean(out), true);
});

Deno.test("sanitize() escapes every unsafe character in a mixed string", () => {
  const out = sanitize("\x1b[31mred\x1b[0m\u202e\r\n\x00ok\u0085");
  assert.equal(out, "^[[31mred^[[0m\\u202E^M^J^@ok\\x85");
});

Deno.test("sanitize() output is clean, so sanitising twice changes nothing", () => {
  let all = "";
  for (let code = 0; code <= 0x2100; code++) all += String.fromCharCode(code);
  all += "\ufeff\u2066\u2069";
  const once = sanitize(all);
  assert.equal(isClean(once), true);
  assert.equal(sanitize(once), once);
});

Deno.test("sanitize() never grows text by more than MAX_EXPANSION times in UTF-8 bytes", () => {
  const bytes = (text: string) => new TextEncoder().encode(text).length;
  let worst = 0;
  for (let code = 0; code <= 0xffff; code++) {
    if (code >= 0xd800 && code <= 0xdfff) continue;
    const ch = String.fromCharCode(code);
    worst = Math.max(worst, bytes(sanitize(ch)) / bytes(ch));
  }
  assert.ok(worst <= MAX_EXPANSION, `worst expansion ${worst}`);
  assert.ok(worst > 1, "some characters do grow");
});
