/**
 * A room: who is in it, its history and topic, and the broadcast path.
 *
 * {@linkcode Room} is the small interface the rest of the server talks to;
 * {@linkcode LocalRoom} keeps everything in this process. Every event is
 * formatted and encoded once, and the same bytes are handed to each
 * recipient's {@linkcode Member.deliver}, which only enqueues: nothing here
 * awaits a socket. A member whose queue is full is asked to go after the
 * loop ({@linkcode Member.evicted}); its session leaves, and the room then
 * tells the others why. Which aliases are taken is the registry's business
 * (`registry.ts`), not the room's.
 *
 * @module
 */

import { History } from "./history.ts";
import {
  formatAction,
  formatHistory,
  formatJoin,
  formatLeave,
  formatMessage,
  formatNick,
  formatNotice,
  formatTopic,
  formatTopicSet,
  formatWelcome,
} from "../protocol/wire.ts";
import { DEFAULT_ROOM } from "../protocol/room_name.ts";

/** The longest notices are gathered, however big the room. */
const MAX_NOTICE_DELAY_MS = 250;
/** Gathered notices are sent early once they reach this many bytes. */
const NOTICE_FLUSH_BYTES = 64 * 1024;
/** Welcome lines name at most this many of those online. */
const WELCOME_NAMES = 20;
/** Why a member whose queue is full is asked to go. */
export const TOO_SLOW = "too slow: could not keep up with the room";

const encoder = new TextEncoder();

/** Encodes one protocol line, adding its LF. */
export function encodeLine(line: string): Uint8Array {
  return encoder.encode(line + "\n");
}

/**
 * Someone in the room, as the room sees them: what anyone else (`/who`,
 * `/rooms`, another instance) is handed instead of the member itself.
 */
export interface MemberInfo {
  /** Current alias. */
  readonly alias: string;
  /** When the member joined the server (ms since the epoch). */
  readonly joinedAt: number;
  /** Away message; empty while present. */
  readonly away: string;
}

/** A member as its own room holds it: a session, or a test's stand-in. */
export interface Member {
  /** Current alias; the room changes it on {@linkcode Room.rename}. */
  alias: string;
  /** When the member joined (ms since the epoch). */
  readonly joinedAt: number;
  /** Away message; empty while present. */
  away: string;
  /** Who last messaged this member privately, for `/reply`. */
  replyTo: Member | undefined;
  /** Queues one encoded line; `false` means the member's queue is full. */
  deliver(bytes: Uint8Array): boolean;
  /**
   * Asks the member to go, and says why: its queue is full. The member
   * owns its leaving: it calls {@linkcode Room.leave} (and disconnects).
   */
  evicted(reason: string): void;
}

/** What {@linkcode Room.join} should do besides adding the member. */
export interface JoinOptions {
  /** Replay recent history to the newcomer before the welcome. */
  history: boolean;
  /**
   * Name the room in the welcome. Only a newcomer's first welcome into the
   * default room leaves it out, so that line stays as it always was.
   *
   * @default {false}
   */
  nameRoom?: boolean;
}

/** A chat room: the only place members and the broadcast path meet. */
export interface Room {
  /** The room's name, without the `#`. */
  readonly name: string;
  /** How many members are in the room. */
  readonly size: number;
  /** The room's topic, or "". */
  readonly topic: string;
  /** Who is in the room, as data, in joining order. */
  members(): IterableIterator<MemberInfo>;
  /**
   * Who is in the room, read afresh: a room shared between servers reads
   * it where it is kept, where {@linkcode Room.members} may be a moment
   * behind. Absent where `members()` is always current.
   */
  roster?(): Promise<MemberInfo[]>;
  /**
   * Adds a member (whose alias the registry has claimed): replays history to
   * it, welcomes it (with the topic, if any) and announces it to the others.
   */
  join(member: Member, options: JoinOptions): void;
  /**
   * Removes a member and announces it, with a reason, or with the room it
   * moved `to`; does nothing if it is not in.
   */
  leave(member: Member, reason?: string, to?: string): void;
  /** Sends `from`'s line to every other member. */
  say(from: Member, text: string): void;
  /** Sends an action (`/me`) to every other member. */
  act(from: Member, text: string): void;
  /** Renames a member (the registry has claimed the alias) and tells everyone. */
  rename(member: Member, alias: string): void;
  /** Sets the topic ("" clears it) and tells everyone who did. */
  setTopic(by: Member, topic: string): void;
  /** Sends a notice to every member. */
  announce(text: string): void;
  /** Sends the gathered notices now, so a line sent next comes after them. */
  flush(): void;
  /** Sends whatever is pending and stops the room's timers. */
  close(): void;
}

/** Options for {@linkcode LocalRoom}. */
export interface LocalRoomOptions {
  /**
   * The room's name, without the `#`.
   *
   * @default {"lobby"}
   */
  name?: string;
  /**
   * Messages and actions kept for newcomers; 0 keeps none.
   *
   * @default {20}
   */
  historySize?: number;
  /**
   * Most bytes of history replayed to one newcomer: when the kept lines are
   * longer than this, the newest that fit are replayed.
   *
   * @default {524288}
   */
  historyBytes?: number;
  /**
   * Join, leave and nick notices are gathered for this long (ms) and sent
   * together: a burst of joins then costs each member one write, not one per
   * join. Anything else said goes out at once, after what was gathered, so
   * the order of lines never changes. 0 sends every notice at once.
   *
   * @default {20}
   */
  noticeDelayMs?: number;
}

/** A line kept for replay; formatted only when someone joins. */
interface Said {
  readonly ms: number;
  readonly kind: "message" | "action";
  readonly from: string;
  readonly text: string;
}

/**
 * A {@linkcode Room} held in this process.
 *
 * @example Usage
 * ```ts
 * import { LocalRoom, type Member } from "./room.ts";
 * import assert from "node:assert/strict";
 *
 * const inbox: string[] = [];
 * const member = (alias: string): Member => ({
 *   alias,
 *   joinedAt: Date.now(),
 *   away: "",
 *   replyTo: undefined,
 *   deliver: (bytes) => (inbox.push(`${alias} <- ${new TextDecoder().decode(bytes)}`), true),
 *   evicted: () => {},
 * });
 * const room = new LocalRoom();
 * const alice = member("alice");
 * room.join(alice, { history: true });
 * room.join(member("bob"), { history: true });
 * room.say(alice, "hi");
 * assert.match(inbox.at(-1)!, /^bob <- \[\d\d:\d\d:\d\d\] alice: hi\n$/);
 * room.close();
 * ```
 */
export class LocalRoom implements Room {
  readonly name: string;
  /** The members, in joining order. */
  readonly #members = new Set<Member>();
  /** Members asked to go (too slow) that have not left yet. */
  readonly #dropped = new Set<Member>();
  #topic = "";
  readonly #history: History<Said>;
  readonly #historyBytes: number;
  readonly #noticeDelayMs: number;
  /** Gathered notices, encoded back to back; a new buffer after each flush. */
  #notices: Uint8Array | undefined;
  #noticesLength = 0;
  /** Members who joined since the last flush, and where their part begins. */
  #joinedAt = new Map<Member, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Makes an empty room; see {@linkcode LocalRoomOptions}. */
  constructor(options: LocalRoomOptions = {}) {
    this.name = options.name ?? DEFAULT_ROOM;
    this.#history = new History(options.historySize ?? 20);
    this.#historyBytes = options.historyBytes ?? 512 * 1024;
    this.#noticeDelayMs = options.noticeDelayMs ?? 20;
  }

  get size(): number {
    return this.#members.size;
  }

  get topic(): string {
    return this.#topic;
  }

  *members(): IterableIterator<MemberInfo> {
    for (const { alias, joinedAt, away } of this.#members) yield { alias, joinedAt, away };
  }

  join(member: Member, options: JoinOptions): void {
    if (this.#members.has(member)) return;
    const now = Date.now();
    const lines = options.history ? this.#replay() : [];
    lines.push(encodeLine(formatNotice(now, this.#welcome(member, options.nameRoom ?? false))));
    if (this.#topic !== "") lines.push(encodeLine(formatNotice(now, formatTopic(this.#topic))));
    // A member whose queue cannot take its history and welcome (one moving
    // in with much still queued) is too slow: it goes, rather than sit in a
    // room it was never told it is in, with a silent gap in its history.
    for (const line of lines) {
      if (!member.deliver(line)) {
        member.evicted(TOO_SLOW);
        return;
      }
    }
    this.#members.add(member);
    this.#notice(formatJoin(now, member.alias), member);
  }

  /**
   * Removes a member and announces it. What was gathered before it left is
   * still its to get, unless it was dropped (then its goodbye was its last line).
   */
  leave(member: Member, reason = "", to = ""): void {
    if (!this.#members.has(member)) return;
    const start = this.#joinedAt.get(member) ?? 0;
    if (!this.#dropped.delete(member) && start < this.#noticesLength) {
      member.deliver(this.#notices!.subarray(start, this.#noticesLength));
    }
    this.#members.delete(member);
    this.#joinedAt.delete(member);
    this.#notice(formatLeave(Date.now(), member.alias, reason, to), undefined);
  }

  /** The history lines to replay, oldest first, within the byte budget. */
  #replay(): Uint8Array[] {
    const said = [...this.#history];
    const lines: Uint8Array[] = [];
    let bytes = 0;
    for (let i = said.length - 1; i >= 0; i--) {
      const s = said[i]!;
      const line = encodeLine(formatHistory(s.ms, s.kind, s.from, s.text));
      if (bytes + line.length > this.#historyBytes) break;
      bytes += line.length;
      lines.push(line);
    }
    return lines.reverse();
  }

  /**
   * Adds a member without a welcome or a notice, after handing it `lines`
   * (a shared room's history and welcome, made elsewhere). `false`, and the
   * member is asked to go, if its queue could not take them.
   */
  admit(member: Member, lines: readonly Uint8Array[]): boolean {
    if (this.#members.has(member)) return true;
    for (const line of lines) {
      if (!member.deliver(line)) {
        member.evicted(TOO_SLOW);
        return false;
      }
    }
    this.#members.add(member);
    return true;
  }

  /** Removes a member without telling anyone (a shared room announces it elsewhere). */
  dismiss(member: Member): void {
    if (!this.#members.has(member)) return;
    this.flush();
    this.#members.delete(member);
    this.#dropped.delete(member);
  }

  /** Sends one already-encoded line to every member but `except`, after gathered notices. */
  relay(bytes: Uint8Array, except?: Member): void {
    this.#broadcast(bytes, except);
  }

  say(from: Member, text: string): void {
    const ms = Date.now();
    this.#history.add({ ms, kind: "message", from: from.alias, text });
    this.#broadcast(encodeLine(formatMessage(ms, from.alias, text)), from);
  }

  act(from: Member, text: string): void {
    const ms = Date.now();
    this.#history.add({ ms, kind: "action", from: from.alias, text });
    this.#broadcast(encodeLine(formatAction(ms, from.alias, text)), from);
  }

  rename(member: Member, alias: string): void {
    if (!this.#members.has(member)) return;
    const old = member.alias;
    member.alias = alias;
    this.#notice(formatNick(Date.now(), old, alias), undefined);
    // Renames are rare, and the renamed member should see theirs before any
    // reply to what they do next.
    this.flush();
  }

  setTopic(by: Member, topic: string): void {
    this.#topic = topic;
    this.announce(formatTopicSet(by.alias, topic));
  }

  announce(text: string): void {
    this.#broadcast(encodeLine(formatNotice(Date.now(), text)), undefined);
  }

  close(): void {
    this.flush();
  }

  /**
   * The broadcast path: one encoded line, enqueued for everyone but `except`,
   * after any gathered notices.
   */
  #broadcast(bytes: Uint8Array, except: Member | undefined): void {
    if (this.#noticesLength > 0) this.flush();
    let full: Member[] | undefined;
    for (const member of this.#members) {
      if (member !== except && !member.deliver(bytes)) (full ??= []).push(member);
    }
    if (full !== undefined) this.#evict(full);
  }

  /**
   * Adds a join, leave or nick line to the gathered notices. `joiner`, the
   * member a join line is about, gets only what comes after it. Bytes once
   * written are never changed (a full buffer is replaced, not reused), so a
   * view handed out stays valid.
   */
  #notice(line: string, joiner: Member | undefined): void {
    const bytes = encodeLine(line);
    const length = this.#noticesLength + bytes.length;
    let buffer = this.#notices;
    if (buffer === undefined || buffer.length < length) {
      const grown = new Uint8Array(Math.max(256, length * 2));
      if (buffer !== undefined) grown.set(buffer.subarray(0, this.#noticesLength));
      buffer = this.#notices = grown;
    }
    buffer.set(bytes, this.#noticesLength);
    this.#noticesLength = length;
    if (joiner !== undefined) this.#joinedAt.set(joiner, length);
    if (this.#noticeDelayMs === 0 || length >= NOTICE_FLUSH_BYTES) this.flush();
    else {
      // A big room gathers for longer: a join storm then costs each member a
      // few writes, and a notice a quarter of a second late is no loss.
      const delay = Math.min(
        MAX_NOTICE_DELAY_MS,
        this.#noticeDelayMs * Math.max(1, this.size / 400),
      );
      this.#timer ??= setTimeout(() => this.flush(), delay);
    }
  }

  /** Sends the gathered notices now: one shared buffer for every member. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const length = this.#noticesLength;
    if (length === 0) return;
    const bytes = this.#notices!.subarray(0, length);
    const starts = this.#joinedAt;
    this.#notices = undefined;
    this.#noticesLength = 0;
    this.#joinedAt = new Map();
    let full: Member[] | undefined;
    for (const member of this.#members) {
      const start = starts.get(member) ?? 0;
      if (start >= length) continue;
      if (!member.deliver(start === 0 ? bytes : bytes.subarray(start))) {
        (full ??= []).push(member);
      }
    }
    if (full !== undefined) this.#evict(full);
  }

  /**
   * Asks each member whose queue is full to go. Its goodbye is its last
   * line: when it leaves, it is handed nothing that was gathered.
   */
  #evict(members: Member[]): void {
    for (const member of members) {
      if (!this.#members.has(member) || this.#dropped.has(member)) continue;
      this.#dropped.add(member);
      member.evicted(TOO_SLOW);
    }
  }

  /**
   * The welcome for `member`, who is not in the room yet: everyone online
   * counted and named in the order they came, the newcomer last, as `/who`
   * lists them.
   */
  #welcome(member: Member, nameRoom: boolean): string {
    const names: string[] = [];
    for (const other of this.#members) {
      if (names.length === WELCOME_NAMES) break;
      names.push(other.alias);
    }
    if (names.length < WELCOME_NAMES) names.push(member.alias);
    const room = nameRoom ? this.name : undefined;
    return formatWelcome(member.alias, this.#members.size + 1, names, room);
  }
}
