/**
 * Small read buffers, carved out of shared blocks.
 *
 * Every idle client keeps one read pending, and a pending read holds its
 * buffer. A buffer of its own is an `ArrayBuffer` with a separate
 * allocation behind it, which costs about as much again as its 256 bytes;
 * a slice of a shared block costs only its view. A slice is handed back
 * once no read into it can be pending, and handed out again.
 *
 * @module
 */

/** Slices per block. */
const PER_BLOCK = 256;

/**
 * A pool of fixed-size read buffers.
 *
 * @example Usage
 * ```ts
 * import { ReadBuffers } from "./read_buffers.ts";
 * import assert from "node:assert/strict";
 *
 * const pool = new ReadBuffers(256);
 * const buffer = pool.take();
 * assert.equal(buffer.length, 256);
 * pool.give(buffer); // no read into it is pending any more
 * assert.equal(pool.take(), buffer);
 * ```
 */
export class ReadBuffers {
  readonly size: number;
  readonly #free: Uint8Array[] = [];
  /** The blocks slices come from: nothing else is taken back. */
  readonly #blocks = new WeakSet<ArrayBufferLike>();
  #block: ArrayBuffer | undefined;
  #used = PER_BLOCK;

  /** A pool of buffers of `size` bytes. */
  constructor(size: number) {
    this.size = size;
  }

  /**
   * A zeroed buffer of `size` bytes; the caller owns it until
   * {@linkcode ReadBuffers.give}.
   */
  take(): Uint8Array {
    const reused = this.#free.pop();
    // Nothing of its last owner's is left in it.
    if (reused !== undefined) return reused.fill(0);
    if (this.#used === PER_BLOCK) {
      this.#block = new ArrayBuffer(this.size * PER_BLOCK);
      this.#blocks.add(this.#block);
      this.#used = 0;
    }
    return new Uint8Array(this.#block!, this.size * this.#used++, this.size);
  }

  /**
   * Hands a buffer from {@linkcode ReadBuffers.take} back. Only once no read
   * into it can still complete: it is handed out again.
   */
  give(buffer: Uint8Array): void {
    if (buffer.length !== this.size || !this.#blocks.has(buffer.buffer)) return;
    this.#free.push(buffer);
  }
}
