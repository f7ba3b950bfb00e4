/**
 * One stand-in for a session, for the room and registry tests: a
 * {@linkcode Member} with a real {@linkcode Outbox} writing into an
 * in-memory {@linkcode FakeSink}, on a clock the test moves.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseServerLine, type ServerEvent } from "../../protocol/wire.ts";
import { type ByteSink, Outbox } from "../../server/outbox.ts";
import type { Member, Room } from "../../server/room.ts";
import { WAIT_MS, withTimeout } from "../_helpers.ts";

const decoder = new TextDecoder();

/** A clock a test moves by hand, so time passes without sleeping. */
export class FakeClock {
  /** The time it reads (ms). */
  now = 1_000_000;

  /** Moves it on `ms`. */
  advance(ms: number): void {
    this.now += ms;
  }

  /** The clock as an outbox reads it. */
  readonly read = (): number => this.now;
}

/** One write a held {@linkcode FakeSink} has not accepted yet. */
interface HeldWrite {
  readonly data: Uint8Array;
  readonly resolve: (n: number) => void;
}

/**
 * An in-memory socket: it keeps a copy of every byte it accepts and
 * accepts at once, unless held, when it takes nothing until told to (a
 * peer that stopped reading).
 */
export class FakeSink implements ByteSink {
  /** Copies of what each write accepted, in order. */
  readonly writes: Uint8Array[] = [];
  /** Every buffer the outbox handed to write(), as it was handed (not a copy). */
  readonly handed: Uint8Array[] = [];
  #held = false;
  #pending: HeldWrite | undefined;
  #waiters: (() => void)[] = [];

  write(p: Uint8Array): Promise<number> {
    this.handed.push(p);
    if (!this.#held) {
      this.writes.push(p.slice());
      return Promise.resolve(p.length);
    }
    assert.equal(this.#pending, undefined, "one write at a time");
    const written = new Promise<number>((resolve) => (this.#pending = { data: p, resolve }));
    for (const wake of this.#waiters.splice(0)) wake();
    return written;
  }

  /** Resolves once a write is waiting on the (held) sink. */
  whenWaiting(): Promise<void> {
    if (this.#pending !== undefined) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.#waiters.push(resolve)),
      WAIT_MS,
      "a write to wait on the held sink",
    );
  }

  /** Whether a write is waiting on the sink. */
  get waiting(): boolean {
    return this.#pending !== undefined;
  }

  /** From now on, writes wait until {@linkcode FakeSink.release}d. */
  hold(): void {
    this.#held = true;
  }

  /**
   * Accepts the first `n` bytes of the waiting write (all of it by default)
   * and stays held: a socket that takes a little now and then.
   */
  accept(n?: number): void {
    const pending = this.#pending;
    assert.ok(pending !== undefined, "no write is waiting");
    this.#pending = undefined;
    const taken = Math.min(n ?? pending.data.length, pending.data.length);
    this.writes.push(pending.data.slice(0, taken));
    pending.resolve(taken);
  }

  /** Stops holding, and accepts the waiting write if there is one. */
  release(): void {
    this.#held = false;
    if (this.#pending !== undefined) this.accept();
  }

  /** How many bytes it accepted in all. */
  get length(): number {
    return this.writes.reduce((n, w) => n + w.length, 0);
  }

  /** Everything accepted, as one buffer. */
  get bytes(): Uint8Array {
    const all = new Uint8Array(this.length);
    let offset = 0;
    for (const w of this.writes) {
      all.set(w, offset);
      offset += w.length;
    }
    return all;
  }

  /** Everything accepted, decoded as one text. */
  get text(): string {
    return decoder.decode(this.bytes);
  }
}

/** Options for {@linkcode FakeMember}. */
export interface FakeMemberOptions {
  /**
   * The outbox's byte limit.
   *
   * @default {1048576}
   */
  maxBytes?: number;
  /** The outbox's clock; by default one of its own. */
  clock?: FakeClock;
  /**
   * Start with the sink held (see {@linkcode FakeSink.hold}).
   *
   * @default {false}
   */
  held?: boolean;
}

/**
 * An in-memory member: what the room has its outbox write lands in its
 * sink. When asked to go, it records why and leaves, through its room or
 * its registry, as a session does.
 */
export class FakeMember implements Member {
  joinedAt = 0;
  away = "";
  replyTo: Member | undefined = undefined;
  readonly sink = new FakeSink();
  readonly clock: FakeClock;
  readonly outbox: Outbox;
  /** Reasons passed to evicted(). */
  readonly evictions: string[] = [];
  /** Every buffer passed to deliver(), accepted or not. */
  readonly offered: Uint8Array[] = [];
  /** When true, deliver() refuses, as a full queue does. */
  full = false;
  /** The room it leaves when asked to go. */
  room: Room | undefined;
  /** The registry it leaves (and releases its alias to) when asked to go. */
  registry:
    | { leave(member: Member, reason: string): void; release(member: Member): void }
    | undefined;
  /** Bytes of the sink already looked at: {@linkcode FakeMember.lines} starts after them. */
  #seen = 0;

  constructor(public alias: string, options: FakeMemberOptions = {}) {
    this.clock = options.clock ?? new FakeClock();
    const outboxOptions = options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes };
    this.outbox = new Outbox(this.sink, { ...outboxOptions, clock: this.clock.read });
    if (options.held === true) this.sink.hold();
  }

  deliver(bytes: Uint8Array): boolean {
    this.offered.push(bytes);
    if (this.full) return false;
    return this.outbox.push(bytes);
  }

  evicted(reason: string): void {
    this.evictions.push(reason);
    this.room?.leave(this, reason);
    if (this.registry !== undefined) {
      this.registry.leave(this, reason);
      this.registry.release(this);
    }
  }

  /** The text its sink accepted since the last {@linkcode FakeMember.reset}. */
  get text(): string {
    return decoder.decode(this.sink.bytes.subarray(this.#seen));
  }

  /** Lines its sink accepted since the last reset; every write must end a line. */
  get lines(): string[] {
    const text = this.text;
    if (text === "") return [];
    assert.ok(text.endsWith("\n"), `the sink holds a partial line: ${JSON.stringify(text)}`);
    return text.slice(0, -1).split("\n");
  }

  /** {@linkcode FakeMember.lines}, parsed. */
  get events(): ServerEvent[] {
    return this.lines.map(parseServerLine);
  }

  /** Forgets what it was sent so far (call once it has {@linkcode settle}d). */
  reset(): void {
    this.#seen = this.sink.length;
    this.offered.length = 0;
  }
}

/**
 * Runs a write round in `room` (if any) and waits until everything queued
 * for `members` has reached their sinks (none of which may be held).
 */
export async function settle(room: Room | undefined, ...members: FakeMember[]): Promise<void> {
  room?.flush();
  await withTimeout(
    Promise.all(members.map((member) => member.outbox.drained())),
    WAIT_MS,
    `the outboxes of ${members.map((member) => member.alias).join(", ")} to drain`,
  );
}

/** The text of a notice, failing if the event is anything else. */
export function noticeText(event: ServerEvent | undefined): string {
  assert.equal(event?.kind, "notice", JSON.stringify(event));
  return event.kind === "notice" ? event.text : "";
}
