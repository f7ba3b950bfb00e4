/**
 * What a room may be called, how names compare, and how they are shown.
 *
 * @module
 */

/** The room everyone starts in unless the server is told another name. */
export const DEFAULT_ROOM = "lobby";

/** Longest room name, in characters, not counting the `#`. */
export const MAX_ROOM_NAME_LENGTH = 32;

/** The rule, in the words the server uses when it refuses a name. */
export const ROOM_RULE =
  `1 to ${MAX_ROOM_NAME_LENGTH} letters (any script), digits, '_', '-' or '.'`;

// The same characters as an alias: a letter or digit of any script with its
// combining marks, or one of three punctuation characters.
const ROOM_RE = /^(?:[\p{L}\p{Nd}]\p{M}*|[_.-])+$/u;
// Letters that show as nothing (the Hangul fillers) and other characters a
// name could hide behind: "lobby" and "lobby" + U+3164 would look the same.
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

/** The outcome of {@linkcode checkRoomName}. */
export type RoomNameCheck = { ok: true; name: string } | { ok: false; reason: string };

/**
 * Checks a room name as a user typed it (with or without one leading `#`)
 * and returns it without the `#`, in canonical (NFC) form, or the reason it
 * is refused.
 *
 * @example Usage
 * ```ts
 * import { checkRoomName } from "./room_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(checkRoomName("#Dev"), { ok: true, name: "Dev" });
 * assert.equal(checkRoomName("two words").ok, false);
 * ```
 */
export function checkRoomName(input: string): RoomNameCheck {
  const name = input.trim().replace(/^#/, "").normalize("NFC");
  if (name === "") return { ok: false, reason: "a room name cannot be empty" };
  const length = [...name].length;
  if (length > MAX_ROOM_NAME_LENGTH) {
    return {
      ok: false,
      reason: `a room name is at most ${MAX_ROOM_NAME_LENGTH} characters, got ${length}`,
    };
  }
  if (!ROOM_RE.test(name)) return { ok: false, reason: `a room name is ${ROOM_RULE}` };
  if (INVISIBLE.test(name)) {
    return { ok: false, reason: "a room name cannot hold invisible characters" };
  }
  return { ok: true, name };
}

/** The key under which a room name is unique: case and normalisation folded. */
export function roomKey(name: string): string {
  return name.normalize("NFC").toLowerCase();
}

/**
 * How a room is shown: its name after a `#`.
 *
 * @example Usage
 * ```ts
 * import { showRoom } from "./room_name.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(showRoom("dev"), "#dev");
 * ```
 */
export function showRoom(name: string): string {
  return `#${name}`;
}
