/**
 * Server limits over real sockets, with small injected options: slow
 * readers, stalled writes, flood control, timeouts, connection caps, hostile
 * input and a thousand clients at once.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { ALIAS_RULE } from "../../protocol/alias.ts";
import {
  assertNothingBefore,
  closeAll,
  joinAll,
  live,
  MAIN,
  nextLine,
  readToEnd,
  RUN_FLAGS,
  spawnConfab,
  startServer,
  TestClient,
  WAIT_MS,
  withTimeout,
} from "../_helpers.ts";

const encoder = new TextEncoder();

const MESSAGE = /^\[\d\d:\d\d:\d\d\] alice: (\d+) (x*)$/;

/**
 * `sender` (alice) says big numbered lines one at a time, and each must reach
 * every receiver within `boundMs`. Stops once every receiver has seen a line
 * matching `until` (a notice in between messages). Returns the slowest
 * delivery (ms) and how many lines were said.
 */
async function sayUntil(
  sender: TestClient,
  receivers: TestClient[],
  until: RegExp,
  options: {
    lineBytes: number;
    maxLines: number;
    boundMs: number;
    totalMs: number;
    /** Return after `maxLines` even if not every receiver saw `until`. */
    mayStop?: boolean;
  },
): Promise<{ slowest: number; said: number; notices: string[] }> {
  const pad = "x".repeat(options.lineBytes);
  const notices: string[] = [];
  const deadline = Date.now() + options.totalMs;
  let slowest = 0;
  for (let i = 0; i < options.maxLines && Date.now() < deadline; i++) {
    const started = performance.now();
    await sender.send(`${i} ${pad}`);
    await Promise.all(receivers.map(async (receiver) => {
      // The message itself, and at most a few notices before it.
      for (let j = 0; j < 4; j++) {
        const line = await nextLine(receiver, options.boundMs);
        const m = MESSAGE.exec(line);
        if (m === null) {
          assert.match(line, until, `an unexpected line: ${line.slice(0, 100)}`);
          notices.push(line);
          continue;
        }
        assert.equal(Number(m[1]), i, "messages out of order");
        assert.equal(m[2]!.length, options.lineBytes, "a message was cut");
        return;
      }
      assert.fail(`message ${i} did not arrive`);
    }));
    slowest = Math.max(slowest, performance.now() - started);
    if (notices.length === receivers.length || (options.mayStop && i + 1 === options.maxLines)) {
      return { slowest, said: i + 1, notices };
    }
  }
  return assert.fail(`no ${until} after ${options.maxLines} lines or ${options.totalMs} ms`);
}

Deno.test("serve() drops a client whose outbox is full and the others keep receiving", async () => {
  const lineBytes = 16_000;
  const outboxBytes = 131_072;
  await using server = startServer({ rateLimit: 0, maxLineBytes: 16_384, outboxBytes });
  const clients = await joinAll(server.addr.port, ["slow", "alice", "bob", "carol"]);
  const [slow, alice, bob, carol] = clients as [TestClient, TestClient, TestClient, TestClient];
  try {
    // From here on, slow never reads its socket. Its kernel buffers take a
    // few MB, then its 128 KB outbox overflows.
    const { slowest, said, notices } = await sayUntil(
      alice,
      [bob, carol],
      /<-- slow left/,
      { lineBytes, maxLines: 3000, boundMs: 1000, totalMs: 15_000 },
    );
    for (const notice of notices) {
      assert.match(notice, live("<-- slow left (too slow: could not keep up with the room)"));
    }
    assert.ok(slowest < 1000, `a message took ${slowest} ms`);
    // Enough was said to fill the outbox, not just the kernel buffers.
    assert.ok(said * lineBytes > outboxBytes, `dropped after only ${said} lines`);
    assert.equal(server.room.size, 3);
    assert.ok(server.log.some((line) => line.includes("slow: left (too slow")), "logged");
    // The room goes on.
    await alice.send("after");
    assert.match(await nextLine(bob), live("alice: after"));
    assert.match(await nextLine(carol), live("alice: after"));
    // The dropped connection is closed: reading it reaches its end.
    const rest = await readToEnd(slow);
    assert.equal(rest.at(-1), "!! disconnected: too slow: could not keep up with the room");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() ends a connection whose write makes no progress for writeTimeoutMs", async () => {
  const writeTimeoutMs = 300;
  const lineBytes = 16_000;
  await using server = startServer({
    rateLimit: 0,
    maxLineBytes: 16_384,
    // Far more than will be said, so that only the write timeout can act.
    outboxBytes: 64 * 1024 * 1024,
    writeTimeoutMs,
  });
  const clients = await joinAll(server.addr.port, ["stuck", "alice", "bob"]);
  const [stuck, alice, bob] = clients as [TestClient, TestClient, TestClient];
  try {
    const started = Date.now();
    // 16 MB: several times what the kernel buffers of a connection that is
    // not read take on loopback, so stuck's writes stall; then silence.
    const { notices, slowest, said } = await sayUntil(alice, [bob], /<-- stuck left/, {
      lineBytes,
      maxLines: 1000,
      boundMs: 1000,
      totalMs: 10_000,
      mayStop: true,
    });
    assert.ok(slowest < 1000, `a message took ${slowest} ms`);
    const stoppedAt = Date.now();
    const notice = notices[0] ?? await nextLine(bob, writeTimeoutMs + 2000);
    assert.match(notice, live("<-- stuck left (write timed out)"));
    assert.ok(Date.now() - started >= writeTimeoutMs, "dropped before the timeout");
    assert.ok(Date.now() - stoppedAt < writeTimeoutMs + 1500, "dropped too late");
    assert.ok(said * lineBytes < 64 * 1024 * 1024, "the outbox could have overflowed");
    assert.ok(server.log.some((line) => line.includes("stuck: write stalled; disconnecting")));
    assert.equal(server.room.size, 2);
    await readToEnd(stuck);
  } finally {
    await closeAll(clients);
  }
});

/** The notice a client gets when its lines start being delayed. */
function slowDown(rate: string, burst: number): RegExp {
  return live(
    `-- slow down: at most ${rate} per second (bursts of ${burst}); ` +
      "your lines are being delayed, none are lost",
  );
}

/**
 * Reads `client`'s lines, each stamped with `performance.now()`, until
 * `done` says it has seen enough; at most `maxLines` lines.
 */
async function readStamped(
  client: TestClient,
  done: (lines: string[]) => boolean,
  maxLines: number,
  onLine: (line: string) => void = () => {},
): Promise<{ line: string; at: number }[]> {
  const seen: { line: string; at: number }[] = [];
  const lines: string[] = [];
  while (!done(lines)) {
    assert.ok(lines.length < maxLines, `too many lines: ${lines.slice(-5).join(" | ")}`);
    const line = await nextLine(client);
    seen.push({ line, at: performance.now() });
    lines.push(line);
    onLine(line);
  }
  return seen;
}

Deno.test("serve() delays a pasted flood to the rate, loses none of it, and the others chat at full speed", async () => {
  const rate = 50;
  const burst = 10;
  const count = 200;
  const chats = 7;
  await using server = startServer({ rateLimit: rate, rateBurst: burst });
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    const flood = Array.from({ length: count }, (_, i) => `flood ${i}\n`).join("");
    const started = performance.now();
    await alice.write(encoder.encode(flood));
    assert.match(await nextLine(alice), slowDown("50 lines", burst));

    // Every 25th flood line bob sees, carol says something: it must reach
    // bob and alice within 100 ms, however far behind alice's lines are.
    const saidAt: number[] = [];
    const sends: Promise<void>[] = [];
    const FLOOD = /^\[\d\d:\d\d:\d\d\] alice: flood (\d+)$/;
    const CHAT = /^\[\d\d:\d\d:\d\d\] carol: chat (\d+)$/;
    const floods = (lines: string[]) => lines.filter((line) => FLOOD.test(line));
    const chatsOf = (lines: string[]) => lines.filter((line) => CHAT.test(line));
    const [bobSaw, aliceSaw, carolSaw] = await Promise.all([
      readStamped(
        bob,
        (lines) => floods(lines).length === count && chatsOf(lines).length === chats,
        count + chats,
        (line) => {
          const i = Number(FLOOD.exec(line)?.[1] ?? 0);
          if (i > 0 && i % 25 === 0 && saidAt.length < chats) {
            saidAt.push(performance.now());
            sends.push(carol.send(`chat ${saidAt.length - 1}`));
          }
        },
      ),
      readStamped(alice, (lines) => lines.length === chats, chats),
      readStamped(carol, (lines) => lines.length === count, count),
    ]);
    await Promise.all(sends);
    const elapsed = performance.now() - started;

    // All of the flood, in order, at the announced rate: a burst, then 50/s.
    for (const seen of [bobSaw, carolSaw]) {
      const numbers = floods(seen.map((s) => s.line)).map((line) => Number(FLOOD.exec(line)![1]));
      assert.deepEqual(numbers, Array.from({ length: count }, (_, i) => i));
    }
    const least = ((count - burst) / rate) * 1000;
    assert.ok(elapsed >= least - 300, `the flood went through in ${elapsed} ms`);
    // And no slower: a server reading at half the rate would take 7.6 s.
    assert.ok(elapsed < least + 1500, `the flood took ${elapsed} ms`);
    // alice got carol's lines and no second notice.
    for (const seen of [aliceSaw, bobSaw]) {
      const got = seen.filter((s) => CHAT.test(s.line));
      assert.equal(got.length, chats, JSON.stringify(seen.map((s) => s.line).slice(-10)));
      got.forEach(({ line, at }) => {
        const i = Number(CHAT.exec(line)![1]);
        const took = at - saidAt[i]!;
        assert.ok(took < 100, `carol's line ${i} took ${took} ms`);
      });
    }
    assert.equal(server.room.size, 3);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() keeps reading a client at its rate when the wall clock is set back an hour", async () => {
  await using server = startServer({ rateLimit: 50, rateBurst: 2 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  const realNow = Date.now;
  try {
    // The bucket has seen the time now...
    await alice.send("before");
    assert.match(await nextLine(bob), live("alice: before"));
    // ...then the system time steps back (as NTP may) and alice floods.
    Date.now = () => realNow() - 3600_000;
    const count = 20;
    const started = performance.now();
    await alice.write(
      encoder.encode(Array.from({ length: count }, (_, i) => `after ${i}\n`).join("")),
    );
    for (let i = 0; i < count; i++) assert.match(await nextLine(bob), live(`alice: after ${i}`));
    // 18 lines past the burst at 50 a second: 360 ms, not an hour.
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1500, `the lines took ${elapsed} ms`);
  } finally {
    Date.now = realNow;
    await closeAll(clients);
  }
});

Deno.test("serve() answers telnet's AYT at the rate, like lines", async () => {
  const rate = 50;
  const burst = 2;
  await using server = startServer({ rateLimit: rate, rateBurst: burst });
  await using alice = await TestClient.join(server.addr.port, "alice");
  const count = 30;
  const started = performance.now();
  // IAC AYT, 30 times in one write.
  await alice.write(new Uint8Array(count * 2).map((_, i) => (i % 2 === 0 ? 0xff : 0xf6)));
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(await alice.expect(live("-- [yes]")));
  const elapsed = performance.now() - started;
  assert.equal(lines.length, count);
  const least = ((count - burst) / rate) * 1000;
  assert.ok(elapsed >= least - 100, `${count} answers came in ${elapsed} ms`);
  assert.ok(alice.lines.seen.some((line) => slowDown("50 lines", burst).test(line)));
});

Deno.test("serve() keeps a client far over its rate connected, and its /quit comes after what it sent before", async () => {
  // 250 lines at once, 248 of them past the burst: however far over its
  // rate, a client is slowed down, never cut off.
  await using server = startServer({ rateLimit: 100, rateBurst: 2 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    const count = 250;
    const flood = Array.from({ length: count }, (_, i) => `flood ${i}\n`).join("");
    await alice.write(encoder.encode(flood + "/quit\n"));
    for (let i = 0; i < count; i++) assert.match(await nextLine(bob), live(`alice: flood ${i}`));
    assert.match(await nextLine(bob), live("<-- alice left"));
    const rest = await readToEnd(alice);
    assert.equal(rest.length, 2, JSON.stringify(rest));
    assert.match(rest[0]!, slowDown("100 lines", 2));
    assert.equal(rest[1], "!! bye");
    assert.equal(server.room.size, 1);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() says 1 line per second, not 1 lines", async () => {
  await using server = startServer({ rateLimit: 1, rateBurst: 1 });
  await using alice = await TestClient.connect(server.addr.port);
  await alice.expect(/^\? alias: /);
  await alice.send("alice");
  await alice.expect(live("-- welcome, alice! you are the only one here"));
  assert.match(
    await nextLine(alice),
    live("-- limits: 1 line per second, bursts of 1; lines up to 4096 bytes"),
  );
  await alice.write(encoder.encode("one\ntwo\n"));
  assert.match(await nextLine(alice), slowDown("1 line", 1));
});

Deno.test("serve() closes a session waiting out its rate at once when the server shuts down", async () => {
  // One line a second: alice's second line would wait that long.
  const server = startServer({ rateLimit: 1, rateBurst: 1 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await alice.write(encoder.encode("one\ntwo\n"));
    assert.match(await nextLine(bob), live("alice: one"));
    assert.match(await nextLine(alice), slowDown("1 line", 1));
    const started = Date.now();
    await server.shutdown();
    const took = Date.now() - started;
    assert.ok(took < 500, `shutdown took ${took} ms`);
    assert.deepEqual(await readToEnd(alice), ["!! server shutting down"]);
    assert.deepEqual(await readToEnd(bob), ["!! server shutting down"]);
  } finally {
    await server.shutdown();
    await closeAll(clients);
  }
});

Deno.test("serve() does not count a client waiting out its rate as idle", async () => {
  // One line per second: each of alice's lines waits longer than idleTimeoutMs.
  const idleTimeoutMs = 600;
  await using server = startServer({ idleTimeoutMs, rateLimit: 1, rateBurst: 1 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    // Ten blank lines keep bob's reader waiting for nine seconds: bob is
    // not idle meanwhile either.
    await bob.write(encoder.encode("\n".repeat(10)));
    assert.match(await nextLine(bob), slowDown("1 line", 1));
    const started = Date.now();
    await alice.write(encoder.encode("l0\nl1\nl2\n"));
    for (let i = 0; i < 3; i++) assert.match(await nextLine(bob), live(`alice: l${i}`));
    assert.ok(Date.now() - started >= 1800, "alice's lines were not delayed");
    assert.match(await nextLine(alice), slowDown("1 line", 1));
    // Once all of it has gone through, alice is idle, and the timeout applies.
    assert.equal(await nextLine(alice, idleTimeoutMs + 2000), "!! idle for too long");
    assert.match(await nextLine(bob), live("<-- alice left (idle)"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() still ends the handshake of a newcomer waiting out its rate at aliasTimeoutMs", async () => {
  const aliasTimeoutMs = 400;
  await using server = startServer({ aliasTimeoutMs, rateLimit: 1, rateBurst: 1 });
  await using newcomer = await TestClient.connect(server.addr.port);
  await newcomer.expect(/^\? alias: /);
  const started = Date.now();
  await newcomer.write(encoder.encode("bad!\n".repeat(10)));
  const lines = await readToEnd(newcomer, aliasTimeoutMs + 2000);
  const elapsed = Date.now() - started;
  assert.equal(lines.length, 4, JSON.stringify(lines));
  assert.equal(lines[0], `! an alias is ${ALIAS_RULE}`);
  assert.match(lines[1]!, /^\? alias: /);
  assert.match(lines[2]!, slowDown("1 line", 1));
  assert.equal(lines[3], "!! too long without choosing an alias");
  assert.ok(elapsed < aliasTimeoutMs + 1500, `closed after ${elapsed} ms`);
});

/**
 * The resident memory of process `pid`, in bytes, from /proc/PID/status
 * (read by `cat`: Deno lets only a fully privileged process read /proc).
 */
async function residentBytes(pid: number): Promise<number> {
  const output = await new Deno.Command("cat", {
    args: [`/proc/${pid}/status`],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(output.success, `cannot read /proc/${pid}/status`);
  const status = new TextDecoder().decode(output.stdout);
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  assert.ok(kb !== undefined, "no VmRSS in /proc/PID/status");
  return Number(kb) * 1024;
}

Deno.test({
  name:
    "confab serve holds a 50 MB paste in the kernel's buffers, not in memory, and reads it at the rate",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using proc = spawnConfab(["serve", "--port", "0", "--rate", "5", "--burst", "20"]);
    const first = await proc.stdout.next();
    const port = Number(/^confab \S+ listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "")?.[1]);
    assert.ok(port > 0, `no port in ${first}`);
    await using pusher = await TestClient.join(port, "pusher");
    const before = await residentBytes(proc.child.pid);

    // 1000-byte lines in 64 KB writes, for 4 s or 50 MB. A write that takes
    // a second means the kernel's buffers are full: the server is reading no
    // faster than its rate, and the sender has to wait.
    const line = "x".repeat(999) + "\n";
    const chunk = encoder.encode(line.repeat(64));
    const total = 50 * 1024 * 1024;
    const started = Date.now();
    let written = 0;
    let stalls = 0;
    let after = before;
    let pending: Promise<number> | undefined;
    while (written < total && Date.now() - started < 4000) {
      pending ??= pusher.conn.write(chunk);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), 1000);
      });
      const n = await Promise.race([pending, late]);
      clearTimeout(timer);
      if (n === undefined) {
        stalls++;
        after = Math.max(after, await residentBytes(proc.child.pid));
        continue;
      }
      pending = undefined;
      written += n;
    }
    // The server is alive and reading the pusher at its rate: it was told so.
    assert.match(await nextLine(pusher), slowDown("5 lines", 20));
    await pusher.close();
    await pending?.catch(() => {});

    assert.ok(stalls >= 2, `the writes stalled ${stalls} times in 4 s`);
    assert.ok(written < total / 4, `${written} bytes were taken`);
    const grew = after - before;
    assert.ok(
      grew < 4 * 1024 * 1024,
      `the server grew by ${grew} bytes while ${written} were sent`,
    );
  },
});

Deno.test({
  name: "confab serve holds little memory for each of 200 clients it is reading slowly",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // As `deno task serve` runs it: V8 collects short-lived garbage early.
    const command = [Deno.execPath(), ...RUN_FLAGS, "--v8-flags=--max-semi-space-size=2", MAIN];
    const args = ["serve", "--port", "0", "--rate", "1", "--burst", "1"];
    await using proc = spawnConfab(args, { command });
    const first = await proc.stdout.next();
    const port = Number(/^confab \S+ listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "")?.[1]);
    assert.ok(port > 0, `no port in ${first}`);
    // Two over-long lines (25 KB, 75 KB), which the server drops as it reads
    // them, so all it holds of them is its read buffer. Each flooder writes
    // them at once, before choosing an alias so that nothing is broadcast,
    // and is slowed down right after the first, its burst: the second waits
    // a second, in the read buffer and in the kernel.
    const flood = encoder.encode("x".repeat(24_999) + "\n" + "x".repeat(74_999) + "\n");
    const TOO_LONG = /^! line too long: /;
    const count = 200;
    const flooders: TestClient[] = [];
    const writes: Promise<unknown>[] = [];
    function floodAll(batch: TestClient[], until: (flooder: TestClient) => Promise<unknown>) {
      for (const flooder of batch) writes.push(flooder.conn.write(flood).catch(() => 0));
      return withTimeout(Promise.all(batch.map(until)), 20_000, "the flooders");
    }
    try {
      for (let i = 0; i < 2 * count; i++) {
        const flooder = await TestClient.connect(port);
        flooders.push(flooder);
        await flooder.expect(/^\? alias: /);
      }
      // A first batch, read to the end, brings the server's heap to the size
      // flooding needs: what a second batch adds while it is being slowed
      // down is what the server holds for each.
      await floodAll(flooders.slice(0, count), async (flooder) => {
        await flooder.expect(slowDown("1 line", 1), 15_000);
        await flooder.expect(TOO_LONG, 15_000);
      });
      const before = await residentBytes(proc.child.pid);
      await floodAll(flooders.slice(count), (flooder) => flooder.expect(slowDown("1 line", 1)));
      const after = await residentBytes(proc.child.pid);
      const each = (after - before) / count;
      assert.ok(each < 24 * 1024, `the server grew by ${Math.round(each)} bytes per flooder`);
    } finally {
      await closeAll(flooders);
      await Promise.all(writes);
    }
  },
});

Deno.test("serve() disconnects a newcomer who chooses no alias within aliasTimeoutMs", async () => {
  const aliasTimeoutMs = 300;
  await using server = startServer({ aliasTimeoutMs });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    const started = Date.now();
    await using silent = await TestClient.connect(server.addr.port);
    const lines = await readToEnd(silent, aliasTimeoutMs + 2000);
    const elapsed = Date.now() - started;
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.match(lines[0]!, /^\? alias: /);
    assert.equal(lines[1], "!! too long without choosing an alias");
    assert.ok(elapsed >= aliasTimeoutMs - 20, `closed after ${elapsed} ms`);
    assert.ok(elapsed < aliasTimeoutMs + 1500, `closed after ${elapsed} ms`);
    assert.ok(server.log.some((line) => line.includes("closed before joining (no alias in time)")));
    // Joined members are not subject to it: alice and bob were silent longer.
    await alice.send("still here");
    assert.match(await nextLine(bob), live("alice: still here"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() disconnects a joined client idle for idleTimeoutMs", async () => {
  const idleTimeoutMs = 400;
  const aliasTimeoutMs = 200;
  await using server = startServer({ idleTimeoutMs, aliasTimeoutMs });
  const port = server.addr.port;
  const started = Date.now();
  await using alice = await TestClient.join(port, "alice");
  // A silent newcomer, dropped after aliasTimeoutMs, marks the time for bob
  // to join: bob then goes idle well after alice does.
  await using clock = await TestClient.connect(port);
  assert.equal((await readToEnd(clock, 3000)).at(-1), "!! too long without choosing an alias");
  await using bob = await TestClient.join(port, "bob");
  const bobJoined = Date.now();
  assert.deepEqual(await readToEnd(alice, idleTimeoutMs + 2000), [
    alice.lines.seen.at(-2)!,
    "!! idle for too long",
  ]);
  assert.match(alice.lines.seen.at(-2)!, live("--> bob joined"));
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= idleTimeoutMs - 20, `alice closed after ${elapsed} ms`);
  assert.ok(elapsed < idleTimeoutMs + 1500, `alice closed after ${elapsed} ms`);
  const rest = await readToEnd(bob, idleTimeoutMs + 2000);
  const bobElapsed = Date.now() - bobJoined;
  assert.equal(rest.length, 2, JSON.stringify(rest));
  assert.match(rest[0]!, live("<-- alice left (idle)"));
  assert.equal(rest[1], "!! idle for too long");
  assert.ok(bobElapsed >= idleTimeoutMs - 20, `bob closed after ${bobElapsed} ms`);
  assert.equal(server.room.size, 0);
  assert.ok(server.log.some((line) => line.endsWith("alice: left (idle)")), server.log.join("\n"));
});

/**
 * A clock for `serve()` that a test can move forward, and a way to wait
 * until the server has read the moved clock twice. Sessions read it too, but
 * only on input and output: with every client idle, the reads are the
 * deadline timer's sweeps.
 */
function movableClock() {
  let offset = 0;
  let reads = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  return {
    now: () => {
      reads++;
      for (const waiter of waiters.filter((w) => reads >= w.at)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      return Date.now() + offset;
    },
    /** Moves the clock forward, then waits for two sweeps of the timer. */
    async jump(ms: number): Promise<void> {
      offset += ms;
      await withTimeout(
        new Promise<void>((resolve) => waiters.push({ at: reads + 2, resolve })),
        WAIT_MS,
        "the deadline timer to run",
      );
    },
  };
}

const YEAR_MS = 365 * 24 * 3600 * 1000;

Deno.test("serve() never disconnects an idle joined client by default, however long it is idle", async () => {
  const clock = movableClock();
  await using server = startServer({ clock: clock.now });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await clock.jump(YEAR_MS);
    assert.equal(server.room.size, 2);
    await assertNothingBefore(bob, alice, "alice", "not idle-kicked");
    await assertNothingBefore(alice, bob, "bob", "me neither");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() with idleTimeoutMs disconnects a client once the clock passes it", async () => {
  // The same jump as above: it does disconnect when a timeout is set.
  const clock = movableClock();
  await using server = startServer({ clock: clock.now, idleTimeoutMs: 3600_000 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  try {
    await clock.jump(YEAR_MS);
    for (const client of clients) {
      assert.equal((await readToEnd(client)).at(-1), "!! idle for too long");
    }
  } finally {
    await closeAll(clients);
  }
});

/**
 * After a slot was freed, connects until the server prompts instead of
 * refusing (the server forgets a closed session a moment after the room
 * does). Bounded in attempts.
 */
async function connectOnceFree(port: number, refusal: string): Promise<TestClient> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const client = await TestClient.connect(port);
    const first = await client.lines.next();
    if (first?.startsWith("? alias: ")) return client;
    assert.equal(first, refusal);
    await client.close();
  }
  return assert.fail("the freed slot never became available");
}

Deno.test("serve() refuses a connection past maxClients with one reason line, then EOF", async () => {
  await using server = startServer({ maxClients: 2 });
  const port = server.addr.port;
  const clients = await joinAll(port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    const refusal = "!! server is full (2 connections)";
    for (let i = 0; i < 3; i++) {
      await using extra = await TestClient.connect(port);
      assert.deepEqual(await readToEnd(extra), [refusal]);
    }
    assert.ok(server.log.some((line) => line.includes("refused (server is full (2 connections))")));
    assert.equal(server.connections, 2);
    await bob.close();
    await alice.expect(live("<-- bob left"));
    await using carol = await connectOnceFree(port, refusal);
    await carol.send("carol");
    await alice.expect(live("--> carol joined"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() refuses a connection past maxPerAddress with one reason line, then EOF", async () => {
  // Loopback is exempt by default; here it stands for a remote address.
  await using server = startServer({ maxPerAddress: 2, exemptAddresses: [] });
  const port = server.addr.port;
  const clients = await joinAll(port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    const refusal = "!! too many connections from your address (2)";
    await using extra = await TestClient.connect(port);
    assert.deepEqual(await readToEnd(extra), [refusal]);
    assert.ok(server.log.some((line) => line.includes("refused (too many connections")));
    await bob.close();
    await alice.expect(live("<-- bob left"));
    await using carol = await connectOnceFree(port, refusal);
    await carol.send("carol");
    await alice.expect(live("--> carol joined"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() shows NUL bytes and lone CRs escaped and refuses them in aliases", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await alice.write(encoder.encode("nul\0byte\nlone\rcr\n\r\n\r\r\n\0\n"));
    assert.match(await nextLine(bob), live("alice: nul^@byte"));
    assert.match(await nextLine(bob), live("alice: lone^Mcr"));
    assert.match(await nextLine(bob), live("alice: ^@"));
    await using newcomer = await TestClient.connect(server.addr.port);
    await newcomer.expect(/^\? alias: /);
    await newcomer.write(encoder.encode("ev\0il\n"));
    assert.match(await nextLine(newcomer), /^! an alias is 1 to 32 /);
    await newcomer.write(encoder.encode("ca\rrol\n"));
    assert.match(await nextLine(newcomer), /^\? alias: /);
    assert.match(await nextLine(newcomer), /^! an alias is 1 to 32 /);
    await newcomer.send("carol");
    await alice.expect(live("--> carol joined"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() refuses a 10 KB alias as too long and still lets that connection join", async () => {
  await using server = startServer();
  await using client = await TestClient.connect(server.addr.port);
  await client.expect(/^\? alias: /);
  await client.send("a".repeat(10 * 1024));
  assert.equal(await nextLine(client), "! line too long: at most 4096 bytes; it was not delivered");
  assert.match(await nextLine(client), /^\? alias: /);
  await client.send("a".repeat(32 * 8));
  assert.equal(await nextLine(client), "! an alias is at most 32 characters, got 256");
  assert.match(await nextLine(client), /^\? alias: /);
  await client.send("alice");
  assert.match(await nextLine(client), live("-- welcome, alice! you are the only one here"));
});

Deno.test("serve() assembles a line sent one byte per write", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using slow = await TestClient.connect(server.addr.port);
  (slow.conn as Deno.TcpConn).setNoDelay(true);
  await slow.expect(/^\? alias: /);
  const text = encoder.encode("slowpoke\none byte at a time, héllo\n");
  for (let i = 0; i < text.length; i++) await slow.write(text.subarray(i, i + 1));
  await bob.expect(live("--> slowpoke joined"));
  assert.match(await nextLine(bob), live("slowpoke: one byte at a time, héllo"));
});

/** Runs `task(i)` for i in [0, count) with at most `limit` running at once. */
async function pool(count: number, limit: number, task: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

/** Connects with node:net, optionally writes, then resets; resolves once closed. */
function resetSoon(port: number, write?: Uint8Array): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.on("error", () => {});
      socket.once("close", () => resolve());
      socket.once("connect", () => {
        if (write) socket.write(write);
        socket.resetAndDestroy();
      });
    }),
    WAIT_MS,
    "a reset socket to close",
  );
}

Deno.test("serve() survives a storm of connects and resets and still serves a normal client", async () => {
  await using server = startServer({ maxPerAddress: 1000 });
  const port = server.addr.port;
  await using watcher = await TestClient.join(port, "watcher");
  const garbage = new Uint8Array(3000).map((_, i) => (i * 37) % 256);
  await pool(300, 50, async (i) => {
    switch (i % 4) {
      case 0:
        return resetSoon(port);
      case 1:
        return resetSoon(port, garbage);
      case 2:
        return resetSoon(port, encoder.encode(`storm${i}\nhello from the storm\n`));
      default: {
        // A plain connect and close, without reading.
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
      }
    }
  });
  await using alice = await TestClient.join(port, "alice");
  await watcher.expect(live("--> alice joined"), 10_000);
  await alice.send("calm after the storm");
  await watcher.expect(live("alice: calm after the storm"));
  assert.ok(!server.log.some((line) => line.includes("unexpected error")), server.log.join("\n"));
});

Deno.test("serve() lets 1000 clients join and delivers one broadcast to all of them", async () => {
  const count = 1000;
  await using server = startServer({ maxPerAddress: 2 * count });
  const port = server.addr.port;
  const clients: TestClient[] = [];
  try {
    const started = Date.now();
    for (let batch = 0; batch < count; batch += 100) {
      const joined = await Promise.allSettled(
        Array.from({ length: 100 }, (_, i) => TestClient.join(port, `user${batch + i}`)),
      );
      for (const result of joined) {
        if (result.status === "fulfilled") clients.push(result.value);
      }
      const failed = joined.find((result) => result.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    assert.equal(server.room.size, count);
    const joinedMs = Date.now() - started;
    const [first, ...others] = clients as [TestClient, ...TestClient[]];
    await first.send("hello, all of you");
    const sent = Date.now();
    await Promise.all(others.map((client) => client.expect(live("user0: hello, all of you"))));
    const deliveredMs = Date.now() - sent;
    assert.ok(joinedMs + deliveredMs < 15_000, `joins ${joinedMs} ms, broadcast ${deliveredMs} ms`);
  } finally {
    // Stop the server first: closing a thousand members one by one would
    // announce every leave to everyone left.
    await server.shutdown();
    await closeAll(clients);
  }
});

Deno.test("serve() gives a client its full burst after joining, whatever it sent during the handshake", async () => {
  // One line a second: next to nothing refills during the test. Before
  // joining, this client sends /nohistory, an invalid alias and a taken one:
  // three lines that must not cost it any of its 5 chat lines.
  await using server = startServer({ rateLimit: 1, rateBurst: 5 });
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using alice = await TestClient.connect(server.addr.port);
  await alice.expect(/^\? alias: /);
  await alice.send("/nohistory");
  await alice.expect(/^\? alias: history replay off; /);
  await alice.send("not valid!");
  assert.match(await nextLine(alice), /^! an alias is /);
  await alice.expect(/^\? alias: /);
  await alice.send("BOB");
  assert.equal(await nextLine(alice), "! BOB is taken; choose another");
  await alice.expect(/^\? alias: /);
  await alice.send("alice");
  await alice.expect(live("-- welcome, alice! 2 online: bob, alice"));
  assert.match(
    await nextLine(alice),
    live("-- limits: 1 line per second, bursts of 5; lines up to 4096 bytes"),
  );
  await bob.expect(live("--> alice joined"));

  const burst = Array.from({ length: 5 }, (_, i) => `burst ${i}\n`).join("");
  await alice.write(encoder.encode(burst));
  for (let i = 0; i < 5; i++) assert.match(await nextLine(bob), live(`alice: burst ${i}`));
  // Had any of them been delayed, alice's "slow down" would come before this.
  await bob.send("all five arrived");
  assert.match(await nextLine(alice), live("bob: all five arrived"));
  // The bucket is empty now: the limit is real.
  await alice.send("one too many");
  assert.match(await nextLine(alice), slowDown("1 line", 5));
});
