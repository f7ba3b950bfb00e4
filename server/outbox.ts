/**
 * A bounded per-connection send queue with exactly one writer.
 *
 * What a connection is sent comes from two places: lines for it alone
 * (replies, its welcome, private messages), pushed as bytes, and the shared
 * log of the room it is in ({@linkcode RoomLog}), which it follows from a
 * position. The queue keeps the two in the order they happened: a line
 * pushed while the room's log is at position P is written after the log up
 * to P and before anything after it. The member's own lines are skipped
 * ({@linkcode Outbox.skip}) without copying anyone's bytes.
 *
 * Bytes pushed are written soon after (at the end of the current task).
 * What the log holds is written when the room asks ({@linkcode Outbox.kick}),
 * in rounds the room paces, so in a busy room one write carries everything
 * new since the last one. Small pieces are copied together into one write;
 * a large slice of the log goes out as it is, straight from the log. Each
 * write completes before the next starts.
 *
 * Everything queued, in flight or not yet written from the log counts
 * against one byte limit: a push beyond it is refused, and the room drops a
 * member that stays past it while its socket takes nothing.
 *
 * @module
 */

import type { LogCursor, RoomLog } from "./room_log.ts";

/** Where an {@linkcode Outbox} writes: the `write` half of a `Deno.Conn`. */
export interface ByteSink {
  /** Writes some prefix of `p`, resolving to how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Pieces at least this large are written as they are, never copied. */
const COPY_LIMIT = 2048;
/** Small pieces are copied together into writes of at most this many bytes. */
const WRITE_LIMIT = 64 * 1024;

const NOTHING = new Uint8Array(0);

/**
 * The end of the range an outbox follows: none yet. (Not `Infinity`, which
 * V8 would keep in a box of its own, one per member.)
 */
const OPEN = -1;

/** Default for {@linkcode OutboxOptions.maxBytes}: 1 MiB. */
export const OUTBOX_BYTES = 1024 * 1024;

/** Options for {@linkcode Outbox}. */
export interface OutboxOptions {
  /**
   * Most bytes queued, in flight or behind in the log at once; a push beyond
   * it is refused.
   *
   * @default {1048576}
   */
  maxBytes?: number;
  /** Called once if a write fails; the outbox is closed by then. */
  onError?: (error: unknown) => void;
  /**
   * Where the time of a write's last progress is read (ms, from any origin,
   * never going backwards): the clock `stalledFor()` is asked with.
   *
   * @default {performance.now}
   */
  clock?: () => number;
}

/**
 * A run of a room's log to write: up to `end`, or, while `end` is
 * {@linkcode OPEN}, whatever the log holds (the range the outbox follows).
 */
interface Range {
  readonly log: RoomLog;
  readonly cursor: LogCursor;
  end: number;
}

/**
 * A bounded queue of byte chunks and log ranges drained by one writer into
 * a {@linkcode ByteSink}.
 *
 * @example Usage
 * ```ts
 * import { Outbox } from "./outbox.ts";
 * import assert from "node:assert/strict";
 *
 * const written: string[] = [];
 * const sink = {
 *   write(p: Uint8Array) {
 *     written.push(new TextDecoder().decode(p));
 *     return Promise.resolve(p.length);
 *   },
 * };
 * const outbox = new Outbox(sink, { maxBytes: 64 });
 * outbox.push(new TextEncoder().encode("one\n"));
 * outbox.push(new TextEncoder().encode("two\n"));
 * await outbox.drained();
 * assert.deepEqual(written, ["one\ntwo\n"]); // coalesced into one write
 * ```
 */
export class Outbox {
  readonly #sink: ByteSink;
  readonly #maxBytes: number;
  readonly #onError: (error: unknown) => void;
  readonly #clock: () => number;
  /** The queue: `#queue[#head]` is the oldest entry not yet written. */
  #queue: (Uint8Array | Range | undefined)[] = [];
  #head = 0;
  /** The range of the log followed now: the last entry, if any. */
  #live: Range | undefined;
  /** Told when the writer stops while following a log, and how far behind it is. */
  #onIdle: ((behind: number) => void) | undefined;
  /**
   * Told when the running write ends, if a round started it: even if the
   * outbox has stopped following that room's log meanwhile.
   */
  #kickedBy: (() => void) | undefined;
  /** Bytes of the queue's chunks and closed ranges not yet handed to a write. */
  #queued = 0;
  /** Bytes handed to the running write and not yet written. */
  #inFlight = 0;
  #writing = false;
  #closed = false;
  /** When the running write last made progress (ms), or -1 when idle. */
  #waitingSince = -1;
  #drainWaiters: (() => void)[] = [];
  /** The write being made, and how much of it the sink has taken. */
  #data: Uint8Array = NOTHING;
  #offset = 0;
  /** Whether the running writer has made its first write. */
  #started = false;

  /** Makes an outbox writing to `sink`; see {@linkcode OutboxOptions}. */
  constructor(sink: ByteSink, options: OutboxOptions = {}) {
    const max = options.maxBytes ?? OUTBOX_BYTES;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxBytes must be a positive integer, received ${max}`);
    }
    this.#sink = sink;
    this.#maxBytes = max;
    this.#onError = options.onError ?? (() => {});
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Bytes queued, in flight, or in the followed log and not yet written. */
  get size(): number {
    return this.#queued + this.#inFlight + this.#behind();
  }

  /** The byte limit ({@linkcode OutboxOptions.maxBytes}). */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** The time on the outbox's clock (ms), as `stalledFor()` reads it. */
  now(): number {
    return this.#clock();
  }

  /**
   * Queues a connection's closing line even past the byte limit (it is
   * one short line, and nothing follows it); `false` only once closed.
   */
  pushLast(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    const live = this.#live;
    if (live !== undefined) {
      this.#closeLive();
      this.#disown();
      this.#onIdle = undefined;
    }
    this.#queue.push(bytes);
    this.#queued += bytes.length;
    this.#startWriter();
    return true;
  }

  /** Whether {@linkcode Outbox.close} was called or a write failed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a write is running (the socket has not taken all of it yet). */
  get writing(): boolean {
    return this.#writing;
  }

  /**
   * How long (ms) the running write has gone without progress, at `now`;
   * 0 when nothing is being written.
   */
  stalledFor(now: number = this.#clock()): number {
    return this.#waitingSince < 0 ? 0 : now - this.#waitingSince;
  }

  /**
   * Queues `bytes` for sending, after whatever the followed log holds now.
   * Returns `false`, queueing nothing, when the outbox is closed or the
   * bytes would take it past its limit.
   */
  push(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    if (this.size + bytes.length > this.#maxBytes) return false;
    const live = this.#live;
    if (live !== undefined) {
      if (live.cursor.position === live.log.end) {
        // Caught up: the bytes go in front of the range, which goes on.
        this.#queue[this.#queue.length - 1] = bytes;
        this.#queue.push(live);
      } else {
        this.#closeLive();
        this.#queue.push(bytes);
        this.#openLive(live.log);
      }
    } else {
      this.#queue.push(bytes);
    }
    this.#queued += bytes.length;
    this.#startWriter();
    return true;
  }

  /**
   * Follows `log` from its end: what is appended to it from now on is this
   * outbox's to write, when {@linkcode Outbox.kick}ed. Whatever log it
   * followed before is still written up to where it was left.
   */
  follow(log: RoomLog, onIdle: (behind: number) => void): void {
    if (this.#closed) return;
    this.unfollow();
    this.#onIdle = onIdle;
    this.#openLive(log);
  }

  /** Stops following the log; what it held until now is still written. */
  unfollow(): void {
    if (this.#live === undefined) return;
    this.#closeLive();
    this.#disown();
    this.#onIdle = undefined;
    // No round kicks it any more: whatever is left (the log up to here,
    // parts of it a skip closed off) is written on its own.
    if (this.size > 0 && !this.#closed) this.#startWriter();
  }

  /**
   * Leaves out of the followed log what was appended from position `from`
   * on: the member's own line, which it is not sent back. What came before
   * it becomes a closed range, written at the room's next round.
   */
  skip(from: number): void {
    const live = this.#live;
    if (live === undefined) return;
    if (live.cursor.position === from) {
      live.cursor.skipTo(live.log.end);
      return;
    }
    live.end = from;
    this.#queued += from - live.cursor.position;
    this.#openLive(live.log);
  }

  /**
   * Starts a write of everything pending, unless one is running or there is
   * nothing to write: the room calls it for each member once a round.
   * Returns whether it started one; if so, `done` is called once it ends.
   */
  kick(done?: () => void): boolean {
    if (this.#writing || this.#closed || this.size === 0) return false;
    this.#writing = true;
    this.#kickedBy = done;
    this.#drain();
    return true;
  }

  /** Resolves once everything queued so far is written, or the outbox closes. */
  drained(): Promise<void> {
    if (this.size === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /**
   * Drops what is queued but not yet handed to the writer, and stops
   * following the log; a write already running goes on.
   */
  clear(): void {
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
    this.#live = undefined;
    this.#disown();
    this.#onIdle = undefined;
  }

  /**
   * Tells the room whose round started the running write that it need not
   * wait for it: the outbox no longer follows that room, and a stuck socket
   * must not hold back the room's next round.
   */
  #disown(): void {
    const by = this.#kickedBy;
    if (by === undefined) return;
    this.#kickedBy = undefined;
    by();
  }

  /** Drops whatever is queued and stops writing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.clear();
    this.#inFlight = 0;
    this.#wake();
  }

  /** Starts the writer on its own (soon, not now), unless it is running. */
  #startWriter(): void {
    if (this.#writing) return;
    this.#writing = true;
    queueMicrotask(() => this.#drain());
  }

  /** How far the followed range is behind the end of its log. */
  #behind(): number {
    const live = this.#live;
    return live === undefined ? 0 : live.log.end - live.cursor.position;
  }

  #openLive(log: RoomLog): void {
    const live = { log, cursor: log.cursor(), end: OPEN };
    this.#live = live;
    this.#queue.push(live);
  }

  /** Ends the followed range at the end of its log: it becomes a closed range. */
  #closeLive(): void {
    const live = this.#live!;
    live.end = live.log.end;
    this.#queued += live.end - live.cursor.position;
    this.#live = undefined;
  }

  /**
   * The writer: takes the next write's worth and hands it to the sink,
   * again and again until nothing is left (see the module documentation).
   * Callbacks rather than an async loop: in a big room this runs once per
   * member per round, and every frame and promise saved is less garbage.
   * The callbacks are made per write, not kept: an idle outbox holds none.
   */
  #drain(): void {
    if (this.#closed) return this.#stop();
    // After the first write, only what is not the followed log goes on at
    // once; the log waits for the room's next round.
    if (this.#started && this.#queue[this.#head] === this.#live) return this.#stop();
    this.#started = true;
    const data = this.#take();
    if (data === undefined) return this.#stop();
    this.#data = data;
    this.#offset = 0;
    this.#waitingSince = this.#clock();
    this.#send(data);
  }

  #send(bytes: Uint8Array): void {
    try {
      this.#sink.write(bytes).then((n) => this.#wrote(n), (error) => this.#failed(error));
    } catch (error) {
      this.#failed(error);
    }
  }

  #wrote(n: number): void {
    // Nothing thrown here may escape as an unhandled rejection: it would
    // end the process. It ends this connection's writer instead.
    try {
      if (this.#closed) return this.#stop();
      const data = this.#data;
      this.#offset += n;
      if (this.#offset < data.length) {
        // Progress: the stall clock starts again. (A whole write needs no
        // reading of it: #drain starts the next write's clock, or stops.)
        this.#waitingSince = this.#clock();
        return this.#send(data.subarray(this.#offset));
      }
      this.#inFlight -= data.length;
      this.#data = NOTHING;
      this.#drain();
    } catch (error) {
      this.#failed(error);
    }
  }

  #failed(error: unknown): void {
    if (!this.#closed) {
      this.close();
      this.#onError(error);
    }
    this.#stop();
  }

  /** The writer stops: wakes whoever waits, and tells the room. */
  #stop(): void {
    this.#data = NOTHING;
    this.#started = false;
    const by = this.#kickedBy;
    this.#kickedBy = undefined;
    this.#waitingSince = -1;
    this.#writing = false;
    if (this.size === 0 || this.#closed) this.#wake();
    by?.();
    this.#onIdle?.(this.#behind());
  }

  /**
   * Takes the next write's worth from the queue: a large piece on its own,
   * as it is (a slice of the log, or a chunk shared by other outboxes), or a
   * run of small pieces copied into one buffer.
   */
  #take(): Uint8Array | undefined {
    const queue = this.#queue;
    // Most writes are one piece (a slice of the log): no array for those.
    let first: Uint8Array | undefined;
    let more: Uint8Array[] | undefined;
    let total = 0;
    while (this.#head < queue.length) {
      const entry = queue[this.#head]!;
      let piece: Uint8Array;
      if (entry instanceof Uint8Array) {
        piece = entry;
      } else {
        piece = entry.cursor.peek(entry.end === OPEN ? entry.log.end : entry.end);
        if (piece.length === 0) {
          if (entry === this.#live) break;
          queue[this.#head++] = undefined;
          continue;
        }
      }
      if (
        first !== undefined && (piece.length >= COPY_LIMIT || total + piece.length > WRITE_LIMIT)
      ) {
        break;
      }
      if (first === undefined) first = piece;
      else (more ??= []).push(piece);
      total += piece.length;
      if (entry instanceof Uint8Array) {
        queue[this.#head++] = undefined;
        this.#queued -= piece.length;
      } else {
        entry.cursor.advance(piece.length);
        if (entry !== this.#live) this.#queued -= piece.length;
      }
      if (piece.length >= COPY_LIMIT) break;
    }
    this.#compact();
    if (first === undefined) return undefined;
    this.#inFlight += total;
    if (more === undefined) return first;
    const data = new Uint8Array(total);
    data.set(first, 0);
    let offset = first.length;
    for (const piece of more) {
      data.set(piece, offset);
      offset += piece.length;
    }
    return data;
  }

  /** Drops spent slots: all of them once the queue is empty, now and then otherwise. */
  #compact(): void {
    const queue = this.#queue;
    if (this.#head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (
      this.#head > 0 && this.#head === queue.length - 1 && queue[this.#head] === this.#live
    ) {
      // Only the followed range is left, as after a welcome: the slots the
      // welcome took are not kept for as long as the member stays.
      this.#queue = [this.#live];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #wake(): void {
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }
}
