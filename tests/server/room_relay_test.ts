/**
 * The LocalRoom methods a shared room delivers through: admit, dismiss and
 * relay, which add, remove and reach members without notices of their own.
 */

import assert from "node:assert/strict";
import { encodeLine, LocalRoom, type Member, TOO_SLOW } from "../../server/room.ts";

const decoder = new TextDecoder();

function member(alias: string, capacity = Infinity) {
  const inbox: string[] = [];
  const evictions: string[] = [];
  const m: Member = {
    alias,
    joinedAt: Date.now(),
    away: "",
    replyTo: undefined,
    deliver: (bytes) => {
      if (inbox.length >= capacity) return false;
      inbox.push(decoder.decode(bytes));
      return true;
    },
    evicted: (reason) => evictions.push(reason),
  };
  return { m, inbox, evictions };
}

Deno.test("LocalRoom.admit() hands over the lines and adds the member without a notice", () => {
  const room = new LocalRoom({ noticeDelayMs: 0 });
  const alice = member("alice");
  const bob = member("bob");
  room.join(alice.m, { history: false });
  alice.inbox.length = 0;
  assert.ok(room.admit(bob.m, [encodeLine("one"), encodeLine("two")]));
  assert.deepEqual(bob.inbox, ["one\n", "two\n"]);
  assert.deepEqual(alice.inbox, []);
  assert.equal(room.size, 2);
  room.close();
});

Deno.test("LocalRoom.admit() asks a member whose queue cannot take the lines to go", () => {
  const room = new LocalRoom({ noticeDelayMs: 0 });
  const slow = member("slow", 1);
  assert.ok(!room.admit(slow.m, [encodeLine("one"), encodeLine("two")]));
  assert.deepEqual(slow.evictions, [TOO_SLOW]);
  assert.equal(room.size, 0);
  room.close();
});

Deno.test("LocalRoom.relay() reaches everyone but the one excepted, and drops the slow", () => {
  const room = new LocalRoom({ noticeDelayMs: 0 });
  const alice = member("alice");
  const bob = member("bob");
  const slow = member("slow", 0);
  for (const x of [alice, bob]) room.admit(x.m, []);
  room.admit(slow.m, []);
  room.relay(encodeLine("hello"), alice.m);
  assert.deepEqual(alice.inbox, []);
  assert.deepEqual(bob.inbox, ["hello\n"]);
  assert.deepEqual(slow.evictions, [TOO_SLOW]);
  room.close();
});

Deno.test("LocalRoom.dismiss() removes a member without telling anyone", () => {
  const room = new LocalRoom({ noticeDelayMs: 0 });
  const alice = member("alice");
  const bob = member("bob");
  room.admit(alice.m, []);
  room.admit(bob.m, []);
  room.dismiss(bob.m);
  room.dismiss(bob.m);
  assert.equal(room.size, 1);
  assert.deepEqual(alice.inbox, []);
  room.relay(encodeLine("after"));
  assert.deepEqual(bob.inbox, []);
  room.close();
});
