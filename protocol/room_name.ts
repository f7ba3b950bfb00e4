/**
 * What a room may be called, how names compare, and how they are shown.
 *
 * @module
 */

import { nameKey, nameRule, nameTrouble } from "./_name.ts";

/** The room everyone starts in unless the server is told another name. */
export const DEFAULT_ROOM = "lobby";

/** Longest room name, in characters, not counting the `#`. */
export const MAX_ROOM_NAME_LENGTH = 32;

/** The rule, in the words the server uses when it refuses a name: an alias's. */
export const ROOM_RULE: string = nameRule(MAX_ROOM_NAME_LENGTH);

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
  const trouble = nameTrouble(name, "a room name", MAX_ROOM_NAME_LENGTH);
  return trouble === undefined ? { ok: true, name } : { ok: false, reason: trouble };
}

/** The key under which a room name is unique: case and normalisation folded. */
export function roomKey(name: string): string {
  return nameKey(name);
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
