/**
 * `confab join` as a subprocess with piped stdio, against a real server in
 * this process (or a scripted TCP peer when the test needs a server that
 * misbehaves): what it sends, what it prints, and how it exits.
 */

import assert from "node:assert/strict";
import {
  type ConfabProcess,
  type FakePeer,
  LineSource,
  live,
  spawnConfab,
  startServer,
  TestClient,
  WAIT_MS,
  withFakeServer,
  withTimeout,
} from "../_helpers.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
const CA = `${FIXTURES}test_only_ca.pem`;
const encoder = new TextEncoder();

/** Starts `confab join --alias ALIAS --port PORT ...` with no password in its environment. */
function join(
  port: number,
  alias: string,
  args: string[] = [],
  env: Record<string, string> = {},
): ConfabProcess {
  return spawnConfab(["join", "--alias", alias, "--port", String(port), ...args], {
    env: { CONFAB_PASSWORD: "", ...env },
  });
}

/** Waits for the process to exit and returns its code with every line it wrote. */
async function finish(
  proc: ConfabProcess,
  timeoutMs = WAIT_MS,
): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const code = await proc.exit(timeoutMs);
  await proc.stdout.rest();
  await proc.stderr.rest();
  return { code, stdout: proc.stdout.seen, stderr: proc.stderr.seen };
}

/** Waits until the client has joined (its welcome notice is on stdout). */
async function joined(proc: ConfabProcess): Promise<void> {
  await proc.stdout.expect(/-- limits: /);
}

function assertNoControlBytes(lines: string[]): void {
  for (const line of lines) {
    assert.doesNotMatch(
      line,
      // deno-lint-ignore no-control-regex -- finding control bytes is the point
      /[\x00-\x08\x0b-\x1f\x7f-\x9f]/,
      `control byte in ${JSON.stringify(line)}`,
    );
  }
}

/** How a confab server older than rooms answers a command at the alias prompt. */
const OLDER_REFUSAL = "! choose an alias first (/quit leaves, /nohistory skips history)\n";

/**
 * The fake server's alias prompt, answered as a confab server older than
 * rooms answers the client's `/join`; returns the line that follows.
 */
async function promptAsOlder(peer: FakePeer): Promise<string> {
  await peer.send("? alias: choose an alias\n");
  assert.equal(await peer.lines.expect(/\S/), "/join");
  await peer.send(`${OLDER_REFUSAL}? alias: choose an alias\n`);
  return await peer.lines.expect(/\S/);
}

/** The fake server's side of a handshake: prompt, the alias, a welcome. */
async function fakeHandshake(peer: FakePeer, alias: string): Promise<void> {
  assert.equal(await promptAsOlder(peer), alias);
  await peer.send(`[12:00:00] -- welcome, ${alias}! you are the only one here\n`);
}

Deno.test("confab join sends piped lines to the room, leaves at end of input and exits 0", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using ci = join(server.addr.port, "ci");
  await ci.write("build finished\n");
  await ci.closeStdin();
  await bob.expect(live("--> ci joined"));
  await bob.expect(live("ci: build finished"));
  await bob.expect(live("<-- ci left"));
  const { code, stderr } = await finish(ci);
  assert.equal(code, 0);
  assert.deepEqual(stderr, []);
});

Deno.test("confab join prints others' lines as plain text, without escape codes, when piped", async () => {
  for (const env of [{}, { NO_COLOR: "1" }]) {
    await using server = startServer();
    await using ci = join(server.addr.port, "ci", [], env);
    await joined(ci);
    await using bob = await TestClient.join(server.addr.port, "bob");
    // Mentions are highlighted in colour on a terminal, and never when piped.
    await bob.send("hello ci, the build is green");
    await bob.send("/me waves");
    assert.match(await ci.stdout.expect("bob:"), /^\d\d:\d\d bob: hello ci, the build is green$/);
    assert.match(await ci.stdout.next() ?? "", /^\d\d:\d\d \* bob waves$/);
    await ci.closeStdin();
    const { code, stdout } = await finish(ci);
    assert.equal(code, 0);
    assertNoControlBytes(stdout);
    assert.ok(stdout.some((l) => /^\d\d:\d\d --> bob joined$/.test(l)), JSON.stringify(stdout));
  }
});

Deno.test("confab join --no-time prints lines without a time stamp", async () => {
  await using server = startServer();
  await using ci = join(server.addr.port, "ci", ["--no-time"]);
  await joined(ci);
  await using bob = await TestClient.join(server.addr.port, "bob");
  await bob.send("no clocks here");
  assert.equal(await ci.stdout.expect("bob:"), "bob: no clocks here");
  await ci.closeStdin();
  assert.equal(await ci.exit(), 0);
});

Deno.test("confab join shows a hostile line relayed by the server escaped", async () => {
  await using server = startServer();
  await using ci = join(server.addr.port, "ci");
  await joined(ci);
  await using bob = await TestClient.join(server.addr.port, "bob");
  await bob.send("evil\x1b[2J\rmallory: I am admin\x07");
  const line = await ci.stdout.expect("bob:");
  assert.match(line, /^\d\d:\d\d bob: evil\^\[\[2J\^Mmallory: I am admin\^G$/);
  await ci.closeStdin();
  const { code, stdout } = await finish(ci);
  assert.equal(code, 0);
  assertNoControlBytes(stdout);
});

Deno.test("confab join escapes control characters even when the server does not", async () => {
  const hostile = "\x1b]0;pwned\x07\x1b[2Jhi\x1b[0m\x9b31m";
  for (const json of [false, true]) {
    await withFakeServer(async (peer) => {
      await fakeHandshake(peer, "ci");
      await peer.send(`[12:00:01] mal\x07lory: ${hostile}\n`);
      await peer.send("\x1b[2J\rnot protocol at all\n");
      await peer.send("!! bye now\x1b[5m\n");
    }, async (port) => {
      await using ci = join(port, "ci", json ? ["--json"] : []);
      const { code, stdout, stderr } = await finish(ci);
      assert.equal(code, 6, `exit code; stderr: ${stderr}`);
      assertNoControlBytes(stdout);
      assertNoControlBytes(stderr);
      assert.ok(!stdout.some((l) => l.includes("\x9b")), "no C1 CSI");
      if (json) {
        const [, message, unknown, bye] = stdout.map((l) => JSON.parse(l));
        assert.deepEqual([message.type, message.from, message.text], [
          "message",
          "mal\x07lory",
          hostile,
        ]);
        assert.deepEqual(unknown, { type: "unknown", text: "\x1b[2J\rnot protocol at all" });
        assert.deepEqual(bye, { type: "bye", text: "bye now\x1b[5m" });
      } else {
        assert.match(
          stdout[1]!,
          /^\d\d:\d\d mal\^Glory: \^\[\]0;pwned\^G\^\[\[2Jhi\^\[\[0m\\x9B31m$/,
        );
        assert.equal(stdout[2], "^[[2J^Mnot protocol at all");
        assert.equal(stdout[3], "!! bye now^[[5m");
        assert.deepEqual(stderr, ["confab: disconnected by the server: bye now^[[5m"]);
      }
    });
  }
});

Deno.test("confab join exits 7 with the reason when it is turned away before joining", async (t) => {
  for (
    const [what, options, reason] of [
      ["the server is full", { maxClients: 1 }, "server is full (1 connection)"],
      [
        "its address has too many connections",
        // Loopback is exempt by default; here it stands for a remote address.
        { maxPerAddress: 1, exemptAddresses: [] },
        "too many connections from your address (1)",
      ],
    ] as const
  ) {
    await t.step(what, async () => {
      await using server = startServer(options);
      await using _bob = await TestClient.join(server.addr.port, "bob");
      await using ci = join(server.addr.port, "ci");
      const { code, stdout, stderr } = await finish(ci);
      assert.equal(code, 7);
      assert.deepEqual(stdout, [`!! ${reason}`]);
      assert.deepEqual(stderr, [
        `confab: 127.0.0.1:${server.addr.port} closed the connection before we joined: ${reason}`,
      ]);
    });
  }
});

Deno.test("confab join escapes a goodbye that arrives before it has joined", async () => {
  await withFakeServer(async (peer) => {
    await peer.send("!! go\x1b[2J away\x07\n");
  }, async (port) => {
    await using ci = join(port, "ci");
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 7);
    assert.deepEqual(stdout, ["!! go^[[2J away^G"]);
    assert.deepEqual(stderr, [
      `confab: 127.0.0.1:${port} closed the connection before we joined: go^[[2J away^G`,
    ]);
  });
});

Deno.test("confab join never sends a blank line first: its first line answers the server's first prompt", async (t) => {
  await t.step("the alias prompt", async () => {
    await withFakeServer(async (peer) => {
      await peer.send("? alias: choose an alias\n");
      assert.equal(await peer.lines.next(), "/join");
      await peer.send(`${OLDER_REFUSAL}? alias: choose an alias\n`);
      assert.equal(await peer.lines.next(), "ci");
      await peer.send("[12:00:00] -- welcome, ci! you are the only one here\n");
    }, async (port) => {
      await using ci = join(port, "ci");
      assert.equal((await finish(ci)).code, 4);
    });
  });
  await t.step("the password prompt", async () => {
    await withFakeServer(async (peer) => {
      await peer.send("? password: this room needs a password\n");
      assert.equal(await peer.lines.next(), "sesame");
      await peer.send("? alias: choose an alias\n");
      assert.equal(await peer.lines.next(), "/join");
      await peer.send(`${OLDER_REFUSAL}? alias: choose an alias\n`);
      assert.equal(await peer.lines.next(), "ci");
      await peer.send("[12:00:00] -- welcome, ci! you are the only one here\n");
    }, async (port) => {
      await using ci = join(port, "ci", [], { CONFAB_PASSWORD: "sesame" });
      assert.equal((await finish(ci)).code, 4);
    });
  });
});

Deno.test("confab join exits 5 with the reason when the server shuts down", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using ci = join(server.addr.port, "ci");
  await joined(ci);
  await bob.expect(live("--> ci joined"));
  await server.shutdown();
  const { code, stdout, stderr } = await finish(ci);
  assert.equal(code, 5);
  assert.equal(stdout.at(-1), "!! server shutting down");
  assert.deepEqual(stderr, ["confab: disconnected by the server: server shutting down"]);
});

Deno.test("confab join exits 7 when its alias is refused and stdin is not a terminal", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using ci = join(server.addr.port, "BOB");
  const { code, stdout, stderr } = await finish(ci);
  assert.equal(code, 7);
  assert.ok(stdout.includes("! BOB is taken; choose another"), JSON.stringify(stdout));
  assert.deepEqual(stderr, ["confab: alias BOB was refused"]);
  // No one joined: bob's next line is the answer to this, not a join notice.
  await bob.send("/who");
  assert.match(await bob.lines.next() ?? "", live("-- 1 online:"));
});

Deno.test("confab join checks its alias before connecting and exits 2 when it breaks the rules", async () => {
  await using server = startServer();
  await using ci = join(server.addr.port, "has space");
  const { code, stderr } = await finish(ci);
  assert.equal(code, 2);
  assert.match(stderr[0] ?? "", /^confab: --alias: an alias is 1 to 32 letters/);
  assert.equal(server.log.some((line) => line.includes("joined")), false);
});

Deno.test("confab join exits 6 with the reason when the server drops it for idling", async () => {
  await using server = startServer({ idleTimeoutMs: 400 });
  await using ci = join(server.addr.port, "ci");
  const { code, stdout, stderr } = await finish(ci);
  assert.equal(code, 6);
  assert.equal(stdout.at(-1), "!! idle for too long");
  assert.deepEqual(stderr, ["confab: disconnected by the server: idle for too long"]);
});

Deno.test("confab join exits 4 when the connection closes without a goodbye", async () => {
  await withFakeServer(async (peer) => {
    await fakeHandshake(peer, "ci");
    await peer.send("[12:00:01] -- limits: no rate limit\n");
  }, async (port) => {
    await using ci = join(port, "ci");
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 4);
    assert.match(stdout[0] ?? "", /-- welcome, ci!/);
    assert.deepEqual(stderr, [`confab: the connection to 127.0.0.1:${port} was closed`]);
  });
});

Deno.test("confab join exits 3 when the peer closes before saying anything", async () => {
  await withFakeServer(async () => {}, async (port) => {
    await using ci = join(port, "ci");
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 3);
    assert.deepEqual(stdout, []);
    assert.equal(stderr.length, 1, JSON.stringify(stderr));
    // At once, the client sees either the end of the stream or a reset.
    assert.match(
      stderr[0]!,
      new RegExp(
        `^confab: 127\\.0\\.0\\.1:${port} (closed the connection without a word|` +
          "dropped the connection before saying anything: connection reset)$",
      ),
    );
  });
});

Deno.test("confab join exits 7 on a wrong password from --password-file", async () => {
  await using server = startServer({ password: "sesame" });
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "open up\n");
    await using ci = join(server.addr.port, "ci", ["--password-file", file]);
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 7);
    assert.ok(stdout.includes("! wrong password"), JSON.stringify(stdout));
    assert.deepEqual(stderr, ["confab: wrong password"]);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("confab join exits 7 when the room needs a password and none is given", async () => {
  await using server = startServer({ password: "sesame" });
  await using ci = join(server.addr.port, "ci");
  const { code, stderr } = await finish(ci);
  assert.equal(code, 7);
  assert.deepEqual(stderr, [
    "confab: the room needs a password: use --password-file or CONFAB_PASSWORD",
  ]);
});

Deno.test("confab join gets in with the password from --password-file or CONFAB_PASSWORD", async () => {
  await using server = startServer({ password: "sesame" });
  await using bob = await TestClient.connect(server.addr.port);
  await bob.expect(/^\? password: /);
  await bob.send("sesame");
  await bob.expect(/^\? alias: /);
  await bob.send("bob");
  await bob.expect(/-- limits: /);
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "sesame\n");
    await using fromFile = join(server.addr.port, "filed", ["--password-file", file]);
    await using fromEnv = join(server.addr.port, "envied", [], { CONFAB_PASSWORD: "sesame" });
    await joined(fromFile);
    await joined(fromEnv);
    await fromFile.write("via file\n");
    await bob.expect(live("filed: via file"));
    await fromEnv.write("via env\n");
    await bob.expect(live("envied: via env"));
    await fromFile.closeStdin();
    await fromEnv.closeStdin();
    assert.equal(await fromFile.exit(), 0);
    assert.equal(await fromEnv.exit(), 0);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("confab join --json prints exactly one JSON object per event, for every kind", async () => {
  await using server = startServer();
  await using ci = join(server.addr.port, "ci", ["--json"]);
  const event = async (type: string) => JSON.parse(await ci.stdout.expect(`{"type":"${type}"`));
  assert.equal((await event("notice")).text, "welcome, ci! you are the only one here");
  await using bob = await TestClient.join(server.addr.port, "bob");
  assert.equal((await event("join")).alias, "bob");
  await bob.send("hello ci");
  const message = await event("message");
  assert.deepEqual({ ...message, time: undefined }, {
    type: "message",
    time: undefined,
    history: false,
    from: "bob",
    text: "hello ci",
    room: "lobby",
  });
  assert.ok(!Number.isNaN(Date.parse(message.time)), `time ${message.time}`);
  assert.ok(Math.abs(Date.parse(message.time) - Date.now()) < 60_000, `time ${message.time}`);
  await bob.send("/me waves");
  const action = await event("action");
  assert.deepEqual([action.from, action.text, action.history], ["bob", "waves", false]);
  await bob.send("/msg ci psst");
  const incoming = await event("private");
  assert.equal(incoming.from, "bob");
  assert.equal(incoming.to, "you");
  assert.equal(incoming.text, "psst");
  await ci.write("/msg bob back at you\n");
  const outgoing = await event("private");
  assert.deepEqual([outgoing.from, outgoing.to, outgoing.text], ["you", "bob", "back at you"]);
  await bob.expect(live("(private) ci: back at you"));
  await ci.write("/frobnicate\n");
  assert.match((await event("error")).text, /^unknown command \/frobnicate/);
  await bob.send("/nick bobby");
  const nick = await event("nick");
  assert.deepEqual([nick.from, nick.to], ["bob", "bobby"]);
  await bob.send("/quit lunch");
  const leave = await event("leave");
  assert.deepEqual([leave.alias, leave.reason], ["bobby", "lunch"]);
  await server.shutdown();
  assert.equal((await event("bye")).text, "server shutting down");
  const { code, stdout } = await finish(ci);
  assert.equal(code, 5);
  const types = new Set<string>();
  for (const line of stdout) {
    const parsed = JSON.parse(line);
    assert.equal(typeof parsed, "object", line);
    assert.ok(parsed !== null && !Array.isArray(parsed), line);
    assert.equal(typeof parsed.type, "string", line);
    types.add(parsed.type);
  }
  assert.deepEqual(
    [...types].sort(),
    ["action", "bye", "error", "join", "leave", "message", "nick", "notice", "private"],
  );
});

Deno.test("confab join --no-history skips the replay that a plain join shows", async () => {
  await using server = startServer({ historySize: 5 });
  await using bob = await TestClient.join(server.addr.port, "bob");
  await bob.send("said before you came");
  // The server has taken the line once bob gets an answer to what followed it.
  await bob.send("/who");
  await bob.expect(live("-- 1 online:"));

  await using withHistory = join(server.addr.port, "hist");
  assert.match(
    await withHistory.stdout.next() ?? "",
    /^\[history \d{4}-\d\d-\d\d \d\d:\d\d\] bob: said before you came$/,
  );
  assert.match(await withHistory.stdout.next() ?? "", /-- welcome, hist! 2 online: bob, hist$/);

  await using without = join(server.addr.port, "nohist", ["--no-history"]);
  assert.match(
    await without.stdout.next() ?? "",
    /-- welcome, nohist! 3 online: bob, hist, nohist$/,
  );

  await withHistory.closeStdin();
  await without.closeStdin();
  const a = await finish(withHistory);
  const b = await finish(without);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  assert.ok(!b.stdout.some((l) => l.includes("said before you came")), JSON.stringify(b.stdout));
});

Deno.test("two confab join clients talk to each other", async () => {
  await using server = startServer();
  await using ann = join(server.addr.port, "ann");
  await joined(ann);
  await using ben = join(server.addr.port, "ben");
  await joined(ben);
  await ann.stdout.expect(/ --> ben joined$/);
  await ann.write("hi ben\n");
  assert.match(await ben.stdout.expect("ann:"), /^\d\d:\d\d ann: hi ben$/);
  await ben.write("hi ann\n");
  assert.match(await ann.stdout.expect("ben:"), /^\d\d:\d\d ben: hi ann$/);
  await ben.closeStdin();
  await ann.stdout.expect(/ <-- ben left$/);
  assert.equal(await ben.exit(), 0);
  await ann.closeStdin();
  assert.equal(await ann.exit(), 0);
});

/** A raw TLS connection to the server, joined under `alias`. */
async function tlsClient(port: number, alias: string) {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [await Deno.readTextFile(CA)],
  });
  const lines = new LineSource(conn.readable);
  const send = async (line: string) => {
    const bytes = encoder.encode(line + "\n");
    let offset = 0;
    while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
  };
  await lines.expect(/^\? alias: /);
  await send(alias);
  await lines.expect(/-- limits: /);
  return {
    lines,
    send,
    async [Symbol.asyncDispose]() {
      await lines.cancel();
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}

function tlsServer() {
  return startServer({
    cert: Deno.readTextFileSync(`${FIXTURES}test_only_server_cert.pem`),
    key: Deno.readTextFileSync(`${FIXTURES}test_only_server_key.pem`),
  });
}

Deno.test("confab join --tls --ca chats with a TLS server", async () => {
  await using server = tlsServer();
  await using bob = await tlsClient(server.addr.port, "bob");
  await using sec = join(server.addr.port, "sec", ["--tls", "--ca", CA]);
  await joined(sec);
  await bob.lines.expect(live("--> sec joined"));
  await sec.write("over tls\n");
  await bob.lines.expect(live("sec: over tls"));
  await bob.send("and back");
  assert.match(await sec.stdout.expect("bob:"), /^\d\d:\d\d bob: and back$/);
  await sec.closeStdin();
  await bob.lines.expect(live("<-- sec left"));
  const { code, stderr } = await finish(sec);
  assert.equal(code, 0);
  assert.deepEqual(stderr, []);
});

Deno.test("confab join without --tls exits 3 quickly with a hint when the server uses TLS", async () => {
  await using server = tlsServer();
  const started = Date.now();
  await using ci = join(server.addr.port, "ci");
  const { code, stdout, stderr } = await finish(ci);
  const took = Date.now() - started;
  assert.equal(code, 3);
  assert.deepEqual(stdout, []);
  assert.deepEqual(stderr, [`confab: 127.0.0.1:${server.addr.port} answered in TLS: add --tls`]);
  // Within 2 s of connecting (deno takes a moment to start): detected, not waited out.
  assert.ok(took < 2000 + 1000, `took ${took} ms`);
});

Deno.test("confab join --tls points at --ca, not at plaintext, when the certificate is not trusted", async () => {
  await using server = tlsServer();
  await using ci = join(server.addr.port, "ci", ["--tls"]);
  const { code, stdout, stderr } = await finish(ci);
  assert.equal(code, 3);
  assert.deepEqual(stdout, []);
  assert.deepEqual(stderr, [
    `confab: TLS with 127.0.0.1:${server.addr.port} failed: invalid peer certificate: ` +
    "UnknownIssuer (to trust the CA that signed the server's certificate, add --ca FILE)",
  ]);
});

Deno.test("confab join --tls exits 3 with a hint when the server does not use TLS", async () => {
  await using server = startServer();
  await using ci = join(server.addr.port, "ci", ["--tls", "--ca", CA]);
  const { code, stderr } = await finish(ci);
  assert.equal(code, 3);
  assert.equal(stderr.length, 1, JSON.stringify(stderr));
  assert.match(
    stderr[0]!,
    /^confab: TLS with 127\.0\.0\.1:\d+ failed: .*is the server using TLS\?/,
  );
});

/**
 * Reads `client`'s lines until `count` lines said by `alias` have arrived or
 * `timeoutMs` has passed; returns what was said, in order of arrival.
 */
async function collectSaid(
  client: TestClient,
  alias: string,
  count: number,
  timeoutMs: number,
): Promise<string[]> {
  const said: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (said.length < count) {
    const left = deadline - Date.now();
    let line: string | null;
    try {
      line = left > 0 ? await client.lines.next(left) : null;
    } catch {
      line = null;
    }
    if (line === null || line.includes(`<-- ${alias} left`)) {
      assert.fail(
        `only ${said.length} of ${count} lines arrived in ${timeoutMs} ms (then: ${line})`,
      );
    }
    const match = /^\[\d\d:\d\d:\d\d\] ([^:]+): (.*)$/.exec(line);
    if (match?.[1] === alias) said.push(match[2]!);
  }
  return said;
}

/**
 * Pipes `count` numbered lines through `confab join ARGS...`; asserts that all
 * arrive, in order, and that the client printed no error (no "slow down").
 */
async function pipeLines(
  server: { addr: Deno.NetAddr },
  count: number,
  timeoutMs: number,
  args: string[] = [],
): Promise<void> {
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using ci = join(server.addr.port, "ci", args);
  const sent = Array.from({ length: count }, (_, i) => `line ${i + 1} of ${count}`);
  await ci.write(sent.map((l) => l + "\n").join(""));
  await ci.closeStdin();
  await bob.expect(live("--> ci joined"));
  assert.deepEqual(await collectSaid(bob, "ci", count, timeoutMs), sent);
  await bob.expect(live("<-- ci left"));
  const { code, stdout } = await finish(ci);
  assert.equal(code, 0);
  assert.ok(!stdout.some((l) => l.startsWith("! ")), `errors: ${JSON.stringify(stdout)}`);
}

Deno.test("confab join paces 50 piped lines to the default rate limit and all arrive in order", async () => {
  await using server = startServer();
  // 19 at once, then 4.5 a second: about 7 s.
  await pipeLines(server, 50, 11_000);
});

Deno.test("confab join adopts the limits the server announces, tighter than the defaults", async () => {
  // A client pacing itself by the default burst (20) would lose lines here.
  await using server = startServer({ rateLimit: 20, rateBurst: 4 });
  await pipeLines(server, 40, 6_000);
});

Deno.test("confab join --no-history still gets its full burst: 30 piped lines all arrive in order", async () => {
  // /nohistory is sent during the handshake; it must not cost a chat line.
  await using server = startServer();
  await pipeLines(server, 30, 10_000, ["--no-history"]);
});

Deno.test("confab join exits 0 at once on SIGTERM while the server leaves the handshake hanging", async () => {
  let aliasSent!: () => void;
  const gotAlias = new Promise<void>((resolve) => (aliasSent = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await withFakeServer(async (peer) => {
    assert.equal(await promptAsOlder(peer), "ci");
    aliasSent();
    // Then nothing: no welcome, no goodbye, the connection stays open.
    await released;
  }, async (port) => {
    try {
      await using ci = join(port, "ci");
      await withTimeout(gotAlias, WAIT_MS, "the alias from confab join");
      const signalled = Date.now();
      ci.child.kill("SIGTERM");
      const code = await ci.exit(4000);
      const took = Date.now() - signalled;
      assert.equal(code, 0, `exit code ${code} after ${took} ms`);
      assert.ok(took < 2000, `took ${took} ms to exit`);
      const { stderr } = await finish(ci);
      assert.deepEqual(stderr, []);
    } finally {
      release();
    }
  });
});

/**
 * Runs `body` against a fake server that lets `confab join --alias ci` in
 * (no rate limit), reads its first chat line and then reads nothing more,
 * keeping the connection open until `body` is done. By then `confab join`
 * holds far more piped input than the sockets can buffer, so its writes to
 * the server block.
 */
async function withStuckServer(body: (ci: ConfabProcess) => Promise<void>): Promise<void> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let onFirstLine!: () => void;
  const firstLine = new Promise<void>((resolve) => (onFirstLine = resolve));
  await withFakeServer(async (peer) => {
    await fakeHandshake(peer, "ci");
    await peer.send("[12:00:00] -- limits: no rate limit\n");
    await peer.lines.expect(/^line 0 /);
    onFirstLine();
    await released;
  }, async (port) => {
    try {
      await using ci = join(port, "ci");
      // 24 MB: more than the two sockets' buffers on loopback hold together.
      const filler = "x".repeat(1000);
      const input = Array.from({ length: 24_000 }, (_, i) => `line ${i} ${filler}\n`).join("");
      await ci.write(input);
      await joined(ci);
      await withTimeout(firstLine, WAIT_MS, "the first chat line at the fake server");
      await body(ci);
    } finally {
      release();
    }
  });
}

Deno.test({
  name: "confab join exits 0 within a few seconds of SIGINT while the server has stopped reading",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withStuckServer(async (ci) => {
      const signalled = Date.now();
      ci.child.kill("SIGINT");
      const code = await ci.exit(8000);
      const took = Date.now() - signalled;
      assert.equal(code, 0, `exit code ${code} after ${took} ms`);
      // The client gives the server 3 s to take what is queued, then closes;
      // exiting much sooner would mean its writes were never held up.
      assert.ok(took < 6000, `took ${took} ms to exit`);
      assert.ok(took > 2000, `exited after ${took} ms: the writes were not blocked`);
      const { stderr } = await finish(ci);
      assert.deepEqual(stderr, []);
    });
  },
});

Deno.test({
  name: "confab join exits 130 at once on a second SIGINT while the server has stopped reading",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withStuckServer(async (ci) => {
      const signalled = Date.now();
      ci.child.kill("SIGINT");
      // Two signals sent back to back may reach the client as one, so the
      // second is sent again until the client exits (a bounded number of times).
      let code: number | undefined;
      for (let tries = 0; code === undefined && tries < 20; tries++) {
        ci.child.kill("SIGINT");
        code = await exitedWithin(ci, 100);
      }
      const took = Date.now() - signalled;
      assert.equal(code, 130, `exit code ${code} after ${took} ms`);
      // Well before the 3 s after which the first SIGINT alone ends it.
      assert.ok(took < 2500, `took ${took} ms to exit`);
      const { stderr } = await finish(ci);
      assert.deepEqual(stderr, ["confab: second SIGINT; exiting now"]);
    });
  },
});

/** The process's exit code if it exits within `ms`, else undefined. */
async function exitedWithin(proc: ConfabProcess, ms: number): Promise<number | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      proc.child.status.then((status) => status.code),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "confab join stops sending piped lines on SIGINT and leaves at once",
  ignore: Deno.build.os === "windows",
  async fn() {
    await using server = startServer();
    await using bob = await TestClient.join(server.addr.port, "bob");
    await using ci = join(server.addr.port, "ci");
    // 100 lines: a burst of 20 goes at once, the rest at 5 a second.
    await ci.write(Array.from({ length: 100 }, (_, i) => `number ${i}\n`).join(""));
    await bob.expect(live("ci: number 19"));
    const signalled = Date.now();
    ci.child.kill("SIGINT");
    const after: string[] = [];
    while (true) {
      const line = await bob.lines.next();
      assert.notEqual(line, null, "bob's connection ended");
      if (live("<-- ci left").test(line!)) break;
      if (line!.includes(" ci: ")) after.push(line!);
    }
    const took = Date.now() - signalled;
    // One line may have been on its way (taken from the queue, waiting its turn).
    assert.ok(after.length <= 1, `sent after SIGINT: ${JSON.stringify(after)}`);
    assert.ok(took < 2000, `took ${took} ms to leave`);
    assert.equal(await ci.exit(), 0);
  },
});

Deno.test("confab join --bell rings no bell when stdout is not a terminal", async () => {
  await using server = startServer();
  await using ci = join(server.addr.port, "ci", ["--bell", "--no-time"]);
  await joined(ci);
  await using bob = await TestClient.join(server.addr.port, "bob");
  await bob.send("ci, the build is red");
  assert.equal(await ci.stdout.expect("bob:"), "bob: ci, the build is red");
  await ci.closeStdin();
  const { code, stdout } = await finish(ci);
  assert.equal(code, 0);
  assertNoControlBytes(stdout);
});

Deno.test("confab join paces itself to a singular limit: 1 line per second, bursts of 1", async () => {
  const arrived: number[] = [];
  await withFakeServer(async (peer) => {
    await fakeHandshake(peer, "ci");
    await peer.send(
      "[12:00:00] -- limits: 1 line per second, bursts of 1; lines up to 4096 bytes\n",
    );
    for (const expected of ["one", "two"]) {
      assert.equal(await peer.lines.next(), expected);
      arrived.push(Date.now());
    }
  }, async (port) => {
    await using ci = join(port, "ci");
    await ci.write("one\ntwo\n");
    await finish(ci);
  });
  const gap = arrived[1]! - arrived[0]!;
  // A client that did not understand the limit would send both in its default burst.
  assert.ok(gap >= 900, `the second line came ${gap} ms after the first`);
});

Deno.test("every exit code confab join can return is in join --help and in the README", async () => {
  const { EXIT } = await import("../../client/mod.ts");
  // 130: a second Ctrl-C (SIGINT), which main.ts turns into an exit at once.
  const codes = [...Object.values(EXIT), 130];
  await using help = spawnConfab(["join", "--help"]);
  assert.equal(await help.exit(), 0);
  const text = (await help.stdout.rest()).join("\n");
  const status = text.slice(text.indexOf("Exit status:"));
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const join = readme.slice(readme.indexOf("### `confab join`"));
  const table = join.slice(join.indexOf("Exit status:"), join.indexOf("`--json` prints"));
  for (const code of codes) {
    assert.match(status, new RegExp(`(^|[\\s,])${code} `), `code ${code} in --help:\n${status}`);
    assert.match(table, new RegExp(`^\\| ${code} +\\| \\S`, "m"), `code ${code} in the README`);
  }
});

/**
 * A TCP proxy to `port` that accepts one connection and holds it, unanswered,
 * until `open()` is called, as a slow accept or a slow link does.
 */
function holdingProxy(port: number): AsyncDisposable & { port: number; open(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const conns: Deno.Conn[] = [];
  const piped = (async () => {
    const client = await listener.accept();
    conns.push(client);
    await opened;
    const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.push(upstream);
    await Promise.allSettled([
      client.readable.pipeTo(upstream.writable),
      upstream.readable.pipeTo(client.writable),
    ]);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    open,
    async [Symbol.asyncDispose]() {
      listener.close();
      open();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed by its streams */ }
      }
      await piped.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed by its streams */ }
      }
    },
  };
}

Deno.test("confab join still joins a confab server whose prompt comes after plain mode began", async () => {
  await using server = startServer();
  await using ann = await TestClient.join(server.addr.port, "ann");
  await using proxy = holdingProxy(server.addr.port);
  await using bob = join(proxy.port, "bob");
  await bob.write("hello room\n");
  // Silent past the probe: the client has taken it for a plain line server.
  assert.match(await bob.stderr.next() ?? "", / is not a confab server: /);
  proxy.open();
  await ann.expect(live("--> bob joined"));
  await ann.expect(live("bob: hello room"));
  assert.match(await bob.stderr.next() ?? "", / prompted late: it is a confab server$/);
  await bob.closeStdin();
  await ann.expect(live("<-- bob left"));
  const { code, stderr } = await finish(bob);
  assert.equal(code, 0, `stderr: ${stderr}`);
  assert.equal(stderr.length, 2, JSON.stringify(stderr));
});

Deno.test("confab join exits 6 with the reason when the server drops it as too slow", async () => {
  const reason = "disconnected: too slow: could not keep up with the room";
  await withFakeServer(async (peer) => {
    await fakeHandshake(peer, "ci");
    await peer.send("[12:00:01] -- limits: no rate limit\n");
    await peer.send(`!! ${reason}\n`);
    assert.equal(await peer.lines.next(), null);
  }, async (port) => {
    await using ci = join(port, "ci");
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 6, `stderr: ${stderr}`);
    assert.equal(stdout.at(-1), `!! ${reason}`);
    assert.deepEqual(stderr, [`confab: disconnected by the server: ${reason}`]);
  });
});
