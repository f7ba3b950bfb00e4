import assert from "node:assert/strict";
import {
  formatHistory,
  formatMessage,
  formatPrivateIn,
  formatPrivateOut,
  type ServerEvent,
} from "../../protocol/wire.ts";
import {
  encodeLine,
  HOLD_MS,
  LocalRoom,
  type LocalRoomOptions,
  STUCK_MS,
  TOO_SLOW,
} from "../../server/room.ts";
import { FakeMember, type FakeMemberOptions, noticeText, settle } from "./_fake_member.ts";
import { withTimeout } from "../_helpers.ts";

const STAMP = /^\[\d\d:\d\d:\d\d\] /;

/** A room closed when the test's `using` goes out of scope. */
function newRoom(options: LocalRoomOptions = {}): LocalRoom & Disposable {
  const room = new LocalRoom(options);
  return Object.assign(room, { [Symbol.dispose]: () => room.close() });
}

/**
 * Members for `aliases`, joined to `room` in order (without history), who
 * leave it when asked to go; once everything has reached them, their
 * inboxes are emptied.
 */
async function joinAll<const A extends readonly string[]>(
  room: LocalRoom,
  aliases: A,
  options: FakeMemberOptions = {},
): Promise<{ [K in keyof A]: FakeMember }> {
  const members = aliases.map((alias) => new FakeMember(alias, options));
  for (const member of members) {
    room.join(member, { history: false });
    member.room = room;
  }
  await settle(room, ...members);
  for (const member of members) member.reset();
  return members as { [K in keyof A]: FakeMember };
}

/** Joins one more member (without history) and lets everything reach it. */
async function joinOne(room: LocalRoom, alias: string, history = false): Promise<FakeMember> {
  const member = new FakeMember(alias);
  member.room = room;
  room.join(member, { history });
  await settle(room, member);
  return member;
}

/** An event without its time, to compare with deepEqual. */
function untimed(event: ServerEvent | undefined): unknown {
  return { ...event, time: "" };
}

/** The events as short words: "join carol", "message alice: hi", "notice welcome, …". */
function summary(member: FakeMember): string[] {
  return member.events.map((e) => {
    switch (e.kind) {
      case "join":
        return `join ${e.alias}`;
      case "leave":
        return `leave ${e.alias}${e.reason === "" ? "" : ` (${e.reason})`}`;
      case "nick":
        return `nick ${e.from} ${e.to}`;
      case "message":
        return `message ${e.from}: ${e.text}`;
      case "action":
        return `action ${e.from} ${e.text}`;
      case "private":
        return e.to === "you"
          ? `private from ${e.from}: ${e.text}`
          : `private to ${e.to}: ${e.text}`;
      case "notice":
        return `notice ${e.text}`;
      default:
        return e.kind;
    }
  });
}

/** Whether `promise` has settled once pending microtasks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 50; i++) await Promise.resolve();
  return done;
}

/** The length of alice's message line for `text`, whatever the time. */
function messageBytes(from: string, text: string): number {
  return encodeLine(formatMessage(Date.now(), from, text)).length;
}

Deno.test("encodeLine() encodes UTF-8 and adds one LF", () => {
  assert.deepEqual(encodeLine("hé"), Uint8Array.of(0x68, 0xc3, 0xa9, 0x0a));
});

Deno.test("LocalRoom.join() welcomes someone who is alone", async () => {
  using room = newRoom();
  const alice = await joinOne(room, "alice", true);
  assert.equal(alice.lines.length, 1);
  assert.match(alice.lines[0]!, STAMP);
  assert.equal(noticeText(alice.events[0]), "welcome, alice! you are the only one here");
  assert.equal(room.size, 1);
});

Deno.test("LocalRoom.join() welcomes with the others online, in joining order", async () => {
  using room = newRoom();
  await joinAll(room, ["alice", "bob"]);
  const carol = await joinOne(room, "carol");
  assert.equal(noticeText(carol.events[0]), "welcome, carol! 3 online: alice, bob, carol");
});

Deno.test("LocalRoom.join() counts everyone, newcomer included, and names at most 20, then 'and N more'", async () => {
  const aliases = Array.from({ length: 25 }, (_, i) => `m${String(i).padStart(2, "0")}`);
  using room = newRoom();
  await joinAll(room, aliases);
  const late = await joinOne(room, "late");
  const text = noticeText(late.events[0]);
  assert.equal(text, `welcome, late! 26 online: ${aliases.slice(0, 20).join(", ")} and 6 more`);
  assert.ok(!text.includes("m20"));

  // 19 others and the newcomer: all named, no "more".
  using full = newRoom();
  await joinAll(full, aliases.slice(0, 19));
  const next = await joinOne(full, "next");
  assert.equal(
    noticeText(next.events[0]),
    `welcome, next! 20 online: ${aliases.slice(0, 19).join(", ")}, next`,
  );
});

Deno.test("LocalRoom.join() announces the newcomer to the others only", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  const carol = await joinOne(room, "carol");
  await settle(room, alice, bob);
  for (const other of [alice, bob]) {
    assert.equal(other.events.length, 1);
    assert.deepEqual(untimed(other.events[0]), { kind: "join", time: "", alias: "carol" });
  }
  assert.deepEqual(carol.events.map((e) => e.kind), ["notice"]);
});

Deno.test("LocalRoom.members() hands out data, not members, in joining order", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["Alice", "bob"]);
  alice.joinedAt = 5;
  bob.away = "lunch";
  const listed = [...room.members()];
  assert.deepEqual(listed, [
    { alias: "Alice", joinedAt: 5, away: "" },
    { alias: "bob", joinedAt: 0, away: "lunch" },
  ]);
  assert.ok(!listed.some((info) => (info as unknown) === alice || (info as unknown) === bob));
});

Deno.test("LocalRoom.join() names the room in the welcome only when asked, and shows the topic", async () => {
  using room = newRoom({ name: "dev" });
  const alice = await joinOne(room, "alice");
  assert.equal(noticeText(alice.events[0]), "welcome, alice! you are the only one here");
  room.setTopic(alice, "ship it");
  await settle(room, alice);
  assert.equal(noticeText(alice.events.at(-1)), "alice set the topic: ship it");
  assert.equal(room.topic, "ship it");
  const bob = new FakeMember("bob");
  room.join(bob, { history: false, nameRoom: true });
  await settle(room, bob);
  assert.deepEqual(bob.events.map(noticeText), [
    "welcome to #dev, bob! 2 online: alice, bob",
    "topic: ship it",
  ]);
  room.setTopic(bob, "");
  await settle(room, alice);
  assert.equal(noticeText(alice.events.at(-1)), "bob cleared the topic");
  const carol = new FakeMember("carol");
  room.join(carol, { history: false, nameRoom: true });
  await settle(room, carol);
  assert.equal(carol.events.length, 1, "no topic line once it is cleared");
});

Deno.test("LocalRoom.leave() to another room says where", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  room.leave(bob, "", "dev");
  await settle(room, alice);
  assert.deepEqual(untimed(alice.events[0]), {
    kind: "leave",
    time: "",
    alias: "bob",
    reason: "",
    to: "dev",
  });
});

Deno.test("LocalRoom.say() and act() reach everyone but the sender", async () => {
  using room = newRoom();
  const [alice, bob, carol] = await joinAll(room, ["alice", "bob", "carol"]);
  room.say(alice, "hello: all");
  room.act(alice, "waves");
  await settle(room, alice, bob, carol);
  assert.equal(alice.text, "");
  for (const other of [bob, carol]) {
    assert.equal(other.lines.length, 2);
    assert.match(other.lines[0]!, STAMP);
    const [said, acted] = other.events;
    assert.deepEqual(
      untimed(said),
      { kind: "message", time: "", history: false, from: "alice", text: "hello: all" },
    );
    assert.deepEqual(
      untimed(acted),
      { kind: "action", time: "", history: false, from: "alice", text: "waves" },
    );
  }
});

Deno.test("LocalRoom appends each line once: every recipient is written a view of the same log bytes", async () => {
  using room = newRoom();
  const members = await joinAll(room, ["alice", "bob", "carol", "dave"]);
  const [alice, bob, carol, dave] = members;
  // Big enough to be written as it is, not copied together with others.
  const big = "x".repeat(4000);
  /** The buffer each of `recipients` was handed holding `text`, after `action`. */
  const handed = async (action: () => void, text: string, recipients: readonly FakeMember[]) => {
    for (const member of members) member.sink.handed.length = 0;
    action();
    await settle(room, ...members);
    for (const member of members) {
      if (recipients.includes(member)) continue;
      const got = member.sink.handed.some((p) => new TextDecoder().decode(p).includes(text));
      assert.ok(!got, `${member.alias} is not sent it`);
    }
    return recipients.map((member) => {
      const views = member.sink.handed.filter((p) => new TextDecoder().decode(p).includes(text));
      assert.equal(views.length, 1, member.alias);
      return views[0]!;
    });
  };
  const sameBytes = (what: string, views: Uint8Array[]) => {
    assert.ok(views.length >= 2);
    for (const view of views) {
      assert.equal(view.buffer, views[0]!.buffer, `${what}: one copy in memory`);
      assert.equal(view.byteOffset, views[0]!.byteOffset, what);
      assert.equal(view.length, views[0]!.length, what);
    }
  };
  sameBytes("say", await handed(() => room.say(alice, `1${big}`), `1${big}`, [bob, carol, dave]));
  sameBytes("act", await handed(() => room.act(bob, `2${big}`), `2${big}`, [alice, carol, dave]));
  sameBytes("announce", await handed(() => room.announce(`3${big}`), `3${big}`, members));
  for (const member of members) {
    assert.equal(member.lines.length, member === alice || member === bob ? 2 : 3, member.alias);
  }
});

Deno.test("LocalRoom never sends the sender its own line, and a line for one member arrives exactly where it was sent", async (t) => {
  for (const busy of [false, true]) {
    await t.step(
      busy ? "while the recipient's socket is taking a write" : "with idle writers",
      async () => {
        using room = newRoom();
        const [alice, bob, carol] = await joinAll(room, ["alice", "bob", "carol"]);
        if (busy) {
          bob.sink.hold();
          room.announce("first");
          await settle(room, alice, carol);
          alice.reset();
          carol.reset();
          await bob.sink.whenWaiting();
        }
        const now = Date.now();
        room.say(alice, "one");
        // As the registry sends a private line: to the recipient, then the echo.
        assert.ok(bob.deliver(encodeLine(formatPrivateIn(now, "alice", "psst"))));
        assert.ok(alice.deliver(encodeLine(formatPrivateOut(now, "bob", "psst"))));
        room.say(alice, "two");
        room.say(bob, "three");
        assert.ok(bob.deliver(encodeLine(formatPrivateIn(now, "carol", "hey"))));
        room.act(alice, "waves");
        bob.sink.release();
        await settle(room, alice, bob, carol);
        assert.deepEqual(summary(alice), [
          "private to bob: psst",
          "message bob: three",
        ]);
        assert.deepEqual(summary(bob), [
          ...(busy ? ["notice first"] : []),
          "message alice: one",
          "private from alice: psst",
          "message alice: two",
          "private from carol: hey",
          "action alice waves",
        ]);
        assert.deepEqual(summary(carol), [
          "message alice: one",
          "message alice: two",
          "message bob: three",
          "action alice waves",
        ]);
      },
    );
  }
});

Deno.test("LocalRoom sends join, leave and nick notices in order with everything else", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  const carol = new FakeMember("carol");
  const dave = new FakeMember("dave");
  room.join(carol, { history: false });
  room.say(bob, "hi");
  room.join(dave, { history: false });
  room.rename(carol, "caroline");
  room.leave(dave, "bye");
  room.act(alice, "waves");
  await settle(room, alice, bob, carol, dave);
  assert.deepEqual(summary(alice), [
    "join carol",
    "message bob: hi",
    "join dave",
    "nick carol caroline",
    "leave dave (bye)",
  ]);
  assert.deepEqual(summary(bob), [
    "join carol",
    "join dave",
    "nick carol caroline",
    "leave dave (bye)",
    "action alice waves",
  ]);
  // A newcomer gets only what came after its own join line.
  assert.deepEqual(summary(carol).slice(1), [
    "message bob: hi",
    "join dave",
    "nick carol caroline",
    "leave dave (bye)",
    "action alice waves",
  ]);
  assert.deepEqual(summary(dave).slice(1), ["nick carol caroline"]);
  // Nothing is sent twice.
  for (const member of [alice, bob, carol, dave]) member.reset();
  await settle(room, alice, bob, carol, dave);
  for (const member of [alice, bob, carol, dave]) assert.equal(member.text, "", member.alias);
});

Deno.test("LocalRoom.leave() hands the leaving member what the log held before it left", async () => {
  using room = newRoom();
  const alice = new FakeMember("alice");
  const bob = new FakeMember("bob");
  room.join(alice, { history: false });
  room.join(bob, { history: false });
  room.leave(alice, "idle");
  room.leave(bob, "idle");
  await settle(room, alice, bob);
  // bob left after alice, so bob still gets alice's leave notice, not its own.
  assert.deepEqual(summary(bob), [
    "notice welcome, bob! 2 online: alice, bob",
    "leave alice (idle)",
  ]);
  assert.deepEqual(summary(alice), [
    "notice welcome, alice! you are the only one here",
    "join bob",
  ]);
});

Deno.test("LocalRoom runs a write round by itself after each line: no flush() is needed", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  room.rename(bob, "bobby");
  await settle(undefined, alice, bob);
  assert.deepEqual(summary(alice), ["nick bob bobby"]);
  assert.deepEqual(summary(bob), ["nick bob bobby"]);
  room.say(alice, "hi");
  await settle(undefined, bob);
  assert.deepEqual(summary(bob).slice(1), ["message alice: hi"]);
});

Deno.test("LocalRoom.close() writes what is pending", async () => {
  const room = new LocalRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  const carol = new FakeMember("carol");
  room.join(carol, { history: false });
  room.say(bob, "hi");
  room.leave(carol);
  room.close();
  await settle(undefined, alice, bob);
  assert.deepEqual(summary(alice), ["join carol", "message bob: hi", "leave carol"]);
  assert.deepEqual(summary(bob), ["join carol", "leave carol"]);
  assert.equal(room.busy, false);
  assert.equal(await settled(room.ready()), true, "ready() resolves once closed");
});

Deno.test("LocalRoom.leave() tells the others and is idempotent", async (t) => {
  await t.step("without a reason", async () => {
    using room = newRoom();
    const [alice, bob] = await joinAll(room, ["alice", "bob"]);
    room.leave(bob);
    await settle(room, alice, bob);
    assert.equal(room.size, 1);
    assert.deepEqual([...room.members()].map((m) => m.alias), ["alice"]);
    assert.deepEqual(untimed(alice.events[0]), {
      kind: "leave",
      time: "",
      alias: "bob",
      reason: "",
    });
    assert.equal(bob.text, "", "the one leaving is not told");
    room.leave(bob);
    room.leave(bob, "again");
    await settle(room, alice, bob);
    assert.equal(alice.lines.length, 1, "a second leave says nothing");
    assert.equal(room.size, 1);
  });

  await t.step("with a reason", async () => {
    using room = newRoom();
    const [alice, bob] = await joinAll(room, ["alice", "bob"]);
    room.leave(bob, "quit: off to lunch (back soon)");
    await settle(room, alice);
    assert.deepEqual(untimed(alice.events[0]), {
      kind: "leave",
      time: "",
      alias: "bob",
      reason: "quit: off to lunch (back soon)",
    });
  });

  await t.step("a stranger with the same alias does not remove the member", async () => {
    using room = newRoom();
    const [alice, bob] = await joinAll(room, ["alice", "bob"]);
    room.leave(new FakeMember("bob"));
    await settle(room, alice);
    assert.equal(room.size, 2);
    assert.deepEqual([...room.members()].map((m) => m.alias), ["alice", bob.alias]);
    assert.equal(alice.text, "");
  });
});

Deno.test("LocalRoom.join() replays history before the welcome", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  room.say(alice, "first");
  room.act(bob, "nods");
  room.say(alice, "second");
  const carol = await joinOne(room, "carol", true);
  const events = carol.events;
  assert.equal(events.length, 4);
  for (const line of carol.lines.slice(0, 3)) {
    assert.match(line, /^\[history \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /);
  }
  assert.deepEqual(events.slice(0, 3).map(untimed), [
    { kind: "message", time: "", history: true, from: "alice", text: "first" },
    { kind: "action", time: "", history: true, from: "bob", text: "nods" },
    { kind: "message", time: "", history: true, from: "alice", text: "second" },
  ]);
  assert.match(noticeText(events[3]), /^welcome, carol! /);
});

Deno.test("LocalRoom.join() skips the replay when history is not wanted", async () => {
  using room = newRoom();
  const [alice] = await joinAll(room, ["alice"]);
  room.say(alice, "before");
  const bob = await joinOne(room, "bob");
  assert.deepEqual(bob.events.map((e) => e.kind), ["notice"]);
});

Deno.test("LocalRoom keeps only historySize lines for the replay", async (t) => {
  /** The texts replayed to a newcomer after alice said `said`. */
  const replayed = async (options: LocalRoomOptions, said: string[]): Promise<string[]> => {
    using room = newRoom(options);
    const [alice] = await joinAll(room, ["alice"]);
    for (const text of said) room.say(alice, text);
    const bob = await joinOne(room, "bob", true);
    return bob.events.flatMap((e) => (e.kind === "message" ? [e.text] : []));
  };

  await t.step("the most recent lines, oldest first", async () => {
    assert.deepEqual(await replayed({ historySize: 2 }, ["1", "2", "3", "4", "5"]), ["4", "5"]);
  });

  await t.step("none with historySize 0", async () => {
    assert.deepEqual(await replayed({ historySize: 0 }, ["gone"]), []);
  });

  await t.step("20 by default", async () => {
    const said = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    assert.deepEqual(await replayed({}, said), said.slice(10));
  });
});

Deno.test("LocalRoom keeps only messages and actions in the history, no notices", async () => {
  using room = newRoom();
  const [alice] = await joinAll(room, ["alice", "bob"]);
  room.setTopic(alice, "top secret");
  room.say(alice, "public");
  const carol = await joinOne(room, "carol", true);
  assert.deepEqual(carol.events.map((e) => e.kind), ["message", "notice", "notice"]);
  assert.equal(noticeText(carol.events[2]), "topic: top secret");
});

Deno.test("LocalRoom.rename() renames and tells everyone, the renamed one too", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  room.rename(alice, "alicia");
  await settle(room, alice, bob);
  assert.equal(alice.alias, "alicia");
  assert.deepEqual([...room.members()].map((m) => m.alias), ["alicia", "bob"]);
  for (const member of [alice, bob]) {
    assert.deepEqual(untimed(member.events[0]), {
      kind: "nick",
      time: "",
      from: "alice",
      to: "alicia",
    });
  }
});

Deno.test("LocalRoom.rename() allows a change of case of one's own alias", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  room.rename(alice, "Alice");
  await settle(room, bob);
  assert.equal(alice.alias, "Alice");
  assert.equal(room.size, 2);
  assert.deepEqual(untimed(bob.events[0]), { kind: "nick", time: "", from: "alice", to: "Alice" });
});

Deno.test("LocalRoom.announce() reaches every member", async () => {
  using room = newRoom();
  const members = await joinAll(room, ["alice", "bob"]);
  room.announce("server restarting soon");
  await settle(room, ...members);
  for (const member of members) {
    assert.equal(noticeText(member.events[0]), "server restarting soon");
  }
});

/**
 * Joins `slow`, a member with a 1 KiB byte limit, to `room`, and waits
 * until it and `others` have had everything so far (its join included).
 */
async function joinSlow(room: LocalRoom, ...others: FakeMember[]): Promise<FakeMember> {
  const slow = new FakeMember("slow", { maxBytes: 1024 });
  slow.room = room;
  room.join(slow, { history: false });
  await settle(room, ...others, slow);
  return slow;
}

/**
 * Gets `member`'s socket stuck on a write: it holds its sink, `room`
 * announces `line`, and a round starts the write that will not finish.
 */
async function stick(room: LocalRoom, member: FakeMember, line = "stuck here"): Promise<void> {
  member.sink.hold();
  room.announce(line);
  room.flush();
  await member.sink.whenWaiting();
}

/**
 * Has `from` say lines of about 200 bytes until `member`'s outbox is past
 * `bytes`; returns how many.
 */
function fillPast(room: LocalRoom, from: FakeMember, member: FakeMember, bytes: number): number {
  let i = 0;
  for (; member.outbox.size <= bytes; i++) room.say(from, `${i} ${"z".repeat(200)}`);
  return i;
}

Deno.test("LocalRoom evicts a member whose socket is stuck for STUCK_MS and which is past its byte limit", async (t) => {
  await t.step("on messages", async () => {
    using room = newRoom();
    const [alice, carol] = await joinAll(room, ["alice", "carol"]);
    const slow = await joinSlow(room, alice, carol);
    for (const member of [alice, carol, slow]) member.reset();
    await stick(room, slow);
    const count = fillPast(room, alice, slow, 1024);
    room.flush();
    assert.deepEqual(slow.evictions, [], "not stuck long enough yet");
    slow.clock.advance(STUCK_MS);
    room.flush();
    assert.deepEqual(slow.evictions, [TOO_SLOW]);
    assert.equal(TOO_SLOW, "too slow: could not keep up with the room");
    assert.equal(room.size, 2);
    assert.deepEqual([...room.members()].map((m) => m.alias), ["alice", "carol"]);
    await settle(room, alice, carol);
    const said = summary(carol).filter((s) => s.startsWith("message")).length;
    assert.equal(said, count, "carol got every message");
    assert.deepEqual(summary(carol).slice(0, 1), ["notice stuck here"]);
    assert.deepEqual(summary(carol).slice(-1), [`leave slow (${TOO_SLOW})`]);
    assert.deepEqual(summary(alice), ["notice stuck here", `leave slow (${TOO_SLOW})`]);
    slow.sink.release();
    await settle(room, slow);
    assert.deepEqual(summary(slow), ["notice stuck here"], "only the write it was stuck on");
  });

  await t.step("on a join notice", async () => {
    using room = newRoom();
    const [bob] = await joinAll(room, ["bob"]);
    const slow = await joinSlow(room, bob);
    bob.reset();
    await stick(room, slow);
    slow.clock.advance(STUCK_MS);
    // Just under its limit: stuck, but not past it.
    const stuckBytes = slow.outbox.size;
    room.say(bob, "y".repeat(1024 - 3 - stuckBytes - messageBytes("bob", "")));
    room.flush();
    assert.equal(slow.outbox.size, 1024 - 3);
    assert.deepEqual(slow.evictions, []);
    const carol = await joinOne(room, "carol");
    assert.deepEqual(slow.evictions, [TOO_SLOW]);
    await settle(room, bob, carol);
    assert.deepEqual(summary(bob).slice(-2), ["join carol", `leave slow (${TOO_SLOW})`]);
    assert.deepEqual(summary(carol).slice(1), [`leave slow (${TOO_SLOW})`]);
    assert.equal(room.size, 2);
    slow.sink.release();
  });

  await t.step("two stuck members in one round are each evicted once", async () => {
    using room = newRoom();
    const [alice, s1, bob, s2] = await joinAll(room, ["alice", "s1", "bob", "s2"], {
      maxBytes: 1024,
    });
    s1.sink.hold();
    s2.sink.hold();
    room.announce("stuck here");
    room.flush();
    await s1.sink.whenWaiting();
    await s2.sink.whenWaiting();
    fillPast(room, alice, s1, 1024);
    s1.clock.advance(STUCK_MS);
    s2.clock.advance(STUCK_MS);
    room.flush();
    room.flush();
    assert.deepEqual(s1.evictions, [TOO_SLOW]);
    assert.deepEqual(s2.evictions, [TOO_SLOW]);
    assert.equal(room.size, 2);
    await settle(room, alice, bob);
    const leaves = summary(bob).filter((s) => s.startsWith("leave")).sort();
    assert.deepEqual(leaves, [`leave s1 (${TOO_SLOW})`, `leave s2 (${TOO_SLOW})`]);
    assert.equal(summary(alice).filter((s) => s.startsWith("leave")).length, 2);
    // Neither is handed anything after its goodbye, not even the other's leave line.
    for (const slow of [s1, s2]) {
      slow.sink.release();
      room.say(bob, "after");
    }
    await settle(room, s1, s2, alice);
    for (const slow of [s1, s2]) {
      assert.deepEqual(summary(slow), ["notice stuck here"], slow.alias);
    }
  });
});

Deno.test("LocalRoom does not evict a member far behind whose socket still takes data", async () => {
  using room = newRoom();
  const [alice] = await joinAll(room, ["alice"]);
  const slow = await joinSlow(room, alice);
  slow.reset();
  await stick(room, slow, "x".repeat(300));
  const count = fillPast(room, alice, slow, 2 * 1024);
  // Each time, just short of STUCK_MS without progress, the socket takes a
  // little: slow, but never stuck.
  for (let i = 0; i < 4; i++) {
    slow.clock.advance(STUCK_MS - 1);
    room.flush();
    assert.deepEqual(slow.evictions, [], `after ${i} slow writes`);
    assert.ok(slow.outbox.size > 1024);
    assert.equal(room.busy, true, "the senders wait for it meanwhile");
    slow.sink.accept(10);
    await slow.sink.whenWaiting();
  }
  slow.sink.release();
  await settle(room, slow);
  room.flush();
  assert.equal(room.busy, false);
  assert.deepEqual(
    summary(slow).filter((s) => s.startsWith("message")),
    Array.from({ length: count }, (_, i) => `message alice: ${i} ${"z".repeat(200)}`),
    "it got every message, in order",
  );
  assert.equal(room.size, 2);
});

Deno.test("LocalRoom.busy: the senders wait for the writers", async (t) => {
  await t.step(
    "busy after more than busyBytes appended without a round; ready() after flush()",
    async () => {
      using room = newRoom({ busyBytes: 500 });
      const [alice, bob] = await joinAll(room, ["alice", "bob"]);
      assert.equal(room.busy, false);
      assert.equal(await settled(room.ready()), true, "ready() resolves at once when not busy");
      room.say(alice, "a".repeat(300));
      assert.equal(room.busy, false, "not past busyBytes yet");
      room.say(alice, "b".repeat(300));
      assert.equal(room.busy, true);
      const ready = room.ready();
      room.flush();
      assert.equal(room.busy, false);
      await withTimeout(ready, 1000, "ready() after flush()");
      await settle(room, bob);
      assert.equal(bob.lines.length, 2);
    },
  );

  await t.step(
    "not busy for long without flush(): the round it schedules frees the senders",
    async () => {
      using room = newRoom({ busyBytes: 100 });
      const [alice] = await joinAll(room, ["alice", "bob"]);
      room.say(alice, "a".repeat(300));
      assert.equal(room.busy, true);
      await withTimeout(room.ready(), 1000, "ready() after the next round");
      assert.equal(room.busy, false);
    },
  );

  await t.step("not held by a member behind whose writer is idle", async () => {
    using room = newRoom();
    const [alice, bob] = await joinAll(room, ["alice", "bob"], { maxBytes: 1024 });
    fillPast(room, alice, bob, 700);
    room.flush();
    assert.equal(room.busy, false);
    await settle(room, bob);
  });

  await t.step(
    "held while a writing member is more than half its limit behind, until stuck STUCK_MS; evicted once past its limit",
    async () => {
      using room = newRoom();
      const [alice, bob] = await joinAll(room, ["alice", "bob"], { maxBytes: 1024 });
      await stick(room, bob);
      room.say(alice, "under half");
      room.flush();
      assert.equal(room.busy, false, "at most half its limit behind");
      fillPast(room, alice, bob, 512);
      assert.ok(bob.outbox.size <= 1024);
      room.flush();
      assert.equal(room.busy, true, "more than half behind, not stuck");
      const ready = room.ready();
      assert.equal(await settled(ready), false);
      room.flush();
      assert.equal(await settled(ready), false, "still held after another round");

      bob.clock.advance(STUCK_MS - 1);
      room.flush();
      assert.equal(room.busy, true, "not stuck yet");
      bob.clock.advance(1);
      room.flush();
      assert.equal(room.busy, false, "stuck: no longer waited for");
      await withTimeout(ready, 1000, "ready() once the member is stuck");
      assert.deepEqual(bob.evictions, [], "not past its limit");

      fillPast(room, alice, bob, 1024);
      room.flush();
      assert.deepEqual(bob.evictions, [TOO_SLOW]);
      assert.equal(room.busy, false);
      bob.sink.release();
      await settle(room, alice, bob);
    },
  );
});

Deno.test("LocalRoom replays only the newest history lines that fit in historyBytes, oldest first", async (t) => {
  // Every history line here encodes to the same length, whatever its time.
  const lineBytes = encodeLine(formatHistory(Date.now(), "message", "alice", "line 0")).length;
  /** The texts replayed to a newcomer after alice said `said`. */
  const replayed = async (options: LocalRoomOptions, said: string[]): Promise<string[]> => {
    using room = newRoom({ historySize: 10, ...options });
    const [alice] = await joinAll(room, ["alice"]);
    for (const text of said) room.say(alice, text);
    const bob = await joinOne(room, "bob", true);
    const events = bob.events;
    assert.match(noticeText(events.at(-1)), /^welcome, bob! /);
    return events.slice(0, -1).map((e) => {
      assert.ok(e.kind === "message" && e.history, JSON.stringify(e));
      return e.kind === "message" ? e.text : "";
    });
  };
  const eight = Array.from({ length: 8 }, (_, i) => `line ${i}`);

  await t.step("a budget just short of four lines replays the newest three", async () => {
    assert.deepEqual(await replayed({ historyBytes: 4 * lineBytes - 1 }, eight), [
      "line 5",
      "line 6",
      "line 7",
    ]);
  });

  await t.step("a budget of exactly three lines replays three", async () => {
    assert.deepEqual(await replayed({ historyBytes: 3 * lineBytes }, eight), [
      "line 5",
      "line 6",
      "line 7",
    ]);
  });

  await t.step("a budget smaller than one line replays nothing", async () => {
    assert.deepEqual(await replayed({ historyBytes: lineBytes - 1 }, eight), []);
  });

  await t.step(
    "a line too long to fit ends the replay: no older line is shown past it",
    async () => {
      const said = ["line 1", `line 2 ${"x".repeat(500)}`, "line 3"];
      assert.deepEqual(await replayed({ historyBytes: 3 * lineBytes }, said), ["line 3"]);
    },
  );

  await t.step("a generous budget replays everything kept", async () => {
    assert.deepEqual(await replayed({ historyBytes: 100 * lineBytes }, eight), eight);
  });
});

Deno.test("LocalRoom.join() asks a member whose deliver() refuses its welcome to go, and does not let it in", async () => {
  using room = newRoom();
  const [alice] = await joinAll(room, ["alice"]);
  const full = new FakeMember("full");
  full.room = room;
  full.full = true;
  room.join(full, { history: true });
  assert.deepEqual(full.evictions, [TOO_SLOW]);
  assert.equal(full.offered.length, 1, "offered its welcome, nothing more");
  assert.deepEqual([...room.members()].map((m) => m.alias), ["alice"]);
  await settle(room, alice, full);
  assert.equal(alice.text, "", "the others hear nothing of it");
  assert.equal(full.text, "");
});

Deno.test({
  name: "LocalRoom: a stuck member that has left no longer holds back the others' next round",
  // A write a round started counts until it ends, unless its member has
  // gone: then the others' next round must not wait on that socket.
  fn: async () => {
    using room = newRoom();
    const [alice, bob] = await joinAll(room, ["alice", "bob"]);
    const slow = await joinOne(room, "slow");
    await stick(room, slow);
    await settle(room, alice, bob);
    room.leave(slow, "gone");
    await settle(room, alice, bob);
    bob.reset();
    room.say(alice, "hi");
    // No flush(): the round the line schedules should not wait for slow.
    const quick = await settled(bob.outbox.drained());
    slow.sink.release();
    await settle(room, bob);
    assert.equal(quick, true, "bob got the line without waiting for a timer");
    assert.deepEqual(summary(bob), ["message alice: hi"]);
  },
});

Deno.test({
  name: "LocalRoom.say() from someone not in the room leaves that someone's outbox alone",
  // Skipping a line in this room's log would corrupt the position of an
  // outbox that follows another room's log.
  fn: async () => {
    using lobby = newRoom();
    using dev = newRoom({ name: "dev" });
    const [alice] = await joinAll(lobby, ["alice"]);
    const [bob] = await joinAll(dev, ["bob"]);
    for (let i = 0; i < 5; i++) lobby.announce(`filler ${i} ${"f".repeat(50)}`);
    await settle(lobby, alice);
    lobby.say(bob, "not a member here");
    lobby.act(bob, "neither");
    const size = bob.outbox.size;
    for (let i = 0; i < 3; i++) dev.announce(`dev ${i}`);
    dev.flush();
    await settled(bob.outbox.drained());
    assert.equal(size, 0, "nothing was added to bob's outbox");
    assert.deepEqual(summary(bob), ["notice dev 0", "notice dev 1", "notice dev 2"]);
  },
});

Deno.test("LocalRoom stops waiting after HOLD_MS for a member that trickles, and drops it past its limit", async () => {
  using room = newRoom();
  const [alice] = await joinAll(room, ["alice"]);
  const slow = await joinSlow(room, alice);
  await stick(room, slow, "x".repeat(300));
  fillPast(room, alice, slow, 2 * 1024);
  // A byte just before STUCK_MS, again and again: never stuck, never
  // caught up. The room waits for it HOLD_MS at most.
  let waited = 0;
  for (let i = 0; i < 20 && slow.evictions.length === 0; i++) {
    room.flush();
    if (room.busy) waited += STUCK_MS - 1;
    slow.clock.advance(STUCK_MS - 1);
    slow.sink.accept(1);
    await slow.sink.whenWaiting();
  }
  // Looked at once a round, so up to one wait past HOLD_MS.
  assert.ok(waited <= HOLD_MS + STUCK_MS, `the senders waited ${waited} ms`);
  assert.deepEqual(slow.evictions, [TOO_SLOW]);
  assert.equal(room.busy, false);
  slow.sink.release();
  await settle(room, alice);
});

Deno.test("LocalRoom: a member that leaves just after saying a line still gets what came before it", async () => {
  using room = newRoom();
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  room.say(bob, "b1");
  room.say(alice, "last");
  room.leave(alice);
  // No round kicks alice any more: her outbox writes what is left itself.
  await withTimeout(alice.outbox.drained(), 1000, "alice's last lines");
  assert.deepEqual(summary(alice), ["message bob: b1"]);
  await settle(room, bob);
});

Deno.test("LocalRoom.close() leaves the room never busy and starts no timer", async () => {
  using room = newRoom();
  const [alice, carol] = await joinAll(room, ["alice", "carol"]);
  const bob = new FakeMember("bob", { maxBytes: 1024 });
  bob.room = room;
  room.join(bob, { history: false });
  await settle(room, alice, bob, carol);
  await stick(room, bob, "x".repeat(300));
  fillPast(room, alice, bob, 600);
  room.close();
  room.leave(carol);
  assert.equal(room.busy, false);
  bob.sink.release();
  await settle(undefined, alice, bob);
});

Deno.test("LocalRoom sums up a big room's comings without those who came and went, and before a rename", async () => {
  using room = newRoom({ quietAbove: 3 });
  const [alice, bob] = await joinAll(room, ["alice", "bob"]);
  const carol = await joinOne(room, "carol");
  const dave = await joinOne(room, "dave");
  room.leave(carol);
  room.rename(bob, "bobby");
  await settle(room, alice);
  assert.deepEqual(
    alice.events.map((e) => e.kind === "crowd" ? `crowd +${e.joined} -${e.left}` : e.kind),
    ["crowd +dave -", "nick"],
  );
  room.leave(dave);
  await settle(room, alice);
});

Deno.test("LocalRoom gives a member that caught up a full HOLD_MS again the next time it falls behind", async () => {
  using room = newRoom();
  const [alice] = await joinAll(room, ["alice"]);
  const slow = await joinSlow(room, alice);
  for (const episode of [1, 2]) {
    await stick(room, slow, "x".repeat(300));
    for (let i = 0; slow.outbox.size <= 700; i++) {
      room.say(alice, `${episode} ${i} ${"z".repeat(100)}`);
    }
    room.flush();
    assert.equal(room.busy, true, `episode ${episode}: the senders wait for it`);
    slow.sink.release();
    await settle(room, alice, slow);
    for (let i = 0; i < 3; i++) {
      room.say(alice, `between ${i}`);
      await settle(room, alice, slow);
    }
    // Long after the first episode: its budget is not spent by that one.
    slow.clock.advance(HOLD_MS * 5);
  }
  assert.deepEqual(slow.evictions, []);
});

/**
 * A room whose rounds wait for turns the test hands out by hand, as if the
 * runtime had just looked at its sockets.
 */
class HandTurns {
  readonly pending: (() => void)[] = [];
  #asked: (() => void) | undefined;

  readonly turn = (): Promise<void> =>
    new Promise<void>((resolve) => {
      this.pending.push(resolve);
      this.#asked?.();
    });

  /** Resolves once a round asks for a turn. */
  asked(): Promise<void> {
    return withTimeout(
      new Promise<void>((resolve) => (this.#asked = resolve)),
      1000,
      "the round to wait for a turn",
    );
  }

  /**
   * Hands out turns until `members` have everything, running microtasks
   * only: no timer can fire meanwhile, so nothing but the turns moves the
   * round on.
   */
  async until(...members: FakeMember[]): Promise<void> {
    let done = false;
    const drained = Promise.all(members.map((member) => member.outbox.drained()));
    drained.then(() => (done = true));
    for (let i = 0; i < 200 && !done; i++) {
      for (const resolve of this.pending.splice(0)) resolve();
      await settled(Promise.resolve());
    }
    assert.ok(done, "everyone got everything, with turns alone");
  }
}

/**
 * `count` members joined to `room` (m0, m1, ...; `options(i)` for each),
 * caught up and reset.
 */
async function joinMany(
  room: LocalRoom,
  turns: HandTurns,
  count: number,
  options: (i: number) => FakeMemberOptions = () => ({}),
): Promise<FakeMember[]> {
  const members = Array.from({ length: count }, (_, i) => new FakeMember(`m${i}`, options(i)));
  for (const member of members) {
    member.room = room;
    room.join(member, { history: false });
  }
  await turns.until(...members);
  for (const member of members) member.reset();
  return members;
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("LocalRoom: a round over many members lets input in between its steps, and the rest of the round carries it", async () => {
  const turns = new HandTurns();
  using room = newRoom({ quietAbove: 0, turn: turns.turn });
  const members = await joinMany(room, turns, 200);
  const writesBefore = members.map((member) => member.sink.writes.length);

  const asked = turns.asked();
  room.say(members[0]!, "one");
  // The first step writes to the first members, then waits for a turn.
  await asked;
  assert.equal(turns.pending.length, 1);
  room.say(members[199]!, "two");
  await turns.until(...members);

  const writes = (i: number) => members[i]!.sink.writes.slice(writesBefore[i]).map(decode);
  const step = members.findIndex((_member, i) => i > 0 && writes(i).length === 1);
  assert.ok(step > 1 && step < 199, `the round took more than one step (first at ${step})`);
  for (let i = 1; i < 199; i++) {
    const got = writes(i);
    const lines = got.join("").trimEnd().split("\n").map((line) => line.replace(STAMP, ""));
    assert.deepEqual(lines, ["m0: one", "m199: two"], `m${i}`);
    // Reached before the second line came: it follows in a later write.
    // Reached after: both lines in one write.
    assert.equal(got.length, i < step ? 2 : 1, `m${i}'s writes: ${JSON.stringify(got)}`);
  }
  // Each sender gets the other's line, never its own.
  assert.deepEqual(members[0]!.lines.map((line) => line.replace(STAMP, "")), ["m199: two"]);
  assert.deepEqual(members[199]!.lines.map((line) => line.replace(STAMP, "")), ["m0: one"]);
});

Deno.test("LocalRoom: slow writes in one step do not hold the round's next step", async () => {
  const turns = new HandTurns();
  using room = newRoom({ quietAbove: 0, turn: turns.turn });
  const members = await joinMany(room, turns, 200);
  // One in six takes its time: its write is still running when the next
  // step would start.
  const slow = members.filter((_member, i) => i % 6 === 3);
  for (const member of slow) member.sink.hold();
  room.announce("hello");
  // Turns alone (no timer can fire) must take the round to everyone else.
  await turns.until(...members.filter((member) => !slow.includes(member)));
  for (const member of slow) member.sink.release();
  await turns.until(...members);
  for (const member of members) {
    assert.deepEqual(member.lines.map((line) => line.replace(STAMP, "")), ["-- hello"]);
  }
});

Deno.test("LocalRoom: members asked to go during a step do not start the next step before its turn", async () => {
  const turns = new HandTurns();
  using room = newRoom({ quietAbove: 0, turn: turns.turn });
  // m1 to m10 have a small byte limit; they get stuck past it.
  const members = await joinMany(
    room,
    turns,
    200,
    (i) => i >= 1 && i <= 10 ? { maxBytes: 1024 } : {},
  );
  const stuck = members.slice(1, 11);
  const rest = members.filter((member) => !stuck.includes(member));
  for (const member of stuck) member.sink.hold();
  room.announce("stuck here");
  await Promise.all(stuck.map((member) => member.sink.whenWaiting()));
  for (let i = 0; stuck.some((member) => member.outbox.size <= 1024); i++) {
    room.say(members[0]!, `${i} ${"z".repeat(200)}`);
  }
  await turns.until(...rest);
  for (const member of members) member.reset();
  for (const member of stuck) member.clock.advance(STUCK_MS);

  const asked = turns.asked();
  room.announce("hello");
  await asked;
  for (const member of stuck) assert.deepEqual(member.evictions, [TOO_SLOW]);
  // Until the turn comes, only the first step's members were written to.
  const written = rest.filter((member) => member.text !== "").length;
  assert.ok(written > 0 && written <= 64, `${written} members written before the turn`);
  assert.equal(turns.pending.length, 1, "one turn asked for");
  await turns.until(...rest);
  for (const member of rest) {
    const lines = member.lines.map((line) => line.replace(STAMP, ""));
    assert.equal(lines[0], "-- hello", member.alias);
    assert.equal(lines.filter((line) => line.startsWith("<-- ")).length, 10, member.alias);
  }
  for (const member of stuck) member.sink.release();
});

Deno.test("LocalRoom.close() with a turn pending sends what comes at once", async () => {
  const turns = new HandTurns();
  const room = newRoom({ quietAbove: 0, turn: turns.turn });
  const members = await joinMany(room, turns, 200);
  const asked = turns.asked();
  room.announce("hello");
  await asked;
  room.close();
  room.leave(members[199]!);
  // No turn handed out: closed, the room writes without waiting for one.
  await settle(undefined, ...members.slice(0, 199));
  for (const member of members.slice(0, 199)) {
    const lines = member.lines.map((line) => line.replace(STAMP, ""));
    assert.deepEqual(lines, ["-- hello", "<-- m199 left"], member.alias);
  }
  for (const resolve of turns.pending.splice(0)) resolve();
});
