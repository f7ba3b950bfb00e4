import assert from "node:assert/strict";
import { parseServerLine, type ServerEvent } from "../../protocol/wire.ts";
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

const decoder = new TextDecoder();

/** An in-memory member that leaves through the registry when asked to go, as a session does. */
class FakeMember implements Member {
  joinedAt = 0;
  away = "";
  replyTo: Member | undefined = undefined;
  readonly received: string[] = [];
  readonly evictions: string[] = [];
  full = false;
  registry: LocalRegistry | undefined;

  constructor(public alias: string) {}

  deliver(bytes: Uint8Array): boolean {
    if (this.full) return false;
    this.received.push(...decoder.decode(bytes).slice(0, -1).split("\n"));
    return true;
  }

  evicted(reason: string): void {
    this.evictions.push(reason);
    this.registry?.leave(this, reason);
    this.registry?.release(this);
  }

  get events(): ServerEvent[] {
    return this.received.map(parseServerLine);
  }

  reset(): void {
    this.received.length = 0;
  }
}

function newRegistry(options: LocalRegistryOptions = {}): LocalRegistry {
  return new LocalRegistry({ ...options, room: { noticeDelayMs: 0, ...options.room } });
}

/** Claims each alias and puts its member in `room`, inboxes emptied. */
async function enterAll(
  registry: LocalRegistry,
  room: string,
  ...aliases: string[]
): Promise<FakeMember[]> {
  const members: FakeMember[] = [];
  for (const alias of aliases) {
    const member = new FakeMember(alias);
    member.registry = registry;
    assert.ok(await registry.claim(member, alias), alias);
    const entered = await registry.enter(member, room, { history: true, nameRoom: true });
    assert.ok(entered.ok, alias);
    members.push(member);
  }
  for (const member of members) member.reset();
  return members;
}

function texts(member: FakeMember): string[] {
  return member.events.map((e) => (e.kind === "notice" ? e.text : e.kind));
}

Deno.test("LocalRegistry.claim() keeps aliases unique across rooms, ignoring case, until released", async () => {
  const registry = newRegistry();
  const [alice] = await enterAll(registry, "dev", "alice");
  const impostor = new FakeMember("ALICE");
  assert.equal(await registry.claim(impostor, "ALICE"), false);
  assert.equal(
    await registry.claim(alice!, "alice"),
    true,
    "claiming one's own alias again is fine",
  );
  registry.release(alice!);
  assert.equal(await registry.claim(impostor, "ALICE"), true, "free once released");
  registry.close();
});

Deno.test("LocalRegistry.rename() refuses an alias held in another room and frees the old one", async () => {
  const registry = newRegistry();
  const [alice] = await enterAll(registry, "lobby", "alice");
  const [bob] = await enterAll(registry, "dev", "bob");
  assert.equal(await registry.rename(alice!, "BOB"), false);
  assert.equal(alice!.alias, "alice");
  assert.deepEqual(alice!.received, []);
  assert.equal(await registry.rename(alice!, "alicia"), true);
  assert.equal(alice!.alias, "alicia");
  assert.deepEqual(texts(alice!), ["nick"]);
  assert.deepEqual(bob!.received, [], "the other room hears nothing of it");
  assert.equal(await registry.claim(new FakeMember("alice"), "alice"), true);
  assert.equal(await registry.rename(alice!, "Alicia"), true, "a change of case is one's own");
  registry.close();
});

Deno.test("LocalRegistry.enter() makes a room, moves between rooms, and drops a room once empty", async () => {
  const registry = newRegistry({ defaultRoom: "hall" });
  const [alice, bob] = await enterAll(registry, "hall", "alice", "bob");
  assert.deepEqual(registry.list().map((r) => r.name), ["hall"]);

  const moved = await registry.enter(alice!, "#dev".slice(1), { history: true, nameRoom: true });
  assert.ok(moved.ok);
  assert.equal(moved.room.name, "dev");
  const left = bob!.events[0];
  assert.equal(left?.kind, "leave");
  if (left?.kind === "leave") assert.equal(left.to, "dev");
  assert.deepEqual(texts(alice!), ["welcome to #dev, alice! you are the only one here"]);
  assert.deepEqual(registry.list(), [
    { name: "hall", members: 1, topic: "" },
    { name: "dev", members: 1, topic: "" },
  ]);

  const same = await registry.enter(alice!, "DEV", { history: true, nameRoom: true });
  assert.ok(same.ok && same.room === moved.room, "entering one's own room changes nothing");

  moved.room.say(alice!, "kept for newcomers");
  moved.room.setTopic(alice!, "a topic");
  registry.leave(alice!, "lunch");
  assert.deepEqual(registry.list().map((r) => r.name), ["hall"], "an empty room disappears");

  const again = await registry.enter(bob!, "dev", { history: true, nameRoom: true });
  assert.ok(again.ok && again.room !== moved.room);
  bob!.reset();
  const carol = new FakeMember("carol");
  await registry.claim(carol, "carol");
  await registry.enter(carol, "dev", { history: true, nameRoom: true });
  assert.deepEqual(
    texts(carol),
    ["welcome to #dev, carol! 2 online: bob, carol"],
    "no old history or topic",
  );

  registry.leave(bob!, "");
  registry.leave(carol, "");
  assert.equal(registry.defaultRoom.size, 0);
  assert.deepEqual(registry.list().map((r) => r.name), ["hall"], "the default room stays, empty");
  registry.close();
});

Deno.test("LocalRegistry lists the default room first, then by name, and refuses a room past maxRooms", async () => {
  const registry = newRegistry({ maxRooms: 3 });
  const [a, b, c] = await enterAll(registry, "lobby", "a", "b", "c");
  assert.ok((await registry.enter(a!, "zeta", { history: true, nameRoom: true })).ok);
  assert.ok((await registry.enter(b!, "Alpha", { history: true, nameRoom: true })).ok);
  assert.deepEqual(registry.list().map((r) => r.name), ["lobby", "Alpha", "zeta"]);
  assert.equal(
    registry.refusal("another"),
    "there are already 3 rooms; join one of them (/rooms lists them)",
  );
  assert.equal(registry.refusal("ALPHA"), undefined, "an existing room can always be entered");
  const refused = await registry.enter(c!, "another", { history: true, nameRoom: true });
  assert.deepEqual(refused, {
    ok: false,
    reason: "there are already 3 rooms; join one of them (/rooms lists them)",
  });
  assert.equal(registry.defaultRoom.size, 1, "a refused move stays put");
  assert.ok((await registry.enter(c!, "alpha", { history: true, nameRoom: true })).ok);
  registry.close();
});

Deno.test("LocalRegistry.enter() lets the last member of a room move at the cap: the room it empties makes way", async () => {
  const registry = newRegistry({ maxRooms: 2 });
  const [alice, bob] = await enterAll(registry, "lobby", "alice", "bob");
  assert.ok((await registry.enter(alice!, "dev", { history: true, nameRoom: true })).ok);
  // Alone in #dev: moving to #ops empties it, so the count stays at two.
  assert.equal(registry.refusal("ops", alice), undefined);
  assert.ok((await registry.enter(alice!, "ops", { history: true, nameRoom: true })).ok);
  assert.deepEqual(registry.list().map((r) => r.name), ["lobby", "ops"]);
  // With bob in #ops too, alice leaving it frees nothing: a third room is refused.
  assert.ok((await registry.enter(bob!, "ops", { history: true, nameRoom: true })).ok);
  const refused = await registry.enter(alice!, "dev", { history: true, nameRoom: true });
  assert.equal(refused.ok, false);
  registry.close();
});

Deno.test("LocalRoom.join() asks a mover whose queue cannot take the room's history and welcome to go, and does not let it in", async () => {
  const registry = newRegistry();
  const [talker, mover] = await enterAll(registry, "lobby", "talker", "mover");
  assert.ok((await registry.enter(talker!, "dev", { history: true, nameRoom: true })).ok);
  const dev = registry.list().find((r) => r.name === "dev");
  assert.ok(dev);
  const room = await registry.enter(talker!, "dev", { history: true, nameRoom: true });
  assert.ok(room.ok);
  room.room.say(talker!, "kept in history");
  // The mover's queue is full (much still queued for it): nothing fits.
  mover!.full = true;
  const moved = await registry.enter(mover!, "dev", { history: true, nameRoom: true });
  assert.ok(moved.ok);
  assert.deepEqual(mover!.evictions, ["too slow: could not keep up with the room"]);
  assert.deepEqual([...room.room.members()].map((m) => m.alias), ["talker"]);
  registry.close();
});

Deno.test("LocalRegistry.whisper() reaches any room, flushes what was gathered first, and sets replyTo", async () => {
  const registry = new LocalRegistry({ room: { noticeDelayMs: 60_000 } });
  const [alice, carol] = await enterAll(registry, "lobby", "alice", "carol");
  const [bob] = await enterAll(registry, "dev", "bob");
  registry.defaultRoom.flush();
  for (const member of [alice!, bob!, carol!]) member.reset();

  await enterAll(registry, "lobby", "dave");
  alice!.reset();
  assert.deepEqual(alice!.received, [], "dave's join is gathered");
  const sent = await registry.whisper(alice!, "BOB", "psst");
  assert.deepEqual(sent, { ok: true, to: { alias: "bob", joinedAt: 0, away: "" } });
  assert.deepEqual(alice!.events.map((e) => e.kind), ["join", "private"], "gathered lines first");
  assert.deepEqual(bob!.events.map((e) => e.kind), ["private"]);
  assert.equal(bob!.replyTo, alice);
  assert.deepEqual(carol!.events.map((e) => e.kind), ["join"], "no one else sees it");

  assert.deepEqual(await registry.whisper(alice!, "nobody", "x"), { ok: false, why: "absent" });
  assert.deepEqual(await registry.whisper(alice!, alice!, "x"), { ok: false, why: "self" });
  registry.release(bob!);
  assert.deepEqual(await registry.whisper(alice!, bob!, "x"), { ok: false, why: "absent" });
  assert.equal(bob!.replyTo, undefined, "a departed member keeps no one alive");
  registry.close();
});

Deno.test("LocalRegistry.whisper() asks a recipient whose queue is full to go", async () => {
  const registry = newRegistry();
  const [alice] = await enterAll(registry, "lobby", "alice");
  const [slow, bob] = await enterAll(registry, "dev", "slow", "bob");
  slow!.full = true;
  const sent = await registry.whisper(alice!, "slow", "psst");
  assert.ok(sent.ok);
  assert.deepEqual(slow!.evictions, ["too slow: could not keep up with the room"]);
  assert.deepEqual(bob!.events.map((e) => e.kind), ["leave"]);
  assert.deepEqual(registry.list().map((r) => [r.name, r.members]), [["lobby", 1], ["dev", 1]]);
  registry.close();
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
      const session = new Session(conn, "test", { registry, options, log: () => {} });
      const done = session.run();
      const buffer = new Uint8Array(1024);
      assert.ok(((await client.read(buffer)) ?? 0) > 0, "the prompt");
      await client.write(new TextEncoder().encode("alice\n"));
      await withTimeout(registry.asked.promise, 5000, `the ${gated}`);
      // The server stops while the registry has not answered yet.
      session.abort();
      registry.gate.resolve();
      await withTimeout(done, 5000, "the session to end");
      assert.equal(registry.local.members, 0, "in no room");
      assert.equal(registry.defaultRoom.size, 0);
      assert.ok(await registry.local.claim(new FakeMember("alice"), "alice"), "the alias is free");
      registry.close();
    });
  }
});
