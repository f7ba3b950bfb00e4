/**
 * What makes a valid alias, and when two aliases count as the same.
 *
 * @module
 */

import { MAX_ALIAS_LENGTH, RESERVED_ALIASES } from "./wire.ts";
import { nameKey, nameRule, nameTrouble } from "./_name.ts";

/** The rule, in the words the server uses when it prompts for an alias. */
export const ALIAS_RULE: string = nameRule(MAX_ALIAS_LENGTH);

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
  const trouble = nameTrouble(alias, "an alias", MAX_ALIAS_LENGTH);
  if (trouble !== undefined) return { ok: false, reason: trouble };
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
  return nameKey(alias);
}
