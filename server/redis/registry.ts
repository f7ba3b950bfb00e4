/**
 * A {@linkcode Registry} shared through Redis, so that several `confab
 * serve` instances are one server: the same aliases, rooms, members,
 * history and private messages on each.
 *
 * Redis holds the shared state (see `scripts.ts` for the keys) and carries
 * every room event on one channel per room. An instance subscribes to a
 * room's channel while it has members there, and delivers what comes in to
 * them through a {@linkcode LocalRoom}, which does the per-member queues
 * and drops the slow. Its own lines take the same way back: nothing is
 * delivered twice, and each instance sees a room's events in the one order
 * Redis published them. A line said is appended to the room's capped log
 * and published with its stream id in one script, so history and live
 * delivery agree, and after a lost link an instance replays each room's
 * log from the last id it delivered.
 *
 * Each instance heartbeats; when one stops (killed, cut off), a survivor
 * announces each of its members as gone, exactly once, and frees their
 * aliases. While the link to Redis is down, the members of this instance
 * still hear each other, and are told that the others do not.
 *
 * @module
 */

import { aliasKey, checkAlias } from "../../protocol/alias.ts";
import { roomKey } from "../../protocol/room_name.ts";
import { sanitize } from "../../protocol/sanitize.ts";
import {
  formatAction,
  formatError,
  formatHistory,
  formatJoin,
  formatLeave,
  formatMessage,
  formatNick,
  formatNotice,
  formatPrivateIn,
  formatPrivateOut,
  formatRoomCap,
  formatTopic,
  formatTopicSet,
  formatWelcome,
  MAX_LINE_BYTES,
} from "../../protocol/wire.ts";
import type { Logger } from "../options.ts";
import type {
  EnterOptions,
  EnterResult,
  Registry,
  RegistrySettings,
  RoomInfo,
  Survey,
  WhisperResult,
} from "../registry.ts";
import {
  encodeLine,
  type JoinOptions,
  LocalRoom,
  type LocalRoomOptions,
  type Member,
  type MemberInfo,
  type Room,
  type Roster,
  TOO_SLOW,
  WELCOME_NAMES,
} from "../room.ts";
import type { RedisLink } from "./link.ts";
import { Outbox } from "../outbox.ts";

/** Where a remote member's stand-in outbox writes: nowhere. */
const DISCARD = { write: (bytes: Uint8Array) => Promise.resolve(bytes.length) };
import {
  BEAT,
  BYE,
  CLAIM,
  ENTER,
  EPOCH,
  LEAVE,
  PUBLISH,
  REAP,
  RECONCILE,
  RELEASE,
  RENAME,
  ROSTER,
  SAY,
  type Script,
  SURVEY,
  TOPIC,
  WHISPER,
} from "./scripts.ts";

/** How often an instance heartbeats, looks for dead ones and re-reads the room list, ms. */
export const BEAT_EVERY_MS = 1000;
/** An instance whose heartbeat is this old is dead, ms. */
export const HEARTBEAT_TTL_MS = 5000;
/** A member's presence in a room lasts this long unless refreshed, ms. */
const PRESENCE_TTL_MS = 10_000;
/** An alias lasts this long unless its instance refreshes it, ms. */
const ALIAS_TTL_MS = 10_000;
/** How long a newcomer's admission waits for its own join to come back, ms. */
const ADMIT_WAIT_MS = 3000;
/** Most events held for one room while it catches up; beyond, they are dropped (and it says so). */
const MAX_HELD = 10_000;
/** Most bytes of events held for one room while it catches up. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;
/** Most log entries replayed into one room after the link comes back. */
const MAX_REPLAY = 10_000;
/** Most bytes of log entries replayed into one room after the link comes back. */
const MAX_REPLAY_BYTES = 16 * 1024 * 1024;
/** Longest text taken from an event when no line limit is given, in bytes. */
const MAX_EVENT_TEXT = 64 * 1024;
/** Most members a room's roster keeps here. */
const MAX_ROSTER = 100_000;
/** A stream id or time stamp further ahead of this server's clock is refused, ms. */
const MAX_AHEAD_MS = 60_000;
/** How long /who and /rooms wait for Redis before showing what was last known, ms. */
const READ_WAIT_MS = 500;
/** A stream id and a line number, as a logged event is published: `MS-SEQ/N`. */
const LOGGED_ID = /^(\d{1,15})-(\d{1,15})\/(\d{1,15})$/;
/** A stream id. */
const STREAM_ID = /^\d{1,15}-\d{1,15}$/;

/** Why a dead instance's members left, as their rooms are told. */
export const LOST_REASON = "server connection lost";
/** Why members who left while this instance was cut off left, as the others are told. */
const CUT_OFF_REASON = "left while their server was cut off";
/** Why a stopping instance's members left. */
const SHUTDOWN_REASON = "server shutting down";
const LINK_DOWN =
  "the link to the other servers is down: people on this server still hear you, the others do not";
const LINK_BACK = "the link to the other servers is back";
const HISTORY_FORGOTTEN = "Redis lost its data: the history from before is gone";
const HISTORY_TRIMMED = "some lines said while the link was down were lost: history kept fewer";
const ENTER_DOWN = "the link to the other servers is down; try again in a moment";
/** Errors of the client that mean the connection went, not that Redis refused. */
const CONNECTION_ERROR =
  /max retries|connection is closed|stream isn't writeable|offline queue|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|timed? ?out|socket/i;

/** An event on a room's channel, as JSON. */
type RoomEvent =
  | { k: "say" | "act"; o: string; from: string; text: string; ms: number }
  | { k: "join"; o: string; alias: string; ms: number; again?: boolean }
  | {
    k: "leave";
    o: string;
    alias: string;
    reason: string;
    to: string;
    ms: number;
    lost?: boolean;
  }
  | { k: "nick"; o: string; old: string; alias: string; ms: number }
  | { k: "topic"; o: string; by: string; topic: string; ms: number }
  | { k: "notice"; text: string; ms: number };

/** A private line on an instance's inbox. */
interface PrivateEvent {
  o: string;
  from: string;
  joinedAt: number;
  text: string;
  ms: number;
}

/** A member's record in Redis. */
interface Info {
  alias?: unknown;
  joinedAt?: unknown;
  away?: unknown;
  since?: unknown;
}

/** A member of this instance, as the registry keeps it. */
interface Local {
  readonly member: Member;
  /** `INSTANCE:N`, its name in Redis. */
  readonly owner: string;
  /** The alias key it holds. */
  key: string;
  /** The room it is in; `undefined` before it enters and while it moves. */
  room: RedisRoom | undefined;
  /** Whether a change of alias is under way (it sits out heartbeats meanwhile). */
  renaming?: boolean;
}

/** Limits of this server that a shared registry applies to what comes from Redis. */
export interface RedisLimits {
  /** Longest text of a line, in bytes (`--max-line-bytes`); by default `MAX_LINE_BYTES`. */
  maxLineBytes?: number | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `s` cut to at most `max` bytes of UTF-8, on a character boundary. */
function capBytes(s: string, max: number): string {
  if (s.length <= max / 3) return s;
  const bytes = encoder.encode(s);
  if (bytes.length <= max) return s;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

/** A string from Redis, sanitised and cut to `max` bytes; "" if not a string. */
function text(value: unknown, max = MAX_EVENT_TEXT): string {
  return typeof value === "string" ? capBytes(sanitize(value.slice(0, max)), max) : "";
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function number(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** A time stamp from Redis, or now if it is missing or absurd. */
function stamp(value: unknown): number {
  const ms = number(value);
  return ms > 0 && ms <= Date.now() + MAX_AHEAD_MS ? ms : Date.now();
}

/** An alias from Redis, exactly as a member could have chosen it; `undefined` if not one. */
function alias(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const check = checkAlias(value);
  return check.ok && check.alias === value ? value : undefined;
}

/** A JSON object from Redis; `undefined` for anything else, or one longer than `max` characters. */
function parseObject(json: string, max: number): Record<string, unknown> | undefined {
  if (json.length > max) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return undefined;
  }
  return typeof raw === "object" && raw !== null && !Array.isArray(raw)
    ? raw as Record<string, unknown>
    : undefined;
}

/** How long a raw event may be for texts of `max` bytes: each character escaped, and the rest. */
function rawLimit(max: number): number {
  return 6 * max + 4096;
}

/**
 * A room event read back from Redis, checked and sanitised, its texts cut
 * to `max` bytes; `undefined` if malformed.
 */
function parseEvent(json: string, max = MAX_EVENT_TEXT): RoomEvent | undefined {
  const raw = parseObject(json, rawLimit(max));
  if (raw === undefined) return undefined;
  const o = text(raw.o);
  const ms = stamp(raw.ms);
  switch (raw.k) {
    case "say":
    case "act": {
      const from = alias(raw.from);
      return from === undefined ? undefined : { k: raw.k, o, from, text: text(raw.text, max), ms };
    }
    case "join": {
      const who = alias(raw.alias);
      return who === undefined
        ? undefined
        : { k: "join", o, alias: who, ms, again: raw.again === true };
    }
    case "leave": {
      const who = alias(raw.alias);
      if (who === undefined) return undefined;
      return {
        k: "leave",
        o,
        alias: who,
        reason: text(raw.reason, max),
        to: text(raw.to, max),
        ms,
        lost: raw.lost === true,
      };
    }
    case "nick": {
      const old = alias(raw.old);
      const now = alias(raw.alias);
      return old === undefined || now === undefined
        ? undefined
        : { k: "nick", o, old, alias: now, ms };
    }
    case "topic": {
      const by = alias(raw.by);
      return by === undefined ? undefined : { k: "topic", o, by, topic: text(raw.topic, max), ms };
    }
    case "notice":
      return { k: "notice", text: text(raw.text, max), ms };
  }
  return undefined;
}

function parseInfo(json: unknown): MemberInfo & { since: number } {
  // An unreadable record shows as a nameless member.
  const raw: Info =
    (typeof json === "string" ? parseObject(json, rawLimit(MAX_EVENT_TEXT)) : undefined) ??
      {};
  return {
    alias: alias(raw.alias) ?? "?",
    joinedAt: number(raw.joinedAt),
    away: text(raw.away),
    since: number(raw.since),
  };
}

/** Compares two stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am !== bm ? am - bm : as - bs;
}

/** A stream entry as Redis returns it: `[id, [field, value, ...]]`. */
type Entry = [string, string[]];

/** The number of a log entry in its room (its `n` field); 0 if it has none. */
function entryNumber(entry: Entry): number {
  const i = entry[1].indexOf("n");
  return i >= 0 ? Number(entry[1][i + 1]) || 0 : 0;
}

function entryEvent(entry: Entry, max: number): RoomEvent | undefined {
  const fields = entry[1];
  if (!Array.isArray(fields)) return undefined;
  const i = fields.indexOf("e");
  const json = i >= 0 && i + 1 < fields.length ? fields[i + 1] : undefined;
  return typeof json === "string" ? parseEvent(json, max) : undefined;
}

/**
 * A room shared through Redis: its members on this instance in a
 * {@linkcode LocalRoom}, everything else in Redis.
 */
export class RedisRoom implements Room {
  /** The room's name, as it was made. */
  name: string;
  /** Its key ({@linkcode roomKey}). */
  readonly key: string;
  /** Its members on this instance. */
  readonly local: LocalRoom;
  /** The newest stream id delivered here; "" before any. */
  lastId = "";
  /** The number of the line with {@linkcode RedisRoom.lastId}; 0 before any. */
  lastN = 0;
  /** Local members and moves under way into it: while > 0 it stays subscribed. */
  interest = 0;
  /** Settles once the room's channel is subscribed. */
  subscribed: Promise<void> | undefined;
  #topic = "";
  #roster: (MemberInfo & { since: number })[] = [];
  readonly #registry: RedisRegistry;
  /** Events held while the room catches up, or a newcomer waits to be let in. */
  #held: string[] = [];
  #heldBytes = 0;
  #holds = 0;
  /** Events that did not fit in the hold. */
  #heldDropped = 0;
  /** Newcomers whose script returned, waiting for their own join to come back. */
  readonly #waiting = new Map<
    string,
    {
      member: Member;
      lines: Uint8Array[];
      timer: ReturnType<typeof setTimeout>;
      done: () => void;
    }
  >();
  /** Newcomers whose join came back before their script's answer. */
  readonly #early = new Set<string>();
  /** Newcomers whose script is under way. */
  readonly #entering = new Set<string>();
  /** Members moving out, by owner: each keeps the room's lines until its own leave comes back. */
  readonly #moving = new Map<
    string,
    { member: Member; timer: ReturnType<typeof setTimeout>; done: () => void }
  >();

  /** Makes the room's local side; see {@linkcode RedisRegistry}. */
  constructor(
    registry: RedisRegistry,
    name: string,
    options: Pick<LocalRoomOptions, "historySize" | "busyBytes" | "quietAbove" | "turn">,
  ) {
    this.#registry = registry;
    this.name = name;
    this.key = roomKey(name);
    // Its quiet rule and summaries count the members on every instance.
    this.local = new LocalRoom({ name, ...options, size: () => this.size });
  }

  /** The channel its events come on. */
  get channel(): string {
    return this.#registry.prefix + "room:" + this.key;
  }

  get size(): number {
    return Math.max(this.#roster.length, this.local.size);
  }

  /** Whether this instance's writers for the room have fallen behind (see `Room.busy`). */
  get busy(): boolean {
    return this.local.busy;
  }

  ready(): Promise<void> {
    return this.local.ready();
  }

  get topic(): string {
    return this.#topic;
  }

  /** Sets the topic as Redis has it (it may have changed while the link was down). */
  retopic(topic: string): void {
    if (topic === this.#topic) return;
    this.#topic = topic;
    if (topic !== "") this.tell(formatTopic(topic));
  }

  /** Sets what is known of the room (from an answer of Redis). */
  know(topic: string, roster: (MemberInfo & { since: number })[]): void {
    this.#topic = topic;
    this.#roster = roster.slice(0, MAX_ROSTER).sort((a, b) => a.since - b.since);
  }

  *members(): IterableIterator<MemberInfo> {
    for (const { alias, joinedAt, away } of this.#roster) yield { alias, joinedAt, away };
  }

  async roster(): Promise<Roster> {
    const registry = this.#registry;
    let stale = true;
    if (registry.current) {
      try {
        const infos = await registry.read(ROSTER, [this.key]);
        if (Array.isArray(infos)) {
          this.know(this.#topic, infos.map(parseInfo));
          stale = false;
        }
      } catch (error) {
        // As last known.
        registry.stale("/who", error);
      }
    }
    return { members: [...this.members()], stale };
  }

  join(member: Member, options: JoinOptions): void {
    void this.#registry.enter(member, this.name, { nameRoom: false, ...options });
  }

  leave(member: Member, reason = ""): void {
    this.#registry.leave(member, reason);
  }

  say(from: Member, text: string): void {
    this.#said("say", from, text);
  }

  act(from: Member, text: string): void {
    this.#said("act", from, text);
  }

  #said(k: "say" | "act", from: Member, text: string): void {
    const registry = this.#registry;
    const owner = registry.ownerOf(from);
    if (!registry.up || owner === undefined) {
      // Cut off: the members here still hear each other.
      if (k === "say") this.local.say(from, text);
      else this.local.act(from, text);
      return;
    }
    const event: RoomEvent = { k, o: owner, from: from.alias, text, ms: Date.now() };
    registry.run(SAY, [this.key, registry.logLength, JSON.stringify(event)]).catch((error) => {
      registry.failed(from, "not sent", error);
    });
  }

  rename(member: Member, alias: string): void {
    void this.#registry.rename(member, alias);
  }

  setTopic(by: Member, topic: string): void {
    const registry = this.#registry;
    const owner = registry.ownerOf(by);
    if (!registry.up || owner === undefined) {
      by.deliver(encodeLine(formatError(`topic not set: ${ENTER_DOWN}`)));
      return;
    }
    const event: RoomEvent = { k: "topic", o: owner, by: by.alias, topic, ms: Date.now() };
    registry.run(TOPIC, [this.key, topic, JSON.stringify(event)]).catch((error) => {
      registry.failed(by, "topic not set", error);
    });
  }

  announce(text: string): void {
    const registry = this.#registry;
    if (!registry.up) {
      this.local.announce(text);
      return;
    }
    const event: RoomEvent = { k: "notice", text, ms: Date.now() };
    registry.run(PUBLISH, [this.key, JSON.stringify(event)]).catch(() => this.local.announce(text));
  }

  flush(): void {
    this.local.flush();
  }

  close(): void {
    for (const moving of this.#moving.values()) clearTimeout(moving.timer);
    this.#moving.clear();
    this.local.close();
  }

  /** Tells the members here (not the other instances). */
  tell(text: string): void {
    this.local.relay(encodeLine(formatNotice(Date.now(), text)));
  }

  /** Holds incoming events until {@linkcode RedisRoom.release}. */
  hold(): void {
    this.#holds++;
  }

  /** Ends a hold; once none is left, delivers what was held, in order. */
  release(): void {
    if (this.#holds === 0 || --this.#holds > 0) return;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    if (this.#heldDropped > 0) {
      this.tell(`${this.#heldDropped} events came faster than this server caught up and were lost`);
      this.#heldDropped = 0;
    }
    for (let i = 0; i < held.length; i++) {
      this.incoming(held[i]!);
      if (this.#holds > 0) {
        // A newcomer's join among them holds the rest again.
        const rest = held.slice(i + 1);
        for (const raw of rest) this.#heldBytes += raw.length;
        this.#held = [...rest, ...this.#held];
        return;
      }
    }
  }

  /** A message from the room's channel: `ID JSON`. */
  incoming(raw: string): void {
    const max = this.#registry.lineBytes;
    if (raw.length > rawLimit(max) + 64) return;
    if (this.#holds > 0) {
      if (this.#held.length < MAX_HELD && this.#heldBytes + raw.length <= MAX_HELD_BYTES) {
        this.#held.push(raw);
        this.#heldBytes += raw.length;
      } else this.#heldDropped++;
      return;
    }
    const space = raw.indexOf(" ");
    if (space < 0) return;
    const event = parseEvent(raw.slice(space + 1), max);
    if (event !== undefined) this.deliver(raw.slice(0, space), event);
  }

  /**
   * Delivers one event to the members here; `logged` is `ID/N` for a line
   * from the log (one already delivered is skipped), or `-`.
   */
  deliver(logged: string, event: RoomEvent): void {
    const registry = this.#registry;
    if (logged !== "-") {
      // Only a well-formed id, and none from the future: one far ahead
      // would make every later line look delivered already.
      const parts = LOGGED_ID.exec(logged);
      if (parts === null || Number(parts[1]) > registry.redisNow() + MAX_AHEAD_MS) return;
      const id = logged.slice(0, logged.indexOf("/"));
      if (this.lastId !== "" && compareIds(id, this.lastId) <= 0) return;
      this.lastId = id;
      this.lastN = Number(parts[3]);
    }
    switch (event.k) {
      case "say":
        this.local.relay(
          encodeLine(formatMessage(event.ms, event.from, event.text)),
          registry.memberOf(event.o),
        );
        return;
      case "act":
        this.local.relay(
          encodeLine(formatAction(event.ms, event.from, event.text)),
          registry.memberOf(event.o),
        );
        return;
      case "join": {
        // Back after being taken for lost: those here never saw it go.
        if (event.again && registry.memberOf(event.o) !== undefined) return;
        let since = 0;
        for (const m of this.#roster) if (m.since > since) since = m.since;
        this.#roster = this.#roster.filter((m) => m.alias !== event.alias);
        if (this.#roster.length < MAX_ROSTER) {
          this.#roster.push({ alias: event.alias, joinedAt: event.ms, away: "", since: since + 1 });
        }
        const waiting = this.#waiting.get(event.o);
        if (waiting !== undefined) {
          this.#waiting.delete(event.o);
          clearTimeout(waiting.timer);
          this.local.relayComing(
            encodeLine(formatJoin(event.ms, event.alias)),
            event.alias,
            "joined",
            waiting.member,
          );
          this.local.admit(waiting.member, waiting.lines);
          waiting.done();
          return;
        }
        if (this.#entering.has(event.o)) {
          // Its own join came back before its script's answer: what follows
          // waits until the newcomer is in, so it misses none of it.
          this.#early.add(event.o);
          this.local.relayComing(
            encodeLine(formatJoin(event.ms, event.alias)),
            event.alias,
            "joined",
          );
          this.hold();
          return;
        }
        this.local.relayComing(
          encodeLine(formatJoin(event.ms, event.alias)),
          event.alias,
          "joined",
          registry.memberOf(event.o),
        );
        return;
      }
      case "leave":
        // Taken for lost while still here (this server was slow or cut
        // off): the others were told; those here never saw it go.
        if (event.lost && registry.memberOf(event.o) !== undefined) return;
        this.#roster = this.#roster.filter((m) => m.alias !== event.alias);
        this.local.relayComing(
          encodeLine(formatLeave(event.ms, event.alias, event.reason, event.to)),
          event.alias,
          "left",
          registry.memberOf(event.o),
        );
        this.movedOut(event.o);
        return;
      case "nick":
        for (const m of this.#roster) {
          if (m.alias === event.old) Object.assign(m, { alias: event.alias });
        }
        this.local.relay(encodeLine(formatNick(event.ms, event.old, event.alias)));
        return;
      case "topic":
        this.#topic = event.topic;
        this.local.relay(encodeLine(formatNotice(event.ms, formatTopicSet(event.by, event.topic))));
        return;
      case "notice":
        this.local.relay(encodeLine(formatNotice(event.ms, event.text)));
        return;
    }
  }

  /** A newcomer's script is about to run. */
  expect(owner: string): void {
    this.#entering.add(owner);
  }

  /** A newcomer's script failed or was refused. */
  unexpect(owner: string): void {
    this.#entering.delete(owner);
    if (this.#early.delete(owner)) this.release();
  }

  /**
   * A newcomer's script returned: it is let in with `lines` (history,
   * welcome, topic) as soon as its own join comes back, so it gets every
   * line after its history and none twice.
   */
  admitWhenBack(owner: string, member: Member, lines: Uint8Array[]): Promise<void> {
    this.#entering.delete(owner);
    if (this.#early.delete(owner)) {
      this.local.admit(member, lines);
      this.release();
      return Promise.resolve();
    }
    return new Promise((done) => {
      const timer = setTimeout(() => this.admitNow(owner), ADMIT_WAIT_MS);
      this.#waiting.set(owner, { member, lines, timer, done });
    });
  }

  /** Lets in a waiting newcomer without its join (the link went down meanwhile). */
  admitNow(owner?: string): void {
    for (const [key, waiting] of this.#waiting) {
      if (owner !== undefined && key !== owner) continue;
      this.#waiting.delete(key);
      clearTimeout(waiting.timer);
      this.local.admit(waiting.member, waiting.lines);
      waiting.done();
    }
  }

  /**
   * A member of the room here moves to another: it still gets what was
   * said here before its leave, and is taken out when its leave comes
   * back (or the link goes down, or after a while); then `done` runs.
   */
  moveOut(owner: string, member: Member, done: () => void): void {
    this.movedOut(owner);
    const timer = setTimeout(() => this.movedOut(owner), ADMIT_WAIT_MS);
    this.#moving.set(owner, { member, timer, done });
  }

  /** Takes out a member moving out (`undefined`: every one). */
  movedOut(owner?: string): void {
    for (const [key, moving] of [...this.#moving]) {
      if (owner !== undefined && key !== owner) continue;
      this.#moving.delete(key);
      clearTimeout(moving.timer);
      this.local.dismiss(moving.member);
      moving.done();
    }
  }

  /** Forgets a waiting newcomer that left before it was let in. */
  forget(owner: string): void {
    const waiting = this.#waiting.get(owner);
    if (waiting !== undefined) {
      clearTimeout(waiting.timer);
      waiting.done();
    }
    this.#waiting.delete(owner);
    this.unexpect(owner);
  }

  /** Whether anyone here is in the room or on the way in. */
  get idle(): boolean {
    return this.interest <= 0 && this.local.size === 0 && this.#waiting.size === 0;
  }
}

/**
 * A {@linkcode Registry} shared between instances through Redis; see the
 * module documentation.
 *
 * @example Usage
 * ```ts ignore
 * import { RedisLink } from "./link.ts";
 * import { RedisRegistry } from "./registry.ts";
 * import { serve } from "../mod.ts";
 *
 * const link = await RedisLink.connect({ url: "redis://127.0.0.1:6379", log: () => {} });
 * let registry: RedisRegistry | undefined;
 * const server = serve({
 *   port: 0,
 *   registry: (settings) => (registry = new RedisRegistry(link, "main", settings)),
 * });
 * await registry!.start();
 * await server.shutdown();
 * await registry!.stop();
 * ```
 */
export class RedisRegistry implements Registry {
  readonly defaultRoom: RedisRoom;
  /** The cluster's key prefix, `confab:NAME:`. */
  readonly prefix: string;
  /** This instance's id. */
  readonly id: string = crypto.randomUUID().slice(0, 8);
  /** Most entries in a room's log (`XADD MAXLEN ~`). */
  readonly logLength: number;
  /** Longest text taken from an event, in bytes. */
  readonly lineBytes: number;
  readonly #link: RedisLink;
  readonly #settings: RegistrySettings;
  readonly #log: Logger;
  /** Rooms this instance is subscribed to, by key. */
  readonly #rooms = new Map<string, RedisRoom>();
  readonly #locals = new Map<Member, Local>();
  readonly #byOwner = new Map<string, Local>();
  readonly #byAlias = new Map<string, Local>();
  /** Members of other instances, as `/reply` remembers them, and their owners. */
  readonly #remotes = new WeakMap<Member, string>();
  #next = 0;
  #epoch = "";
  /** The rooms as last read, for {@linkcode RedisRegistry.list}. */
  #known: RoomInfo[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #beating = false;
  #recovering = false;
  /** How far Redis's clock is ahead of this server's, ms, as the last heartbeat measured it. */
  #skew = 0;
  #downAt = 0;
  #stopped = false;

  /** Makes the registry of cluster `cluster` on `link`; {@linkcode RedisRegistry.start} starts it. */
  constructor(
    link: RedisLink,
    cluster: string,
    settings: RegistrySettings,
    limits: RedisLimits = {},
  ) {
    const max = limits.maxLineBytes ?? MAX_LINE_BYTES;
    this.lineBytes = Number.isFinite(max) && max > 0
      ? Math.min(max, 64 * 1024 * 1024)
      : MAX_EVENT_TEXT;
    this.#link = link;
    this.#settings = settings;
    this.#log = settings.log;
    this.prefix = `confab:${cluster}:`;
    this.logLength = settings.historySize;
    this.defaultRoom = this.#room(settings.defaultRoom);
    this.defaultRoom.interest = 1;
    link.sub.on("message", (channel: string, message: string) => this.#message(channel, message));
    link.onDown = () => this.#down();
    link.onUp = () => {
      this.#recover().catch((error) => {
        this.#log(`redis: recovery failed: ${error?.message ?? error}; retrying`);
        link.cmd.disconnect(true);
      });
    };
  }

  /** Redis's clock, as far as this server can tell, ms. */
  redisNow(): number {
    return Date.now() + this.#skew;
  }

  /** Whether the link to Redis is up. */
  get up(): boolean {
    return this.#link.up && !this.#stopped;
  }

  /**
   * Whether what Redis holds can be read as it is: the link is up and not
   * still recovering (until then, this server's own members may be missing
   * from a Redis that lost its data).
   */
  get current(): boolean {
    return this.up && !this.#recovering;
  }

  /** Subscribes, takes part in the heartbeat, and reads the rooms. */
  async start(): Promise<void> {
    this.#epoch = String(await this.#link.run(EPOCH, [this.prefix, crypto.randomUUID()]));
    await this.#beat(false);
    await this.#link.sub.subscribe(this.#inbox, this.defaultRoom.channel);
    this.defaultRoom.subscribed = Promise.resolve();
    await this.#survey();
    this.#timer = setInterval(() => void this.#tick(), BEAT_EVERY_MS);
  }

  /**
   * Says goodbye for every member still here, leaves the heartbeat and
   * closes the link.
   */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    for (const room of [...this.#rooms.values()]) {
      room.movedOut();
      room.admitNow();
    }
    if (this.up) {
      await this.#link.run(BYE, [this.prefix, this.id, this.defaultRoom.key, SHUTDOWN_REASON])
        .catch((error) => this.#log(`redis: goodbye failed: ${error?.message ?? error}`));
    }
    this.#stopped = true;
    await this.#link.close();
  }

  /** Runs a script with the prefix as its first argument. */
  run(script: Script, args: readonly (string | number)[]): Promise<unknown> {
    return this.#link.run(script, [this.prefix, ...args]);
  }

  /** Runs a script that only reads, for someone waiting: it fails after {@linkcode READ_WAIT_MS}. */
  async read(script: Script, args: readonly (string | number)[]): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("Redis did not answer in time")), READ_WAIT_MS);
    });
    const running = this.run(script, args);
    running.catch(() => {});
    try {
      return await Promise.race([running, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Logs that `what` showed what was last known, and why. */
  stale(what: string, error: unknown): void {
    this.#log(`redis: ${what} shows what was last known: ${describe(error)}`);
  }

  get #inbox(): string {
    return `${this.prefix}inbox:${this.id}`;
  }

  get rooms(): number {
    return this.#rooms.size;
  }

  get members(): number {
    let n = 0;
    for (const local of this.#locals.values()) if (local.room !== undefined) n++;
    return n;
  }

  /** The owner name of a member of this instance. */
  ownerOf(member: Member): string | undefined {
    return this.#locals.get(member)?.owner;
  }

  /** The member of this instance with that owner name. */
  memberOf(owner: string): Member | undefined {
    return this.#byOwner.get(owner)?.member;
  }

  /**
   * Tells `member` that what it did did not go through, and why: the
   * client's own words go to the log only.
   */
  failed(member: Member, what: string, error: unknown): void {
    const why = describe(error);
    this.#log(`redis: ${what} for ${member.alias}: ${this.up ? why : "link down"}`);
    const gone = !this.up || CONNECTION_ERROR.test(why);
    const line = gone
      ? `${what}: ${ENTER_DOWN}`
      : `${what}: the link to the other servers failed; say it again`;
    if (!member.deliver(encodeLine(formatError(line)))) member.evicted(TOO_SLOW);
  }

  #room(name: string): RedisRoom {
    const key = roomKey(name);
    let room = this.#rooms.get(key);
    if (room === undefined) {
      const { historySize, busyBytes, quietAbove, turn } = this.#settings;
      room = new RedisRoom(this, name, {
        historySize,
        busyBytes,
        quietAbove,
        ...(turn !== undefined ? { turn } : {}),
      });
      this.#rooms.set(key, room);
    }
    return room;
  }

  /** Unsubscribes from a room no one here is in any more. */
  #retire(room: RedisRoom): void {
    if (room === this.defaultRoom || !room.idle) return;
    this.#rooms.delete(room.key);
    room.close();
    room.subscribed = undefined;
    if (this.up) this.#link.sub.unsubscribe(room.channel).catch(() => {});
  }

  async #subscribe(room: RedisRoom): Promise<void> {
    if (room.subscribed === undefined) {
      const subscribing = this.#link.sub.subscribe(room.channel).then(() => {});
      room.subscribed = subscribing;
      subscribing.catch(() => {
        if (room.subscribed === subscribing) room.subscribed = undefined;
      });
    }
    await room.subscribed;
  }

  #info(local: Local, room: string): string {
    const { alias, joinedAt, away } = local.member;
    return JSON.stringify({ alias, key: local.key, joinedAt, away, room });
  }

  async claim(member: Member, alias: string): Promise<boolean> {
    const key = aliasKey(alias);
    const held = this.#byAlias.get(key);
    if (held !== undefined) return held.member === member;
    if (!this.up) {
      // A newcomer cannot be placed anywhere: it is told why and let go,
      // rather than told its alias is taken.
      member.evicted(ENTER_DOWN);
      return false;
    }
    const owner = `${this.id}:${++this.#next}`;
    const local: Local = { member, owner, key, room: undefined };
    const info = JSON.stringify({ alias, key, joinedAt: Date.now(), away: "", room: "" });
    let ok: unknown;
    try {
      ok = await this.run(CLAIM, [this.id, owner, key, info, ALIAS_TTL_MS]);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.#log(`redis: alias not claimed: ${why}`);
      member.evicted(ENTER_DOWN);
      return false;
    }
    if (ok !== 1) return false;
    if (this.#byAlias.has(key) || this.#locals.has(member)) {
      // Claimed here meanwhile (by another session, or this one again).
      void this.run(RELEASE, [this.id, owner, key]).catch(() => {});
      return this.#byAlias.get(key)?.member === member;
    }
    this.#locals.set(member, local);
    this.#byOwner.set(owner, local);
    this.#byAlias.set(key, local);
    return true;
  }

  release(member: Member): void {
    this.leave(member, "");
    const local = this.#locals.get(member);
    if (local === undefined) return;
    for (const room of [...this.#rooms.values()]) room.movedOut(local.owner);
    this.#locals.delete(member);
    this.#byOwner.delete(local.owner);
    if (this.#byAlias.get(local.key) === local) this.#byAlias.delete(local.key);
    member.replyTo = undefined;
    if (this.up) {
      this.run(RELEASE, [this.id, local.owner, local.key]).catch((error) => {
        this.#log(`redis: release of ${member.alias} failed: ${error?.message ?? error}`);
      });
    }
  }

  async rename(member: Member, alias: string): Promise<boolean> {
    const local = this.#locals.get(member);
    if (local === undefined) return false;
    const key = aliasKey(alias);
    const held = this.#byAlias.get(key);
    if (held !== undefined && held !== local) return false;
    if (!this.up) {
      // Said here rather than as "taken": nothing changes, and the member knows why.
      const line = formatError(`alias not changed: ${ENTER_DOWN}`);
      if (!member.deliver(encodeLine(line))) member.evicted(TOO_SLOW);
      return true;
    }
    const room = local.room;
    const event: RoomEvent = {
      k: "nick",
      o: local.owner,
      old: member.alias,
      alias,
      ms: Date.now(),
    };
    let ok: unknown;
    local.renaming = true;
    try {
      ok = await this.run(RENAME, [
        local.owner,
        local.key,
        key,
        room?.key ?? "",
        JSON.stringify(event),
        ALIAS_TTL_MS,
        alias,
      ]);
    } catch (error) {
      this.failed(member, "alias not changed", error);
      return true;
    } finally {
      local.renaming = false;
    }
    if (ok !== 1 || this.#locals.get(member) !== local) return false;
    if (this.#byAlias.get(local.key) === local) this.#byAlias.delete(local.key);
    local.key = key;
    this.#byAlias.set(key, local);
    room?.flush();
    member.alias = alias;
    return true;
  }

  refusal(name: string, mover?: Member): string | undefined {
    const key = roomKey(name);
    if (this.#rooms.has(key) || this.#known.some((r) => roomKey(r.name) === key)) return undefined;
    const from = mover === undefined ? undefined : this.#locals.get(mover)?.room;
    const fromInfo = from === undefined
      ? undefined
      : this.#known.find((r) => roomKey(r.name) === from.key);
    const freed = from !== undefined && from !== this.defaultRoom && fromInfo?.members === 1
      ? 1
      : 0;
    if (this.#known.length - freed < this.#settings.maxRooms) return undefined;
    return formatRoomCap(this.#settings.maxRooms);
  }

  async enter(member: Member, name: string, options: EnterOptions): Promise<EnterResult> {
    const local = this.#locals.get(member);
    if (local === undefined) return { ok: false, reason: "choose an alias first" };
    const from = local.room;
    const key = roomKey(name);
    if (from !== undefined && from.key === key) return { ok: true, room: from };
    if (!this.up) return { ok: false, reason: ENTER_DOWN };
    const room = this.#room(
      from === undefined && key === this.defaultRoom.key ? this.defaultRoom.name : name,
    );
    room.interest++;
    local.room = undefined;
    const restore = () => {
      room.unexpect(local.owner);
      room.interest--;
      if (this.#locals.get(member) === local && local.room === undefined) local.room = from;
      this.#retire(room);
    };
    let reply: unknown[];
    try {
      await this.#subscribe(room);
      room.expect(local.owner);
      const ms = Date.now();
      const leave: RoomEvent = {
        k: "leave",
        o: local.owner,
        alias: member.alias,
        reason: "",
        to: room.name,
        ms,
      };
      const join: RoomEvent = { k: "join", o: local.owner, alias: member.alias, ms };
      reply = await this.run(ENTER, [
        local.owner,
        key,
        room.name,
        this.defaultRoom.key,
        this.#settings.maxRooms,
        from?.key ?? "",
        JSON.stringify(leave),
        JSON.stringify(join),
        PRESENCE_TTL_MS,
        options.history ? this.#settings.historySize : 0,
      ]) as unknown[];
    } catch (error) {
      restore();
      const why = error instanceof Error ? error.message : String(error);
      this.#log(`redis: ${member.alias} could not enter #${room.name}: ${why}`);
      return {
        ok: false,
        reason: `cannot enter #${room.name} now: the link to the other servers failed`,
      };
    }
    if (reply[0] !== 1) {
      restore();
      return { ok: false, reason: formatRoomCap(this.#settings.maxRooms) };
    }
    if (this.#locals.get(member) !== local) {
      // It closed while it waited: its release takes it out again.
      room.forget(local.owner);
      room.interest--;
      this.#leaveRedis(local, room, "");
      this.#retire(room);
      return { ok: true, room };
    }
    let lines: Uint8Array[];
    try {
      const [, made, topic, tip, infos, history, tipN] = reply as [
        unknown,
        unknown,
        unknown,
        unknown,
        unknown,
        unknown,
        unknown,
      ];
      room.name = text(made) || room.name;
      const roster = Array.isArray(infos) ? infos.map(parseInfo) : [];
      room.know(text(topic), roster);
      if (room.lastId === "" && typeof tip === "string" && STREAM_ID.test(tip)) {
        room.lastId = tip;
        room.lastN = Number(tipN) || 0;
      }
      lines = this.#welcome(
        room,
        member,
        options,
        roster,
        Array.isArray(history) ? history as Entry[] : [],
      );
    } catch (error) {
      // What Redis said cannot be read: the member is taken out again, and
      // stays where it was (the heartbeat puts it back there).
      room.forget(local.owner);
      room.interest--;
      if (this.#locals.get(member) === local && local.room === undefined) local.room = from;
      this.#leaveRedis(local, room, "");
      this.#retire(room);
      this.#log(`redis: ${member.alias} could not enter #${room.name}: ${describe(error)}`);
      return {
        ok: false,
        reason: `cannot enter #${room.name} now: the other servers' answer was unreadable`,
      };
    }
    if (from !== undefined) {
      // Its leave, published before its join, comes back first: until then
      // it hears what was said there before it left.
      from.moveOut(local.owner, member, () => {
        from.interest--;
        this.#retire(from);
      });
    }
    local.room = room;
    await room.admitWhenBack(local.owner, member, lines);
    return { ok: true, room };
  }

  /** History (within the byte budget), the welcome, and the topic, for a newcomer. */
  #welcome(
    room: RedisRoom,
    member: Member,
    options: EnterOptions,
    roster: MemberInfo[],
    history: Entry[],
  ): Uint8Array[] {
    const lines: Uint8Array[] = [];
    let bytes = 0;
    for (const entry of history) {
      if (!Array.isArray(entry)) continue;
      const event = entryEvent(entry, this.lineBytes);
      if (event === undefined || (event.k !== "say" && event.k !== "act")) continue;
      const kind = event.k === "say" ? "message" : "action";
      const line = encodeLine(formatHistory(event.ms, kind, event.from, event.text));
      if (bytes + line.length > this.#settings.historyBytes) break;
      bytes += line.length;
      lines.push(line);
    }
    lines.reverse();
    const now = Date.now();
    const names = roster.filter((m) => m.alias !== member.alias).map((m) => m.alias)
      .slice(0, WELCOME_NAMES);
    if (names.length < WELCOME_NAMES) names.push(member.alias);
    const online = Math.max(roster.length, 1);
    const welcome = formatWelcome(
      member.alias,
      online,
      names,
      options.nameRoom ? room.name : undefined,
    );
    lines.push(encodeLine(formatNotice(now, welcome)));
    if (room.topic !== "") lines.push(encodeLine(formatNotice(now, formatTopic(room.topic))));
    return lines;
  }

  leave(member: Member, reason: string): void {
    const local = this.#locals.get(member);
    const room = local?.room;
    if (local === undefined || room === undefined) return;
    local.room = undefined;
    room.forget(local.owner);
    room.interest--;
    if (this.up) {
      room.local.dismiss(member);
      this.#leaveRedis(local, room, reason);
    } else {
      // Cut off: the members here are told; the others, when a survivor
      // finds this server's members gone, or when it reconciles.
      room.local.leave(member, reason);
    }
    this.#retire(room);
  }

  #leaveRedis(local: Local, room: RedisRoom, reason: string): void {
    const event: RoomEvent = {
      k: "leave",
      o: local.owner,
      alias: local.member.alias,
      reason,
      to: "",
      ms: Date.now(),
    };
    this.run(LEAVE, [local.owner, room.key, this.defaultRoom.key, JSON.stringify(event)])
      .catch((error) =>
        this.#log(`redis: leave of ${local.member.alias} failed: ${error?.message ?? error}`)
      );
  }

  list(): RoomInfo[] {
    if (this.#known.length === 0) {
      return [{ name: this.defaultRoom.name, members: this.defaultRoom.size, topic: "" }];
    }
    return this.#known;
  }

  async survey(): Promise<Survey> {
    let stale = true;
    if (this.current) {
      try {
        await this.#survey(true);
        stale = false;
      } catch (error) {
        // As last known.
        this.stale("/rooms", error);
      }
    }
    return { rooms: this.list(), stale };
  }

  async #survey(waiting = false): Promise<void> {
    const answer = waiting
      ? await this.read(SURVEY, [this.defaultRoom.key])
      : await this.run(SURVEY, [this.defaultRoom.key]);
    const rows = (Array.isArray(answer) ? answer : []) as unknown[][];
    const rooms = rows.filter((row) => Array.isArray(row) && typeof row[0] === "string").map((
      [key, name, members, topic],
    ) => ({
      key: key as string,
      info: { name: text(name), members: Number(members) || 0, topic: text(topic) },
    }));
    if (!rooms.some((r) => r.key === this.defaultRoom.key)) {
      rooms.push({
        key: this.defaultRoom.key,
        info: { name: this.defaultRoom.name, members: 0, topic: "" },
      });
    }
    const first = rooms.filter((r) => r.key === this.defaultRoom.key);
    const others = rooms.filter((r) => r.key !== this.defaultRoom.key)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.#known = [...first, ...others].map((r) => r.info);
  }

  async whisper(from: Member, to: string | Member, text: string): Promise<WhisperResult> {
    const sender = this.#locals.get(from);
    if (sender === undefined) return { ok: false, why: "absent" };
    let recipient: Local | undefined;
    let remoteOwner: string | undefined;
    if (typeof to === "string") recipient = this.#byAlias.get(aliasKey(to));
    else {
      recipient = this.#locals.get(to);
      remoteOwner = this.#remotes.get(to);
      if (recipient !== undefined && this.#byAlias.get(aliasKey(to.alias)) !== recipient) {
        return { ok: false, why: "absent" };
      }
    }
    if (recipient === sender) return { ok: false, why: "self" };
    const now = Date.now();
    if (recipient !== undefined) {
      recipient.room?.flush();
      sender.room?.flush();
      recipient.member.replyTo = from;
      if (!recipient.member.deliver(encodeLine(formatPrivateIn(now, from.alias, text)))) {
        recipient.member.evicted(TOO_SLOW);
      }
      from.deliver(encodeLine(formatPrivateOut(now, recipient.member.alias, text)));
      const { alias, joinedAt, away } = recipient.member;
      return { ok: true, to: { alias, joinedAt, away } };
    }
    if (typeof to !== "string" && remoteOwner === undefined) return { ok: false, why: "absent" };
    const alias = typeof to === "string" ? to : to.alias;
    if (!this.up) {
      // Not "no one is here": whoever it is may well be, on another server.
      const line = formatError(`private message not sent: ${ENTER_DOWN}`);
      if (!from.deliver(encodeLine(line))) from.evicted(TOO_SLOW);
      return { ok: true, to: { alias, joinedAt: 0, away: "" } };
    }
    const event: PrivateEvent = {
      o: sender.owner,
      from: from.alias,
      joinedAt: from.joinedAt,
      text,
      ms: now,
    };
    let reply: unknown[];
    try {
      reply = await this.run(WHISPER, [
        aliasKey(alias),
        remoteOwner ?? "",
        JSON.stringify(event),
      ]) as unknown[];
    } catch (error) {
      this.failed(from, "private message not sent", error);
      return { ok: true, to: { alias, joinedAt: 0, away: "" } };
    }
    if (!Array.isArray(reply) || reply[0] !== 1) return { ok: false, why: "absent" };
    const read = parseInfo(reply[2]);
    const info = { ...read, alias: read.alias === "?" ? alias : read.alias };
    sender.room?.flush();
    from.deliver(encodeLine(formatPrivateOut(now, info.alias, text)));
    return { ok: true, to: { alias: info.alias, joinedAt: info.joinedAt, away: info.away } };
  }

  /** A private line from another instance: `OWNER JSON`. */
  #private(raw: string): void {
    const space = raw.indexOf(" ");
    const local = this.#byOwner.get(raw.slice(0, space));
    if (space < 0 || local === undefined) return;
    const event: Partial<Record<keyof PrivateEvent, unknown>> | undefined = parseObject(
      raw.slice(space + 1),
      rawLimit(this.lineBytes),
    );
    if (event === undefined) return;
    const owner = text(event.o);
    const from = alias(event.from);
    if (owner === "" || from === undefined) return;
    local.room?.flush();
    const sender: Member = {
      alias: from,
      joinedAt: number(event.joinedAt),
      away: "",
      replyTo: undefined,
      // A stand-in for /reply: nothing is ever written to it here.
      outbox: new Outbox(DISCARD),
      deliver: () => true,
      evicted: () => {},
    };
    this.#remotes.set(sender, owner);
    local.member.replyTo = sender;
    const line = formatPrivateIn(stamp(event.ms), from, text(event.text, this.lineBytes));
    if (!local.member.deliver(encodeLine(line))) local.member.evicted(TOO_SLOW);
  }

  close(): void {
    for (const room of this.#rooms.values()) room.close();
  }

  #message(channel: string, message: string): void {
    try {
      if (channel === this.#inbox) {
        this.#private(message);
        return;
      }
      if (!channel.startsWith(this.prefix + "room:")) return;
      this.#rooms.get(channel.slice(this.prefix.length + 5))?.incoming(message);
    } catch (error) {
      // Whatever came on a channel, this server goes on.
      this.#log(`redis: a message on ${channel} could not be delivered: ${describe(error)}`);
    }
  }

  /** Once a second: heartbeat, find dead instances, re-read the rooms. */
  async #tick(): Promise<void> {
    // While it recovers, recovery does the heartbeat: a tick between its
    // steps would beat for members it has not reconciled yet.
    if (!this.up || this.#beating || this.#recovering) return;
    this.#beating = true;
    try {
      await this.#beat(true);
      const gone = Number(
        await this.run(REAP, [this.id, this.defaultRoom.key, LOST_REASON]),
      );
      if (gone > 0) this.#log(`redis: ${gone} members of a lost server let go`);
      await this.#survey();
    } catch (error) {
      if (this.up) this.#log(`redis: heartbeat failed: ${(error as Error)?.message ?? error}`);
    } finally {
      this.#beating = false;
    }
  }

  /** The heartbeat; a member whose alias someone else took meanwhile is let go. */
  async #beat(rejoin: boolean): Promise<void> {
    const args: (string | number)[] = [
      this.id,
      HEARTBEAT_TTL_MS,
      PRESENCE_TTL_MS,
      ALIAS_TTL_MS,
      rejoin ? "1" : "0",
    ];
    for (const local of this.#locals.values()) {
      const m = local.member;
      const room = local.room;
      // Moving, or changing alias: what it holds is not known until that is done.
      if (room === undefined || local.renaming) continue;
      args.push(local.owner, room.key, room.name, m.alias, local.key, m.away, m.joinedAt);
    }
    const sent = Date.now();
    const [fresh, lost, t] = await this.run(BEAT, args) as [number, string[], unknown];
    if (typeof t === "number" && Number.isFinite(t)) this.#skew = t - (sent + Date.now()) / 2;
    if (fresh === 1 && rejoin) {
      this.#log("redis: this server had been taken for lost; its members are back");
    }
    for (const owner of lost) {
      const local = this.#byOwner.get(owner);
      if (local === undefined) continue;
      this.#log(`redis: ${local.member.alias}: alias taken elsewhere while cut off`);
      local.member.evicted("your alias was taken on another server while this one was cut off");
    }
  }

  #down(): void {
    this.#downAt = Date.now();
    for (const room of [...this.#rooms.values()]) {
      room.movedOut();
      room.admitNow();
      room.tell(LINK_DOWN);
    }
  }

  /**
   * The link is back: heartbeat (members whose presence lapsed are
   * announced again), subscribe again, and replay each room's log from the
   * last line delivered here.
   */
  async #recover(): Promise<void> {
    this.#recovering = true;
    try {
      await this.#recovery();
    } finally {
      this.#recovering = false;
    }
  }

  async #recovery(): Promise<void> {
    const epoch = String(await this.run(EPOCH, [crypto.randomUUID()]));
    const forgot = epoch !== this.#epoch;
    this.#epoch = epoch;
    if (forgot) this.#log("redis: Redis lost its data (restarted without persistence?)");
    const gone = Number(
      await this.run(RECONCILE, [
        this.id,
        this.defaultRoom.key,
        CUT_OFF_REASON,
        ...[...this.#locals.values()].map((l) => l.owner),
      ]),
    );
    if (gone > 0) this.#log(`redis: ${gone} who left while cut off announced`);
    await this.#beat(!forgot);
    const rooms = [...this.#rooms.values()];
    for (const room of rooms) room.hold();
    try {
      await this.#link.sub.subscribe(this.#inbox, ...rooms.map((r) => r.channel));
      for (const room of rooms) room.subscribed = Promise.resolve();
      for (const room of rooms) {
        room.tell(LINK_BACK);
        await this.#replay(room, forgot);
      }
    } finally {
      for (const room of rooms) room.release();
    }
    await this.#survey().catch(() => {});
  }

  /**
   * Delivers what the room's log holds after the last line delivered here;
   * if the log no longer reaches back that far, the members are told.
   */
  async #replay(room: RedisRoom, forgot: boolean): Promise<void> {
    const base = `${this.prefix}room:${room.key}`;
    const start = room.lastId !== "" ? room.lastId : `${this.#downAt}-0`;
    const forgotten = forgot && room.lastN > 0;
    const results = await this.#link.cmd.multi()
      .get(`${base}:n`)
      .xrange(`${base}:log`, forgot ? "-" : `(${start}`, "+", "COUNT", MAX_REPLAY)
      .hget(`${base}:meta`, "topic")
      .exec();
    if (results === null) throw new Error("the replay was aborted");
    for (const [error] of results) if (error) throw error;
    const [counted, range, topic] = results;
    room.retopic(text(topic?.[1]));
    const entries = (Array.isArray(range?.[1]) ? range[1] : []) as Entry[];
    const count = Number(counted?.[1] ?? 0) || 0;
    let gap = false;
    if (!forgot && room.lastN > 0 && count !== room.lastN) {
      // Lines are numbered without gaps: the first one replayed must be the next.
      const first = entries[0] === undefined ? count + 1 : entryNumber(entries[0]);
      gap = count < room.lastN || first > room.lastN + 1;
    }
    if (forgot) {
      room.lastId = "";
      room.lastN = 0;
    }
    if (forgotten) room.tell(HISTORY_FORGOTTEN);
    else if (gap) room.tell(HISTORY_TRIMMED);
    let bytes = 0;
    for (const entry of entries) {
      if (!Array.isArray(entry) || !Array.isArray(entry[1])) continue;
      for (const field of entry[1]) bytes += String(field).length;
      if (bytes > MAX_REPLAY_BYTES) {
        room.tell(HISTORY_TRIMMED);
        break;
      }
      const event = entryEvent(entry, this.lineBytes);
      if (event !== undefined) room.deliver(`${entry[0]}/${entryNumber(entry)}`, event);
    }
  }
}
