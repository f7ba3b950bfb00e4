/**
 * What Tab offers in `confab join`: command names, the aliases of people
 * online, and after `/join ` the names of the rooms seen on the wire.
 *
 * @module
 */

import { COMMAND_NAMES } from "../protocol/commands.ts";
import { checkRoomName, roomKey } from "../protocol/room_name.ts";
import { parseRoomListing, parseWelcome, type ServerEvent } from "../protocol/wire.ts";

/** Room names seen on the wire, by {@linkcode roomKey}, as the server writes them. */
export type RoomNames = Map<string, string>;

/**
 * readline's completion of `line`: the candidates and the word they replace.
 * After `/join ` a room name (with or without its `#`), after a lone `/...`
 * a command, anywhere else an alias online (`alias: ` at the start of a line).
 *
 * @example Usage
 * ```ts
 * import { complete } from "./complete.ts";
 * import assert from "node:assert/strict";
 *
 * const rooms = new Map([["dev", "dev"]]);
 * assert.deepEqual(complete("/join #d", new Set(), rooms), [["#dev "], "#d"]);
 * assert.deepEqual(complete("bo", new Set(["bob"]), rooms), [["bob: "], "bo"]);
 * ```
 */
export function complete(line: string, online: Set<string>, rooms: RoomNames): [string[], string] {
  const join = /^\/join\s+(#?)(\S*)$/i.exec(line);
  if (join) {
    const [, hash, partial] = join as unknown as [string, string, string];
    const lower = roomKey(partial);
    const hits = [...rooms.values()].filter((r) => roomKey(r).startsWith(lower))
      .map((r) => `${hash}${r} `);
    return [hits, hash + partial];
  }
  if (/^\/\S*$/.test(line)) {
    const hits = COMMAND_NAMES.filter((c) => c.startsWith(line.toLowerCase()));
    return [hits.length ? hits.map((c) => c + " ") : [...COMMAND_NAMES], line];
  }
  const word = /(\S*)$/.exec(line)![1]!;
  if (word === "") return [[], word];
  const lower = word.toLowerCase();
  const atStart = line.length === word.length;
  const hits = [...online].filter((a) => a.toLowerCase().startsWith(lower))
    .map((a) => (atStart ? `${a}: ` : `${a} `));
  return [hits, word];
}

/** A room name from the server, if it is a valid one (never raw bytes to show). */
export function validRoom(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const check = checkRoomName(name);
  return check.ok && check.name === name ? name : undefined;
}

/**
 * Most room names kept for completion: a server's default cap on rooms. A
 * server that names more (a hostile one could name millions) pushes the
 * oldest out, so memory stays bounded.
 */
export const MAX_ROOM_NAMES = 1000;

/** Notes a room name seen on the wire, for completion after `/join`. */
export function noteRoom(rooms: RoomNames, name: string | undefined): void {
  const room = validRoom(name);
  if (room === undefined) return;
  const key = roomKey(room);
  rooms.delete(key);
  rooms.set(key, room);
  while (rooms.size > MAX_ROOM_NAMES) rooms.delete(rooms.keys().next().value!);
}

/** The rooms an event names: a `/rooms` row, a welcome, someone leaving for another. */
export function trackRooms(event: ServerEvent, rooms: RoomNames): void {
  if (event.kind === "leave") noteRoom(rooms, event.to);
  if (event.kind === "notice") {
    noteRoom(rooms, parseRoomListing(event.text)?.name);
    noteRoom(rooms, parseWelcome(event.text)?.room);
  }
}
