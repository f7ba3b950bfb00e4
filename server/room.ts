/**
 * A room: who is in it, its history and topic, and the broadcast path.
 *
 * {@linkcode Room} is the small interface the rest of the server talks to;
 * {@linkcode LocalRoom} keeps everything in this process.
 *
 * The broadcast path: every event is formatted and encoded once and
 * appended to the room's {@linkcode RoomLog}. Each member's
 * {@linkcode Outbox} follows the log from where it joined; nothing is
 * queued per member per line. The room then runs a write round: it kicks
 * every member's writer, and each sends all it has not sent yet in one
 * write, straight from the log. Rounds clock themselves, as a poll loop
 * does: the next one starts once the writes of the last one are (nearly
 * all) done, so in a busy or big room each write carries everything that
 * came meanwhile and the writes per second stay bounded however many lines
 * arrive, while in a small quiet room a line goes out at once.
 *
 * When the writers fall behind (the server, not one socket, is the
 * bottleneck), the room says it is busy and senders stop reading until the
 * next round, so TCP pushes back on whoever makes the load. A member whose
 * socket has stopped taking data for a while and is more than its byte
 * limit behind is asked to go ({@linkcode Member.evicted}); its session
 * leaves, and the room then tells the others why. Which aliases are taken
 * is the registry's business (`registry.ts`), not the room's.
 *
 * @module
 */

import { History } from "./history.ts";
import {
  formatAction,
  formatCrowd,
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
import type { Outbox } from "./outbox.ts";
import { RoomLog } from "./room_log.ts";

/**
 * A member whose socket has taken nothing for this long is stuck, not just
 * slow: the room stops waiting for it, and once it is more than its byte
 * limit behind, it is asked to go. Until then, a member half its limit
 * behind holds the senders back.
 */
export const STUCK_MS = 250;
/**
 * How long (ms) one member may hold the senders back while it catches up;
 * one that is still far behind after that is treated as stuck, so a socket
 * trickling a byte now and then cannot stall a room.
 */
export const HOLD_MS = 1000;
/**
 * The next round waits for the last one's writes; past this long (ms) it
 * starts anyway, so a few stuck sockets slow a room down only this much.
 */
const ROUND_WAIT_MS = 50;
/**
 * Writes one step of a round starts before it lets the event loop run: a
 * line read meanwhile still reaches the members the round has not come to
 * yet, so in a room of thousands a line waits at most one round, not two.
 */
const STEP_WRITES = 64;
/** Default for {@linkcode LocalRoomOptions.quietAbove}. */
export const QUIET_ABOVE = 250;
/** Names a big room keeps for its next summary (it shows at most CROWD_NAMES). */
const CROWD_KEEP = 64;
/** How often (ms) a big room sums up who came and went. */
const CROWD_EVERY_MS = 5000;
/** Welcome lines name at most this many of those online. */
export const WELCOME_NAMES = 20;
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

/**
 * Who is in a room, read where it is kept ({@linkcode Room.roster}); when
 * that could not be done in time, what was last known, and `stale` says so.
 */
export interface Roster {
  readonly members: MemberInfo[];
  readonly stale: boolean;
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
  /** Queues one encoded line for it alone; `false` means its queue is full. */
  deliver(bytes: Uint8Array): boolean;
  /** Its writer: the room has it follow the room's log. */
  readonly outbox: Outbox;
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
  roster?(): Promise<Roster>;
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
  /**
   * Whether the members' writers have fallen behind: a sender should read
   * no further line until {@linkcode Room.ready} resolves.
   */
  readonly busy: boolean;
  /** Resolves once the room is no longer {@linkcode Room.busy} (or closes). */
  ready(): Promise<void>;
  /** Runs a write round now rather than when the pace allows. */
  flush(): void;
  /** Writes whatever is pending and stops the room's timers. */
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
   * Bytes appended between two write rounds past which the room is
   * {@linkcode Room.busy}, so senders wait for the writers. Keep it well
   * under the members' byte limit.
   *
   * @default {65536}
   */
  busyBytes?: number;
  /**
   * From this many members on, joins and leaves are not announced one by
   * one (with thousands in a room, that is millions of lines) but summed
   * up every few seconds in one line; 0 always announces each.
   *
   * @default {250}
   */
  quietAbove?: number;
  /**
   * How many are in the room, for the quiet rule and the summaries: a room
   * shared between servers counts its members on every one of them.
   *
   * @default {the members in this process}
   */
  size?: () => number;
  /**
   * How a round over many members lets input in between its steps:
   * resolves once the runtime has looked at its sockets
   * (`IoTurn.next` in io_turn.ts). Without it, a round's steps follow one
   * another at once, and a line that comes meanwhile waits for the next
   * round.
   */
  turn?: () => Promise<void>;
}

/** Who came and went since a big room's last summary. */
interface Comings {
  joined: string[];
  left: string[];
  joinedCount: number;
  leftCount: number;
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
 * import { Outbox } from "./outbox.ts";
 * import assert from "node:assert/strict";
 *
 * const inbox: string[] = [];
 * const member = (alias: string): Member => {
 *   const outbox = new Outbox({
 *     write: (bytes) => {
 *       inbox.push(`${alias} <- ${new TextDecoder().decode(bytes)}`);
 *       return Promise.resolve(bytes.length);
 *     },
 *   });
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
 * const room = new LocalRoom();
 * const alice = member("alice");
 * const bob = member("bob");
 * room.join(alice, { history: true });
 * room.join(bob, { history: true });
 * room.say(alice, "hi");
 * await bob.outbox.drained();
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
  readonly #busyBytes: number;
  /** Every line said in the room; the members' outboxes follow it. */
  readonly #log = new RoomLog();
  /** Bytes appended since the last round began. */
  #sinceRound = 0;
  /** Whether some member has something to write that no round will kick. */
  #wanted = false;
  /** The members the running round has not come to yet. */
  #sweep: Iterator<Member> | undefined;
  /** Whether a member seen by the running round holds the senders back. */
  #sweepHolding = false;
  /** Whether a step of a round is queued. */
  #roundDue = false;
  /** Whether the next step waits for the runtime to look at the sockets. */
  #turning = false;
  readonly #turn: (() => Promise<void>) | undefined;
  /** Starts a round that has waited too long for the last one's writes. */
  #roundTimer: ReturnType<typeof setTimeout> | undefined;
  /** Rounds run so far: a write reports to the round that started it. */
  #rounds = 0;
  /** What the running (or last) round's writes call when they end. */
  #done: () => void = () => {};
  /** Writes the running (or last) round started that have not finished yet. */
  #outstanding = 0;
  /** Writes the running round has started. */
  #kicked = 0;
  /** How many of the last round's writes may still run when the next starts. */
  #allowance = 0;
  /** Members found far behind while writing, and since when (on their outbox's clock). */
  readonly #behind = new Map<Member, number>();
  /** Whether some member, not stuck, is so far behind that senders wait for it. */
  #holding = false;
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  #readyWaiters: (() => void)[] = [];
  /** Once closed, rounds run at once, on no timer. */
  #closed = false;
  readonly #quietAbove: number;
  readonly #count: () => number;
  /** Joins and leaves not announced yet, in a big room. */
  #comings: Comings | undefined;
  #comingsTimer: ReturnType<typeof setTimeout> | undefined;

  /** Makes an empty room; see {@linkcode LocalRoomOptions}. */
  constructor(options: LocalRoomOptions = {}) {
    this.name = options.name ?? DEFAULT_ROOM;
    this.#history = new History(options.historySize ?? 20);
    this.#historyBytes = options.historyBytes ?? 512 * 1024;
    this.#busyBytes = options.busyBytes ?? 64 * 1024;
    this.#quietAbove = options.quietAbove ?? QUIET_ABOVE;
    this.#count = options.size ?? (() => this.#members.size);
    this.#turn = options.turn;
  }

  get size(): number {
    return this.#members.size;
  }

  get topic(): string {
    return this.#topic;
  }

  get busy(): boolean {
    if (this.#closed) return false;
    return this.#holding || this.#sinceRound > this.#busyBytes;
  }

  ready(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
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
    if (this.#quiet()) this.#gather(member.alias, "joined");
    else this.#append(encodeLine(formatJoin(now, member.alias)));
    // From after its own join line on.
    member.outbox.follow(this.#log, this.#onIdle);
  }

  /**
   * Removes a member and announces it. What the log held before it left is
   * still its to get, unless it was dropped (then its goodbye was its last line).
   */
  leave(member: Member, reason = "", to = ""): void {
    if (!this.#members.has(member)) return;
    this.#members.delete(member);
    this.#behind.delete(member);
    if (!this.#dropped.delete(member)) member.outbox.unfollow();
    if (this.#quiet()) this.#gather(member.alias, "left");
    else this.#append(encodeLine(formatLeave(Date.now(), member.alias, reason, to)));
  }

  /**
   * Whether joins and leaves are summed up rather than announced; a room
   * that shrinks below the size first sends what it gathered.
   */
  #quiet(): boolean {
    // A closed room starts no timer: each line goes out as it comes.
    const big = this.#quietAbove > 0 && this.#count() >= this.#quietAbove;
    if (big && !this.#closed) return true;
    this.#sumUp();
    return false;
  }

  /** Notes a join or a leave for the next summary, keeping only the names it may show. */
  #gather(alias: string, what: "joined" | "left"): void {
    const comings = this.#comings ??= { joined: [], left: [], joinedCount: 0, leftCount: 0 };
    if (what === "left") {
      // Came and went since the last summary: neither, so the summary
      // never says "alice joined; alice left" of someone who is gone.
      const i = comings.joined.indexOf(alias);
      if (i >= 0) {
        comings.joined.splice(i, 1);
        comings.joinedCount--;
        if (comings.joinedCount + comings.leftCount === 0) this.#comings = undefined;
        return;
      }
    }
    const names = what === "joined" ? comings.joined : comings.left;
    if (names.length < CROWD_KEEP) names.push(alias);
    if (what === "joined") comings.joinedCount++;
    else comings.leftCount++;
    this.#comingsTimer ??= setTimeout(() => this.#sumUp(), CROWD_EVERY_MS);
  }

  /** Sends the summary of who came and went, if anyone did. */
  #sumUp(): void {
    clearTimeout(this.#comingsTimer);
    this.#comingsTimer = undefined;
    const comings = this.#comings;
    if (comings === undefined) return;
    this.#comings = undefined;
    this.#append(encodeLine(formatCrowd(Date.now(), { ...comings, here: this.#count() })));
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
    member.outbox.follow(this.#log, this.#onIdle);
    return true;
  }

  /**
   * Removes a member without telling anyone (a shared room announces it
   * elsewhere); what the log held until now is still its to get.
   */
  dismiss(member: Member): void {
    if (!this.#members.has(member)) return;
    this.#members.delete(member);
    this.#behind.delete(member);
    if (!this.#dropped.delete(member)) member.outbox.unfollow();
  }

  /**
   * A join or leave made elsewhere (a shared room announces it): sent to
   * every member but `except` as {@linkcode LocalRoom.relay} does, or, in a
   * big room, gathered for the next summary as this room's own are.
   */
  relayComing(line: Uint8Array, alias: string, what: "joined" | "left", except?: Member): void {
    if (this.#quiet()) this.#gather(alias, what);
    else this.relay(line, except);
  }

  /** Sends one already-encoded line to every member but `except`, in order with the rest. */
  relay(bytes: Uint8Array, except?: Member): void {
    this.#append(bytes, except !== undefined && this.#members.has(except) ? except : undefined);
  }

  say(from: Member, text: string): void {
    if (!this.#members.has(from)) return;
    const ms = Date.now();
    this.#history.add({ ms, kind: "message", from: from.alias, text });
    this.#append(encodeLine(formatMessage(ms, from.alias, text)), from);
  }

  act(from: Member, text: string): void {
    if (!this.#members.has(from)) return;
    const ms = Date.now();
    this.#history.add({ ms, kind: "action", from: from.alias, text });
    this.#append(encodeLine(formatAction(ms, from.alias, text)), from);
  }

  rename(member: Member, alias: string): void {
    if (!this.#members.has(member)) return;
    // Whoever is renamed is announced under the old name first.
    this.#sumUp();
    const old = member.alias;
    member.alias = alias;
    this.#append(encodeLine(formatNick(Date.now(), old, alias)));
  }

  setTopic(by: Member, topic: string): void {
    this.#topic = topic;
    this.announce(formatTopicSet(by.alias, topic));
  }

  announce(text: string): void {
    this.#append(encodeLine(formatNotice(Date.now(), text)));
  }

  flush(): void {
    // A whole round at once, from the first member.
    this.#sweep = undefined;
    this.#roundDue = true;
    this.#round(Infinity);
  }

  close(): void {
    this.#closed = true;
    this.#sumUp();
    this.flush();
    clearTimeout(this.#roundTimer);
    this.#roundTimer = undefined;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#holding = false;
    this.#sinceRound = 0;
    this.#wakeSenders();
  }

  /**
   * The broadcast path: one encoded line, appended once to the log every
   * member follows, left out for `except` (its sender), then written out in
   * the next round.
   */
  #append(bytes: Uint8Array, except?: Member): void {
    const start = this.#log.append(bytes);
    except?.outbox.skip(start);
    this.#sinceRound += bytes.length;
    this.#wanted = true;
    this.#scheduleRound();
  }

  /**
   * Queues the next step of the running round, or a new round if there is
   * something to write and the last round's writes are (nearly all) done;
   * otherwise the last of those writes to finish queues it, or, if they
   * take too long, a timer does. While a step waits for its turn, the
   * turn queues the next.
   */
  #scheduleRound(): void {
    if (this.#roundDue) return;
    if (this.#closed) {
      if (this.#sweep === undefined && !this.#wanted) return;
      this.#roundDue = true;
      this.#round(Infinity);
      return;
    }
    if (this.#turning) return;
    if (this.#sweep === undefined) {
      if (!this.#wanted) return;
      if (this.#outstanding > this.#allowance) {
        this.#roundTimer ??= setTimeout(this.#waited, ROUND_WAIT_MS);
        return;
      }
    }
    this.#roundDue = true;
    queueMicrotask(this.#round);
  }

  /** The last round's writes took too long: the next one starts anyway. */
  #waited = (): void => {
    this.#roundTimer = undefined;
    if (this.#roundDue || this.#turning || (this.#sweep === undefined && !this.#wanted)) return;
    this.#roundDue = true;
    this.#round();
  };

  /** A member's writer stopped, `behind` bytes behind the log. */
  #onIdle = (behind: number): void => {
    if (behind > 0 || this.#holding) this.#wanted = true;
    this.#scheduleRound();
  };

  /**
   * What a write started in round `round` calls when it ends. Only the last
   * round's writes are waited for: a socket still stuck on an older write
   * held back one round, never the next.
   */
  #doneFor(round: number): () => void {
    return () => {
      if (round !== this.#rounds) return;
      this.#outstanding--;
      this.#scheduleRound();
    };
  }

  /**
   * A write round, one step at a time: every member whose writer is idle
   * starts a write of all it has not sent. A member still writing is
   * looked at instead: far behind while its socket takes nothing, it is
   * asked to go; far behind while its socket still moves, the senders wait
   * for it. A step starts at most `writes` writes, then waits for the
   * runtime to look at the sockets (`turn`) before the next goes on from
   * there, so a round over thousands of members reads (and carries) new
   * lines as it goes.
   */
  #round = (writes: number = STEP_WRITES): void => {
    if (!this.#roundDue) return;
    this.#roundDue = false;
    clearTimeout(this.#roundTimer);
    this.#roundTimer = undefined;
    if (this.#sweep === undefined) {
      // A live iterator: members who join meanwhile are reached too, and
      // those who leave are not.
      this.#sweep = this.#members.values();
      this.#sweepHolding = false;
      this.#wanted = false;
      this.#sinceRound = 0;
      this.#done = this.#doneFor(++this.#rounds);
      this.#outstanding = 0;
      this.#kicked = 0;
    }
    const sweep = this.#sweep;
    const done = this.#done;
    let slow: Member[] | undefined;
    let kicked = 0;
    while (kicked < writes) {
      const next = sweep.next();
      if (next.done === true) {
        this.#sweep = undefined;
        break;
      }
      const member = next.value;
      const outbox = member.outbox;
      if (!outbox.writing) {
        // Caught up, or nearly: its next time far behind gets a full HOLD_MS.
        this.#behind.delete(member);
        // Counted first: a write that fails at once reports back at once.
        this.#outstanding++;
        if (outbox.kick(done)) kicked++;
        else this.#outstanding--;
        continue;
      }
      const size = outbox.size;
      if (size * 2 <= outbox.maxBytes) {
        this.#behind.delete(member);
        continue;
      }
      // Far behind while writing. It holds the senders while its socket
      // moves, for a while; then, and once its socket stops, it is stuck,
      // and past its limit it goes.
      const now = outbox.now();
      const since = this.#behind.get(member) ?? now;
      this.#behind.set(member, since);
      if (outbox.stalledFor(now) < STUCK_MS && now - since < HOLD_MS) this.#sweepHolding = true;
      else if (size > outbox.maxBytes) (slow ??= []).push(member);
    }
    this.#kicked += kicked;
    const ended = this.#sweep === undefined;
    // The next round may start while an eighth of this one's writes still
    // run: a few slow sockets do not hold everyone else's next write.
    if (ended) this.#allowance = this.#kicked >> 3;
    // Holding starts as soon as a round sees why, and ends with a round
    // that saw no reason to.
    const holding = this.#sweepHolding && !this.#closed;
    if (ended || holding) this.#hold(holding);
    // Set before anything below can schedule: a member asked to go leaves
    // at once, and its leaving is a line.
    const turning = !ended && this.#turn !== undefined && !this.#closed;
    this.#turning = turning;
    if (slow !== undefined) this.#evict(slow);
    if (!this.busy) this.#wakeSenders();
    if (turning) this.#turn!().then(this.#turned, this.#turned);
    else this.#scheduleRound();
  };

  #turned = (): void => {
    this.#turning = false;
    this.#scheduleRound();
  };

  /**
   * Holds the senders back while a member is catching up, and looks again
   * once it may be stuck, so a socket that stopped never holds them long.
   */
  #hold(holding: boolean): void {
    this.#holding = holding;
    if (!holding) {
      clearTimeout(this.#holdTimer);
      this.#holdTimer = undefined;
    } else {
      this.#holdTimer ??= setTimeout(() => {
        this.#holdTimer = undefined;
        this.#wanted = true;
        this.#scheduleRound();
      }, STUCK_MS);
    }
  }

  #wakeSenders(): void {
    const waiters = this.#readyWaiters;
    if (waiters.length === 0) return;
    this.#readyWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Asks each member too far behind to go. Its goodbye is its last line:
   * when it leaves, it is handed nothing more from the log.
   */
  #evict(members: Member[]): void {
    for (const member of members) {
      if (!this.#members.has(member) || this.#dropped.has(member)) continue;
      this.#dropped.add(member);
      member.outbox.clear();
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
