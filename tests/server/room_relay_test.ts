/**
 * The LocalRoom methods a shared room delivers through: admit, dismiss and
 * relay, which add, remove and reach members without notices of their own.
 */

import assert from "node:assert/strict";
import { encodeLine, LocalRoom, TOO_SLOW } from "../../server/room.ts";
import { FakeMember, settle } from "./_fake_member.ts";

Deno.test("LocalRoom.admit() hands over the lines and adds the member without a notice", async () => {
  const room = new LocalRoom();
  const alice = new FakeMember("alice");
  const bob = new FakeMember("bob");
  room.join(alice, { history: false });
  await settle(room, alice);
  alice.reset();
  assert.ok(room.admit(bob, [encodeLine("one"), encodeLine("two")]));
  await settle(room, alice, bob);
  assert.deepEqual(bob.lines, ["one", "two"]);
  assert.deepEqual(alice.lines, []);
  assert.equal(room.size, 2);
  room.close();
});

Deno.test("LocalRoom.admit() asks a member whose queue cannot take the lines to go", () => {
  const room = new LocalRoom();
  const slow = new FakeMember("slow");
  slow.full = true;
  assert.ok(!room.admit(slow, [encodeLine("one"), encodeLine("two")]));
  assert.deepEqual(slow.evictions, [TOO_SLOW]);
  assert.equal(room.size, 0);
  room.close();
});

Deno.test("LocalRoom.relay() reaches everyone but the one excepted, in order with what is said", async () => {
  const room = new LocalRoom();
  const alice = new FakeMember("alice");
  const bob = new FakeMember("bob");
  for (const member of [alice, bob]) room.admit(member, []);
  room.relay(encodeLine("hello"), alice);
  room.say(alice, "said");
  room.relay(encodeLine("after"));
  await settle(room, alice, bob);
  assert.deepEqual(alice.lines, ["after"]);
  assert.equal(bob.lines.length, 3);
  assert.equal(bob.lines[0], "hello");
  assert.match(bob.lines[1]!, /alice: said$/);
  assert.equal(bob.lines[2], "after");
  room.close();
});

Deno.test("LocalRoom.dismiss() removes a member without telling anyone, and it keeps what came before", async () => {
  const room = new LocalRoom();
  const alice = new FakeMember("alice");
  const bob = new FakeMember("bob");
  room.admit(alice, []);
  room.admit(bob, []);
  room.relay(encodeLine("before"));
  room.dismiss(bob);
  room.dismiss(bob);
  assert.equal(room.size, 1);
  room.relay(encodeLine("after"));
  await settle(room, alice, bob);
  assert.deepEqual(alice.lines, ["before", "after"]);
  assert.deepEqual(bob.lines, ["before"]);
  room.close();
});
