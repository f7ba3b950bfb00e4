/**
 * The registry beside the rooms: which aliases are taken server-wide, which
 * rooms exist, who is in which, and the private messages that go between
 * them.
 *
 * {@linkcode Registry} is the interface sessions move through;
 * {@linkcode LocalRegistry} keeps it all in this process. The operations
 * that would cross the network if the rooms were shared between instances
 * (claiming an alias, renaming, entering a room, a private message) return
 * promises, even though here they resolve at once: a session never assumes
 * they took effect before it awaited them. Whoever asks about a room gets
 * data ({@linkcode RoomInfo}, {@linkcode MemberInfo}), never its members.
 *
 * @module
 */

import { aliasKey } from "../protocol/alias.ts";
import { DEFAULT_ROOM, roomKey } from "../protocol/room_name.ts";
import { formatPrivateIn, formatPrivateOut, formatRoomCap } from "../protocol/wire.ts";
import {
  encodeLine,
  LocalRoom,
  type LocalRoomOptions,
  type Member,
  type MemberInfo,
  type Room,
  TOO_SLOW,
} from "./room.ts";

/**
 * The rooms, read where they are kept ({@linkcode Registry.survey}); when
 * that could not be done in time, what was last known, and `stale` says so.
 */
export interface Survey {
  readonly rooms: RoomInfo[];
  readonly stale: boolean;
}

/** A room, as `/rooms` lists it. */
export interface RoomInfo {
  /** Its name, without the `#`. */
  readonly name: string;
  /** How many are in it. */
  readonly members: number;
  /** Its topic, or "". */
  readonly topic: string;
}

/** The outcome of entering a room: the room, or why not. */
export type EnterResult = { ok: true; room: Room } | { ok: false; reason: string };

/** The outcome of a private message. */
export type WhisperResult =
  | { ok: true; to: MemberInfo }
  | { ok: false; why: "absent" | "self" };

/** How a member enters a room. */
export interface EnterOptions {
  /** Replay the room's history to it first. */
  history: boolean;
  /** Name the room in the welcome (see `JoinOptions.nameRoom`). */
  nameRoom: boolean;
}

/** Aliases, rooms and private messages for one server. */
export interface Registry {
  /** The room everyone starts in; it always exists. */
  readonly defaultRoom: Room;
  /** How many rooms there are, the default room included. */
  readonly rooms: number;
  /** How many members are in a room. */
  readonly members: number;
  /** Claims `alias` for `member` server-wide; `false` if someone holds it. */
  claim(member: Member, alias: string): Promise<boolean>;
  /**
   * Gives up `member`'s alias, and leaves its room if it is in one; nothing
   * if it holds none.
   */
  release(member: Member): void;
  /**
   * Claims `alias` in place of `member`'s current one and tells its room;
   * `false` (and nothing changes) if someone else holds it.
   */
  rename(member: Member, alias: string): Promise<boolean>;
  /**
   * Why room `name` could not be entered now (it would be one room too
   * many), or `undefined` if it can.
   */
  refusal(name: string, mover?: Member): string | undefined;
  /**
   * Puts `member` (whose alias is claimed) in room `name`, creating it if
   * need be; if it was in another room, it leaves that one for this one.
   */
  enter(member: Member, name: string, options: EnterOptions): Promise<EnterResult>;
  /** Takes `member` out of its room, saying why; an emptied room disappears. */
  leave(member: Member, reason: string): void;
  /** The rooms, the default one first, then by name. */
  list(): RoomInfo[];
  /**
   * The rooms as {@linkcode Registry.list} gives them, read afresh: rooms
   * shared between servers are read where they are kept, where `list()`
   * may be a moment behind. Absent where `list()` is always current.
   */
  survey?(): Promise<Survey>;
  /**
   * Sends a private line from `from` to whoever holds alias `to` (or to
   * that very member), in whatever room, echoing it to the sender.
   */
  whisper(from: Member, to: string | Member, text: string): Promise<WhisperResult>;
  /** Sends what every room has pending and stops their timers. */
  close(): void;
}

/** What a server tells the registry it makes (see `ServeOptions.registry`). */
export interface RegistrySettings {
  /** The default room's name. */
  readonly defaultRoom: string;
  /** Most rooms at once, the default room included. */
  readonly maxRooms: number;
  /** Messages and actions kept for newcomers per room. */
  readonly historySize: number;
  /** Most bytes of history replayed to one newcomer. */
  readonly historyBytes: number;
  /** See `LocalRoomOptions.busyBytes`. */
  readonly busyBytes: number;
  /** See `LocalRoomOptions.quietAbove`. */
  readonly quietAbove: number;
  /** See `LocalRoomOptions.turn`. */
  readonly turn?: () => Promise<void>;
  /** Where log lines go. */
  readonly log: (line: string) => void;
}

/** Options for {@linkcode LocalRegistry}. */
export interface LocalRegistryOptions {
  /**
   * The default room's name.
   *
   * @default {"lobby"}
   */
  defaultRoom?: string;
  /**
   * Most rooms at once, the default room included.
   *
   * @default {1000}
   */
  maxRooms?: number;
  /** How each room is made (its name aside). */
  room?: Omit<LocalRoomOptions, "name">;
}

/**
 * A {@linkcode Registry} held in this process.
 *
 * @example Usage
 * ```ts
 * import { LocalRegistry } from "./registry.ts";
 * import { Outbox } from "./outbox.ts";
 * import type { Member } from "./room.ts";
 * import assert from "node:assert/strict";
 *
 * const member = (alias: string): Member => {
 *   const outbox = new Outbox({ write: (bytes) => Promise.resolve(bytes.length) });
 *   return {
 *     alias,
 *     joinedAt: Date.now(),
 *     away: "",
 *     replyTo: undefined,
 *     outbox,
 *     deliver: (bytes) => outbox.push(bytes),
 *     evicted: () => {},
 *   };
 * };
 * const registry = new LocalRegistry();
 * const alice = member("alice");
 * assert.ok(await registry.claim(alice, "alice"));
 * assert.ok(!(await registry.claim(member("ALICE"), "ALICE")));
 * const entered = await registry.enter(alice, "dev", { history: true, nameRoom: true });
 * assert.ok(entered.ok);
 * assert.deepEqual(registry.list().map((r) => r.name), ["lobby", "dev"]);
 * registry.release(alice);
 * assert.deepEqual(registry.list().map((r) => r.name), ["lobby"]);
 * registry.close();
 * ```
 */
export class LocalRegistry implements Registry {
  readonly defaultRoom: LocalRoom;
  readonly #maxRooms: number;
  readonly #roomOptions: Omit<LocalRoomOptions, "name">;
  /** Every room by {@linkcode roomKey}, the default one first. */
  readonly #rooms = new Map<string, LocalRoom>();
  /** Who holds each alias, by {@linkcode aliasKey}. */
  readonly #claims = new Map<string, Member>();
  /** The room each member is in. */
  readonly #where = new Map<Member, LocalRoom>();

  /** Makes a registry with only the default room; see {@linkcode LocalRegistryOptions}. */
  constructor(options: LocalRegistryOptions = {}) {
    this.#maxRooms = options.maxRooms ?? 1000;
    this.#roomOptions = options.room ?? {};
    const name = options.defaultRoom ?? DEFAULT_ROOM;
    this.defaultRoom = new LocalRoom({ ...this.#roomOptions, name });
    this.#rooms.set(roomKey(name), this.defaultRoom);
  }

  get rooms(): number {
    return this.#rooms.size;
  }

  get members(): number {
    return this.#where.size;
  }

  claim(member: Member, alias: string): Promise<boolean> {
    const key = aliasKey(alias);
    const holder = this.#claims.get(key);
    if (holder !== undefined && holder !== member) return Promise.resolve(false);
    this.#claims.set(key, member);
    return Promise.resolve(true);
  }

  release(member: Member): void {
    this.leave(member, "");
    const key = aliasKey(member.alias);
    if (this.#claims.get(key) !== member) return;
    this.#claims.delete(key);
    // Nothing may keep a departed member (and whoever it last talked to) alive.
    member.replyTo = undefined;
  }

  rename(member: Member, alias: string): Promise<boolean> {
    const oldKey = aliasKey(member.alias);
    const newKey = aliasKey(alias);
    const holder = this.#claims.get(newKey);
    if (this.#claims.get(oldKey) !== member || (holder !== undefined && holder !== member)) {
      return Promise.resolve(false);
    }
    this.#claims.delete(oldKey);
    this.#claims.set(newKey, member);
    const room = this.#where.get(member);
    if (room !== undefined) room.rename(member, alias);
    else member.alias = alias;
    return Promise.resolve(true);
  }

  refusal(name: string, mover?: Member): string | undefined {
    if (this.#rooms.has(roomKey(name))) return undefined;
    // A mover who is the last one in its room frees that room as it goes.
    const from = mover === undefined ? undefined : this.#where.get(mover);
    const freed = from !== undefined && from !== this.defaultRoom && from.size === 1 ? 1 : 0;
    if (this.#rooms.size - freed < this.#maxRooms) return undefined;
    return formatRoomCap(this.#maxRooms);
  }

  enter(member: Member, name: string, options: EnterOptions): Promise<EnterResult> {
    const key = roomKey(name);
    const from = this.#where.get(member);
    let room = this.#rooms.get(key);
    if (room === from && room !== undefined) return Promise.resolve({ ok: true, room });
    if (room === undefined) {
      const refused = this.refusal(name, member);
      if (refused !== undefined) return Promise.resolve({ ok: false, reason: refused });
      room = new LocalRoom({ ...this.#roomOptions, name });
      this.#rooms.set(key, room);
    }
    if (from !== undefined) {
      from.leave(member, "", room.name);
      this.#dropIfEmpty(from);
    }
    this.#where.set(member, room);
    room.join(member, options);
    return Promise.resolve({ ok: true, room });
  }

  leave(member: Member, reason: string): void {
    const room = this.#where.get(member);
    if (room === undefined) return;
    this.#where.delete(member);
    room.leave(member, reason);
    this.#dropIfEmpty(room);
  }

  /** An empty room other than the default one disappears, history, topic and all. */
  #dropIfEmpty(room: LocalRoom): void {
    if (room.size > 0 || room === this.defaultRoom) return;
    room.close();
    this.#rooms.delete(roomKey(room.name));
  }

  list(): RoomInfo[] {
    const info = (room: Room): RoomInfo => ({
      name: room.name,
      members: room.size,
      topic: room.topic,
    });
    const others = [...this.#rooms.entries()]
      .filter(([, room]) => room !== this.defaultRoom)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, room]) => info(room));
    return [info(this.defaultRoom), ...others];
  }

  whisper(from: Member, to: string | Member, text: string): Promise<WhisperResult> {
    const recipient = typeof to === "string" ? this.#claims.get(aliasKey(to)) : to;
    if (recipient === undefined || this.#claims.get(aliasKey(recipient.alias)) !== recipient) {
      return Promise.resolve({ ok: false, why: "absent" });
    }
    if (recipient === from) return Promise.resolve({ ok: false, why: "self" });
    // Each gets it after whatever its room said before it.
    const now = Date.now();
    recipient.replyTo = from;
    if (!recipient.deliver(encodeLine(formatPrivateIn(now, from.alias, text)))) {
      recipient.evicted(TOO_SLOW);
    }
    from.deliver(encodeLine(formatPrivateOut(now, recipient.alias, text)));
    const { alias, joinedAt, away } = recipient;
    return Promise.resolve({ ok: true, to: { alias, joinedAt, away } });
  }

  close(): void {
    for (const room of this.#rooms.values()) room.close();
  }
}
