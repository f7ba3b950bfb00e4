import assert from "node:assert/strict";
import { aliasKey, checkAlias } from "../../protocol/alias.ts";
import { MAX_ALIAS_LENGTH, RESERVED_ALIASES } from "../../protocol/wire.ts";

function refused(input: string): string {
  const check = checkAlias(input);
  assert.equal(check.ok, false, `${JSON.stringify(input)} should be refused`);
  return check.ok ? "" : check.reason;
}

Deno.test("checkAlias() accepts letters of any script, digits, '_', '-' and '.'", () => {
  const valid = [
    "alice",
    "Bob_2",
    "a.b-c",
    "_",
    "-",
    ".",
    "007",
    "Zoë",
    "Ñandú",
    "日本語",
    "Дмитрий",
    "علي",
    "ελένη",
    "क्षत्रिय", // Devanagari: letters followed by combining vowel signs and viramas
    "٣٤", // Arabic-Indic digits
  ];
  for (const alias of valid) {
    assert.deepEqual(checkAlias(alias), { ok: true, alias }, JSON.stringify(alias));
  }
});

Deno.test("checkAlias() accepts a letter followed by combining marks", () => {
  // No precomposed form exists for q + combining tilde, so NFC keeps the mark.
  assert.deepEqual(checkAlias("q\u0303"), { ok: true, alias: "q\u0303" });
  assert.deepEqual(checkAlias("a\u0301\u0323b"), { ok: true, alias: "a\u0301\u0323b".normalize() });
});

Deno.test("checkAlias() refuses a combining mark with no letter before it", () => {
  refused("\u0301abc");
  refused("_\u0301");
});

Deno.test("checkAlias() enforces MAX_ALIAS_LENGTH characters", () => {
  assert.equal(MAX_ALIAS_LENGTH, 32);
  assert.equal(checkAlias("a".repeat(32)).ok, true);
  assert.match(refused("a".repeat(33)), /at most 32 characters, got 33/);
  // Characters, not UTF-16 units or bytes: 32 astral-free CJK characters fit.
  assert.equal(checkAlias("語".repeat(32)).ok, true);
  assert.match(refused("語".repeat(33)), /got 33/);
});

Deno.test("checkAlias() counts length after NFC normalisation", () => {
  // 64 code points decomposed, 32 once composed.
  const decomposed = "e\u0301".repeat(32);
  assert.deepEqual(checkAlias(decomposed), { ok: true, alias: "\u00e9".repeat(32) });
});

Deno.test("checkAlias() returns the NFC form", () => {
  const result = checkAlias("Zoe\u0308");
  assert.deepEqual(result, { ok: true, alias: "Zo\u00eb" });
});

Deno.test("checkAlias() refuses an empty or blank alias", () => {
  assert.match(refused(""), /empty/);
  assert.match(refused("   "), /empty/);
  assert.match(refused("\t"), /empty/);
});

Deno.test("checkAlias() trims surrounding whitespace but refuses inner spaces", () => {
  assert.deepEqual(checkAlias("  alice \t"), { ok: true, alias: "alice" });
  refused("al ice");
  refused("al\tice");
  refused("al\u00a0ice");
});

Deno.test("checkAlias() refuses punctuation and symbols", () => {
  for (
    const bad of ["alice!", "a@b", "a:b", "(x)", "[x]", "a*b", "#chan", "a/b", "a,b", "😀", "a+b"]
  ) {
    assert.match(refused(bad), /letters \(any script\), digits/, bad);
  }
});

Deno.test("checkAlias() refuses control and invisible formatting characters", () => {
  for (
    const bad of ["a\x1bb", "a\x00b", "a\rb", "a\nb", "a\x7fb", "a\u009bb", "a\u202eb", "a\u200bb"]
  ) {
    refused(bad);
  }
});

Deno.test("checkAlias() refuses reserved words in any case", () => {
  assert.ok(RESERVED_ALIASES.size > 0);
  for (const word of RESERVED_ALIASES) {
    const upper = word.toUpperCase();
    const mixed = word[0]!.toUpperCase() + word.slice(1);
    for (const variant of [word, upper, mixed]) {
      assert.match(refused(variant), /reserved/, variant);
    }
    // Only the whole word is reserved.
    assert.equal(checkAlias(`${word}2`).ok, true);
  }
});

Deno.test("aliasKey() folds case and normalisation", () => {
  assert.equal(aliasKey("Alice"), "alice");
  assert.equal(aliasKey("ALICE"), aliasKey("alice"));
  assert.equal(aliasKey("Zoe\u0308"), aliasKey("ZO\u00cb"));
  assert.equal(aliasKey("ДМИТРИЙ"), aliasKey("дмитрий"));
  assert.notEqual(aliasKey("alice"), aliasKey("alicia"));
  assert.notEqual(aliasKey("a.b"), aliasKey("a-b"));
});
