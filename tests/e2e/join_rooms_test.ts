/**
 * `confab join` and rooms: starting in a room from the command line, the
 * room in `--json` events, the terminal prompt and Tab completion of room
 * names, a refused room, and a confab server older than rooms.
 */

import assert from "node:assert/strict";
import {
  assertNothingBefore,
  type ConfabProcess,
  live,
  spawnConfab,
  startServer,
  TestClient,
  Tmux,
  WAIT_MS,
  withFakeServer,
} from "../_helpers.ts";

/** Starts `confab join --alias ALIAS --port PORT ...` with no password in its environment. */
function join(port: number, alias: string, args: string[] = []): ConfabProcess {
  return spawnConfab(["join", "--alias", alias, "--port", String(port), ...args], {
    env: { CONFAB_PASSWORD: "" },
  });
}

/** Waits for the process to exit and returns its code with every line it wrote. */
async function finish(
  proc: ConfabProcess,
): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const code = await proc.exit(WAIT_MS);
  await proc.stdout.rest();
  await proc.stderr.rest();
  return { code, stdout: proc.stdout.seen, stderr: proc.stderr.seen };
}

/** A raw client that joins the server and then moves to `room`. */
async function joinRoom(port: number, alias: string, room: string): Promise<TestClient> {
  const client = await TestClient.join(port, alias);
  await client.send(`/join ${room}`);
  await client.expect(`-- welcome to #${room}, ${alias}! `);
  return client;
}

/** Rows of the screen without trailing blanks (tmux pads every row to the width). */
const trimmed = (rows: string[]) => rows.map((r) => r.trimEnd());

/** The last row with anything on it. */
const lastRow = (rows: string[]) => trimmed(rows).filter((r) => r !== "").at(-1) ?? "";

Deno.test("confab join --room dev starts in #dev: a piped line reaches #dev and not the default room", async () => {
  await using server = startServer();
  await using carol = await TestClient.join(server.addr.port, "carol");
  await using bob = await joinRoom(server.addr.port, "bob", "dev");
  await carol.expect(live("<-- bob left for #dev"));
  await bob.send("said before ci came");
  // With --no-history too: both are asked for at the alias prompt.
  await using ci = join(server.addr.port, "ci", ["--room", "#dev", "--no-history"]);
  await ci.write("build finished\n");
  await ci.closeStdin();
  await bob.expect(live("--> ci joined"));
  await bob.expect(live("ci: build finished"));
  await bob.expect(live("<-- ci left"));
  const { code, stdout, stderr } = await finish(ci);
  assert.equal(code, 0, `stderr: ${stderr}`);
  assert.ok(
    stdout.some((l) => /-- welcome to #dev, ci! 2 online: bob, ci$/.test(l)),
    stdout.join("\n"),
  );
  assert.ok(!stdout.some((l) => l.includes("said before ci came")), stdout.join("\n"));
  // carol, in the default room, got nothing of it: bob's marker is her next line.
  await bob.send("/join lobby");
  await carol.expect(live("--> bob joined"));
  await assertNothingBefore(carol, bob, "bob", "marker");
});

Deno.test("confab join --room with a bad name is a usage error, before connecting", async () => {
  for (const bad of ["two words", "", "#", "x".repeat(33)]) {
    // Port 1: nothing listens there, and nothing must be tried.
    await using ci = join(1, "ci", ["--room", bad]);
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 2, `--room ${JSON.stringify(bad)}: ${stderr}`);
    assert.deepEqual(stdout, []);
    assert.match(stderr[0] ?? "", /^confab: --room: a room name /);
    assert.match(stderr[1] ?? "", /confab join --help/);
  }
});

Deno.test("confab join --help documents --room", async () => {
  await using help = spawnConfab(["join", "--help"]);
  assert.equal(await help.exit(), 0);
  const text = (await help.stdout.rest()).join("\n");
  assert.match(text, /^ {2}--room NAME {2,}start in room NAME/m);
});

Deno.test("confab join --json events carry the room: the default one learned at the prompt, then the one joined", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using ci = join(server.addr.port, "ci", ["--json"]);
  const event = async (type: string, text = "") =>
    JSON.parse(await ci.stdout.expect(`{"type":"${type}"${text}`));
  const welcome = await event("notice");
  assert.equal(welcome.text, "welcome, ci! 2 online: bob, ci");
  assert.equal(welcome.room, "lobby");
  await bob.expect(live("--> ci joined"));
  await bob.send("hello ci");
  assert.equal((await event("message")).room, "lobby");

  await ci.write("/join dev\n");
  await bob.expect(live("<-- ci left for #dev"));
  const moved = await event("notice");
  assert.deepEqual([moved.text, moved.room], [
    "welcome to #dev, ci! you are the only one here",
    "dev",
  ]);
  // A private message carries the room its recipient is in.
  await bob.send("/msg ci psst");
  const incoming = await event("private");
  assert.deepEqual([incoming.from, incoming.text, incoming.room], ["bob", "psst", "dev"]);
  await bob.send("/join dev");
  const joined = await event("join");
  assert.deepEqual([joined.alias, joined.room], ["bob", "dev"]);
  await ci.closeStdin();
  const { code, stdout } = await finish(ci);
  assert.equal(code, 0);
  for (const line of stdout) assert.equal(typeof JSON.parse(line).room, "string", line);
});

Deno.test("confab join --room exits 7 with the reason when the server will not make the room", async () => {
  await using server = startServer({ maxRooms: 1 });
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using ci = join(server.addr.port, "ci", ["--room", "dev"]);
  const { code, stdout, stderr } = await finish(ci);
  assert.equal(code, 7);
  assert.deepEqual(stdout, []);
  assert.deepEqual(stderr, [
    `confab: 127.0.0.1:${server.addr.port} refused #dev: ` +
    "there are already 1 room; join one of them (/rooms lists them)",
  ]);
  // No one joined anywhere: bob's next line is the answer to this.
  await bob.send("/rooms");
  assert.match(await bob.lines.next() ?? "", live("-- 1 room:"));
});

Deno.test("confab join on a terminal shows a refused --room and joins the default room instead", async () => {
  await using server = startServer({ maxRooms: 1 });
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using tmux = new Tmux();
  await tmux.start("alice", [
    "--alias",
    "alice",
    "--room",
    "dev",
    "--port",
    String(server.addr.port),
  ], {
    NO_COLOR: "1",
  });
  const rows = trimmed(
    await tmux.waitFor(
      "alice",
      "the prompt in the default room",
      (rows) => lastRow(rows) === "alice #lobby>",
    ),
  );
  assert.ok(
    rows.includes("! there are already 1 room; join one of them (/rooms lists them)"),
    rows.join("\n"),
  );
  assert.ok(
    rows.some((r) => r === "-- not starting in #dev: joining the default room instead"),
    rows.join("\n"),
  );
  await bob.expect(live("--> alice joined"));
  await tmux.press("alice", "C-d");
  assert.equal(await tmux.exitCode("alice"), 0);
});

Deno.test("confab join's terminal prompt shows the room and follows /join and /nick", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.addr.port)]);
  await tmux.waitFor(
    "alice",
    "the prompt in the default room",
    (rows) => lastRow(rows) === "alice #lobby>",
  );
  await tmux.type("alice", "/join dev");
  await tmux.press("alice", "Enter");
  await bob.expect(live("<-- alice left for #dev"));
  await tmux.waitFor(
    "alice",
    "the welcome to #dev and the prompt",
    (rows) =>
      rows.some((r) => r.includes("-- welcome to #dev, alice!")) && lastRow(rows) === "alice #dev>",
  );
  await tmux.type("alice", "/nick alicia");
  await tmux.press("alice", "Enter");
  await tmux.waitFor("alice", "the prompt after /nick", (rows) => lastRow(rows) === "alicia #dev>");
  await tmux.press("alice", "C-d");
  assert.equal(await tmux.exitCode("alice"), 0);
});

Deno.test("confab join tab-completes a room name after /join #, from the rooms it has seen", async () => {
  await using server = startServer();
  await using _bob = await joinRoom(server.addr.port, "bob", "devops");
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.addr.port)]);
  await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice #lobby>");
  await tmux.type("alice", "/rooms");
  await tmux.press("alice", "Enter");
  await tmux.waitFor(
    "alice",
    "the /rooms reply",
    (rows) => rows.some((r) => r.includes("#devops, 1 here")) && lastRow(rows) === "alice #lobby>",
  );
  await tmux.type("alice", "/join #d");
  await tmux.press("alice", "Tab");
  await tmux.waitFor(
    "alice",
    "#d completed",
    (rows) => lastRow(rows) === "alice #lobby> /join #devops",
  );
  await tmux.press("alice", "Enter");
  await tmux.waitFor(
    "alice",
    "the prompt in #devops",
    (rows) => lastRow(rows) === "alice #devops>",
  );
  // Without the #, too: the default room was seen in the welcome it named.
  await tmux.type("alice", "/join lo");
  await tmux.press("alice", "Tab");
  await tmux.waitFor(
    "alice",
    "lo completed",
    (rows) => lastRow(rows) === "alice #devops> /join lobby",
  );
  await tmux.press("alice", "Enter");
  await tmux.waitFor("alice", "the prompt in #lobby", (rows) => lastRow(rows) === "alice #lobby>");
  await tmux.press("alice", "C-d");
  assert.equal(await tmux.exitCode("alice"), 0);
});

Deno.test("confab join still joins a confab server older than rooms, with no room in the prompt", async () => {
  const received: string[] = [];
  await withFakeServer(async (peer) => {
    await peer.send("? alias: choose an alias\n");
    received.push(await peer.lines.expect(/\S/));
    await peer.send("! choose an alias first (/quit leaves, /nohistory skips history)\n");
    await peer.send("? alias: choose an alias\n");
    received.push(await peer.lines.expect(/\S/));
    await peer.send("[12:00:00] -- welcome, alice! you are the only one here\n");
    await peer.send("[12:00:00] -- limits: 5 lines per second, bursts of 20\n");
    received.push(await peer.lines.expect(/\S/));
    // Until the client leaves.
    assert.equal(await peer.lines.next(), null);
  }, async (port) => {
    await using tmux = new Tmux();
    await tmux.start("alice", ["--alias", "alice", "--port", String(port)], { NO_COLOR: "1" });
    const rows = trimmed(
      await tmux.waitFor(
        "alice",
        "the prompt without a room",
        (rows) => lastRow(rows) === "alice>",
      ),
    );
    assert.ok(!rows.some((r) => r.includes("choose an alias first")), rows.join("\n"));
    await tmux.type("alice", "hello");
    await tmux.press("alice", "Enter");
    await tmux.waitFor(
      "alice",
      "the own line",
      (rows) => rows.some((r) => r.endsWith("alice: hello")),
    );
    await tmux.press("alice", "C-d");
    assert.equal(await tmux.exitCode("alice"), 0);
  });
  assert.deepEqual(received, ["/join", "alice", "hello"]);
});

Deno.test("confab join --room exits 7 against a confab server older than rooms", async () => {
  await withFakeServer(async (peer) => {
    await peer.send("? alias: choose an alias\n");
    assert.equal(await peer.lines.expect(/\S/), "/join dev");
    await peer.send("! choose an alias first (/quit leaves, /nohistory skips history)\n");
    await peer.send("? alias: choose an alias\n");
    assert.equal(await peer.lines.next(), null, "nothing more from the client");
  }, async (port) => {
    await using ci = join(port, "ci", ["--room", "dev"]);
    const { code, stdout, stderr } = await finish(ci);
    assert.equal(code, 7);
    assert.deepEqual(stdout, []);
    assert.deepEqual(stderr, [`confab: 127.0.0.1:${port} has no rooms: cannot start in #dev`]);
  });
});

Deno.test("confab join --room exits 7 when the server takes the alias but cannot make the room after all", async () => {
  await withFakeServer(async (peer) => {
    await peer.send("? alias: choose an alias\n");
    assert.equal(await peer.lines.expect(/\S/), "/join dev");
    await peer.send("? alias: joining #dev; choose an alias\n");
    assert.equal(await peer.lines.expect(/\S/), "ci");
    // The last room went to someone else meanwhile.
    await peer.send("! there are already 2 rooms; join one of them (/rooms lists them)\n");
    await peer.send("? alias: choose an alias\n");
    await peer.lines.rest().catch(() => []);
  }, async (port) => {
    await using ci = join(port, "ci", ["--room", "dev"]);
    await ci.closeStdin();
    const { code, stderr } = await finish(ci);
    assert.equal(code, 7);
    assert.deepEqual(stderr, [
      `confab: 127.0.0.1:${port} refused #dev: there are already 2 rooms; join one of them (/rooms lists them)`,
    ]);
  });
});
