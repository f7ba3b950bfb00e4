import assert from "node:assert/strict";
import { formatHistory, parseServerLine, type ServerEvent } from "../../protocol/wire.ts";
import {
  encodeLine,
  LocalRoom,
  type LocalRoomOptions,
  type Member,
  type Room,
} from "../../server/room.ts";

const decoder = new TextDecoder();
const STAMP = /^\[\d\d:\d\d:\d\d\] /;

/** An in-memory member that records what the room hands it. */
class FakeMember implements Member {
  joinedAt = 0;
  away = "";
  replyTo: Member | undefined = undefined;
  /** Every buffer passed to deliver(), accepted or not. */
  readonly offered: Uint8Array[] = [];
  /** The buffers accepted. */
  readonly received: Uint8Array[] = [];
  /** Reasons passed to evicted(). */
  readonly evictions: string[] = [];
  /** When true, deliver() refuses, as a full queue does. */
  full = false;
  /** The room it leaves when asked to go, as a session does. */
  room: Room | undefined;

  constructor(public alias: string) {}

  deliver(bytes: Uint8Array): boolean {
    this.offered.push(bytes);
    if (this.full) return false;
    this.received.push(bytes);
    return true;
  }

  evicted(reason: string): void {
    this.evictions.push(reason);
    this.room?.leave(this, reason);
  }

  /** Received lines, decoded; every buffer must hold whole lines. */
  get lines(): string[] {
    return this.received.flatMap((bytes) => {
      const text = decoder.decode(bytes);
      assert.ok(text.endsWith("\n"), `a buffer ends mid-line: ${JSON.stringify(text)}`);
      return text.slice(0, -1).split("\n");
    });
  }

  /** Received lines, parsed. */
  get events(): ServerEvent[] {
    return this.lines.map(parseServerLine);
  }

  /** Forgets what was received so far. */
  reset(): void {
    this.offered.length = 0;
    this.received.length = 0;
  }
}

/** A room that sends every notice at once, so nothing waits on a timer. */
function newRoom(options: LocalRoomOptions = {}): LocalRoom {
  return new LocalRoom({ noticeDelayMs: 0, ...options });
}

/** A room with the given members joined (without history), inboxes emptied. */
function roomWith(...aliases: string[]): { room: LocalRoom; members: FakeMember[] } {
  const room = newRoom();
  const members = aliases.map((alias) => new FakeMember(alias));
  for (const member of members) {
    room.join(member, { history: false });
    member.room = room;
  }
  for (const member of members) member.reset();
  return { room, members };
}

/** The text of a notice, failing if the event is anything else. */
function noticeText(event: ServerEvent | undefined): string {
  assert.equal(event?.kind, "notice", JSON.stringify(event));
  return event.kind === "notice" ? event.text : "";
}

Deno.test("encodeLine() encodes UTF-8 and adds one LF", () => {
  assert.deepEqual(encodeLine("hé"), Uint8Array.of(0x68, 0xc3, 0xa9, 0x0a));
});

Deno.test("LocalRoom.join() welcomes someone who is alone", () => {
  const room = newRoom();
  const alice = new FakeMember("alice");
  room.join(alice, { history: true });
  assert.equal(alice.lines.length, 1);
  assert.match(alice.lines[0]!, STAMP);
  assert.equal(noticeText(alice.events[0]), "welcome, alice! you are the only one here");
  assert.equal(room.size, 1);
});

Deno.test("LocalRoom.join() welcomes with the others online, in joining order", () => {
  const { room } = roomWith("alice", "bob");
  const carol = new FakeMember("carol");
  room.join(carol, { history: false });
  assert.equal(noticeText(carol.events[0]), "welcome, carol! 3 online: alice, bob, carol");
});

Deno.test("LocalRoom.join() counts everyone, newcomer included, and names at most 20, then 'and N more'", () => {
  const aliases = Array.from({ length: 25 }, (_, i) => `m${String(i).padStart(2, "0")}`);
  const { room } = roomWith(...aliases);
  const late = new FakeMember("late");
  room.join(late, { history: false });
  const text = noticeText(late.events[0]);
  assert.equal(text, `welcome, late! 26 online: ${aliases.slice(0, 20).join(", ")} and 6 more`);
  assert.ok(!text.includes("m20"));

  // 19 others and the newcomer: all named, no "more".
  const { room: full } = roomWith(...aliases.slice(0, 19));
  const next = new FakeMember("next");
  full.join(next, { history: false });
  assert.equal(
    noticeText(next.events[0]),
    `welcome, next! 20 online: ${aliases.slice(0, 19).join(", ")}, next`,
  );
});

Deno.test("LocalRoom.join() announces the newcomer to the others only", () => {
  const { room, members: [alice, bob] } = roomWith("alice", "bob");
  const carol = new FakeMember("carol");
  room.join(carol, { history: false });
  for (const other of [alice!, bob!]) {
    assert.equal(other.events.length, 1);
    assert.equal(other.events[0]?.kind, "join");
    assert.deepEqual({ ...other.events[0], time: "" }, { kind: "join", time: "", alias: "carol" });
  }
  assert.deepEqual(carol.events.map((e) => e.kind), ["notice"]);
});

Deno.test("LocalRoom.members() hands out data, not members, in joining order", () => {
  const { room, members: [alice, bob] } = roomWith("Alice", "bob");
  alice!.joinedAt = 5;
  bob!.away = "lunch";
  const listed = [...room.members()];
  assert.deepEqual(listed, [
    { alias: "Alice", joinedAt: 5, away: "" },
    { alias: "bob", joinedAt: 0, away: "lunch" },
  ]);
  assert.ok(!listed.some((info) => (info as unknown) === alice || (info as unknown) === bob));
});

Deno.test("LocalRoom.join() names the room in the welcome only when asked, and shows the topic", () => {
  const room = newRoom({ name: "dev" });
  const alice = new FakeMember("alice");
  room.join(alice, { history: false });
  assert.equal(noticeText(alice.events[0]), "welcome, alice! you are the only one here");
  room.setTopic(alice, "ship it");
  assert.equal(noticeText(alice.events.at(-1)), "alice set the topic: ship it");
  assert.equal(room.topic, "ship it");
  const bob = new FakeMember("bob");
  room.join(bob, { history: false, nameRoom: true });
  assert.deepEqual(bob.events.map(noticeText), [
    "welcome to #dev, bob! 2 online: alice, bob",
    "topic: ship it",
  ]);
  room.setTopic(bob, "");
  assert.equal(noticeText(alice.events.at(-1)), "bob cleared the topic");
  const carol = new FakeMember("carol");
  room.join(carol, { history: false, nameRoom: true });
  assert.equal(carol.events.length, 1, "no topic line once it is cleared");
  room.close();
});

Deno.test("LocalRoom.leave() to another room says where", () => {
  const { room, members: [alice, bob] } = roomWith("alice", "bob");
  room.leave(bob!, "", "dev");
  assert.deepEqual({ ...alice!.events[0], time: "" }, {
    kind: "leave",
    time: "",
    alias: "bob",
    reason: "",
    to: "dev",
  });
});

Deno.test("LocalRoom.say() and act() reach everyone but the sender", () => {
  const { room, members: [alice, bob, carol] } = roomWith("alice", "bob", "carol");
  room.say(alice!, "hello: all");
  room.act(alice!, "waves");
  assert.deepEqual(alice!.received, []);
  for (const other of [bob!, carol!]) {
    assert.equal(other.lines.length, 2);
    assert.match(other.lines[0]!, STAMP);
    const [said, acted] = other.events;
    assert.deepEqual(
      { ...said, time: "" },
      { kind: "message", time: "", history: false, from: "alice", text: "hello: all" },
    );
    assert.deepEqual(
      { ...acted, time: "" },
      { kind: "action", time: "", history: false, from: "alice", text: "waves" },
    );
  }
});

Deno.test("LocalRoom encodes each line once and hands every recipient the same bytes", () => {
  const { room, members } = roomWith("alice", "bob", "carol", "dave");
  const [alice, bob, carol, dave] = members as [FakeMember, FakeMember, FakeMember, FakeMember];
  /** Runs `action` and returns the one buffer each of `recipients` got from it. */
  const sent = (action: () => void, recipients: FakeMember[]): Uint8Array[] => {
    for (const member of members) member.reset();
    action();
    return recipients.map((member) => {
      assert.equal(member.received.length, 1, member.alias);
      return member.received[0]!;
    });
  };
  const sameInstance = (what: string, buffers: Uint8Array[]) => {
    assert.ok(buffers.length >= 2);
    for (const buffer of buffers) assert.equal(buffer, buffers[0], what);
  };
  sameInstance("say", sent(() => room.say(alice, "one"), [bob, carol, dave]));
  sameInstance("act", sent(() => room.act(bob, "two"), [alice, carol, dave]));
  sameInstance("announce", sent(() => room.announce("three"), [alice, bob, carol, dave]));
  sameInstance("rename", sent(() => room.rename(carol, "caroline"), [alice, bob, carol, dave]));
  sameInstance("leave", sent(() => room.leave(dave, "four"), [alice, bob, carol]));
  sameInstance(
    "join",
    sent(() => room.join(new FakeMember("erin"), { history: false }), [alice, bob, carol]),
  );
});

Deno.test("LocalRoom gathers join, leave and nick notices until they are flushed", () => {
  const room = new LocalRoom();
  try {
    const alice = new FakeMember("alice");
    const bob = new FakeMember("bob");
    const carol = new FakeMember("carol");
    room.join(alice, { history: false });
    room.join(bob, { history: false });
    room.join(carol, { history: false });
    const dave = new FakeMember("dave");
    room.join(dave, { history: false });
    room.leave(dave, "bye");
    assert.equal(alice.received.length, 1, "only the welcome so far");
    room.flush();
    // Earlier members get one buffer holding every gathered line; a newcomer
    // gets only what came after its own join line.
    assert.equal(alice.received.length, 2);
    assert.deepEqual(alice.events.slice(1).map((e) => e.kind), ["join", "join", "join", "leave"]);
    assert.equal(bob.received.length, 2);
    assert.deepEqual(bob.events.slice(1).map((e) => e.kind), ["join", "join", "leave"]);
    assert.equal(bob.events[1]?.kind === "join" && bob.events[1].alias, "carol");
    assert.deepEqual(carol.events.slice(1).map((e) => e.kind), ["join", "leave"]);
    // Nothing is sent twice.
    room.flush();
    assert.equal(alice.received.length, 2);
  } finally {
    room.close();
  }
});

Deno.test("LocalRoom.leave() hands the leaving member what was gathered before it left", () => {
  const room = new LocalRoom();
  try {
    const alice = new FakeMember("alice");
    const bob = new FakeMember("bob");
    room.join(alice, { history: false });
    room.join(bob, { history: false });
    room.leave(alice, "idle");
    room.leave(bob, "idle");
    // bob left after alice, so bob still gets alice's leave notice.
    const leaves = bob.events.filter((e) => e.kind === "leave");
    assert.deepEqual(leaves.map((e) => e.kind === "leave" && e.alias), ["alice"]);
    assert.equal(alice.events.some((e) => e.kind === "join"), true, "alice saw bob join");
  } finally {
    room.close();
  }
});

Deno.test("LocalRoom.rename() sends the nick notice at once", () => {
  const room = new LocalRoom();
  try {
    const alice = new FakeMember("alice");
    const bob = new FakeMember("bob");
    room.join(alice, { history: false });
    room.join(bob, { history: false });
    room.rename(bob, "bobby");
    assert.deepEqual(alice.events.slice(1).map((e) => e.kind), ["join", "nick"]);
    assert.deepEqual(bob.events.slice(1).map((e) => e.kind), ["nick"]);
  } finally {
    room.close();
  }
});

Deno.test("LocalRoom sends gathered notices before anything said after them", () => {
  const room = new LocalRoom();
  try {
    const alice = new FakeMember("alice");
    room.join(alice, { history: false });
    const bob = new FakeMember("bob");
    room.join(bob, { history: false });
    room.say(bob, "hi");
    assert.deepEqual(alice.events.map((e) => e.kind), ["notice", "join", "message"]);

    const carol = new FakeMember("carol");
    room.join(carol, { history: false });
    room.flush();
    assert.deepEqual(alice.events.slice(3).map((e) => e.kind), ["join"]);

    room.leave(carol);
    assert.equal(bob.events.some((e) => e.kind === "leave"), false);
    room.close();
    assert.equal(bob.events.at(-1)?.kind, "leave", "close() sends what was gathered");
  } finally {
    room.close();
  }
});

Deno.test("LocalRoom.leave() tells the others and is idempotent", async (t) => {
  await t.step("without a reason", () => {
    const { room, members: [alice, bob] } = roomWith("alice", "bob");
    room.leave(bob!);
    assert.equal(room.size, 1);
    assert.deepEqual([...room.members()].map((m) => m.alias), ["alice"]);
    assert.deepEqual({ ...alice!.events[0], time: "" }, {
      kind: "leave",
      time: "",
      alias: "bob",
      reason: "",
    });
    assert.deepEqual(bob!.received, [], "the one leaving is not told");
    room.leave(bob!);
    room.leave(bob!, "again");
    assert.equal(alice!.received.length, 1, "a second leave says nothing");
    assert.equal(room.size, 1);
  });

  await t.step("with a reason", () => {
    const { room, members: [alice, bob] } = roomWith("alice", "bob");
    room.leave(bob!, "quit: off to lunch (back soon)");
    assert.deepEqual({ ...alice!.events[0], time: "" }, {
      kind: "leave",
      time: "",
      alias: "bob",
      reason: "quit: off to lunch (back soon)",
    });
  });

  await t.step("a stranger with the same alias does not remove the member", () => {
    const { room, members: [alice, bob] } = roomWith("alice", "bob");
    room.leave(new FakeMember("bob"));
    assert.equal(room.size, 2);
    assert.deepEqual([...room.members()].map((m) => m.alias), ["alice", bob!.alias]);
    assert.deepEqual(alice!.received, []);
  });
});

Deno.test("LocalRoom.join() replays history before the welcome", () => {
  const { room, members: [alice, bob] } = roomWith("alice", "bob");
  room.say(alice!, "first");
  room.act(bob!, "nods");
  room.say(alice!, "second");
  const carol = new FakeMember("carol");
  room.join(carol, { history: true });
  const events = carol.events;
  assert.equal(events.length, 4);
  for (const line of carol.lines.slice(0, 3)) {
    assert.match(line, /^\[history \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /);
  }
  const replay = events.slice(0, 3).map((e) => ({ ...e, time: "" }));
  assert.deepEqual(replay, [
    { kind: "message", time: "", history: true, from: "alice", text: "first" },
    { kind: "action", time: "", history: true, from: "bob", text: "nods" },
    { kind: "message", time: "", history: true, from: "alice", text: "second" },
  ]);
  assert.match(noticeText(events[3]), /^welcome, carol! /);
});

Deno.test("LocalRoom.join() skips the replay when history is not wanted", () => {
  const { room, members: [alice] } = roomWith("alice");
  room.say(alice!, "before");
  const bob = new FakeMember("bob");
  room.join(bob, { history: false });
  assert.deepEqual(bob.events.map((e) => e.kind), ["notice"]);
});

Deno.test("LocalRoom keeps only historySize lines for the replay", async (t) => {
  await t.step("the most recent lines, oldest first", () => {
    const room = newRoom({ historySize: 2 });
    const alice = new FakeMember("alice");
    room.join(alice, { history: false });
    for (const text of ["1", "2", "3", "4", "5"]) room.say(alice, text);
    const bob = new FakeMember("bob");
    room.join(bob, { history: true });
    const texts = bob.events.filter((e) => e.kind === "message").map((e) => e.text);
    assert.deepEqual(texts, ["4", "5"]);
  });

  await t.step("none with historySize 0", () => {
    const room = newRoom({ historySize: 0 });
    const alice = new FakeMember("alice");
    room.join(alice, { history: false });
    room.say(alice, "gone");
    const bob = new FakeMember("bob");
    room.join(bob, { history: true });
    assert.deepEqual(bob.events.map((e) => e.kind), ["notice"]);
  });

  await t.step("20 by default", () => {
    const room = newRoom();
    const alice = new FakeMember("alice");
    room.join(alice, { history: false });
    for (let i = 0; i < 30; i++) room.say(alice, `line ${i}`);
    const bob = new FakeMember("bob");
    room.join(bob, { history: true });
    const texts = bob.events.filter((e) => e.kind === "message").map((e) => e.text);
    assert.deepEqual(texts, Array.from({ length: 20 }, (_, i) => `line ${i + 10}`));
  });
});

Deno.test("LocalRoom keeps only messages and actions in the history, no notices", () => {
  const { room, members: [alice] } = roomWith("alice", "bob");
  room.setTopic(alice!, "top secret");
  room.say(alice!, "public");
  const carol = new FakeMember("carol");
  room.join(carol, { history: true });
  const kinds = carol.events.map((e) => e.kind);
  assert.deepEqual(kinds, ["message", "notice", "notice"]);
  assert.equal(noticeText(carol.events[2]), "topic: top secret");
});

Deno.test("LocalRoom.rename() renames and tells everyone, the renamed one too", () => {
  const { room, members: [alice, bob] } = roomWith("alice", "bob");
  room.rename(alice!, "alicia");
  assert.equal(alice!.alias, "alicia");
  assert.deepEqual([...room.members()].map((m) => m.alias), ["alicia", "bob"]);
  for (const member of [alice!, bob!]) {
    assert.deepEqual({ ...member.events[0], time: "" }, {
      kind: "nick",
      time: "",
      from: "alice",
      to: "alicia",
    });
  }
});

Deno.test("LocalRoom.rename() allows a change of case of one's own alias", () => {
  const { room, members: [alice, bob] } = roomWith("alice", "bob");
  room.rename(alice!, "Alice");
  assert.equal(alice!.alias, "Alice");
  assert.equal(room.size, 2);
  assert.deepEqual({ ...bob!.events[0], time: "" }, {
    kind: "nick",
    time: "",
    from: "alice",
    to: "Alice",
  });
});

Deno.test("LocalRoom.announce() reaches every member", () => {
  const { room, members } = roomWith("alice", "bob");
  room.announce("server restarting soon");
  for (const member of members) {
    assert.equal(noticeText(member.events[0]), "server restarting soon");
  }
});

Deno.test("LocalRoom evicts a member whose deliver() refuses, after the broadcast", async (t) => {
  await t.step("on a message", () => {
    const { room, members: [alice, slow, carol] } = roomWith("alice", "slow", "carol");
    slow!.full = true;
    room.say(alice!, "hi");
    // Everyone after the slow member in the loop still got the message.
    assert.deepEqual(carol!.events.map((e) => e.kind), ["message", "leave"]);
    const left = carol!.events[1];
    assert.equal(left?.kind, "leave");
    if (left?.kind === "leave") {
      assert.equal(left.alias, "slow");
      assert.match(left.reason, /^too slow/);
    }
    assert.deepEqual(alice!.events.map((e) => e.kind), ["leave"]);
    assert.equal(alice!.received[0], carol!.received[1], "one encoding for the notice too");
    assert.equal(slow!.evictions.length, 1);
    assert.equal(`too slow: could not keep up with the room`, slow!.evictions[0]);
    assert.equal(slow!.offered.length, 1, "offered the message, not its own leave notice");
    assert.equal(room.size, 2);
    assert.deepEqual([...room.members()].map((m) => m.alias), ["alice", "carol"]);
  });

  await t.step("on a join notice", () => {
    const { room, members: [slow, bob] } = roomWith("slow", "bob");
    slow!.full = true;
    const carol = new FakeMember("carol");
    room.join(carol, { history: false });
    assert.equal(slow!.evictions.length, 1);
    assert.deepEqual(bob!.events.map((e) => e.kind), ["join", "leave"]);
    assert.deepEqual(carol.events.map((e) => e.kind), ["notice", "leave"]);
    assert.equal(room.size, 2);
  });

  await t.step("two slow members in one broadcast are each evicted once", () => {
    const { room, members: [alice, slow1, bob, slow2] } = roomWith("alice", "s1", "bob", "s2");
    slow1!.full = true;
    slow2!.full = true;
    room.say(alice!, "hi");
    assert.equal(slow1!.evictions.length, 1);
    assert.equal(slow2!.evictions.length, 1);
    assert.equal(room.size, 2);
    const leaves = bob!.events.filter((e) => e.kind === "leave").map((e) => e.alias).sort();
    assert.deepEqual(leaves, ["s1", "s2"]);
    assert.equal(alice!.events.filter((e) => e.kind === "leave").length, 2);
  });
});

Deno.test("LocalRoom replays only the newest history lines that fit in historyBytes, oldest first", async (t) => {
  // Every history line here encodes to the same length, whatever its time.
  const lineBytes = encodeLine(formatHistory(Date.now(), "message", "alice", "line 0")).length;
  /** The texts replayed to a newcomer after alice said `texts`. */
  const replayed = (options: LocalRoomOptions, texts: string[]): string[] => {
    const room = newRoom({ historySize: 10, ...options });
    const alice = new FakeMember("alice");
    room.join(alice, { history: false });
    for (const text of texts) room.say(alice, text);
    const bob = new FakeMember("bob");
    room.join(bob, { history: true });
    const events = bob.events;
    assert.match(noticeText(events.at(-1)), /^welcome, bob! /);
    return events.slice(0, -1).map((e) => {
      assert.ok(e.kind === "message" && e.history, JSON.stringify(e));
      return e.kind === "message" ? e.text : "";
    });
  };
  const eight = Array.from({ length: 8 }, (_, i) => `line ${i}`);

  await t.step("a budget just short of four lines replays the newest three", () => {
    assert.deepEqual(replayed({ historyBytes: 4 * lineBytes - 1 }, eight), [
      "line 5",
      "line 6",
      "line 7",
    ]);
  });

  await t.step("a budget of exactly three lines replays three", () => {
    assert.deepEqual(replayed({ historyBytes: 3 * lineBytes }, eight), [
      "line 5",
      "line 6",
      "line 7",
    ]);
  });

  await t.step("a budget smaller than one line replays nothing", () => {
    assert.deepEqual(replayed({ historyBytes: lineBytes - 1 }, eight), []);
  });

  await t.step("a line too long to fit ends the replay: no older line is shown past it", () => {
    const texts = ["line 1", `line 2 ${"x".repeat(500)}`, "line 3"];
    assert.deepEqual(replayed({ historyBytes: 3 * lineBytes }, texts), ["line 3"]);
  });

  await t.step("a generous budget replays everything kept", () => {
    assert.deepEqual(replayed({ historyBytes: 100 * lineBytes }, eight), eight);
  });
});

/** A member that notes how much it had been offered when it was evicted. */
class EvictionRecorder extends FakeMember {
  offeredWhenEvicted = -1;

  override evicted(reason: string): void {
    super.evicted(reason);
    this.offeredWhenEvicted = this.offered.length;
  }
}

Deno.test("LocalRoom hands an evicted member nothing after its goodbye, not even gathered notices", () => {
  // Notices are gathered (not sent at once), so the first eviction's leave
  // notice is still pending when the second slow member is dropped.
  const room = new LocalRoom({ noticeDelayMs: 60_000 });
  try {
    const alice = new FakeMember("alice");
    const slow1 = new EvictionRecorder("s1");
    const bob = new FakeMember("bob");
    const slow2 = new EvictionRecorder("s2");
    for (const member of [alice, slow1, bob, slow2]) {
      room.join(member, { history: false });
      member.room = room;
    }
    room.flush();
    for (const member of [alice, slow1, bob, slow2]) member.reset();

    slow1.full = true;
    slow2.full = true;
    room.say(alice, "hi");
    for (const slow of [slow1, slow2]) {
      assert.equal(slow.evictions.length, 1, slow.alias);
      assert.equal(slow.offeredWhenEvicted, 1, `${slow.alias} was offered only the message`);
    }
    // Whatever is sent later, the evicted members are offered none of it.
    room.flush();
    room.say(bob, "after");
    room.close();
    for (const slow of [slow1, slow2]) {
      assert.equal(
        slow.offered.length,
        slow.offeredWhenEvicted,
        `${slow.alias} was offered ${slow.offered.length - slow.offeredWhenEvicted} more`,
      );
    }
    // The others hear of both departures.
    const leaves = bob.events.filter((e) => e.kind === "leave").map((e) => e.alias);
    assert.deepEqual(leaves, ["s1", "s2"]);
    assert.equal(room.size, 2);
  } finally {
    room.close();
  }
});
