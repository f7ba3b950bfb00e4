/**
 * What makes a valid alias, and when two aliases count as the same.
 *
 * @module
 */

import { MAX_ALIAS_LENGTH, RESERVED_ALIASES } from "./wire.ts";

/** The rule, in the words the server uses when it prompts for an alias. */
export const ALIAS_RULE = `1 to ${MAX_ALIAS_LENGTH} letters (any script), digits, '_', '-' or '.'`;

// A letter or digit of any script, optionally followed by combining marks, or
// one of the three punctuation characters.
const ALIAS_RE = /^(?:[\p{L}\p{Nd}]\p{M}*|[_.-])+$/u;
// Letters that show as nothing (the Hangul fillers) and other characters an
// alias could hide behind, to pass for someone else.
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

/** The outcome of {@linkcode checkAlias}. */
export type AliasCheck = { ok: true; alias: string } | { ok: false; reason: string };

/**
 * Checks a proposed alias against the rules and returns it in canonical
 * (NFC) form, or the reason it is refused. Uniqueness is the room's business:
 * compare {@linkcode aliasKey}s for that.
 *
 * @example Usage
 * ```ts
 * import { checkAlias } from "./alias.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(checkAlias("Zoë"), { ok: true, alias: "Zoë" });
 * assert.equal(checkAlias("server").ok, false);
 * ```
 */
export function checkAlias(input: string): AliasCheck {
  const alias = input.trim().normalize("NFC");
  if (alias === "") return { ok: false, reason: "an alias cannot be empty" };
  const length = [...alias].length;
  if (length > MAX_ALIAS_LENGTH) {
    return {
      ok: false,
      reason: `an alias is at most ${MAX_ALIAS_LENGTH} characters, got ${length}`,
    };
  }
  if (!ALIAS_RE.test(alias)) {
    return { ok: false, reason: `an alias is ${ALIAS_RULE}` };
  }
  if (INVISIBLE.test(alias)) {
    return { ok: false, reason: "an alias cannot hold invisible characters" };
  }
  if (RESERVED_ALIASES.has(aliasKey(alias))) {
    return { ok: false, reason: `"${alias}" is reserved` };
  }
  return { ok: true, alias };
}

/**
 * The key under which an alias is unique: two aliases that differ only in
 * case (or in Unicode normalisation) have the same key.
 */
export function aliasKey(alias: string): string {
  return alias.normalize("NFC").toLowerCase();
}
