/**
 * `confab join` against chat servers that are not confab: the tutorial-style
 * line server in `fixtures/line_chat_server.py` (which asks `alias?`, or a
 * prompt of the test's choosing, or nothing at all), `ncat --chat`, and
 * scripted TCP peers for what those cannot show.
 */

import assert from "node:assert/strict";
import { SPEAK_FIRST_MS } from "../../client/mod.ts";
import {
  type ConfabProcess,
  type PeerProcess,
  spawnConfab,
  spawnPeer,
  startLineServer,
  WAIT_MS,
  withFakeServer,
  withTimeout,
} from "../_helpers.ts";

/** Starts `confab join --alias ALIAS --port PORT ...` with piped stdio. */
function join(port: number, alias: string, args: string[] = []): ConfabProcess {
  return spawnConfab(["join", "--alias", alias, "--port", String(port), ...args], {
    env: { CONFAB_PASSWORD: "" },
  });
}

/** Waits for the process to exit and returns its code with every line it wrote. */
async function finish(proc: ConfabProcess, timeoutMs = WAIT_MS) {
  const code = await proc.exit(timeoutMs);
  await proc.stdout.rest();
  await proc.stderr.rest();
  return { code, stdout: proc.stdout.seen, stderr: proc.stderr.seen };
}

/** The note on stderr that says the server is not confab. */
const NOT_CONFAB = /^confab: 127\.0\.0\.1:\d+ is not a confab server: .*commands may not apply$/;

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

/** `nc 127.0.0.1 PORT`. */
function netcat(port: number): PeerProcess {
  return spawnPeer("nc", ["127.0.0.1", String(port)]);
}

Deno.test("confab join chats through a line server that asks 'alias?', with a second join and nc", async () => {
  await using server = await startLineServer();
  await using ann = join(server.port, "ann");
  assert.equal(await ann.stdout.next(), "alias?");
  assert.match(await ann.stderr.next() ?? "", NOT_CONFAB);
  await using ben = join(server.port, "ben");
  assert.equal(await ben.stdout.next(), "alias?");
  await ann.stdout.expect("ben has joined the chat room");
  await using nc = netcat(server.port);
  assert.equal(await nc.stdout.next(), "alias?");
  await nc.send("nora");
  await ann.stdout.expect("nora has joined the chat room");
  await ben.stdout.expect("nora has joined the chat room");

  await ann.write("hello, both\n");
  assert.equal(await ben.stdout.expect("ann:"), "ann: hello, both");
  assert.equal(await nc.stdout.expect("ann:"), "ann: hello, both");
  // Input goes as it is: a line starting with / is not a command here.
  await ben.write("/me waves\n");
  assert.equal(await ann.stdout.expect("ben:"), "ben: /me waves");
  assert.equal(await nc.stdout.expect("ben:"), "ben: /me waves");
  await nc.send("hi from nc");
  assert.equal(await ann.stdout.expect("nora:"), "nora: hi from nc");
  assert.equal(await ben.stdout.expect("nora:"), "nora: hi from nc");

  // End of input: ann leaves, exits 0, and the others see her go.
  await ann.closeStdin();
  await ben.stdout.expect("ann has left the chat room!");
  await nc.stdout.expect("ann has left the chat room!");
  const a = await finish(ann);
  assert.equal(a.code, 0, `stderr: ${a.stderr}`);
  assert.equal(a.stderr.length, 1, JSON.stringify(a.stderr));
  assertNoControlBytes(a.stdout);

  // The server goes away: ben says so and exits 4.
  server.child.kill("SIGKILL");
  const b = await finish(ben);
  assert.equal(b.code, 4);
  assert.equal(b.stderr.at(-1), `confab: 127.0.0.1:${server.port} closed the connection`);
});

Deno.test("confab join answers a net-cat style '[ENTER YOUR NAME]:' prompt with its alias", async () => {
  await using server = await startLineServer(["--prompt", "[ENTER YOUR NAME]:"]);
  await using nc = netcat(server.port);
  assert.equal(await nc.stdout.next(), "[ENTER YOUR NAME]:");
  await nc.send("nora");
  await using ci = join(server.port, "ci");
  assert.equal(await ci.stdout.next(), "[ENTER YOUR NAME]:");
  await nc.stdout.expect("ci has joined the chat room");
  await ci.write("build 12 is green\n");
  assert.equal(await nc.stdout.expect("ci:"), "ci: build 12 is green");
  await nc.send("thanks");
  assert.equal(await ci.stdout.expect("nora:"), "nora: thanks");
  await ci.closeStdin();
  await nc.stdout.expect("ci has left the chat room!");
  assert.equal((await finish(ci)).code, 0);
});

Deno.test("confab join talks to a line server that says nothing first, within two seconds", async () => {
  await using server = await startLineServer(["--silent"]);
  await using ann = join(server.port, "ann");
  const started = Date.now();
  assert.match(await ann.stderr.next() ?? "", NOT_CONFAB);
  const took = Date.now() - started;
  // The client waits a second for the server to speak and half a second more after its probe.
  assert.ok(took < 2500, `plain mode after ${took} ms`);
  await using ben = join(server.port, "ben");
  assert.match(await ben.stderr.next() ?? "", NOT_CONFAB);
  await ann.stdout.expect("guest2 has joined the chat room");
  await ann.write("anyone here?\n");
  assert.equal(await ben.stdout.expect("guest1:"), "guest1: anyone here?");
  await ben.write("yes\n");
  assert.equal(await ann.stdout.expect("guest2:"), "guest2: yes");
  await ben.closeStdin();
  await ann.stdout.expect("guest2 has left the chat room!");
  assert.equal((await finish(ben)).code, 0);
  await ann.closeStdin();
  const a = await finish(ann);
  assert.equal(a.code, 0);
  // Nothing but the server's lines on stdout; no name prompt was seen, so none was answered.
  assert.deepEqual(a.stdout, [
    "guest2 has joined the chat room",
    "guest2: yes",
    "guest2 has left the chat room!",
  ]);
});

const NCAT = "/usr/bin/ncat";
const haveNcat = (() => {
  try {
    return Deno.statSync(NCAT).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "confab join chats through ncat --chat",
  ignore: !haveNcat,
  async fn() {
    // ncat picks no free port itself: take one, free it, and hand it over.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    await using ncat = spawnPeer(NCAT, ["-v", "--chat", "--listen", "127.0.0.1", String(port)], {
      stderr: true,
    });
    await ncat.stderr!.expect(/^Ncat: Listening on 127\.0\.0\.1:\d+$/);
    await using ann = join(port, "ann");
    await ann.stdout.expect(/^<announce> 127\.0\.0\.1 is connected as <user\d+>\.$/);
    assert.match(await ann.stderr.next() ?? "", NOT_CONFAB);
    await using ben = join(port, "ben");
    await ben.stdout.expect(/is connected as <user\d+>\.$/);
    await ann.stdout.expect(/^<announce> 127\.0\.0\.1 is connected as <user\d+>\.$/);
    await ann.write("hello over ncat\n");
    assert.match(await ben.stdout.expect("hello over ncat"), /^<user\d+> hello over ncat$/);
    await ben.write("and back\n");
    assert.match(await ann.stdout.expect("and back"), /^<user\d+> and back$/);
    await ann.closeStdin();
    await ben.closeStdin();
    assert.equal((await finish(ann)).code, 0);
    assert.equal((await finish(ben)).code, 0);
    ncat.child.kill("SIGTERM");
  },
});

Deno.test("confab join sends nothing to a line server before it speaks, then its alias first", async () => {
  await withFakeServer(async (peer) => {
    // Within the second a server has to speak first, nothing may arrive
    // (watched for most of it: the two clocks start a moment apart).
    const early = await peer.lines.next(SPEAK_FIRST_MS - 100).catch(() => "(nothing)");
    assert.equal(early, "(nothing)", "confab join spoke before the server");
    await peer.send("alias?\n");
    assert.equal(await peer.lines.next(), "ci", "the first line sent is the alias");
    await peer.send("ci has joined the chat room\n");
    assert.equal(await peer.lines.next(), "first words");
    assert.equal(await peer.lines.next(), null);
  }, async (port) => {
    await using ci = join(port, "ci");
    await ci.stdout.expect("ci has joined the chat room");
    await ci.write("first words\n");
    await ci.closeStdin();
    const { code, stdout } = await finish(ci);
    assert.equal(code, 0);
    assert.deepEqual(stdout, ["alias?", "ci has joined the chat room"]);
  });
});

Deno.test("confab join --json prints a line server's lines as unknown events with the raw text", async () => {
  await withFakeServer(async (peer) => {
    await peer.send("alias?\n");
    assert.equal(await peer.lines.next(), "ci");
    await peer.send("bob: hi \x1b[31mthere\x07\n");
    await peer.lines.next();
  }, async (port) => {
    await using ci = join(port, "ci", ["--json"]);
    await ci.stdout.expect("bob:");
    await ci.closeStdin();
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 0, `stderr: ${stderr}`);
    assertNoControlBytes(stdout);
    assert.deepEqual(stdout.map((line) => JSON.parse(line)), [
      { type: "unknown", text: "alias?" },
      { type: "unknown", text: "bob: hi \x1b[31mthere\x07" },
    ]);
    assert.match(stderr[0] ?? "", NOT_CONFAB);
  });
});

Deno.test("confab join shows a line server's escape bytes escaped", async () => {
  await withFakeServer(async (peer) => {
    await peer.send("\x1b[2Jwelcome\x1b]0;title\x07 to \x9b31mthe den\n");
    await peer.send("[ENTER YOUR NAME\x1b[5m]:\n");
    await peer.send("alias?\n");
    // The first name prompt was the one answered (a second is not).
    assert.equal(await peer.lines.next(), "ci");
    await peer.send("mal: \x1b[31mred\rci: I said nothing\x1b[0m\n");
    assert.equal(await peer.lines.next(), null);
  }, async (port) => {
    await using ci = join(port, "ci");
    await ci.stdout.expect("mal:");
    await ci.closeStdin();
    const { code, stdout } = await finish(ci);
    assert.equal(code, 0);
    assertNoControlBytes(stdout);
    assert.ok(!stdout.some((l) => l.includes("\x9b")), "no C1 CSI");
    assert.deepEqual(stdout, [
      "^[[2Jwelcome^[]0;title^G to \\x9B31mthe den",
      "[ENTER YOUR NAME^[[5m]:",
      "alias?",
      "mal: ^[[31mred^Mci: I said nothing^[[0m",
    ]);
  });
});

Deno.test("confab join exits 4 and says so when a line server closes the connection", async () => {
  await withFakeServer(async (peer) => {
    await peer.send("alias?\n");
    assert.equal(await peer.lines.next(), "ci");
    await peer.send("ci has joined\n");
  }, async (port) => {
    await using ci = join(port, "ci");
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 4);
    assert.deepEqual(stdout, ["alias?", "ci has joined"]);
    assert.equal(stderr.at(-1), `confab: 127.0.0.1:${port} closed the connection`);
  });
});

Deno.test("confab join on a plaintext port that hangs up on its probe exits 3 within two seconds", async () => {
  // A peer that says nothing and closes the connection as soon as a line arrives.
  await withFakeServer(async (peer) => {
    await withTimeout(peer.lines.next(), WAIT_MS, "the probe");
  }, async (port) => {
    const started = Date.now();
    await using ci = join(port, "ci");
    const { code, stdout, stderr } = await finish(ci);
    const took = Date.now() - started;
    assert.equal(code, 3);
    assert.deepEqual(stdout, []);
    assert.deepEqual(stderr, [
      `confab: 127.0.0.1:${port} hung up on the first line sent to it, as a TLS server does: ` +
      "if it uses TLS, add --tls",
    ]);
    assert.ok(took < 2000 + 1000, `took ${took} ms (with about 1 s to start deno)`);
  });
});

Deno.test("confab join answers a name prompt that ends without a newline, before sending input", async (t) => {
  for (const banner of [[], ["--banner", "Welcome to the den!"]]) {
    await t.step(banner.length ? "after a banner line" : "as the first words", async () => {
      await using server = await startLineServer([
        ...banner,
        "--prompt",
        "[ENTER YOUR NAME]: ",
        "--no-newline",
      ]);
      await using nc = netcat(server.port);
      await nc.send("nora");
      await using ci = join(server.port, "ci");
      // Piped input is there from the start: it must not be taken for the name.
      await ci.write("build 12 is green\n");
      assert.equal(
        await nc.stdout.expect("has joined"),
        "[ENTER YOUR NAME]: ci has joined the chat room",
      );
      assert.equal(await nc.stdout.next(), "ci: build 12 is green");
      await ci.closeStdin();
      assert.equal(await nc.stdout.next(), "ci has left the chat room!");
      const { code, stdout, stderr } = await finish(ci);
      assert.equal(code, 0, `stderr: ${stderr}`);
      assert.deepEqual(stdout, [...banner.slice(1), "[ENTER YOUR NAME]: "]);
      assert.match(stderr[0] ?? "", NOT_CONFAB);
    });
  }
});

/** A TLS server built on OpenSSL (Python's ssl module) that hangs up on any failed handshake. */
const OPENSSL_SERVER = `
import socket, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
listener = socket.create_server(("127.0.0.1", 0))
print("listening on 127.0.0.1:%d" % listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    try:
        context.wrap_socket(conn, server_side=True).close()
    except (ssl.SSLError, OSError):
        pass
    finally:
        conn.close()
`;

Deno.test("confab join on the plaintext side of an OpenSSL TLS server exits 3 with the --tls hint", async () => {
  const fixtures = new URL("../fixtures/", import.meta.url).pathname;
  await using tls = spawnPeer("python3", [
    "-c",
    OPENSSL_SERVER,
    `${fixtures}test_only_server_cert.pem`,
    `${fixtures}test_only_server_key.pem`,
  ]);
  const port = Number((await tls.stdout.expect(/^listening on /)).split(":").at(-1));
  const started = Date.now();
  await using ci = join(port, "ci");
  const { code, stdout, stderr } = await finish(ci);
  const took = Date.now() - started;
  assert.equal(code, 3, `stderr: ${stderr}`);
  assert.deepEqual(stdout, []);
  assert.equal(stderr.length, 1, JSON.stringify(stderr));
  assert.match(stderr[0]!, /^confab: 127\.0\.0\.1:\d+ .*TLS.*: (if it uses TLS, )?add --tls$/);
  assert.ok(took < 2000 + 1000, `took ${took} ms (with about 1 s to start deno)`);
});
