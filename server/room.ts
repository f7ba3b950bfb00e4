/**
 * The room: who is in it, and the broadcast path.
 *
 * {@linkcode Room} is the small interface the rest of the server talks to;
 * {@linkcode LocalRoom} keeps everything in this process. Every event is
 * formatted and encoded once, and the same bytes are handed to each
 * recipient's {@linkcode Member.deliver}, which only enqueues: nothing here
 * awaits a socket. A member whose queue is full is dropped after the loop,
 * with a `left` notice that says why.
 *
 * @module
 */

import { aliasKey } from "../protocol/alias.ts";
import { History } from "./history.ts";
import {
  formatAction,
  formatHistory,
  formatJoin,
  formatLeave,
  formatMessage,
  formatNick,
  formatNotice,
  formatPrivateIn,
  formatPrivateOut,
  formatWelcome,
} from "../protocol/wire.ts";

/** The longest notices are gathered, however big the room. */
const MAX_NOTICE_DELAY_MS = 250;
/** Gathered notices are sent early once they reach this many bytes. */
const NOTICE_FLUSH_BYTES = 64 * 1024;
/** Welcome lines name at most this many of those online. */
const WELCOME_NAMES = 20;

const encoder = new TextEncoder();

/** Encodes one protocol line, adding its LF. */
export function encodeLine(line: string): Uint8Array {
  return encoder.encode(line + "\n");
}

/** Someone in the room, as the room sees them. */
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
  /** Tells the member the room dropped it, and why; it should disconnect. */
  evicted(reason: string): void;
}

/** What {@linkcode Room.join} should do besides adding the member. */
export interface JoinOptions {
  /** Replay recent history to the newcomer before the welcome. */
  history: boolean;
}

/** A chat room: the only place members and the broadcast path meet. */
export interface Room {
  /** How many members are in the room. */
  readonly size: number;
  /** The members, in joining order. */
  members(): IterableIterator<Member>;
  /** The member with this alias (ignoring case), if any. */
  find(alias: string): Member | undefined;
  /**
   * Adds a member under its alias: replays history to it, welcomes it and
   * announces it to the others. Returns `false` if the alias is taken.
   */
  join(member: Member, options: JoinOptions): boolean;
  /** Removes a member and announces it; does nothing if it is not in. */
  leave(member: Member, reason?: string): void;
  /** Sends `from`'s line to every other member. */
  say(from: Member, text: string): void;
  /** Sends an action (`/me`) to every other member. */
  act(from: Member, text: string): void;
  /**
   * Sends a private line to one member, echoing it to the sender. Returns
   * the recipient, or `undefined` if no one has that alias.
   */
  whisper(from: Member, to: string, text: string): Member | undefined;
  /** Renames a member and tells everyone; `false` if the alias is taken. */
  rename(member: Member, alias: string): boolean;
  /** Sends a notice to every member. */
  announce(text: string): void;
  /** Sends whatever is pending and stops the room's timers. */
  close(): void;
}

/** Options for {@linkcode LocalRoom}. */
export interface LocalRoomOptions {
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
  readonly #members = new Map<string, Member>();
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
    this.#history = new History(options.historySize ?? 20);
    this.#historyBytes = options.historyBytes ?? 512 * 1024;
    this.#noticeDelayMs = options.noticeDelayMs ?? 20;
  }

  get size(): number {
    return this.#members.size;
  }

  members(): IterableIterator<Member> {
    return this.#members.values();
  }

  find(alias: string): Member | undefined {
    return this.#members.get(aliasKey(alias));
  }

  join(member: Member, options: JoinOptions): boolean {
    const key = aliasKey(member.alias);
    if (this.#members.has(key)) return false;
    const now = Date.now();
    if (options.history) {
      for (const line of this.#replay()) member.deliver(line);
    }
    member.deliver(encodeLine(formatNotice(now, this.#welcome(member))));
    this.#members.set(key, member);
    this.#notice(formatJoin(now, member.alias), member);
    return true;
  }

  leave(member: Member, reason = ""): void {
    this.#remove(member, reason, true);
  }

  /**
   * Removes a member and announces it. What was gathered before it left is
   * still its to get, unless it was dropped (then its goodbye was its last line).
   */
  #remove(member: Member, reason: string, handOver: boolean): void {
    const key = aliasKey(member.alias);
    if (this.#members.get(key) !== member) return;
    const start = this.#joinedAt.get(member) ?? 0;
    if (handOver && start < this.#noticesLength) {
      member.deliver(this.#notices!.subarray(start, this.#noticesLength));
    }
    this.#members.delete(key);
    this.#joinedAt.delete(member);
    // Nothing may keep a departed member (and whoever it last talked to) alive.
    member.replyTo = undefined;
    this.#notice(formatLeave(Date.now(), member.alias, reason), undefined);
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

  whisper(from: Member, to: string, text: string): Member | undefined {
    const recipient = this.find(to);
    if (recipient === undefined) return undefined;
    this.flush();
    const now = Date.now();
    recipient.replyTo = from;
    if (!recipient.deliver(encodeLine(formatPrivateIn(now, from.alias, text)))) {
      this.#evict([recipient]);
    }
    from.deliver(encodeLine(formatPrivateOut(now, recipient.alias, text)));
    return recipient;
  }

  rename(member: Member, alias: string): boolean {
    const oldKey = aliasKey(member.alias);
    const newKey = aliasKey(alias);
    const holder = this.#members.get(newKey);
    if (holder !== undefined && holder !== member) return false;
    const old = member.alias;
    this.#members.delete(oldKey);
    member.alias = alias;
    this.#members.set(newKey, member);
    this.#notice(formatNick(Date.now(), old, alias), undefined);
    // Renames are rare, and the renamed member should see theirs before any
    // reply to what they do next.
    this.flush();
    return true;
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
    for (const member of this.#members.values()) {
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
    for (const member of this.#members.values()) {
      const start = starts.get(member) ?? 0;
      if (start >= length) continue;
      if (!member.deliver(start === 0 ? bytes : bytes.subarray(start))) {
        (full ??= []).push(member);
      }
    }
    if (full !== undefined) this.#evict(full);
  }

  #evict(members: Member[]): void {
    const reason = "too slow: could not keep up with the room";
    for (const member of members) {
      if (this.#members.get(aliasKey(member.alias)) !== member) continue;
      member.evicted(reason);
      this.#remove(member, reason, false);
    }
  }

  /**
   * The welcome for `member`, who is not in the room yet: everyone online
   * counted and named in the order they came, the newcomer last, as `/who`
   * lists them.
   */
  #welcome(member: Member): string {
    const names: string[] = [];
    for (const other of this.#members.values()) {
      if (names.length === WELCOME_NAMES) break;
      names.push(other.alias);
    }
    if (names.length < WELCOME_NAMES) names.push(member.alias);
    return formatWelcome(member.alias, this.#members.size + 1, names);
  }
}
