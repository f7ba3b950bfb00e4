import assert from "node:assert/strict";
import { History } from "../../server/history.ts";

Deno.test("History iterates oldest first before it is full", () => {
  const history = new History<string>(5);
  assert.deepEqual([...history], []);
  assert.equal(history.size, 0);
  history.add("a");
  history.add("b");
  history.add("c");
  assert.equal(history.size, 3);
  assert.deepEqual([...history], ["a", "b", "c"]);
});

Deno.test("History.add() forgets the oldest item once at capacity", () => {
  const history = new History<number>(7);
  const added: number[] = [];
  for (let i = 0; i < 100; i++) {
    history.add(i);
    added.push(i);
    const expected = added.slice(-7);
    assert.deepEqual([...history], expected, `after adding ${i}`);
    assert.equal(history.size, expected.length);
  }
  assert.equal(history.capacity, 7);
});

Deno.test("History can be iterated more than once with the same result", () => {
  const history = new History<string>(2);
  for (const item of ["x", "y", "z"]) history.add(item);
  assert.deepEqual([...history], ["y", "z"]);
  assert.deepEqual([...history], ["y", "z"]);
});

Deno.test("History with capacity 1 keeps only the latest item", () => {
  const history = new History<string>(1);
  history.add("a");
  history.add("b");
  assert.deepEqual([...history], ["b"]);
  assert.equal(history.size, 1);
});

Deno.test("History with capacity 0 keeps nothing", () => {
  const history = new History<string>(0);
  history.add("a");
  history.add("b");
  assert.equal(history.size, 0);
  assert.deepEqual([...history], []);
});

Deno.test("History keeps falsy items such as 0, '' and undefined", () => {
  const history = new History<number | string | undefined>(3);
  history.add(0);
  history.add("");
  history.add(undefined);
  assert.deepEqual([...history], [0, "", undefined]);
});

Deno.test("new History() rejects a capacity that is not a whole number", () => {
  for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => new History(bad), RangeError);
  }
});
