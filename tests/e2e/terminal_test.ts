/**
 * `confab join` on a real terminal: each test runs it in a tmux pane (a
 * pseudo-terminal 100x30) against a server in this process, types into it
 * with `send-keys` and reads the screen with `capture-pane`.
 */

import assert from "node:assert/strict";
import {
  LineSource,
  live,
  startServer,
  TestClient,
  Tmux,
  WAIT_MS,
  withTimeout,
} from "../_helpers.ts";

/** Rows of the screen without trailing blanks (tmux pads every row to the width). */
const trimmed = (rows: string[]) => rows.map((r) => r.trimEnd());

/** The last row with anything on it. */
const lastRow = (rows: string[]) => trimmed(rows).filter((r) => r !== "").at(-1) ?? "";

/** How a confab server older than rooms answers a command at the alias prompt. */
const OLDER_REFUSAL = "! choose an alias first (/quit leaves, /nohistory skips history)\n";

/**
 * A fake server's answer to the client's `/join` at the alias prompt, as a
 * confab server older than rooms gives it: an error and the prompt again.
 */
async function answerJoinAsOlder(
  peer: { lines: LineSource; send(text: string): Promise<void> },
  prompt = "choose an alias",
): Promise<void> {
  assert.equal(await peer.lines.expect(/\S/), "/join");
  await peer.send(`${OLDER_REFUSAL}? alias: ${prompt}\n`);
}

Deno.test("confab join keeps a half-typed line intact on the prompt while others' lines print above it", async () => {
  await using server = startServer();
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.addr.port)]);
  await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice #lobby>");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await tmux.waitFor(
    "alice",
    "bob's join",
    (rows) => rows.some((r) => r.includes("--> bob joined")),
  );

  await tmux.type("alice", "hello wor");
  await tmux.waitFor(
    "alice",
    "the typed text",
    (rows) => lastRow(rows) === "alice #lobby> hello wor",
  );
  await bob.send("interrupting you");
  // The line is printed first and the prompt redrawn after it: wait for both.
  const rows = trimmed(
    await tmux.waitFor(
      "alice",
      "bob's line above the prompt",
      (rows) => {
        const said = rows.findIndex((r) => r.trimEnd().endsWith("bob: interrupting you"));
        return said >= 0 && rows[said + 1]?.trimEnd() === "alice #lobby> hello wor";
      },
    ),
  );
  const said = rows.findIndex((r) => r.endsWith("bob: interrupting you"));
  assert.match(rows[said]!, /^\d\d:\d\d bob: interrupting you$/);
  assert.equal(rows[said + 1], "alice #lobby> hello wor", `screen:\n${rows.join("\n")}`);
  assert.ok(rows.slice(said + 2).every((r) => r === ""), `screen:\n${rows.join("\n")}`);
  assert.equal(rows.filter((r) => r.includes("hello wor")).length, 1, "typed text shown once");

  // The edit buffer survived: finish the word and send it.
  await tmux.type("alice", "ld");
  await tmux.press("alice", "Enter");
  await bob.expect(live("alice: hello world"));
  const after = trimmed(
    await tmux.waitFor("alice", "own line shown", (rows) => lastRow(rows) === "alice #lobby>"),
  );
  assert.ok(after.some((r) => /^\d\d:\d\d alice: hello world$/.test(r)), after.join("\n"));
  assert.ok(
    !after.some((r) => r === "alice #lobby> hello world"),
    "the raw input line was replaced",
  );

  // Ctrl-D leaves the room and the client exits 0.
  await tmux.press("alice", "C-d");
  await bob.expect(live("<-- alice left"));
  assert.equal(await tmux.exitCode("alice"), 0);
  // The prompt is cleared on the way out, so the shell starts a clean line.
  const end = trimmed(
    await tmux.waitFor("alice", "exit", (rows) => rows.some((r) => r.includes("[exited"))),
  );
  assert.ok(end.includes("[exited 0]"), end.join("\n"));
});

Deno.test("confab join tab-completes command names and the aliases of people online", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bobby");
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.addr.port)]);
  await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice #lobby>");

  await tmux.type("alice", "/wh");
  await tmux.press("alice", "Tab");
  await tmux.waitFor("alice", "/wh completed", (rows) => lastRow(rows) === "alice #lobby> /who");
  await tmux.press("alice", "Enter");
  await tmux.waitFor(
    "alice",
    "the /who reply",
    (rows) => rows.some((r) => /-- 2 online:/.test(r)) && lastRow(rows) === "alice #lobby>",
  );

  await tmux.type("alice", "bo");
  await tmux.press("alice", "Tab");
  await tmux.waitFor("alice", "bo completed", (rows) => lastRow(rows) === "alice #lobby> bobby:");
  await tmux.type("alice", "thanks");
  await tmux.press("alice", "Enter");
  await bob.expect(live("alice: bobby: thanks"));

  // Later in the line, an alias completes without the colon.
  await tmux.type("alice", "ping bob");
  await tmux.press("alice", "Tab");
  await tmux.waitFor(
    "alice",
    "bob completed",
    (rows) => lastRow(rows) === "alice #lobby> ping bobby",
  );
  await tmux.type("alice", "are you there");
  await tmux.press("alice", "Enter");
  await bob.expect(live("alice: ping bobby are you there"));
});

Deno.test("confab join uses colours on a terminal and none with NO_COLOR=1", async () => {
  await using server = startServer();
  const port = String(server.addr.port);
  await using tmux = new Tmux();
  await tmux.start("colour", ["--alias", "alice", "--port", port]);
  await tmux.start("plain", ["--alias", "carol", "--port", port], { NO_COLOR: "1" });
  for (const name of ["colour", "plain"]) {
    await tmux.waitFor(name, "the prompt", (rows) => /^(alice|carol) #lobby>$/.test(lastRow(rows)));
  }
  await using bob = await TestClient.join(server.addr.port, "bob");
  await bob.send("colours, please");

  const bobLine = (rows: string[]) => rows.find((r) => r.includes("colours, please"));
  const coloured = await tmux.waitFor("colour", "bob's line", (r) => !!bobLine(r), {
    escapes: true,
  });
  // The alias is painted with an SGR colour code and reset afterwards.
  // deno-lint-ignore no-control-regex -- looking for colour codes is the point
  assert.match(bobLine(coloured)!, /\x1b\[(3|9)\dmbob\x1b\[(0|39)?m: colours, please/);
  // deno-lint-ignore no-control-regex -- as above
  assert.match(coloured.join("\n"), /\x1b\[2m/, "timestamps and notices are dimmed");

  const plain = await tmux.waitFor("plain", "bob's line", (r) => !!bobLine(r), { escapes: true });
  assert.match(bobLine(plain)!.trimEnd(), /^\d\d:\d\d bob: colours, please$/);
  assert.ok(!plain.join("\n").includes("\x1b"), `escape codes with NO_COLOR:\n${plain.join("\n")}`);
});

/**
 * Starts alice's `confab join` in `tmux` against the room with a password
 * on `port`, answers the password prompt with `wrong`, and waits until she
 * is told so and asked again.
 */
async function askedPasswordAgain(tmux: Tmux, port: number, wrong: string): Promise<void> {
  await tmux.start("alice", ["--alias", "alice", "--port", String(port)], {
    CONFAB_PASSWORD: "",
  });
  await tmux.waitFor("alice", "the password prompt", (rows) => lastRow(rows) === "password:");
  await tmux.type("alice", wrong);
  await tmux.press("alice", "Enter");
  await tmux.waitFor(
    "alice",
    "the password asked again",
    (rows) => rows.some((r) => r.includes("! wrong password")) && lastRow(rows) === "password:",
  );
}

Deno.test("confab join never echoes a typed password and keeps it out of the input history", async () => {
  await using server = startServer({ password: "sesame" });
  await using bob = await TestClient.connect(server.addr.port);
  await bob.expect(/^\? password: /);
  await bob.send("sesame");
  await bob.answerAlias("bob");
  await using tmux = new Tmux();
  // A wrong one first: told so, and asked again.
  await askedPasswordAgain(tmux, server.addr.port, "guess1");
  // A typo fixed with Backspace makes readline redraw the line: still nothing shown.
  await tmux.type("alice", "sesamX");
  await tmux.press("alice", "BSpace");
  await tmux.type("alice", "e");
  await tmux.press("alice", "Enter");
  await bob.expect(live("--> alice joined"));
  const joined = trimmed(
    await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice #lobby>"),
  );
  for (const secret of ["guess", "sesam"]) {
    assert.ok(!joined.some((r) => r.includes(secret)), `${secret} shown:\n${joined.join("\n")}`);
  }

  await tmux.type("alice", "first line");
  await tmux.press("alice", "Enter");
  await bob.expect(live("alice: first line"));
  await tmux.waitFor("alice", "an empty prompt", (rows) => lastRow(rows) === "alice #lobby>");
  // Up brings back what was said...
  await tmux.press("alice", "Up");
  await tmux.waitFor(
    "alice",
    "the recalled line",
    (rows) => lastRow(rows) === "alice #lobby> first line",
  );
  // ...and nothing older: one more Up either stays there or goes back to the
  // empty line. The marker typed after it shows that the key was handled.
  await tmux.press("alice", "Up");
  await tmux.type("alice", "?");
  const recalled = trimmed(
    await tmux.waitFor("alice", "the marker", (rows) => lastRow(rows).endsWith("?")),
  );
  assert.ok(
    ["alice #lobby> first line?", "alice #lobby> ?"].includes(lastRow(recalled)),
    recalled.join("\n"),
  );
  for (const secret of ["guess", "sesam"]) {
    assert.ok(
      !recalled.some((r) => r.includes(secret)),
      `${secret} shown:\n${recalled.join("\n")}`,
    );
  }

  await tmux.press("alice", "C-u");
  await tmux.waitFor("alice", "an empty prompt", (rows) => lastRow(rows) === "alice #lobby>");
  await tmux.press("alice", "C-d");
  await bob.expect(live("<-- alice left"));
  assert.equal(await tmux.exitCode("alice"), 0);
});

Deno.test("confab join asks for an alias again after an empty answer or a taken one", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using tmux = new Tmux();
  await tmux.start("anon", ["--port", String(server.addr.port)]);
  /** How many times the alias was asked for so far. */
  const asked = (rows: string[]) => rows.filter((r) => /^alias:( |$)/.test(r)).length;
  await tmux.waitFor("anon", "the alias prompt", (rows) => lastRow(rows) === "alias:");
  assert.ok(
    trimmed(await tmux.screen("anon")).some((r) =>
      r.startsWith("joining #lobby; choose an alias: 1 to 32")
    ),
    "the server's rule is shown, and the room",
  );

  await tmux.press("anon", "Enter");
  await tmux.waitFor(
    "anon",
    "the alias prompt again after an empty answer",
    (rows) => asked(rows) === 2 && lastRow(rows) === "alias:",
  );

  await tmux.type("anon", "bob");
  await tmux.press("anon", "Enter");
  await tmux.waitFor(
    "anon",
    "the alias prompt again after a taken alias",
    (rows) =>
      rows.some((r) => r.trimEnd() === "! bob is taken; choose another") &&
      asked(rows) === 3 && lastRow(rows) === "alias:",
  );

  await tmux.type("anon", "alice");
  await tmux.press("anon", "Enter");
  await bob.expect(live("--> alice joined"));
  await tmux.waitFor("anon", "the chat prompt", (rows) => lastRow(rows) === "alice #lobby>");
  await tmux.type("anon", "made it");
  await tmux.press("anon", "Enter");
  await bob.expect(live("alice: made it"));
  await tmux.press("anon", "C-d");
  await bob.expect(live("<-- alice left"));
  assert.equal(await tmux.exitCode("anon"), 0);
});

/**
 * A hostile server under the test's control: it prompts one connection for
 * an alias and, once the test calls `proceed()`, sends the lines `script`
 * gives for that alias; then it keeps the connection open until disposed.
 */
function hostileServer(script: (alias: string) => string[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let proceed!: () => void;
  const proceeding = new Promise<void>((resolve) => (proceed = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reachedEnd!: () => void;
  const sentAll = new Promise<void>((resolve) => (reachedEnd = resolve));
  const served = (async () => {
    const conn = await listener.accept();
    const lines = new LineSource(conn.readable);
    const send = async (text: string) => {
      const bytes = new TextEncoder().encode(text);
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
    };
    try {
      await send("? alias: choose an alias\n");
      await answerJoinAsOlder({ lines, send });
      const alias = await lines.expect(/\S/);
      await Promise.race([proceeding, released]);
      for (const line of script(alias)) await send(line + "\n");
      reachedEnd();
      await released;
    } finally {
      await lines.cancel();
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    proceed,
    sentAll: () => withTimeout(sentAll, WAIT_MS, "the hostile server's lines to go out"),
    async [Symbol.asyncDispose]() {
      release();
      listener.close();
      await served.catch(() => {});
    },
  };
}

Deno.test("confab join keeps its prompt and the terminal's titles when a server renames it to an escape sequence", async () => {
  await using server = hostileServer((alias) => [
    `[12:00:00] -- welcome, ${alias}! you are the only one here`,
    "[12:00:00] -- limits: 5 lines per second, bursts of 20; lines up to 4096 bytes",
    // OSC 2 sets the pane title. (The line parser already refuses this one as a
    // rename, since an alias on the wire has no brackets: it is shown as is.)
    `[12:00:00] --- ${alias} is now known as \x1b]2;pwned\x07`,
    // ESC k ... ESC backslash sets the window name, and has nothing the line parser
    // would refuse in an alias (no brackets, spaces or colons).
    `[12:00:01] --- ${alias} is now known as \x1bkpwned\x1b\\`,
  ]);
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.port)]);
  // Let programs in the pane rename the window, so that a leak would show.
  await tmux.run("set-option", "-g", "allow-rename", "on");
  server.proceed();
  await server.sentAll();
  // Both renames are shown, escaped, and the same prompt is drawn after them.
  await tmux.waitFor(
    "alice",
    "the rename lines and the prompt after them",
    (rows) =>
      rows.some((r) => r.trimEnd().endsWith("alice is now known as ^[]2;pwned^G")) &&
      rows.some((r) => r.trimEnd().endsWith("alice is now known as ^[kpwned^[\\")) &&
      lastRow(rows) === "alice>",
  );
  const titles = await tmux.run(
    "display-message",
    "-p",
    "-t",
    "alice",
    "#{pane_title}|#{window_name}",
  );
  assert.ok(!titles.includes("pwned"), `pane title and window name: ${titles.trim()}`);
  // Typing still goes to the same prompt.
  await tmux.type("alice", "still me");
  await tmux.waitFor("alice", "the typed text", (rows) => lastRow(rows) === "alice> still me");
});

/**
 * A server under the test's control: it accepts one connection, waits for
 * `go()`, runs `script` on it, and keeps the connection open until disposed.
 */
function scriptedServer(
  script: (peer: { lines: LineSource; send(text: string): Promise<void> }) => Promise<void>,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let go!: () => void;
  const going = new Promise<void>((resolve) => (go = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const served = (async () => {
    const conn = await listener.accept();
    const lines = new LineSource(conn.readable);
    const send = async (text: string) => {
      const bytes = new TextEncoder().encode(text);
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
    };
    try {
      await Promise.race([going, released]);
      await Promise.race([script({ lines, send }), released]);
      await released;
    } finally {
      await lines.cancel();
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  })();
  // Seen by the test through what confab join shows; a script error is reported on disposal.
  const failed = served.then(() => undefined, (error: unknown) => ({ error }));
  return {
    port: (listener.addr as Deno.NetAddr).port,
    go,
    async [Symbol.asyncDispose]() {
      release();
      listener.close();
      const failure = await failed;
      if (failure && !(failure.error instanceof Deno.errors.BadResource)) throw failure.error;
    },
  };
}

/** Escape sequences a hostile server might send: a colour, and a new window title. */
const EVIL = "\x1b[31mred\x1b]0;title\x07";
/** How `EVIL` must look on the screen: every control character shown escaped. */
const EVIL_SHOWN = "^[[31mred^[]0;title^G";

/** Asserts that the screen of `name` has no colour (NO_COLOR is set) and its title is untouched. */
async function assertNothingRaw(tmux: Tmux, name: string): Promise<void> {
  const screen = (await tmux.screen(name, true)).join("\n");
  assert.ok(!screen.includes("\x1b["), `escape codes on the screen:\n${screen}`);
  const title = await tmux.run("display-message", "-p", "-t", name, "#{pane_title}");
  assert.ok(!title.includes("title"), `pane title: ${title.trim()}`);
}

Deno.test("confab join shows a server's prompts, errors, notices and goodbye escaped, never raw", async () => {
  const received: string[] = [];
  await using server = scriptedServer(async (peer) => {
    await peer.send(`? alias: ${EVIL} choose\n`);
    await answerJoinAsOlder(peer, `${EVIL} choose`);
    received.push(await peer.lines.expect(/\S/));
    await peer.send(`! ${EVIL} is taken\n`);
    await peer.send(`? alias: again\n`);
    received.push(await peer.lines.expect(/\S/));
    await peer.send(`[12:00:00] -- welcome, alice! ${EVIL} notice\n`);
    await peer.send("[12:00:00] -- limits: 5 lines per second, bursts of 20\n");
    received.push(await peer.lines.expect(/\S/));
    await peer.send(`!! ${EVIL} bye\n`);
  });
  await using tmux = new Tmux();
  await tmux.start("anon", ["--port", String(server.port)], { NO_COLOR: "1" });
  server.go();
  await tmux.waitFor(
    "anon",
    "the server's alias prompt, escaped",
    (rows) =>
      rows.some((r) => r.trimEnd() === `${EVIL_SHOWN} choose`) && lastRow(rows) === "alias:",
  );
  await assertNothingRaw(tmux, "anon");
  await tmux.type("anon", "mallory");
  await tmux.press("anon", "Enter");
  await tmux.waitFor(
    "anon",
    "the server's error, escaped, and the alias asked again",
    (rows) =>
      rows.some((r) => r.trimEnd() === `! ${EVIL_SHOWN} is taken`) && lastRow(rows) === "alias:",
  );
  await tmux.type("anon", "alice");
  await tmux.press("anon", "Enter");
  await tmux.waitFor(
    "anon",
    "the server's notice, escaped, and the chat prompt",
    (rows) =>
      rows.some((r) => r.trimEnd().endsWith(`-- welcome, alice! ${EVIL_SHOWN} notice`)) &&
      lastRow(rows) === "alice>",
  );
  await assertNothingRaw(tmux, "anon");
  await tmux.type("anon", "leaving now");
  await tmux.press("anon", "Enter");
  assert.equal(await tmux.exitCode("anon"), 6);
  const rows = trimmed(await tmux.screen("anon"));
  assert.ok(rows.includes(`!! ${EVIL_SHOWN} bye`), rows.join("\n"));
  await assertNothingRaw(tmux, "anon");
  assert.deepEqual(received, ["mallory", "alice", "leaving now"]);
});

Deno.test("confab join shows a line server that is not confab escaped, and answers its name prompt", async () => {
  const received: string[] = [];
  await using server = scriptedServer(async (peer) => {
    await peer.send(`${EVIL} Welcome to the den.\n`);
    await peer.send("Your name?\n");
    received.push(await peer.lines.expect(/\S/));
    await peer.send(`mal: ${EVIL}\n`);
    received.push(await peer.lines.expect(/\S/));
  });
  await using tmux = new Tmux();
  await tmux.start("anon", ["--port", String(server.port)], { NO_COLOR: "1" });
  server.go();
  const asked = trimmed(
    await tmux.waitFor(
      "anon",
      "the name asked for",
      (rows) => rows.some((r) => r.trimEnd() === "Your name?") && lastRow(rows) === "alias:",
    ),
  );
  assert.ok(asked.includes(`${EVIL_SHOWN} Welcome to the den.`), asked.join("\n"));
  assert.ok(
    asked.some((r) => r.startsWith(`-- 127.0.0.1:${server.port} is not a confab server`)),
    asked.join("\n"),
  );
  await tmux.type("anon", "alice");
  await tmux.press("anon", "Enter");
  await tmux.waitFor(
    "anon",
    "a line from the server, escaped, and the prompt",
    (rows) => rows.some((r) => r.trimEnd() === `mal: ${EVIL_SHOWN}`) && lastRow(rows) === "alice>",
  );
  await tmux.type("anon", "hello");
  await tmux.press("anon", "Enter");
  await tmux.waitFor(
    "anon",
    "the line sent, shown as typed",
    (rows) => rows.some((r) => r.trimEnd() === "alice> hello") && lastRow(rows) === "alice>",
  );
  await assertNothingRaw(tmux, "anon");
  await tmux.press("anon", "C-d");
  assert.equal(await tmux.exitCode("anon"), 0);
  assert.deepEqual(received, ["alice", "hello"]);
});

Deno.test("confab join on a terminal still joins a confab server whose prompt comes after plain mode began", async () => {
  const received: string[] = [];
  // The server is held (a slow accept, a slow link) until the client has given up waiting.
  await using server = scriptedServer(async (peer) => {
    await peer.send("? alias: choose an alias\n");
    await answerJoinAsOlder(peer);
    received.push(await peer.lines.expect(/\S/));
    await peer.send("[12:00:00] -- welcome, bob! you are the only one here\n");
    await peer.send("[12:00:00] -- limits: no rate limit\n");
    received.push(await peer.lines.expect(/\S/));
  });
  await using tmux = new Tmux();
  await tmux.start("bob", ["--alias", "bob", "--port", String(server.port)], { NO_COLOR: "1" });
  await tmux.waitFor(
    "bob",
    "the note that the server is not confab",
    (rows) => rows.some((r) => r.startsWith(`-- 127.0.0.1:${server.port} is not a confab server`)),
  );
  server.go();
  await tmux.waitFor(
    "bob",
    "the welcome and the prompt",
    (rows) => rows.some((r) => r.includes("welcome, bob!")) && lastRow(rows) === "bob>",
  );
  await tmux.type("bob", "hello room");
  await tmux.press("bob", "Enter");
  await tmux.waitFor(
    "bob",
    "the line sent",
    (rows) => rows.some((r) => r.trimEnd().endsWith("bob: hello room")),
  );
  await tmux.press("bob", "C-d");
  assert.equal(await tmux.exitCode("bob"), 0);
  assert.deepEqual(received, ["bob", "hello room"]);
});

Deno.test("confab join sends a line typed at its prompt before the server has announced its limits", async () => {
  const received: string[] = [];
  let typed!: () => void;
  const lineTyped = new Promise<void>((resolve) => (typed = resolve));
  await using server = scriptedServer(async (peer) => {
    await peer.send("? alias: choose an alias\n");
    await answerJoinAsOlder(peer);
    received.push(await peer.lines.expect(/\S/));
    await peer.send("[12:00:00] -- welcome, alice! you are the only one here\n");
    await withTimeout(lineTyped, WAIT_MS, "the line to be typed");
    await peer.send("[12:00:00] -- limits: 5 lines per second, bursts of 20\n");
    received.push(await peer.lines.expect(/\S/));
  });
  await using tmux = new Tmux();
  await tmux.start("anon", ["--port", String(server.port)]);
  server.go();
  await tmux.waitFor("anon", "the alias prompt", (rows) => lastRow(rows) === "alias:");
  await tmux.type("anon", "alice");
  await tmux.press("anon", "Enter");
  // The prompt is up once joined; the limits notice has not come yet.
  await tmux.waitFor("anon", "the chat prompt", (rows) => lastRow(rows) === "alice>");
  await tmux.type("anon", "early bird");
  await tmux.press("anon", "Enter");
  await tmux.waitFor("anon", "the line taken", (rows) => lastRow(rows) === "alice>");
  typed();
  await tmux.waitFor(
    "anon",
    "the own line and the limits",
    (rows) =>
      rows.some((r) => /^\d\d:\d\d alice: early bird$/.test(r.trimEnd())) &&
      rows.some((r) => r.includes("-- limits: ")),
  );
  await tmux.press("anon", "C-d");
  assert.equal(await tmux.exitCode("anon"), 0);
  assert.deepEqual(received, ["alice", "early bird"]);
});

/**
 * A slow server: it accepts one connection and sends the alias prompt only
 * when the test calls `greet()` (never, if the connection has ended by then;
 * a confab client waits a second for it before it takes the server for a
 * silent line server). The first line that follows is taken as the alias and
 * answered with a welcome and the limits. Every non-blank line the client
 * sends is kept in `received`, until the client closes the connection or the
 * test ends.
 */
function lateGreeter() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: string[] = [];
  let greeted = false;
  let lines: LineSource | undefined;
  let onAccepted!: () => void;
  const accepted = new Promise<void>((resolve) => (onAccepted = resolve));
  const waiters: { pattern: string; resolve: () => void }[] = [];
  let greet!: () => void;
  const greeting = new Promise<void>((resolve) => (greet = resolve));
  const served = (async () => {
    const conn = await listener.accept();
    onAccepted();
    const source = lines = new LineSource(conn.readable);
    const send = async (text: string) => {
      const bytes = new TextEncoder().encode(text);
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
    };
    let ended = false;
    greeting.then(() => {
      if (ended) return;
      greeted = true;
      send("? alias: choose an alias\n").catch(() => {});
    });
    try {
      while (true) {
        const line = await source.next(60_000);
        if (line === null) break;
        if (line.trim() === "") continue;
        if (line === "/join" && received.length === 0) {
          await send(`${OLDER_REFUSAL}? alias: choose an alias\n`);
          continue;
        }
        received.push(line);
        if (received.length === 1) {
          await send(`[12:00:00] -- welcome, ${line}! you are the only one here\n`);
          await send("[12:00:00] -- limits: 5 lines per second, bursts of 20\n");
        }
        for (const waiter of waiters.filter((w) => w.pattern === line)) waiter.resolve();
      }
    } catch {
      // The client reset the connection, or sent nothing for a minute: over either way.
    } finally {
      ended = true;
      await source.cancel();
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    received,
    /** Sends the alias prompt (once). */
    greet: () => greet(),
    /** Whether the alias prompt has gone out (or was attempted). */
    get greeted() {
      return greeted;
    },
    accepted: () => withTimeout(accepted, WAIT_MS, "confab join to connect"),
    /** Resolves once the client has closed its connection. */
    closed: () => withTimeout(served, WAIT_MS, "confab join to close its connection"),
    /** Resolves once the client has sent exactly `line`. */
    got(line: string): Promise<void> {
      if (received.includes(line)) return Promise.resolve();
      return withTimeout(
        new Promise<void>((resolve) => waiters.push({ pattern: line, resolve })),
        WAIT_MS,
        `${JSON.stringify(line)} from confab join (got ${JSON.stringify(received)})`,
      );
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await lines?.cancel();
      await served.catch(() => {});
    },
  };
}

Deno.test("confab join leaves at once on Ctrl-C while a slow server has not greeted it yet, without joining", async () => {
  await using server = lateGreeter();
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "x", "--port", String(server.port)], {}, { ctrlC: true });
  await server.accepted();
  const pressed = Date.now();
  await tmux.press("alice", "C-c");
  await server.closed();
  const took = Date.now() - pressed;
  assert.equal(await tmux.exitCode("alice"), 0);
  assert.deepEqual(server.received, [], "nothing was sent");
  assert.equal(server.greeted, false);
  assert.ok(took < 1500, `took ${took} ms to close the connection`);
});

Deno.test("confab join does not send a line typed and entered before the chat started", async () => {
  await using server = lateGreeter();
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.port)]);
  await server.accepted();
  await tmux.type("alice", "typed too early");
  await tmux.press("alice", "Enter");
  server.greet();
  await tmux.waitFor("alice", "the chat prompt", (rows) => lastRow(rows) === "alice>");
  await tmux.type("alice", "typed in time");
  await tmux.press("alice", "Enter");
  await server.got("typed in time");
  assert.deepEqual(server.received, ["alice", "typed in time"]);
  await tmux.press("alice", "C-d");
  assert.equal(await tmux.exitCode("alice"), 0);
});

Deno.test("confab join exits 0 without joining when /quit is typed at the alias prompt", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using tmux = new Tmux();
  await tmux.start("anon", ["--port", String(server.addr.port)]);
  await tmux.waitFor("anon", "the alias prompt", (rows) => lastRow(rows) === "alias:");
  await tmux.type("anon", "/quit");
  await tmux.press("anon", "Enter");
  assert.equal(await tmux.exitCode("anon"), 0);
  // No one joined: bob's next line is the answer to this, not a join notice.
  await bob.send("/who");
  assert.match(await bob.lines.next() ?? "", live("-- 1 online:"));
  assert.equal(
    server.log.filter((line) => line.includes("joined")).length,
    1,
    server.log.join("\n"),
  );
});

Deno.test("confab join takes a submitted line that exactly fills the window off the screen", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using tmux = new Tmux();
  const columns = 80;
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.addr.port)], {}, {
    columns,
  });
  await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice #lobby>");
  await bob.expect(live("--> alice joined"));
  // "alice #lobby> " and the text take exactly the 80 columns of the window.
  const text = "fills-" + "x".repeat(columns - "alice #lobby> ".length - "fills-".length - 1) + "!";
  assert.equal("alice #lobby> ".length + text.length, columns);
  await tmux.type("alice", text);
  await tmux.waitFor("alice", "the typed line", (rows) => rows.some((r) => r.endsWith("x!")));
  await tmux.press("alice", "Enter");
  await bob.expect(live(`alice: ${text}`));
  const rows = trimmed(
    await tmux.waitFor(
      "alice",
      "the own line, formatted, and the prompt after it",
      (rows) =>
        rows.some((r) => /^\d\d:\d\d alice: fills-x+!?$/.test(r.trimEnd())) &&
        lastRow(rows) === "alice #lobby>",
    ),
  );
  assert.deepEqual(
    rows.filter((r) => r.startsWith("alice #lobby>")),
    ["alice #lobby>"],
    `the raw input row is still on the screen:\n${rows.join("\n")}`,
  );
  assert.equal(rows.filter((r) => r.includes("fills-")).length, 1, rows.join("\n"));
});

Deno.test("confab join keeps the lines above when a hidden password longer than the window is edited", async () => {
  const password = "p".repeat(150);
  await using server = startServer({ password });
  await using bob = await TestClient.connect(server.addr.port);
  await bob.expect(/^\? password: /);
  await bob.send(password);
  await bob.answerAlias("bob");
  await using tmux = new Tmux();
  // A wrong try first, so that there are lines above the prompt to keep.
  await askedPasswordAgain(tmux, server.addr.port, "guess");
  // Longer than the 100 columns, with a typo at the end taken back.
  await tmux.type("alice", password + "xyz");
  await tmux.press("alice", "BSpace", "BSpace", "BSpace");
  await tmux.press("alice", "Enter");
  await bob.expect(live("--> alice joined"));
  const rows = trimmed(
    await tmux.waitFor("alice", "the chat prompt", (rows) => lastRow(rows) === "alice #lobby>"),
  );
  assert.equal(rows[0], "password:", rows.join("\n"));
  assert.ok(rows.some((r) => r.trimEnd() === "! wrong password"), rows.join("\n"));
  assert.ok(rows.some((r) => /-- welcome, alice! 2 online: bob, alice$/.test(r)), rows.join("\n"));
  assert.ok(!rows.some((r) => r.includes("ppp") || r.includes("guess")), rows.join("\n"));
});

Deno.test("confab join --json on a narrow terminal prints a long event as one unbroken JSON line", async () => {
  await using server = startServer();
  await using tmux = new Tmux();
  const args = ["--alias", "alice", "--json", "--port", String(server.addr.port)];
  await tmux.start("alice", args, {}, { columns: 60 });
  await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice #lobby>");
  await using bob = await TestClient.join(server.addr.port, "bob");
  const text = Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ");
  await bob.send(text);
  // -J puts back together the rows the terminal itself wrapped.
  const rows = await tmux.waitFor(
    "alice",
    "the message event",
    (rows) => rows.some((r) => r.includes('"type":"message"') && r.includes("word29")),
    { joined: true },
  );
  const line = rows.find((r) => r.includes('"type":"message"'))!.trimEnd();
  const event = JSON.parse(line);
  assert.deepEqual([event.type, event.from, event.text], ["message", "bob", text]);
  for (const row of rows.filter((r) => r.startsWith("{"))) JSON.parse(row.trimEnd());
});
