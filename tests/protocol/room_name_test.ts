import assert from "node:assert/strict";
import {
  checkRoomName,
  MAX_ROOM_NAME_LENGTH,
  roomKey,
  showRoom,
} from "../../protocol/room_name.ts";
import {
  formatLeave,
  formatRoomListing,
  formatWelcome,
  parseJoiningRoom,
  parseRoomListing,
  parseServerLine,
  parseWelcome,
} from "../../protocol/wire.ts";

Deno.test("checkRoomName() takes a name with or without '#', in any script, and refuses the rest", () => {
  assert.deepEqual(checkRoomName("#dev"), { ok: true, name: "dev" });
  assert.deepEqual(checkRoomName(" Über.raum-2_x "), { ok: true, name: "Über.raum-2_x" });
  assert.deepEqual(checkRoomName("日本語"), { ok: true, name: "日本語" });
  for (const bad of ["", "#", "two words", "##dev", "a:b", "a#b", "tab\there", "x\x1b[2J"]) {
    const check = checkRoomName(bad);
    assert.equal(check.ok, false, bad);
  }
  assert.equal(checkRoomName("x".repeat(MAX_ROOM_NAME_LENGTH)).ok, true);
  assert.equal(checkRoomName("x".repeat(MAX_ROOM_NAME_LENGTH + 1)).ok, false);
});

Deno.test("roomKey() folds case and normalisation; showRoom() adds the '#'", () => {
  assert.equal(roomKey("Dev"), roomKey("dEV"));
  assert.equal(roomKey("Zoe\u0308"), roomKey("Zoë"));
  assert.equal(showRoom("dev"), "#dev");
});

Deno.test("room lines read back: a leave for another room, a welcome naming its room, the joining prompt, /rooms rows", () => {
  assert.deepEqual(parseServerLine(formatLeave(0, "alice", "", "dev")), {
    kind: "leave",
    time: "00:00:00",
    alias: "alice",
    reason: "",
    to: "dev",
  });
  assert.deepEqual(parseServerLine(formatLeave(0, "alice", "lunch")), {
    kind: "leave",
    time: "00:00:00",
    alias: "alice",
    reason: "lunch",
  });
  assert.deepEqual(parseWelcome(formatWelcome("bob", 2, ["alice", "bob"], "dev")), {
    alias: "bob",
    online: 2,
    names: ["alice", "bob"],
    room: "dev",
  });
  assert.equal(parseWelcome(formatWelcome("bob", 2, ["alice", "bob"]))?.room, undefined);
  assert.equal(parseJoiningRoom("history replay off; joining #dev; choose an alias: x"), "dev");
  assert.equal(parseJoiningRoom("choose an alias: x"), undefined);
  const row = { name: "lobby", members: 12, mine: false, topic: "" };
  assert.deepEqual(parseRoomListing(formatRoomListing(row)), row);
  assert.equal(parseRoomListing("  alice, here 5s"), undefined);
});
