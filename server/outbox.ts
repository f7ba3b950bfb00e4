/**
 * A bounded per-connection send queue with exactly one writer.
 *
 * `push` never waits: it appends the bytes (shared, not copied) and, if no
 * write is running, schedules one for the end of the current task. The writer
 * then copies the queued small lines into one buffer and sends them in a
 * single write, so a burst of lines to one client costs one system call; a
 * large chunk (a batch of notices shared by every member) goes out as it is.
 * Each write completes before the next starts.
 * A queue that would grow past its byte limit refuses the push: the caller
 * decides what to do with a client that cannot keep up.
 *
 * @module
 */

/** Where an {@linkcode Outbox} writes: the `write` half of a `Deno.Conn`. */
export interface ByteSink {
  /** Writes some prefix of `p`, resolving to how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Chunks at least this large are written as they are, never copied. */
const COPY_LIMIT = 2048;
/** Small chunks are copied together into writes of at most this many bytes. */
const WRITE_LIMIT = 64 * 1024;

/** Default for {@linkcode OutboxOptions.maxBytes}: 1 MiB. */
export const OUTBOX_BYTES = 1024 * 1024;

/** Options for {@linkcode Outbox}. */
export interface OutboxOptions {
  /**
   * Most bytes queued or in flight at once; a push beyond it is refused.
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
 * A bounded queue of byte chunks drained by one writer into a {@linkcode ByteSink}.
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
  /** The queue: `#chunks[#head]` is the oldest chunk not yet being written. */
  #chunks: (Uint8Array | undefined)[] = [];
  #head = 0;
  /** Bytes queued plus bytes handed to the current write and not yet written. */
  #size = 0;
  #writing = false;
  #closed = false;
  /** When the running write last made progress (ms), or -1 when idle. */
  #waitingSince = -1;
  #drainWaiters: (() => void)[] = [];

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

  /** Bytes queued or in flight. */
  get size(): number {
    return this.#size;
  }

  /** Whether {@linkcode Outbox.close} was called or a write failed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * How long (ms) the running write has gone without progress, at `now`;
   * 0 when nothing is being written.
   */
  stalledFor(now: number): number {
    return this.#waitingSince < 0 ? 0 : now - this.#waitingSince;
  }

  /**
   * Queues `bytes` for sending. Returns `false`, queueing nothing, when the
   * outbox is closed or the bytes would take it past its limit.
   */
  push(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    if (this.#size + bytes.length > this.#maxBytes) return false;
    this.#chunks.push(bytes);
    this.#size += bytes.length;
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(this.#drain);
    }
    return true;
  }

  /** Resolves once everything queued so far is written, or the outbox closes. */
  drained(): Promise<void> {
    if (this.#size === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /**
   * Drops what is queued but not yet handed to the writer; a write already
   * running goes on.
   */
  clear(): void {
    for (let i = this.#head; i < this.#chunks.length; i++) this.#size -= this.#chunks[i]!.length;
    this.#chunks = [];
    this.#head = 0;
  }

  /** Drops whatever is queued and stops writing. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#head = 0;
    this.#size = 0;
    this.#wake();
  }

  #drain = async (): Promise<void> => {
    try {
      while (this.#head < this.#chunks.length && !this.#closed) {
        const data = this.#take();
        let offset = 0;
        this.#waitingSince = this.#clock();
        while (offset < data.length) {
          offset += await this.#sink.write(offset === 0 ? data : data.subarray(offset));
          if (this.#closed) return;
          this.#waitingSince = this.#clock();
        }
        this.#size -= data.length;
      }
    } catch (error) {
      if (!this.#closed) {
        this.close();
        this.#onError(error);
      }
    } finally {
      this.#waitingSince = -1;
      this.#writing = false;
      if (this.#size === 0 || this.#closed) this.#wake();
    }
  };

  /**
   * Takes the next write's worth from the queue: a large chunk on its own,
   * as it is (it may be shared with other outboxes, and copying it for each
   * would cost more than the extra write), or a run of small chunks copied
   * into one buffer.
   */
  #take(): Uint8Array {
    const chunks = this.#chunks;
    const start = this.#head;
    const first = chunks[start]!;
    let end = start + 1;
    let total = first.length;
    if (first.length < COPY_LIMIT) {
      while (end < chunks.length) {
        const next = chunks[end]!.length;
        if (next >= COPY_LIMIT || total + next > WRITE_LIMIT) break;
        total += next;
        end++;
      }
    }
    let data = first;
    if (end > start + 1) {
      data = new Uint8Array(total);
      let offset = 0;
      for (let i = start; i < end; i++) {
        data.set(chunks[i]!, offset);
        offset += chunks[i]!.length;
      }
    }
    for (let i = start; i < end; i++) chunks[i] = undefined;
    if (end === chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (end > 1024 && end * 2 > chunks.length) {
      // A queue that never empties: drop the spent slots now and then.
      this.#chunks = chunks.slice(end);
      this.#head = 0;
    } else {
      this.#head = end;
    }
    return data;
  }

  #wake(): void {
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }
}
