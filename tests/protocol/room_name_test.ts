import assert from "node:assert/strict";
import {
  checkRoomName,
  MAX_ROOM_NAME_LENGTH,
  roomKey,
  showRoom,
} from "../../protocol/room_name.ts";
import { checkAlias } from "../../protocol/alias.ts";
import {
  formatAlreadyIn,
  formatLeave,
  formatRoomCap,
  formatRoomListing,
  formatRoomsHeader,
  formatTopic,
  formatTopicOf,
  formatTopicSet,
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

Deno.test("room notices: the topic after a welcome, /topic's reply, a topic set or cleared, /rooms' header, the cap", () => {
  assert.equal(formatTopic("ship it"), "topic: ship it");
  assert.equal(formatTopicOf("dev", "ship it"), "topic of #dev: ship it");
  assert.equal(formatTopicOf("dev", ""), "#dev has no topic");
  assert.equal(formatTopicSet("alice", "ship it"), "alice set the topic: ship it");
  assert.equal(formatTopicSet("alice", ""), "alice cleared the topic");
  assert.equal(formatRoomsHeader(1), "1 room:");
  assert.equal(formatRoomsHeader(1000), "1000 rooms:");
  assert.equal(
    formatRoomCap(3),
    "there are already 3 rooms; join one of them (/rooms lists them)",
  );
  assert.equal(formatAlreadyIn("dev"), "you are already in #dev");
  // Each is a notice or an error text; as a notice it parses as one.
  assert.deepEqual(parseServerLine(`[00:00:00] -- ${formatTopic("x")}`), {
    kind: "notice",
    time: "00:00:00",
    text: "topic: x",
  });
});

Deno.test("checkRoomName() and checkAlias() refuse invisible characters a name could hide behind", () => {
  for (
    const hidden of ["\u3164", "lobby\u3164", "lob\u200bby", "lobby\u00ad", "\uffa0", "a\u034f"]
  ) {
    assert.equal(checkRoomName(hidden).ok, false, JSON.stringify(hidden));
    assert.equal(checkAlias(hidden).ok, false, JSON.stringify(hidden));
  }
  assert.deepEqual(checkRoomName("lobby\u3164"), {
    ok: false,
    reason: "a room name cannot hold invisible characters",
  });
  assert.deepEqual(checkAlias("bob\u3164"), {
    ok: false,
    reason: "an alias cannot hold invisible characters",
  });
  // Visible letters of every script still pass.
  assert.ok(checkRoomName("한국어").ok);
  assert.ok(checkAlias("한국어").ok);
});
