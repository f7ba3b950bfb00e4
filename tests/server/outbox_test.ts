import assert from "node:assert/strict";
import { type ByteSink, Outbox } from "../../server/outbox.ts";
import { RoomLog } from "../../server/room_log.ts";
import { FakeSink } from "./_fake_member.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);

/** A sink that accepts at most `perWrite` bytes per call, at once. */
class EagerSink implements ByteSink {
  /** Copies of the bytes each write accepted. */
  readonly writes: Uint8Array[] = [];
  constructor(readonly perWrite = Infinity) {}
  write(p: Uint8Array): Promise<number> {
    const n = Math.min(p.length, this.perWrite);
    this.writes.push(p.slice(0, n));
    return Promise.resolve(n);
  }
  /** Everything written so far, decoded as one piece. */
  get text(): string {
    const all = new Uint8Array(this.writes.reduce((n, w) => n + w.length, 0));
    let offset = 0;
    for (const w of this.writes) {
      all.set(w, offset);
      offset += w.length;
    }
    return decoder.decode(all);
  }
}

/** One write waiting on a {@linkcode ManualSink}. */
interface PendingWrite {
  readonly data: Uint8Array;
  resolve(n: number): void;
  reject(error: unknown): void;
}

/** A sink whose writes complete only when the test says so. */
class ManualSink implements ByteSink {
  readonly #queue: PendingWrite[] = [];
  readonly #waiting: ((w: PendingWrite) => void)[] = [];
  calls = 0;

  write(p: Uint8Array): Promise<number> {
    this.calls++;
    return new Promise((resolve, reject) => {
      const pending = { data: p.slice(), resolve, reject };
      const waiter = this.#waiting.shift();
      if (waiter) waiter(pending);
      else this.#queue.push(pending);
    });
  }

  /** The next write the outbox starts. */
  next(): Promise<PendingWrite> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

/** Lets every queued microtask (and the ones they queue) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

/** Whether `promise` has settled once pending microtasks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  await flush();
  return done;
}

Deno.test("Outbox.push() coalesces pushes made together into one write", async () => {
  const sink = new EagerSink();
  const outbox = new Outbox(sink);
  assert.equal(outbox.push(bytes("one\n")), true);
  assert.equal(outbox.push(bytes("two\n")), true);
  assert.equal(outbox.push(bytes("three\n")), true);
  assert.equal(outbox.size, 14);
  await outbox.drained();
  assert.equal(sink.writes.length, 1);
  assert.equal(sink.text, "one\ntwo\nthree\n");
  assert.equal(outbox.size, 0);
});

Deno.test("Outbox.push() sends what arrives during a write in the next write, in order", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink);
  outbox.push(bytes("a"));
  const first = await sink.next();
  outbox.push(bytes("b"));
  outbox.push(bytes("c"));
  assert.equal(sink.calls, 1, "one write at a time");
  first.resolve(first.data.length);
  const second = await sink.next();
  assert.equal(decoder.decode(first.data), "a");
  assert.equal(decoder.decode(second.data), "bc");
  second.resolve(second.data.length);
  await outbox.drained();
  assert.equal(sink.calls, 2);
});

Deno.test("Outbox.push() refuses bytes past maxBytes, counting bytes in flight", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink, { maxBytes: 10 });
  assert.equal(outbox.push(bytes("12345678")), true);
  const first = await sink.next();
  assert.equal(first.data.length, 8);
  assert.equal(outbox.size, 8, "in-flight bytes still count");
  assert.equal(outbox.push(bytes("abc")), false);
  assert.equal(outbox.size, 8, "a refused push queues nothing");
  assert.equal(outbox.push(bytes("ab")), true);
  assert.equal(outbox.size, 10);
  assert.equal(outbox.push(bytes("x")), false);
  // A partial write frees nothing until the whole write is done.
  first.resolve(3);
  const rest = await sink.next();
  assert.equal(decoder.decode(rest.data), "45678");
  assert.equal(outbox.size, 10);
  assert.equal(outbox.push(bytes("x")), false);
  rest.resolve(5);
  const last = await sink.next();
  assert.equal(decoder.decode(last.data), "ab");
  assert.equal(outbox.size, 2);
  assert.equal(outbox.push(bytes("12345678")), true);
  last.resolve(2);
  (await sink.next()).resolve(8);
  await outbox.drained();
  assert.equal(outbox.size, 0);
});

Deno.test("Outbox.push() refuses a chunk larger than maxBytes even when empty", () => {
  const outbox = new Outbox(new EagerSink(), { maxBytes: 4 });
  assert.equal(outbox.push(bytes("12345")), false);
  assert.equal(outbox.size, 0);
  assert.equal(outbox.push(bytes("1234")), true);
  return outbox.drained();
});

Deno.test("Outbox delivers everything in order through a sink that takes a few bytes at a time", async () => {
  const sink = new EagerSink(3);
  const outbox = new Outbox(sink);
  let expected = "";
  for (let i = 0; i < 60; i++) {
    const line = `line ${i} ${"é".repeat(i % 5)}\n`;
    expected += line;
    assert.equal(outbox.push(bytes(line)), true);
    // Let the writer run now and then, so some pushes land mid-write.
    if (i % 7 === 0) await Promise.resolve();
    if (i % 13 === 0) await flush();
  }
  await outbox.drained();
  assert.ok(sink.writes.every((w) => w.length <= 3));
  assert.equal(sink.writes.reduce((n, w) => n + w.length, 0), bytes(expected).length);
  assert.equal(sink.text, expected);
  assert.equal(outbox.size, 0);
});

Deno.test("Outbox.drained() resolves once everything queued is written", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink);
  assert.equal(await settled(outbox.drained()), true, "resolves at once when empty");
  outbox.push(bytes("hello"));
  const drained = outbox.drained();
  const write = await sink.next();
  assert.equal(await settled(drained), false, "still writing");
  write.resolve(2);
  const rest = await sink.next();
  assert.equal(await settled(drained), false, "only part written");
  rest.resolve(rest.data.length);
  assert.equal(await settled(drained), true);
});

Deno.test("Outbox calls onError once and closes when the sink fails", async () => {
  const sink = new ManualSink();
  const errors: unknown[] = [];
  const outbox = new Outbox(sink, { onError: (error) => errors.push(error) });
  outbox.push(bytes("first"));
  const drained = outbox.drained();
  const write = await sink.next();
  outbox.push(bytes("second"));
  const boom = new Error("connection reset");
  write.reject(boom);
  await drained;
  assert.deepEqual(errors, [boom]);
  assert.equal(outbox.closed, true);
  assert.equal(outbox.size, 0);
  assert.equal(outbox.push(bytes("third")), false);
  await flush();
  assert.equal(sink.calls, 1, "nothing more is written after a failure");
  assert.equal(errors.length, 1);
  assert.equal(await settled(outbox.drained()), true);
});

Deno.test("Outbox calls onError once when a sink fails after a partial write", async () => {
  let calls = 0;
  const errors: unknown[] = [];
  const sink: ByteSink = {
    write(p) {
      calls++;
      return calls === 1
        ? Promise.resolve(Math.min(2, p.length))
        : Promise.reject(new Error("gone"));
    },
  };
  const outbox = new Outbox(sink, { onError: (error) => errors.push(error) });
  outbox.push(bytes("abcdef"));
  await outbox.drained();
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as Error).message, "gone");
  assert.equal(outbox.closed, true);
  assert.equal(calls, 2);
});

Deno.test("Outbox.stalledFor() grows while a write is pending and is 0 when idle", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink);
  const now = performance.now();
  assert.equal(outbox.stalledFor(now), 0);
  assert.equal(outbox.stalledFor(now + 60_000), 0);
  outbox.push(bytes("data"));
  const write = await sink.next();
  const later = performance.now();
  const a = outbox.stalledFor(later + 1000);
  const b = outbox.stalledFor(later + 5000);
  assert.ok(a >= 1000, `stalled ${a} ms one second on`);
  assert.equal(Math.round(b - a), 4000);
  write.resolve(write.data.length);
  await outbox.drained();
  await flush();
  assert.equal(outbox.stalledFor(performance.now() + 60_000), 0);
});

Deno.test("Outbox.stalledFor() counts from the last progress of a partial write, on its clock", async () => {
  let clock = 1_000_000;
  const sink = new ManualSink();
  const outbox = new Outbox(sink, { clock: () => clock });
  outbox.push(bytes("abcdef"));
  const first = await sink.next();
  assert.equal(outbox.stalledFor(clock + 700), 700);
  clock += 500;
  first.resolve(2);
  const second = await sink.next();
  // Progress at 1_000_500 restarted the stall clock.
  assert.equal(outbox.stalledFor(clock + 700), 700);
  second.resolve(second.data.length);
  await outbox.drained();
  await flush();
  assert.equal(outbox.stalledFor(clock + 700), 0);
});

Deno.test("Outbox.clear() drops queued data but not the write in flight", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink);
  outbox.push(bytes("in flight\n"));
  const write = await sink.next();
  outbox.push(bytes("queued 1\n"));
  outbox.push(bytes("queued 2\n"));
  assert.equal(outbox.size, 28);
  outbox.clear();
  assert.equal(outbox.size, 10);
  assert.equal(outbox.closed, false);
  write.resolve(write.data.length);
  await outbox.drained();
  assert.equal(outbox.size, 0);
  assert.equal(sink.calls, 1, "the cleared lines were never written");
  // The outbox keeps working afterwards.
  assert.equal(outbox.push(bytes("after\n")), true);
  const after = await sink.next();
  assert.equal(decoder.decode(after.data), "after\n");
  after.resolve(after.data.length);
  await outbox.drained();
});

Deno.test("Outbox.clear() before the writer starts leaves nothing to write", async () => {
  const sink = new EagerSink();
  const outbox = new Outbox(sink);
  outbox.push(bytes("never"));
  outbox.clear();
  assert.equal(outbox.size, 0);
  await outbox.drained();
  await flush();
  assert.equal(sink.writes.length, 0);
});

Deno.test("Outbox.close() stops writing, refuses pushes and releases drained()", async () => {
  const sink = new ManualSink();
  const errors: unknown[] = [];
  const outbox = new Outbox(sink, { onError: (error) => errors.push(error) });
  outbox.push(bytes("one"));
  const write = await sink.next();
  outbox.push(bytes("two"));
  const drained = outbox.drained();
  outbox.close();
  outbox.close();
  assert.equal(outbox.closed, true);
  assert.equal(outbox.size, 0);
  assert.equal(await settled(drained), true);
  assert.equal(outbox.push(bytes("three")), false);
  write.resolve(write.data.length);
  await flush();
  assert.equal(sink.calls, 1);
  assert.deepEqual(errors, [], "closing is not an error");
});

Deno.test("new Outbox() rejects a maxBytes that is not a positive integer", () => {
  for (const bad of [0, -5, 2.5, Number.NaN]) {
    assert.throws(() => new Outbox(new EagerSink(), { maxBytes: bad }), RangeError);
  }
});

/** A log with `lines` appended; returns where each began. */
function appendAll(log: RoomLog, ...lines: string[]): number[] {
  return lines.map((line) => log.append(bytes(line)));
}

/** The onIdle calls an outbox makes (how far behind it stopped each time). */
function idleRecorder(): { calls: number[]; onIdle: (behind: number) => void } {
  const calls: number[] = [];
  return { calls, onIdle: (behind) => calls.push(behind) };
}

Deno.test("Outbox.follow() writes what the log gets from then on, and only when kicked", async () => {
  const sink = new EagerSink();
  const outbox = new Outbox(sink);
  const log = new RoomLog();
  appendAll(log, "before\n");
  const idle = idleRecorder();
  outbox.follow(log, idle.onIdle);
  assert.equal(outbox.size, 0, "what came before is not its to write");
  appendAll(log, "one\n", "two\n");
  assert.equal(outbox.size, 8, "size counts the log not yet written");
  await flush();
  assert.equal(sink.writes.length, 0, "the log waits for a kick");
  assert.equal(outbox.kick(), true);
  assert.equal(outbox.kick(), false, "not while writing");
  await outbox.drained();
  assert.equal(sink.text, "one\ntwo\n");
  assert.equal(sink.writes.length, 1, "one write for all of it");
  assert.equal(outbox.size, 0);
  await flush();
  assert.deepEqual(idle.calls, [0]);
  assert.equal(outbox.kick(), false, "nothing to write");
});

Deno.test("Outbox writes the followed log one write per kick", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink);
  const log = new RoomLog();
  const idle = idleRecorder();
  outbox.follow(log, idle.onIdle);
  appendAll(log, "a\n");
  outbox.kick();
  const first = await sink.next();
  appendAll(log, "b\n", "c\n");
  assert.equal(outbox.size, 6);
  first.resolve(first.data.length);
  await flush();
  assert.equal(sink.calls, 1, "what came during the write waits for the next kick");
  assert.deepEqual(idle.calls, [4], "told how far behind it stopped");
  assert.equal(outbox.size, 4);
  assert.equal(outbox.writing, false);
  outbox.kick();
  const second = await sink.next();
  assert.equal(decoder.decode(second.data), "b\nc\n");
  second.resolve(second.data.length);
  await outbox.drained();
  assert.equal(decoder.decode(first.data), "a\n");
});

Deno.test("Outbox.push() while the log is ahead writes the bytes after the log's lines up to then", async (t) => {
  await t.step("with the writer idle", async () => {
    const sink = new EagerSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    appendAll(log, "A\n");
    outbox.push(bytes("P\n"));
    appendAll(log, "B\n");
    outbox.kick();
    await outbox.drained();
    await flush();
    outbox.kick();
    await outbox.drained();
    assert.equal(sink.text, "A\nP\nB\n");
  });

  await t.step("caught up", async () => {
    const sink = new EagerSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    appendAll(log, "A\n");
    outbox.kick();
    await outbox.drained();
    outbox.push(bytes("P\n"));
    appendAll(log, "B\n");
    outbox.push(bytes("Q\n"));
    outbox.push(bytes("R\n"));
    appendAll(log, "C\n");
    await outbox.drained();
    await flush();
    outbox.kick();
    await outbox.drained();
    assert.equal(sink.text, "A\nP\nB\nQ\nR\nC\n");
  });

  await t.step("while a write of the log is running", async () => {
    const sink = new ManualSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    appendAll(log, "A\n");
    outbox.kick();
    const first = await sink.next();
    appendAll(log, "B\n");
    outbox.push(bytes("P\n"));
    appendAll(log, "C\n");
    outbox.push(bytes("Q\n"));
    assert.equal(outbox.size, 10);
    first.resolve(first.data.length);
    const second = await sink.next();
    second.resolve(second.data.length);
    await outbox.drained();
    assert.equal(decoder.decode(first.data) + decoder.decode(second.data), "A\nB\nP\nC\nQ\n");
  });
});

Deno.test("Outbox.skip() leaves out exactly the sender's own line", async (t) => {
  await t.step("behind the log", async () => {
    const sink = new EagerSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    appendAll(log, "A\n");
    const [own] = appendAll(log, "mine\n");
    outbox.skip(own!);
    assert.equal(outbox.size, 2, "its own line does not count");
    appendAll(log, "B\n");
    const [again] = appendAll(log, "mine again\n");
    outbox.skip(again!);
    appendAll(log, "C\n");
    assert.equal(outbox.size, 6);
    for (let i = 0; i < 3 && outbox.size > 0; i++) {
      outbox.kick();
      await outbox.drained();
    }
    assert.equal(sink.text, "A\nB\nC\n");
  });

  await t.step("caught up, and twice in a row, around a push", async () => {
    const sink = new EagerSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    outbox.skip(log.append(bytes("mine 1\n")));
    assert.equal(outbox.size, 0);
    outbox.push(bytes("P\n"));
    outbox.skip(log.append(bytes("mine 2\n")));
    outbox.skip(log.append(bytes("mine 3\n")));
    appendAll(log, "B\n");
    await outbox.drained();
    await flush();
    outbox.kick();
    await outbox.drained();
    assert.equal(sink.text, "P\nB\n");
  });

  await t.step("across a segment boundary", async () => {
    const sink = new EagerSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    const others = Array.from({ length: 40 }, (_, i) => `${i} ${"o".repeat(200)}\n`);
    let expected = "";
    for (const [i, line] of others.entries()) {
      appendAll(log, line);
      expected += line;
      if (i % 3 === 0) outbox.skip(log.append(bytes(`mine ${i} ${"m".repeat(300)}\n`)));
    }
    for (let i = 0; i < 20 && outbox.size > 0; i++) {
      outbox.kick();
      await outbox.drained();
    }
    assert.equal(outbox.size, 0);
    assert.equal(sink.text, expected);
  });
});

Deno.test("Outbox.size counts what is queued, in flight and behind in the log", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink, { maxBytes: 100 });
  const log = new RoomLog();
  outbox.follow(log, () => {});
  appendAll(log, "0123456789");
  assert.equal(outbox.size, 10);
  outbox.push(bytes("abcde"));
  assert.equal(outbox.size, 15);
  appendAll(log, "x".repeat(90));
  assert.equal(outbox.size, 105, "the log is not refused: it only counts");
  assert.equal(outbox.push(bytes("y")), false, "a push past the limit is");
  const write = await sink.next();
  assert.equal(outbox.size, 105, "in flight still counts");
  write.resolve(write.data.length);
  await flush();
  assert.equal(outbox.size, 0);
  assert.equal(decoder.decode(write.data), "0123456789abcde" + "x".repeat(90));
});

Deno.test("Outbox.unfollow() still writes what the log held, and nothing after", async () => {
  const sink = new EagerSink();
  const outbox = new Outbox(sink);
  const log = new RoomLog();
  const idle = idleRecorder();
  outbox.follow(log, idle.onIdle);
  appendAll(log, "A\n", "B\n");
  outbox.unfollow();
  appendAll(log, "C\n");
  assert.equal(outbox.size, 4);
  await outbox.drained();
  assert.equal(sink.text, "A\nB\n", "written without a kick");
  assert.equal(outbox.size, 0);
  outbox.kick();
  await flush();
  assert.equal(sink.text, "A\nB\n");
  assert.deepEqual(idle.calls, [], "no longer told");
});

Deno.test("Outbox.follow() of a second log writes the first up to where it was left", async () => {
  const sink = new EagerSink();
  const outbox = new Outbox(sink);
  const lobby = new RoomLog();
  const dev = new RoomLog();
  outbox.follow(lobby, () => {});
  appendAll(lobby, "lobby 1\n");
  outbox.follow(dev, () => {});
  appendAll(lobby, "lobby 2\n");
  outbox.push(bytes("welcome to dev\n"));
  appendAll(dev, "dev 1\n");
  await outbox.drained();
  await flush();
  outbox.kick();
  await outbox.drained();
  assert.equal(sink.text, "lobby 1\nwelcome to dev\ndev 1\n");
});

Deno.test("Outbox.clear() stops following the log", async () => {
  const sink = new EagerSink();
  const outbox = new Outbox(sink);
  const log = new RoomLog();
  const idle = idleRecorder();
  outbox.follow(log, idle.onIdle);
  appendAll(log, "A\n");
  outbox.clear();
  assert.equal(outbox.size, 0);
  appendAll(log, "B\n");
  assert.equal(outbox.size, 0);
  assert.equal(outbox.kick(), false);
  outbox.push(bytes("bye\n"));
  await outbox.drained();
  await flush();
  assert.equal(sink.text, "bye\n");
  assert.deepEqual(idle.calls, []);
});

Deno.test("Outbox writes a big slice of the log as it is, straight from the log", async () => {
  const sink = new FakeSink();
  const outbox = new Outbox(sink);
  const log = new RoomLog();
  const reader = log.cursor();
  outbox.follow(log, () => {});
  appendAll(log, "small\n");
  outbox.push(bytes("private\n"));
  const big = `${"b".repeat(3000)}\n`;
  appendAll(log, big);
  // The push's write takes what comes before it, and the big line waits for a kick.
  await flush();
  assert.equal(sink.text, "small\nprivate\n");
  assert.equal(outbox.size, big.length);
  outbox.kick();
  await outbox.drained();
  assert.equal(sink.text, `small\nprivate\n${big}`);
  reader.advance("small\n".length);
  const view = reader.peek(log.end);
  assert.equal(decoder.decode(view), big);
  const handed = sink.handed.find((p) => p.length === view.length);
  assert.ok(handed !== undefined, "written in a piece of its own");
  assert.equal(handed.buffer, view.buffer, "not a copy");
  assert.equal(handed.byteOffset, view.byteOffset);
});

Deno.test("Outbox.close() while following stops writing the log", async () => {
  const sink = new EagerSink();
  const outbox = new Outbox(sink);
  const log = new RoomLog();
  outbox.follow(log, () => {});
  appendAll(log, "A\n");
  outbox.close();
  assert.equal(outbox.size, 0);
  assert.equal(outbox.kick(), false);
  outbox.follow(log, () => {});
  appendAll(log, "B\n");
  assert.equal(outbox.size, 0, "a closed outbox follows nothing");
  await flush();
  assert.equal(sink.writes.length, 0);
});

Deno.test("Outbox.kick(done) reports the end of that write once, or at once when the log is left", async (t) => {
  await t.step("when the write ends", async () => {
    const sink = new ManualSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    appendAll(log, "a\n");
    let done = 0;
    assert.equal(outbox.kick(() => done++), true);
    const write = await sink.next();
    assert.equal(done, 0, "not while the write runs");
    write.resolve(write.data.length);
    await outbox.drained();
    await flush();
    assert.equal(done, 1);
  });
  await t.step("when it stops following while the write is stuck", async () => {
    const sink = new ManualSink();
    const outbox = new Outbox(sink);
    const log = new RoomLog();
    outbox.follow(log, () => {});
    appendAll(log, "a\n");
    let done = 0;
    outbox.kick(() => done++);
    const write = await sink.next();
    outbox.unfollow();
    assert.equal(done, 1, "the room need not wait for a socket that left it");
    write.resolve(write.data.length);
    await outbox.drained();
    await flush();
    assert.equal(done, 1, "and is not told twice");
  });
});

Deno.test("Outbox.pushLast() queues the closing line past the limit, after the rest, and stops following", async () => {
  const sink = new ManualSink();
  const outbox = new Outbox(sink, { maxBytes: 8 });
  const log = new RoomLog();
  outbox.follow(log, () => {});
  appendAll(log, "12345678\n");
  outbox.kick();
  const write = await sink.next();
  assert.equal(outbox.push(encoder.encode("!! x\n")), false, "an ordinary push is refused");
  assert.equal(outbox.pushLast(encoder.encode("!! bye\n")), true);
  appendAll(log, "later\n");
  write.resolve(write.data.length);
  const last = await sink.next();
  assert.equal(decoder.decode(last.data), "!! bye\n");
  last.resolve(last.data.length);
  await outbox.drained();
  assert.equal(outbox.size, 0, "nothing of the log after it");
});
