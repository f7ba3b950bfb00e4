import assert from "node:assert/strict";
import {
  complete,
  MAX_ROOM_NAMES,
  noteRoom,
  type RoomNames,
  trackRooms,
  validRoom,
} from "../../client/complete.ts";
import { parseServerLine } from "../../protocol/wire.ts";

const rooms = (...names: string[]): RoomNames => new Map(names.map((n) => [n.toLowerCase(), n]));

Deno.test("complete() offers room names after /join, with or without the #", () => {
  const seen = rooms("dev", "Design", "lobby");
  assert.deepEqual(complete("/join #d", new Set(), seen), [["#dev ", "#Design "], "#d"]);
  assert.deepEqual(complete("/join DE", new Set(), seen), [["dev ", "Design "], "DE"]);
  assert.deepEqual(complete("/join lo", new Set(["lola"]), seen), [["lobby "], "lo"]);
  assert.deepEqual(complete("/JOIN  ", new Set(), rooms("dev")), [["dev "], ""]);
  assert.deepEqual(complete("/join x", new Set(), seen), [[], "x"]);
});

Deno.test("complete() still offers commands and aliases outside /join", () => {
  assert.deepEqual(complete("/jo", new Set(), rooms("dev")), [["/join "], "/jo"]);
  assert.deepEqual(complete("de", new Set(["dena"]), rooms("dev")), [["dena: "], "de"]);
  assert.deepEqual(complete("hi /join d", new Set(["dora"]), rooms("dev")), [["dora "], "d"]);
});

Deno.test("trackRooms() learns room names from /rooms rows, welcomes and moves elsewhere", () => {
  const seen: RoomNames = new Map();
  for (
    const line of [
      "[10:00:00] -- 2 rooms:",
      "[10:00:00] --   #lobby, 2 here (you are here)",
      "[10:00:00] --   #Dev, 1 here: ship it",
      "[10:00:01] -- welcome to #ops, al! you are the only one here",
      "[10:00:02] <-- bob left for #qa",
      "[10:00:03] bob: #chatter is no room",
    ]
  ) trackRooms(parseServerLine(line), seen);
  assert.deepEqual([...seen.entries()].sort(), [
    ["dev", "Dev"],
    ["lobby", "lobby"],
    ["ops", "ops"],
    ["qa", "qa"],
  ]);
});

Deno.test("validRoom() keeps only names the server could have sent, as they are", () => {
  assert.equal(validRoom("dev"), "dev");
  assert.equal(validRoom("#dev"), undefined);
  assert.equal(validRoom("d\x1bv"), undefined);
  assert.equal(validRoom("x".repeat(33)), undefined);
  assert.equal(validRoom(undefined), undefined);
});

Deno.test("noteRoom() keeps at most MAX_ROOM_NAMES, forgetting the oldest, whatever a server names", () => {
  const rooms: RoomNames = new Map();
  for (let i = 0; i < MAX_ROOM_NAMES + 500; i++) noteRoom(rooms, `r${i}`);
  assert.equal(rooms.size, MAX_ROOM_NAMES);
  assert.ok(!rooms.has("r0"));
  assert.ok(rooms.has(`r${MAX_ROOM_NAMES + 499}`));
  // Seen again, a name counts as new.
  noteRoom(rooms, "r500");
  noteRoom(rooms, "extra");
  assert.ok(rooms.has("r500"));
  assert.ok(!rooms.has("r501"));
});
