/**
 * What an operator runs the server with: `--log FILE` (reopened on SIGHUP,
 * as logrotate expects), `--log-format json`, and `--motd FILE` (re-read on
 * SIGHUP). Real processes, real files in a temporary directory, real sockets.
 */

import assert from "node:assert/strict";
import {
  closeAll,
  live,
  MAIN,
  nextLine,
  spawnServer,
  startServer,
  TestClient,
  WAIT_MS,
} from "../_helpers.ts";
import { formatLogLine } from "../../server/log_file.ts";

const SIGHUP_WORKS = Deno.build.os !== "windows";

/** A fresh temporary directory, removed when disposed. */
function tempDir(): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix: "confab_operator_" });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** The file's text, or "" while it does not exist. */
function readOrEmpty(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/** Polls `path` (bounded in time and tries) until its text matches `pattern`; returns the text. */
async function waitForText(path: string, pattern: RegExp, timeoutMs = WAIT_MS): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = "";
  for (let tries = 0; tries < 1000 && Date.now() < deadline; tries++) {
    text = readOrEmpty(path);
    if (pattern.test(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${pattern} in ${path}; it holds: ${JSON.stringify(text)}`);
}

/** Stops the server with SIGTERM and checks it exits 0. */
async function stop(proc: Awaited<ReturnType<typeof spawnServer>>): Promise<void> {
  proc.child.kill("SIGTERM");
  assert.equal(await proc.exit(), 0);
}

Deno.test("confab serve --log appends the log to FILE, never what anyone wrote", async () => {
  using dir = tempDir();
  const path = `${dir.path}/confab.log`;
  Deno.writeTextFileSync(path, "an older line\n");
  await using proc = await spawnServer(["--log", path]);
  const ann = await TestClient.join(proc.port, "ann");
  try {
    await waitForText(path, /127\.0\.0\.1:\d+ ann: joined \(1 online\)\n/);
    const joined = await TestClient.join(proc.port, "bob");
    await ann.expect(live("--> bob joined"));
    await ann.send("the secret plans");
    await joined.expect(live("ann: the secret plans"));
    await closeAll([joined]);
    await ann.expect(live("<-- bob left"));
  } finally {
    await ann.close();
  }
  await stop(proc);
  const text = Deno.readTextFileSync(path);
  assert.match(text, /^an older line\n/, "appended, not overwritten");
  assert.match(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z listening on 127\.0\.0\.1:\d+$/m);
  assert.match(text, / 127\.0\.0\.1:\d+ bob: left$/m);
  assert.match(text, / stopped\n$/);
  assert.doesNotMatch(text, /secret|plans/, "chat text stays out of the log");
  assert.deepEqual(await proc.stderr.rest(), [], "nothing logged to stderr");
});

Deno.test({
  name: "confab serve --log reopens FILE by its path on SIGHUP after it was moved away",
  ignore: !SIGHUP_WORKS,
  fn: async () => {
    using dir = tempDir();
    const path = `${dir.path}/confab.log`;
    const rotated = `${path}.1`;
    await using proc = await spawnServer(["--log", path]);
    const clients: TestClient[] = [];
    try {
      clients.push(await TestClient.join(proc.port, "ann"));
      await waitForText(path, / ann: joined/);
      // logrotate moves the file away: lines go on to the moved file...
      Deno.renameSync(path, rotated);
      clients.push(await TestClient.join(proc.port, "bob"));
      await waitForText(rotated, / bob: joined/);
      assert.equal(readOrEmpty(path), "", "nothing at the path before SIGHUP");
      // ...until SIGHUP, which creates a new file at the path.
      proc.child.kill("SIGHUP");
      await waitForText(path, /Z log reopened\n/);
      clients.push(await TestClient.join(proc.port, "cid"));
      await waitForText(path, / cid: joined \(3 online\)\n/);
    } finally {
      await closeAll(clients);
    }
    await stop(proc);
    const old = Deno.readTextFileSync(rotated);
    const now = Deno.readTextFileSync(path);
    assert.match(old, / ann: joined/);
    assert.match(old, / bob: joined/);
    assert.doesNotMatch(old, /cid|log reopened/, "nothing after SIGHUP in the moved file");
    assert.doesNotMatch(now, /ann: joined|bob: joined/, "nothing from before in the new file");
    assert.match(now, / stopped\n$/);
    for (const line of (old + now).trimEnd().split("\n")) {
      assert.match(line, /^\d{4}-\d\d-\d\dT\S+Z \S/, `a whole line: ${line}`);
    }
  },
});

Deno.test({
  name: "confab serve --log keeps the old file when SIGHUP cannot reopen the path",
  ignore: !SIGHUP_WORKS,
  fn: async () => {
    using dir = tempDir();
    Deno.mkdirSync(`${dir.path}/logs`);
    const path = `${dir.path}/logs/confab.log`;
    const moved = `${dir.path}/logs.old/confab.log`;
    await using proc = await spawnServer(["--log", path]);
    const clients: TestClient[] = [];
    try {
      // The whole directory goes away: there is nowhere to reopen the path.
      Deno.renameSync(`${dir.path}/logs`, `${dir.path}/logs.old`);
      proc.child.kill("SIGHUP");
      await waitForText(
        moved,
        /Z cannot reopen --log \S+confab\.log: no such directory; still writing to the old file\n/,
      );
      clients.push(await TestClient.join(proc.port, "ann"));
      await waitForText(moved, / ann: joined/);
    } finally {
      await closeAll(clients);
    }
    await stop(proc);
    assert.equal(readOrEmpty(path), "");
    assert.deepEqual(await proc.stderr.rest(), []);
  },
});

Deno.test("formatLogLine() names the peer and alias of a line about one connection", () => {
  const time = new Date("2026-12-01T10:00:00Z");
  const json = (line: string) => JSON.parse(formatLogLine(line, "json", time));
  assert.deepEqual(json("[::1]:4000 zoë: left (idle)"), {
    time: "2026-12-01T10:00:00.000Z",
    msg: "[::1]:4000 zoë: left (idle)",
    peer: "[::1]:4000",
    alias: "zoë",
  });
  assert.deepEqual(json("10.0.0.7:4000 -: refused (server is full (1 connection))"), {
    time: "2026-12-01T10:00:00.000Z",
    msg: "10.0.0.7:4000 -: refused (server is full (1 connection))",
    peer: "10.0.0.7:4000",
  });
  assert.equal(json("10.0.0.7:4000: unexpected error: boom").peer, "10.0.0.7:4000");
  assert.equal(
    json("10.0.0.7:4000 sent a TLS handshake to a plaintext port").peer,
    "10.0.0.7:4000",
  );
  assert.equal(json("127.0.0.1:4000 sent a TLS handshake to a plaintext port").alias, undefined);
  assert.deepEqual(json("accept failed: too many open files; retrying every 100 ms"), {
    time: "2026-12-01T10:00:00.000Z",
    msg: "accept failed: too many open files; retrying every 100 ms",
  });
  assert.deepEqual(json("listening on [::1]:55555"), {
    time: "2026-12-01T10:00:00.000Z",
    msg: "listening on [::1]:55555",
  });
  assert.equal(formatLogLine("stopped", "text", time), "2026-12-01T10:00:00.000Z stopped\n");
});

Deno.test("confab serve --log-format json writes one object per line with time, msg, peer and alias", async () => {
  using dir = tempDir();
  const path = `${dir.path}/confab.jsonl`;
  await using proc = await spawnServer(["--log", path, "--log-format", "json"]);
  const ann = await TestClient.join(proc.port, "ann");
  try {
    await ann.send('a "quoted" secret');
    await waitForText(path, /"alias":"ann"/);
  } finally {
    await ann.close();
  }
  await waitForText(path, /ann: left/);
  await stop(proc);
  const text = Deno.readTextFileSync(path);
  assert.doesNotMatch(text, /secret/);
  const entries = text.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.ok(entries.length >= 4, text);
  for (const entry of entries) {
    assert.equal(typeof entry.msg, "string");
    assert.match(entry.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(new Date(entry.time).toISOString(), entry.time);
  }
  assert.match(entries[0].msg, /^listening on 127\.0\.0\.1:\d+$/);
  assert.equal(entries[0].peer, undefined, "no peer on a line about the server");
  const joined = entries.find((entry) => / joined /.test(entry.msg));
  assert.match(joined.msg, /^127\.0\.0\.1:\d+ ann: joined \(1 online\)$/);
  assert.match(joined.peer, /^127\.0\.0\.1:\d+$/);
  assert.equal(joined.alias, "ann");
  assert.equal(entries.at(-1).msg, "stopped");
});

Deno.test("confab serve --motd shows its lines, escaped, right after the limits notice", async () => {
  using dir = tempDir();
  const path = `${dir.path}/motd.txt`;
  Deno.writeTextFileSync(
    path,
    "Welcome to the room\r\n\x1b]0;owned\x07 and\ttabs\n\n\u202Eevil\n\n\n",
  );
  await using proc = await spawnServer(["--motd", path]);
  const ann = await TestClient.join(proc.port, "ann");
  try {
    assert.match(await nextLine(ann), live("-- Welcome to the room"));
    assert.match(await nextLine(ann), live("-- ^[]0;owned^G and tabs"));
    assert.match(await nextLine(ann), live("-- "), "a blank line inside is kept");
    assert.match(await nextLine(ann), live("-- \\u202Eevil"));
    // Trailing blank lines are dropped: the next line is someone arriving.
    const bob = await TestClient.join(proc.port, "bob");
    assert.match(await nextLine(ann), live("--> bob joined"));
    assert.match(await nextLine(bob), live("-- Welcome to the room"));
    await bob.close();
  } finally {
    await ann.close();
  }
  await stop(proc);
});

Deno.test({
  name: "confab serve re-reads --motd on SIGHUP and keeps the old one if it cannot",
  ignore: !SIGHUP_WORKS,
  fn: async () => {
    using dir = tempDir();
    const path = `${dir.path}/motd.txt`;
    Deno.writeTextFileSync(path, "first edition\n");
    await using proc = await spawnServer(["--motd", path]);
    const clients: TestClient[] = [];
    /** Joins `alias` and returns the two lines after the limits notice. */
    const motdOf = async (alias: string) => {
      const client = await TestClient.join(proc.port, alias);
      clients.push(client);
      return [await nextLine(client), await nextLine(client)];
    };
    try {
      const ann = await TestClient.join(proc.port, "ann");
      clients.push(ann);
      assert.match(await nextLine(ann), live("-- first edition"));
      Deno.writeTextFileSync(path, "second edition\nnow in two lines\n");
      proc.child.kill("SIGHUP");
      await proc.stderr.expect(/Z motd reloaded \(2 lines\)$/);
      assert.deepEqual(
        (await motdOf("bob")).map((line) => line.replace(/^\[[\d:]+\] /, "")),
        ["-- second edition", "-- now in two lines"],
      );
      Deno.removeSync(path);
      proc.child.kill("SIGHUP");
      await proc.stderr.expect(
        /Z motd not reloaded: cannot read --motd \S+motd\.txt: no such file; keeping the old one$/,
      );
      assert.deepEqual(
        (await motdOf("cid")).map((line) => line.replace(/^\[[\d:]+\] /, "")),
        ["-- second edition", "-- now in two lines"],
      );
    } finally {
      await closeAll(clients);
    }
    await stop(proc);
  },
});

Deno.test({
  name: "confab serve --log keeps serving when every write to the log fails",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // /dev/full opens, and every write to it fails as on a full disk. Deno
    // lets only a process with every permission open a device.
    await using proc = await spawnServer(["--log", "/dev/full"], [
      Deno.execPath(),
      "run",
      "-A",
      MAIN,
    ]);
    const ann = await TestClient.join(proc.port, "ann");
    const bob = await TestClient.join(proc.port, "bob");
    try {
      await ann.expect(live("--> bob joined"));
      await bob.send("still here");
      await ann.expect(live("bob: still here"));
    } finally {
      await closeAll([ann, bob]);
    }
    await stop(proc);
    assert.deepEqual(await proc.stderr.rest(), [], "no complaint, no stack trace");
  },
});

Deno.test("serve() cuts the message of the day to 20 lines and a quarter of the outbox", async (t) => {
  await t.step("lines", async () => {
    const motd = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    await using server = startServer({ motd });
    const ann = await TestClient.join(server.addr.port, "ann");
    try {
      for (let i = 1; i <= 20; i++) assert.match(await nextLine(ann), live(`-- line ${i}`));
      const bob = await TestClient.join(server.addr.port, "bob");
      assert.match(await nextLine(ann), live("--> bob joined"));
      await bob.close();
    } finally {
      await ann.close();
    }
    assert.ok(server.log.includes("motd cut to 20 lines (20 lines and 4096 bytes at most)"));
  });

  await t.step("bytes, with the smallest outbox", async () => {
    // 608 bytes of outbox leave 152 for the MOTD: three lines of 30 + 15
    // bytes each on the wire, then two bytes of a fourth.
    const motd = Array.from({ length: 5 }, () => "x".repeat(30));
    await using server = startServer({ motd, maxLineBytes: 16, outboxBytes: 608 });
    const ann = await TestClient.join(server.addr.port, "ann");
    try {
      for (let i = 0; i < 3; i++) assert.match(await nextLine(ann), live(`-- ${"x".repeat(30)}`));
      assert.match(await nextLine(ann), live("-- xx"));
      const bob = await TestClient.join(server.addr.port, "bob");
      assert.match(await nextLine(ann), live("--> bob joined"));
      await bob.close();
    } finally {
      await ann.close();
    }
    assert.ok(server.log.includes("motd cut to 4 lines (20 lines and 152 bytes at most)"));
  });

  await t.step("setMotd() applies to later newcomers, escaped", async () => {
    await using server = startServer({ motd: ["old"] });
    assert.equal(server.setMotd(["new\x1b[2J"]), 1);
    const ann = await TestClient.join(server.addr.port, "ann");
    try {
      assert.match(await nextLine(ann), live("-- new^[[2J"));
    } finally {
      await ann.close();
    }
  });
});
