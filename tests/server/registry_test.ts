import assert from "node:assert/strict";
import {
  type EnterOptions,
  type EnterResult,
  LocalRegistry,
  type LocalRegistryOptions,
  type Registry,
  type RoomInfo,
  type WhisperResult,
} from "../../server/registry.ts";
import type { Member } from "../../server/room.ts";
import { resolveServeOptions } from "../../server/options.ts";
import { Session } from "../../server/session.ts";
import { withTimeout } from "../_helpers.ts";
import { FakeMember, type FakeMemberOptions, settle } from "./_fake_member.ts";

/** A registry closed when the test's `using` goes out of scope. */
function newRegistry(options: LocalRegistryOptions = {}): LocalRegistry & Disposable {
  const registry = new LocalRegistry(options);
  return Object.assign(registry, { [Symbol.dispose]: () => registry.close() });
}

/**
 * Claims each alias and puts its member in `room`; once everything has
 * reached them, their inboxes are emptied.
 */
async function enterAll<const A extends readonly string[]>(
  registry: LocalRegistry,
  room: string,
  aliases: A,
  options: FakeMemberOptions = {},
): Promise<{ [K in keyof A]: FakeMember }> {
  const members: FakeMember[] = [];
  for (const alias of aliases) {
    const member = new FakeMember(alias, options);
    member.registry = registry;
    assert.ok(await registry.claim(member, alias), alias);
    const entered = await registry.enter(member, room, { history: true, nameRoom: true });
    assert.ok(entered.ok, alias);
    members.push(member);
  }
  await settle(undefined, ...members);
  for (const member of members) member.reset();
  return members as { [K in keyof A]: FakeMember };
}

/** Notices as their text, other events as their kind. */
function texts(member: FakeMember): string[] {
  return member.events.map((e) => (e.kind === "notice" ? e.text : e.kind));
}

const ENTER = { history: true, nameRoom: true } as const;

Deno.test("LocalRegistry.claim() keeps aliases unique across rooms, ignoring case, until released", async () => {
  using registry = newRegistry();
  const [alice] = await enterAll(registry, "dev", ["alice"]);
  const impostor = new FakeMember("ALICE");
  assert.equal(await registry.claim(impostor, "ALICE"), false);
  assert.equal(
    await registry.claim(alice, "alice"),
    true,
    "claiming one's own alias again is fine",
  );
  registry.release(alice);
  assert.equal(await registry.claim(impostor, "ALICE"), true, "free once released");
});

Deno.test("LocalRegistry.rename() refuses an alias held in another room and frees the old one", async () => {
  using registry = newRegistry();
  const [alice] = await enterAll(registry, "lobby", ["alice"]);
  const [bob] = await enterAll(registry, "dev", ["bob"]);
  assert.equal(await registry.rename(alice, "BOB"), false);
  assert.equal(alice.alias, "alice");
  await settle(undefined, alice);
  assert.equal(alice.text, "");
  assert.equal(await registry.rename(alice, "alicia"), true);
  assert.equal(alice.alias, "alicia");
  await settle(undefined, alice, bob);
  assert.deepEqual(texts(alice), ["nick"]);
  assert.equal(bob.text, "", "the other room hears nothing of it");
  assert.equal(await registry.claim(new FakeMember("alice"), "alice"), true);
  assert.equal(await registry.rename(alice, "Alicia"), true, "a change of case is one's own");
});

Deno.test("LocalRegistry.enter() makes a room, moves between rooms, and drops a room once empty", async () => {
  using registry = newRegistry({ defaultRoom: "hall" });
  const [alice, bob] = await enterAll(registry, "hall", ["alice", "bob"]);
  assert.deepEqual(registry.list().map((r) => r.name), ["hall"]);

  const moved = await registry.enter(alice, "#dev".slice(1), ENTER);
  assert.ok(moved.ok);
  assert.equal(moved.room.name, "dev");
  await settle(undefined, alice, bob);
  const left = bob.events[0];
  assert.equal(left?.kind, "leave");
  if (left?.kind === "leave") assert.equal(left.to, "dev");
  assert.deepEqual(texts(alice), ["welcome to #dev, alice! you are the only one here"]);
  assert.deepEqual(registry.list(), [
    { name: "hall", members: 1, topic: "" },
    { name: "dev", members: 1, topic: "" },
  ]);

  const same = await registry.enter(alice, "DEV", ENTER);
  assert.ok(same.ok && same.room === moved.room, "entering one's own room changes nothing");

  moved.room.say(alice, "kept for newcomers");
  moved.room.setTopic(alice, "a topic");
  registry.leave(alice, "lunch");
  assert.deepEqual(registry.list().map((r) => r.name), ["hall"], "an empty room disappears");

  const again = await registry.enter(bob, "dev", ENTER);
  assert.ok(again.ok && again.room !== moved.room);
  const carol = new FakeMember("carol");
  await registry.claim(carol, "carol");
  await registry.enter(carol, "dev", ENTER);
  await settle(undefined, carol);
  assert.deepEqual(
    texts(carol),
    ["welcome to #dev, carol! 2 online: bob, carol"],
    "no old history or topic",
  );

  registry.leave(bob, "");
  registry.leave(carol, "");
  assert.equal(registry.defaultRoom.size, 0);
  assert.deepEqual(registry.list().map((r) => r.name), ["hall"], "the default room stays, empty");
});

Deno.test("LocalRegistry.enter() hands a mover the rest of its old room, then the new room's welcome, then the new room", async () => {
  using registry = newRegistry();
  const [alice, bob] = await enterAll(registry, "lobby", ["alice", "bob"]);
  const [carol] = await enterAll(registry, "dev", ["carol"]);
  registry.defaultRoom.say(alice, "last words in the lobby");
  const moved = await registry.enter(bob, "dev", ENTER);
  assert.ok(moved.ok);
  registry.defaultRoom.say(alice, "after bob left");
  moved.room.say(carol, "hi bob");
  await settle(undefined, alice, bob, carol);
  assert.deepEqual(bob.events.map((e) => "text" in e ? e.text : e.kind), [
    "last words in the lobby",
    "welcome to #dev, bob! 2 online: carol, bob",
    "hi bob",
  ]);
  assert.deepEqual(texts(carol), ["join"]);
});

Deno.test("LocalRegistry lists the default room first, then by name, and refuses a room past maxRooms", async () => {
  using registry = newRegistry({ maxRooms: 3 });
  const [a, b, c] = await enterAll(registry, "lobby", ["a", "b", "c"]);
  assert.ok((await registry.enter(a, "zeta", ENTER)).ok);
  assert.ok((await registry.enter(b, "Alpha", ENTER)).ok);
  assert.deepEqual(registry.list().map((r) => r.name), ["lobby", "Alpha", "zeta"]);
  assert.equal(
    registry.refusal("another"),
    "there are already 3 rooms; join one of them (/rooms lists them)",
  );
  assert.equal(registry.refusal("ALPHA"), undefined, "an existing room can always be entered");
  const refused = await registry.enter(c, "another", ENTER);
  assert.deepEqual(refused, {
    ok: false,
    reason: "there are already 3 rooms; join one of them (/rooms lists them)",
  });
  assert.equal(registry.defaultRoom.size, 1, "a refused move stays put");
  assert.ok((await registry.enter(c, "alpha", ENTER)).ok);
});

Deno.test("LocalRegistry.enter() lets the last member of a room move at the cap: the room it empties makes way", async () => {
  using registry = newRegistry({ maxRooms: 2 });
  const [alice, bob] = await enterAll(registry, "lobby", ["alice", "bob"]);
  assert.ok((await registry.enter(alice, "dev", ENTER)).ok);
  // Alone in #dev: moving to #ops empties it, so the count stays at two.
  assert.equal(registry.refusal("ops", alice), undefined);
  assert.ok((await registry.enter(alice, "ops", ENTER)).ok);
  assert.deepEqual(registry.list().map((r) => r.name), ["lobby", "ops"]);
  // With bob in #ops too, alice leaving it frees nothing: a third room is refused.
  assert.ok((await registry.enter(bob, "ops", ENTER)).ok);
  const refused = await registry.enter(alice, "dev", ENTER);
  assert.equal(refused.ok, false);
});

Deno.test("LocalRoom.join() asks a mover whose queue cannot take the room's history and welcome to go, and does not let it in", async (t) => {
  await t.step("deliver() refuses", async () => {
    using registry = newRegistry();
    const [talker, mover] = await enterAll(registry, "lobby", ["talker", "mover"]);
    const room = await registry.enter(talker, "dev", ENTER);
    assert.ok(room.ok);
    room.room.say(talker, "kept in history");
    // The mover's queue is full (much still queued for it): nothing fits.
    mover.full = true;
    const moved = await registry.enter(mover, "dev", ENTER);
    assert.ok(moved.ok);
    assert.deepEqual(mover.evictions, ["too slow: could not keep up with the room"]);
    assert.deepEqual([...room.room.members()].map((m) => m.alias), ["talker"]);
    assert.equal(registry.members, 1);
  });

  await t.step("its outbox is too far behind in the room it leaves", async () => {
    using registry = newRegistry();
    const [talker, mover] = await enterAll(registry, "lobby", ["talker", "mover"], {
      maxBytes: 2048,
    });
    const dev = await registry.enter(talker, "dev", ENTER);
    assert.ok(dev.ok);
    dev.room.say(talker, "kept in history");
    // Its socket takes nothing; the lobby's lines pile up for it.
    mover.sink.hold();
    registry.defaultRoom.announce("stuck here");
    registry.defaultRoom.flush();
    await mover.sink.whenWaiting();
    for (let i = 0; mover.outbox.size < 2048 - 60; i++) {
      registry.defaultRoom.announce(`${i} ${"n".repeat(100)}`);
    }
    const moved = await registry.enter(mover, "dev", ENTER);
    assert.ok(moved.ok);
    assert.deepEqual(mover.evictions, ["too slow: could not keep up with the room"]);
    assert.deepEqual([...dev.room.members()].map((m) => m.alias), ["talker"]);
    assert.equal(registry.defaultRoom.size, 0);
    mover.sink.release();
  });
});

Deno.test("LocalRegistry.whisper() reaches any room, after what each room said before it, and sets replyTo", async () => {
  using registry = newRegistry();
  const [alice, carol] = await enterAll(registry, "lobby", ["alice", "carol"]);
  const [bob, erin] = await enterAll(registry, "dev", ["bob", "erin"]);

  await enterAll(registry, "lobby", ["dave"]);
  // Entering one's own room again hands back the room.
  const devRoom = await registry.enter(erin, "dev", ENTER);
  assert.ok(devRoom.ok);
  devRoom.room.say(erin, "before");
  const sent = await registry.whisper(alice, "BOB", "psst");
  assert.deepEqual(sent, { ok: true, to: { alias: "bob", joinedAt: 0, away: "" } });
  devRoom.room.say(erin, "after");
  registry.defaultRoom.announce("later");
  await settle(undefined, alice, bob, carol);
  assert.deepEqual(alice.events.map((e) => e.kind), ["join", "private", "notice"]);
  assert.deepEqual(bob.events.map((e) => e.kind === "message" ? e.text : e.kind), [
    "before",
    "private",
    "after",
  ]);
  assert.equal(bob.replyTo, alice);
  assert.deepEqual(carol.events.map((e) => e.kind), ["join", "notice"], "no one else sees it");

  assert.deepEqual(await registry.whisper(alice, "nobody", "x"), { ok: false, why: "absent" });
  assert.deepEqual(await registry.whisper(alice, alice, "x"), { ok: false, why: "self" });
  registry.release(bob);
  assert.deepEqual(await registry.whisper(alice, bob, "x"), { ok: false, why: "absent" });
  assert.equal(bob.replyTo, undefined, "a departed member keeps no one alive");
});

Deno.test("LocalRegistry.whisper() asks a recipient whose queue is full to go", async (t) => {
  await t.step("deliver() refuses", async () => {
    using registry = newRegistry();
    const [alice] = await enterAll(registry, "lobby", ["alice"]);
    const [slow, bob] = await enterAll(registry, "dev", ["slow", "bob"]);
    slow.full = true;
    const sent = await registry.whisper(alice, "slow", "psst");
    assert.ok(sent.ok);
    assert.deepEqual(slow.evictions, ["too slow: could not keep up with the room"]);
    await settle(undefined, bob);
    assert.deepEqual(bob.events.map((e) => e.kind), ["leave"]);
    assert.deepEqual(registry.list().map((r) => [r.name, r.members]), [["lobby", 1], ["dev", 1]]);
  });

  await t.step("its socket is stuck and its room's lines fill its outbox", async () => {
    using registry = newRegistry();
    const [alice] = await enterAll(registry, "lobby", ["alice"]);
    const [slow] = await enterAll(registry, "dev", ["slow"], { maxBytes: 1024 });
    const [bob] = await enterAll(registry, "dev", ["bob"]);
    const dev = await registry.enter(bob, "dev", ENTER);
    assert.ok(dev.ok);
    slow.sink.hold();
    dev.room.announce("stuck here");
    dev.room.flush();
    await slow.sink.whenWaiting();
    for (let i = 0; slow.outbox.size < 1024 - 20; i++) dev.room.say(bob, `${i} ${"w".repeat(50)}`);
    const sent = await registry.whisper(alice, "slow", "psst");
    assert.ok(sent.ok);
    assert.deepEqual(slow.evictions, ["too slow: could not keep up with the room"]);
    await settle(undefined, alice, bob);
    assert.equal(texts(alice).at(-1), "private", "the sender still gets its echo");
    assert.equal(bob.events.filter((e) => e.kind === "leave").length, 1);
    assert.deepEqual(registry.list().map((r) => [r.name, r.members]), [["lobby", 1], ["dev", 1]]);
    slow.sink.release();
  });
});

/**
 * A registry whose claims and room entries wait for the test to let them
 * through, as a registry across the network would.
 */
class GatedRegistry implements Registry {
  readonly local = newRegistry();
  readonly asked = Promise.withResolvers<void>();
  readonly gate = Promise.withResolvers<void>();

  constructor(readonly gated: "claim" | "enter") {}

  get defaultRoom() {
    return this.local.defaultRoom;
  }
  get rooms() {
    return this.local.rooms;
  }
  get members() {
    return this.local.members;
  }
  async claim(member: Member, alias: string): Promise<boolean> {
    if (this.gated === "claim") await this.#wait();
    return this.local.claim(member, alias);
  }
  release(member: Member): void {
    this.local.release(member);
  }
  rename(member: Member, alias: string): Promise<boolean> {
    return this.local.rename(member, alias);
  }
  refusal(name: string): string | undefined {
    return this.local.refusal(name);
  }
  async enter(member: Member, name: string, options: EnterOptions): Promise<EnterResult> {
    if (this.gated === "enter") await this.#wait();
    return this.local.enter(member, name, options);
  }
  leave(member: Member, reason: string): void {
    this.local.leave(member, reason);
  }
  list(): RoomInfo[] {
    return this.local.list();
  }
  whisper(from: Member, to: string | Member, text: string): Promise<WhisperResult> {
    return this.local.whisper(from, to, text);
  }
  close(): void {
    this.local.close();
  }

  async #wait(): Promise<void> {
    this.asked.resolve();
    await this.gate.promise;
  }
}

Deno.test("Session gives back what the registry granted after it closed", async (t) => {
  for (const gated of ["claim", "enter"] as const) {
    await t.step(`a ${gated} that settles after the session closed`, async () => {
      const registry = new GatedRegistry(gated);
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      const conn = await listener.accept();
      const options = resolveServeOptions({ port: 0, log: () => {} });
      const ended = Promise.withResolvers<void>();
      const ctx = { registry, options, log: () => {}, ended: () => ended.resolve() };
      const session = new Session(conn, "test", ctx);
      session.run();
      const buffer = new Uint8Array(1024);
      assert.ok(((await client.read(buffer)) ?? 0) > 0, "the prompt");
      await client.write(new TextEncoder().encode("alice\n"));
      await withTimeout(registry.asked.promise, 5000, `the ${gated}`);
      // The server stops while the registry has not answered yet.
      session.abort();
      registry.gate.resolve();
      await withTimeout(ended.promise, 5000, "the session to end");
      assert.equal(registry.local.members, 0, "in no room");
      assert.equal(registry.defaultRoom.size, 0);
      assert.ok(await registry.local.claim(new FakeMember("alice"), "alice"), "the alias is free");
      registry.close();
    });
  }
});
