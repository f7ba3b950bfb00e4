/**
 * Server limits over real sockets, with small injected options: slow
 * readers, stalled writes, flood control, timeouts, connection caps, hostile
 * input and a thousand clients at once.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { SERVE_DEFAULTS } from "../server/mod.ts";
import {
  closeAll,
  joinAll,
  live,
  nextLine,
  readToEnd,
  startServer,
  TestClient,
  WAIT_MS,
  withTimeout,
} from "./_helpers.ts";

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

Deno.test("serve() drops lines past the burst, says slow down once, and others still flow", async () => {
  // One line per 5 s: nothing refills during the test. The bucket is full
  // again at the join (the alias line does not count), so 5 chat lines pass.
  await using server = startServer({ rateLimit: 0.2, rateBurst: 5, floodLines: 1000 });
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    const burst = Array.from({ length: 10 }, (_, i) => `burst ${i}\n`).join("");
    await alice.write(encoder.encode(burst));
    for (let i = 0; i < 5; i++) assert.match(await nextLine(bob), live(`alice: burst ${i}`));
    assert.equal(
      await nextLine(alice),
      "! slow down: at most 0.2 lines per second (bursts of 5); lines are being dropped",
    );
    await alice.send("still dropped");
    await carol.send("carol still talks");
    // bob got none of burst 5..9 nor "still dropped"; alice no second warning.
    assert.match(await nextLine(bob), live("carol: carol still talks"));
    assert.match(await nextLine(alice), live("carol: carol still talks"));
    for (let i = 0; i < 5; i++) assert.match(await nextLine(carol), live(`alice: burst ${i}`));
    assert.equal(server.room.size, 3);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() disconnects a client that keeps flooding past floodLines", async () => {
  await using server = startServer({ rateLimit: 1, rateBurst: 2, floodLines: 10 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    const flood = Array.from({ length: 200 }, (_, i) => `flood ${i}\n`).join("");
    await alice.write(encoder.encode(flood));
    assert.deepEqual(await readToEnd(alice), [
      "! slow down: at most 1 lines per second (bursts of 2); lines are being dropped",
      "!! disconnected: flooding (far over 1 lines per second)",
    ]);
    assert.match(await nextLine(bob), live("alice: flood 0"));
    assert.match(await nextLine(bob), live("alice: flood 1"));
    assert.match(await nextLine(bob), live("<-- alice left (flooding)"));
    assert.equal(server.room.size, 1);
  } finally {
    await closeAll(clients);
  }
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

Deno.test("serve() never disconnects an idle joined client by default", async () => {
  assert.equal(SERVE_DEFAULTS.idleTimeoutMs, 0);
  // The alias timeout serves as the clock: by the time it has dropped a
  // silent newcomer, alice has been idle longer than that.
  const aliasTimeoutMs = 400;
  await using server = startServer({ aliasTimeoutMs });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    const idleSince = Date.now();
    await using silent = await TestClient.connect(server.addr.port);
    const lines = await readToEnd(silent, aliasTimeoutMs + 2000);
    assert.equal(lines.at(-1), "!! too long without choosing an alias");
    assert.ok(Date.now() - idleSince >= aliasTimeoutMs - 20);
    assert.equal(server.room.size, 2);
    await alice.send("not idle-kicked");
    assert.match(await nextLine(bob), live("alice: not idle-kicked"));
    await bob.send("me neither");
    assert.match(await nextLine(alice), live("bob: me neither"));
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
  await using server = startServer({ maxPerAddress: 2 });
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
  // One line per 5 s: nothing refills during the test. Before joining, this
  // client sends /nohistory, an invalid alias and a taken one: three lines
  // that must not cost it any of its 5 chat lines.
  await using server = startServer({ rateLimit: 0.2, rateBurst: 5, floodLines: 1000 });
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
  await alice.expect(live("-- welcome, alice! 1 online: bob"));
  assert.match(
    await nextLine(alice),
    live("-- limits: 0.2 lines per second, bursts of 5; lines up to 4096 bytes"),
  );
  await bob.expect(live("--> alice joined"));

  const burst = Array.from({ length: 5 }, (_, i) => `burst ${i}\n`).join("");
  await alice.write(encoder.encode(burst));
  for (let i = 0; i < 5; i++) assert.match(await nextLine(bob), live(`alice: burst ${i}`));
  // Had any of them been refused, alice's "slow down" would come before this.
  await bob.send("all five arrived");
  assert.match(await nextLine(alice), live("bob: all five arrived"));
  // The bucket is empty now: the limit is real.
  await alice.send("one too many");
  assert.equal(
    await nextLine(alice),
    "! slow down: at most 0.2 lines per second (bursts of 5); lines are being dropped",
  );
});
