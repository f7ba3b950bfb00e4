/**
 * Shutting down: `confab serve` as a subprocess stopped by a signal, and
 * `server.shutdown()` in process with a client that stopped reading.
 */

import assert from "node:assert/strict";
import {
  closeAll,
  type ConfabProcess,
  joinAll,
  live,
  nextLine,
  readToEnd,
  spawnConfab,
  startServer,
  TestClient,
  Tmux,
} from "../_helpers.ts";

const BYE = "!! server shutting down";
const DENO_JSON = new URL("../../deno.json", import.meta.url).pathname;

async function stopsOnSignal(signal: Deno.Signal): Promise<void> {
  await using proc = spawnConfab(["serve", "--port", "0"]);
  // Starting deno may take a while on a cold cache.
  const first = await proc.stdout.next(30_000);
  const m = /^confab \S+ listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "");
  assert.ok(m, `unexpected first line: ${first}`);
  const port = Number(m[1]);
  const clients = await joinAll(port, ["alice", "bob", "carol"]);
  try {
    // One more that has not chosen an alias yet.
    const newcomer = await TestClient.connect(port);
    clients.push(newcomer);
    await newcomer.expect(/^\? alias: /);
    await clients[0]!.send("last words");
    await clients[1]!.expect(live("alice: last words"));
    await clients[2]!.expect(live("alice: last words"));

    proc.child.kill(signal);
    const ends = await Promise.all(clients.map((client) => readToEnd(client)));
    for (const lines of ends) assert.equal(lines.at(-1), BYE, JSON.stringify(lines));
    // Nobody is told of anybody leaving: the joined ones get only the bye.
    assert.deepEqual(ends[0], [BYE]);
    assert.deepEqual(ends[1], [BYE]);
    assert.deepEqual(ends[2], [BYE]);
    assert.equal(await proc.exit(), 0);
    const stderr = await proc.stderr.rest();
    assert.ok(
      stderr.some((line) => line.includes("shutting down; 3 in the room")),
      stderr.join("\n"),
    );
    assert.ok(stderr.some((line) => line.endsWith(" stopped")), stderr.join("\n"));
  } finally {
    await closeAll(clients);
  }
}

Deno.test({
  name: "confab serve on SIGTERM tells every client it is shutting down and exits 0",
  ignore: Deno.build.os === "windows",
  fn: () => stopsOnSignal("SIGTERM"),
});

Deno.test("confab serve on SIGINT tells every client it is shutting down and exits 0", () =>
  stopsOnSignal("SIGINT"));

Deno.test("server.shutdown() finishes within shutdownGraceMs even with a client that stopped reading", async () => {
  const shutdownGraceMs = 300;
  const lineBytes = 16_000;
  await using server = startServer({
    shutdownGraceMs,
    rateLimit: 0,
    maxLineBytes: 16_384,
    outboxBytes: 64 * 1024 * 1024,
  });
  const clients = await joinAll(server.addr.port, ["stuck", "alice", "bob"]);
  const [stuck, alice, bob] = clients as [TestClient, TestClient, TestClient];
  try {
    // 16 MB for stuck, which never reads: several times what its kernel
    // buffers take, so part of it stays queued in the server.
    const pad = "x".repeat(lineBytes);
    for (let i = 0; i < 1000; i++) {
      await alice.send(`${i} ${pad}`);
      const line = await nextLine(bob);
      assert.ok(line.includes(`alice: ${i} x`), line.slice(0, 80));
    }
    assert.equal(server.room.size, 3);
    const started = Date.now();
    await server.shutdown();
    const elapsed = Date.now() - started;
    // It waited for stuck's queue (up to the grace time), and no longer.
    assert.ok(elapsed >= shutdownGraceMs - 20, `shutdown took only ${elapsed} ms`);
    assert.ok(elapsed < shutdownGraceMs + 1000, `shutdown took ${elapsed} ms`);
    assert.equal(server.connections, 0);
    assert.deepEqual(await readToEnd(alice), [BYE]);
    assert.deepEqual(await readToEnd(bob), [BYE]);
    await readToEnd(stuck);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("server.shutdown() with clients that keep up does not wait out the grace time", async () => {
  await using server = startServer({ shutdownGraceMs: 5000 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  try {
    const started = Date.now();
    await server.shutdown();
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 1000, `shutdown took ${elapsed} ms`);
    for (const client of clients) assert.deepEqual(await readToEnd(client), [BYE]);
    // Further calls return the same finished shutdown; new connections are refused.
    await server.shutdown();
    await server.finished;
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
  } finally {
    await closeAll(clients);
  }
});

/** Flags that let one client's queue hold far more than loopback's socket buffers. */
const BIG_QUEUE_FLAGS = [
  "--rate",
  "0",
  "--max-line-bytes",
  "65536",
  "--outbox-bytes",
  String(256 * 1024 * 1024),
];

/**
 * Joins three clients to the server on `port`, one of which never reads, and
 * queues 32 MB for that one (more than loopback's socket buffers hold), so
 * that a graceful shutdown has to wait out the whole grace time. Returns the
 * clients, for the caller to close.
 */
async function holdUpShutdown(port: number): Promise<TestClient[]> {
  const clients = await joinAll(port, ["stuck", "talker", "watcher"]);
  // clients[0] is the stuck one: it never reads.
  const [, talker, watcher] = clients as [TestClient, TestClient, TestClient];
  try {
    const line = "x".repeat(60_000);
    const lines = 530;
    const sending = (async () => {
      for (let i = 0; i < lines; i++) await talker.send(`${i} ${line}`);
    })();
    for (let i = 0; i < lines; i++) await watcher.expect(`talker: ${i} x`, 10_000);
    await sending;
    return clients;
  } catch (error) {
    await closeAll(clients);
    throw error;
  }
}

/**
 * Runs `confab serve` with a shutdown held up by a stuck client (see
 * {@linkcode holdUpShutdown}) and calls `fn` while that is so.
 */
async function withHeldUpShutdown(
  graceSeconds: number,
  fn: (proc: ConfabProcess) => Promise<void>,
): Promise<void> {
  await using proc = spawnConfab([
    "serve",
    "--port",
    "0",
    ...BIG_QUEUE_FLAGS,
    "--shutdown-grace",
    String(graceSeconds),
  ]);
  const first = await proc.stdout.next(30_000);
  const port = Number(/listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "")?.[1]);
  assert.ok(port, `unexpected first line: ${first}`);
  const clients = await holdUpShutdown(port);
  try {
    await fn(proc);
  } finally {
    await closeAll(clients);
  }
}

Deno.test({
  name:
    "confab serve exits at once on a second, separate SIGINT while a stuck client holds up the shutdown",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withHeldUpShutdown(60, async (proc) => {
      proc.child.kill("SIGINT");
      await proc.stderr.expect("shutting down", 10_000);
      const started = Date.now();
      // A second press comes later than the first; keep pressing (a bounded
      // number of times) until one counts as separate.
      let code: number | undefined;
      for (let tries = 0; code === undefined && tries < 30; tries++) {
        proc.child.kill("SIGINT");
        code = await exitedWithin(proc, 100);
      }
      assert.equal(code, 130);
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
      await proc.stderr.expect("confab: second SIGINT; exiting now");
    });
  },
});

Deno.test({
  name:
    "confab serve takes two SIGINTs a few ms apart (one Ctrl-C passed on by deno task) as one: a graceful exit 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withHeldUpShutdown(1, async (proc) => {
      proc.child.kill("SIGINT");
      await proc.stderr.expect("shutting down", 10_000);
      proc.child.kill("SIGINT");
      // The grace time runs out, the stuck client is closed, and that is all.
      assert.equal(await proc.exit(10_000), 0);
      const stderr = await proc.stderr.rest();
      assert.ok(stderr.some((line) => line.endsWith(" stopped")), stderr.join("\n"));
      assert.ok(!stderr.some((line) => line.includes("second SIGINT")), stderr.join("\n"));
    });
  },
});

/** The exit code if `proc` exits within `ms`, else undefined. */
async function exitedWithin(proc: ConfabProcess, ms: number): Promise<number | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((
    resolve,
  ) => (timer = setTimeout(() => resolve(undefined), ms)));
  const code = await Promise.race([proc.child.status.then((s) => s.code), late]);
  clearTimeout(timer);
  return code;
}

Deno.test({
  name: "deno task serve in a terminal: one Ctrl-C with clients connected is a graceful exit 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using tmux = new Tmux();
    // deno task passes the terminal's Ctrl-C on to confab, which also gets it
    // from the terminal: the same press twice.
    await tmux.startCommand(
      "serve",
      [
        Deno.execPath(),
        "task",
        "--config",
        DENO_JSON,
        "serve",
        "--port",
        "0",
        ...BIG_QUEUE_FLAGS,
        "--shutdown-grace",
        "1",
      ],
      {},
      { ctrlC: true, columns: 160 },
    );
    const listening = /confab \S+ listening on 127\.0\.0\.1:(\d+)/;
    const rows = await tmux.waitFor(
      "serve",
      "the listening line",
      (rows) => rows.some((r) => listening.test(r)),
      { timeoutMs: 30_000 },
    );
    const port = Number(listening.exec(rows.find((r) => listening.test(r))!)![1]);
    const clients = await holdUpShutdown(port);
    try {
      await tmux.press("serve", "C-c");
      const [, talker, watcher] = clients as [TestClient, TestClient, TestClient];
      for (const client of [talker, watcher]) await client.expect(BYE, 10_000);
      assert.equal(await tmux.exitCode("serve"), 0);
      const screen = (await tmux.screen("serve", false, true)).join("\n");
      assert.match(screen, / stopped$/m);
      assert.doesNotMatch(screen, /second SIGINT/);
    } finally {
      await closeAll(clients);
    }
  },
});

Deno.test({
  name: "deno task join in a terminal: one Ctrl-C leaves cleanly with exit 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using server = startServer();
    await using bob = await TestClient.join(server.addr.port, "bob");
    await using tmux = new Tmux();
    await tmux.startCommand(
      "alice",
      [
        Deno.execPath(),
        "task",
        "--config",
        DENO_JSON,
        "join",
        "--alias",
        "alice",
        "--port",
        String(server.addr.port),
      ],
      {},
      { ctrlC: true },
    );
    await bob.expect(live("--> alice joined"), 30_000);
    await tmux.waitFor(
      "alice",
      "the prompt",
      (rows) => rows.some((r) => r.startsWith("alice #lobby>")),
    );
    await tmux.press("alice", "C-c");
    await bob.expect(live("<-- alice left"));
    assert.equal(await tmux.exitCode("alice"), 0);
    const screen = (await tmux.screen("alice", false, true)).join("\n");
    assert.doesNotMatch(screen, /second SIGINT/);
  },
});
