/**
 * The one rule for names people choose, aliases and room names alike: which
 * characters, how long, and when two count as the same.
 *
 * @module
 */

// A letter or digit of any script, optionally followed by combining marks, or
// one of the three punctuation characters.
const NAME_RE = /^(?:[\p{L}\p{Nd}]\p{M}*|[_.-])+$/u;
// Letters that show as nothing (the Hangul fillers) and other characters a
// name could hide behind, to pass for another: "bob" and "bob" + U+3164, or
// "lobby" and "lobby" + U+3164, would look the same.
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

/** The rule, in the words a server uses when it asks for a name. */
export function nameRule(maxLength: number): string {
  return `1 to ${maxLength} letters (any script), digits, '_', '-' or '.'`;
}

/**
 * Why `name` (already trimmed and in NFC form) is not a valid name, in a
 * sentence about `what` ("an alias", "a room name"), or `undefined` if it is.
 */
export function nameTrouble(name: string, what: string, maxLength: number): string | undefined {
  if (name === "") return `${what} cannot be empty`;
  const length = [...name].length;
  if (length > maxLength) return `${what} is at most ${maxLength} characters, got ${length}`;
  if (!NAME_RE.test(name)) return `${what} is ${nameRule(maxLength)}`;
  if (INVISIBLE.test(name)) return `${what} cannot hold invisible characters`;
  return undefined;
}

/** The key under which a name is unique: case and normalisation folded. */
export function nameKey(name: string): string {
  return name.normalize("NFC").toLowerCase();
}
