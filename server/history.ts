/**
 * The room's recent-lines memory: a fixed-size ring that forgets the oldest.
 *
 * @module
 */

/**
 * A ring of the last `capacity` items; capacity 0 keeps nothing.
 *
 * @example Usage
 * ```ts
 * import { History } from "./history.ts";
 * import assert from "node:assert/strict";
 *
 * const history = new History<string>(2);
 * history.add("a");
 * history.add("b");
 * history.add("c");
 * assert.deepEqual([...history], ["b", "c"]);
 * ```
 */
export class History<T> {
  readonly #items: (T | undefined)[];
  #next = 0;
  #count = 0;

  /** Makes an empty ring holding at most `capacity` items. */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`history capacity must be a whole number, received ${capacity}`);
    }
    this.#items = new Array(capacity);
  }

  /** How many items are held. */
  get size(): number {
    return this.#count;
  }

  /** Adds an item, forgetting the oldest when full. */
  add(item: T): void {
    if (this.capacity === 0) return;
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#count < this.capacity) this.#count++;
  }

  /** The items, oldest first. */
  *[Symbol.iterator](): IterableIterator<T> {
    const start = (this.#next - this.#count + this.capacity) % Math.max(1, this.capacity);
    for (let i = 0; i < this.#count; i++) {
      yield this.#items[(start + i) % this.capacity] as T;
    }
  }
}
