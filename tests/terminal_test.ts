/**
 * `confab join` on a real terminal: each test runs it in a tmux pane (a
 * pseudo-terminal 100x30) against a server in this process, types into it
 * with `send-keys` and reads the screen with `capture-pane`.
 */

import assert from "node:assert/strict";
import {
  LineSource,
  live,
  MAIN,
  RUN_FLAGS,
  startServer,
  TestClient,
  WAIT_MS,
  withTimeout,
} from "./_helpers.ts";

const decoder = new TextDecoder();
const POLL_MS = 50;

/** Quotes one word for `sh -c`. */
const shellQuote = (word: string) => `'${word.replaceAll("'", `'"'"'`)}'`;

/** The environment tmux and the panes get: nothing inherited but the basics. */
function tmuxEnv(): Record<string, string> {
  const env: Record<string, string> = { SHELL: "/bin/sh", TERM: "xterm-256color", LANG: "C.UTF-8" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** One private tmux server, on its own socket, killed by `dispose`. */
class Tmux implements AsyncDisposable {
  readonly socket = `confab-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  #started = false;

  /** Runs `tmux -L SOCKET ARGS...` and returns its stdout; throws if it fails. */
  async run(...args: string[]): Promise<string> {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command("tmux", {
        args: ["-L", this.socket, "-f", "/dev/null", ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        clearEnv: true,
        env: tmuxEnv(),
        signal: AbortSignal.timeout(WAIT_MS),
      }).output();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Error(
          "terminal_test needs the 'tmux' command, which is not installed; " +
            "install it (e.g. apt-get install tmux) to run these tests",
        );
      }
      throw error;
    }
    if (!output.success) {
      throw new Error(`tmux ${args.join(" ")} failed: ${decoder.decode(output.stderr).trim()}`);
    }
    return decoder.decode(output.stdout);
  }

  /** Starts `confab join ARGS...` in a new detached session named `name`. */
  async start(name: string, args: string[], env: Record<string, string> = {}): Promise<void> {
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`);
    // The shell stays to print the exit status where the screen shows it.
    const command = [
      "env",
      ...assignments,
      ...[Deno.execPath(), ...RUN_FLAGS, MAIN, "join", ...args].map(shellQuote),
      '; echo "[exited $?]"',
    ].join(" ");
    const first = this.#started
      ? []
      : ["start-server", ";", "set-option", "-g", "remain-on-exit", "on", ";"];
    this.#started = true;
    await this.run(...first, "new-session", "-d", "-s", name, "-x", "100", "-y", "30", command);
  }

  /** The screen of session `name`, one string per row; `escapes` keeps colours as SGR codes. */
  async screen(name: string, escapes = false): Promise<string[]> {
    const args = ["capture-pane", "-p", "-t", name, ...(escapes ? ["-e"] : [])];
    return (await this.run(...args)).split("\n");
  }

  /** Types literal text into session `name`. */
  async type(name: string, text: string): Promise<void> {
    await this.run("send-keys", "-t", name, "-l", text);
  }

  /** Presses keys (tmux key names such as Enter, Tab, C-d) in session `name`. */
  async press(name: string, ...keys: string[]): Promise<void> {
    await this.run("send-keys", "-t", name, ...keys);
  }

  /**
   * Polls the screen of `name` until `check` accepts it, at most `timeoutMs`
   * and a bounded number of captures; returns the rows it accepted.
   */
  async waitFor(
    name: string,
    what: string,
    check: (rows: string[]) => boolean,
    options: { escapes?: boolean; timeoutMs?: number } = {},
  ): Promise<string[]> {
    const timeoutMs = options.timeoutMs ?? WAIT_MS;
    const deadline = Date.now() + timeoutMs;
    let rows: string[] = [];
    for (let attempt = 0; attempt < Math.ceil(timeoutMs / POLL_MS) + 1; attempt++) {
      rows = await this.screen(name, options.escapes);
      if (check(rows)) return rows;
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`timed out waiting for ${what}; screen:\n${rows.join("\n")}`);
  }

  /** Waits until `confab join` in session `name` has exited; returns its exit code. */
  async exitCode(name: string): Promise<number> {
    const marker = /\[exited (\d+)\]/;
    const rows = await this.waitFor(
      name,
      "confab join to exit",
      (rows) => rows.some((r) => marker.test(r)),
    );
    return Number(marker.exec(rows.find((r) => marker.test(r))!)![1]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#started) return;
    const path = (await this.run("display-message", "-p", "#{socket_path}").catch(() => "")).trim();
    await this.run("kill-server").catch(() => {});
    // tmux leaves its socket file behind when killed.
    if (path !== "") await Deno.remove(path).catch(() => {});
  }
}

/** Rows of the screen without trailing blanks (tmux pads every row to the width). */
const trimmed = (rows: string[]) => rows.map((r) => r.trimEnd());

/** The last row with anything on it. */
const lastRow = (rows: string[]) => trimmed(rows).filter((r) => r !== "").at(-1) ?? "";

Deno.test("confab join keeps a half-typed line intact on the prompt while others' lines print above it", async () => {
  await using server = startServer();
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.addr.port)]);
  await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice>");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await tmux.waitFor(
    "alice",
    "bob's join",
    (rows) => rows.some((r) => r.includes("--> bob joined")),
  );

  await tmux.type("alice", "hello wor");
  await tmux.waitFor("alice", "the typed text", (rows) => lastRow(rows) === "alice> hello wor");
  await bob.send("interrupting you");
  const rows = trimmed(
    await tmux.waitFor(
      "alice",
      "bob's line above the prompt",
      (rows) => rows.some((r) => r.endsWith("bob: interrupting you")),
    ),
  );
  const said = rows.findIndex((r) => r.endsWith("bob: interrupting you"));
  assert.match(rows[said]!, /^\d\d:\d\d bob: interrupting you$/);
  assert.equal(rows[said + 1], "alice> hello wor", `screen:\n${rows.join("\n")}`);
  assert.ok(rows.slice(said + 2).every((r) => r === ""), `screen:\n${rows.join("\n")}`);
  assert.equal(rows.filter((r) => r.includes("hello wor")).length, 1, "typed text shown once");

  // The edit buffer survived: finish the word and send it.
  await tmux.type("alice", "ld");
  await tmux.press("alice", "Enter");
  await bob.expect(live("alice: hello world"));
  const after = trimmed(
    await tmux.waitFor("alice", "own line shown", (rows) => lastRow(rows) === "alice>"),
  );
  assert.ok(after.some((r) => /^\d\d:\d\d alice: hello world$/.test(r)), after.join("\n"));
  assert.ok(!after.some((r) => r === "alice> hello world"), "the raw input line was replaced");

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
  await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice>");

  await tmux.type("alice", "/wh");
  await tmux.press("alice", "Tab");
  await tmux.waitFor("alice", "/wh completed", (rows) => lastRow(rows) === "alice> /who");
  await tmux.press("alice", "Enter");
  await tmux.waitFor(
    "alice",
    "the /who reply",
    (rows) => rows.some((r) => /-- 2 online:/.test(r)) && lastRow(rows) === "alice>",
  );

  await tmux.type("alice", "bo");
  await tmux.press("alice", "Tab");
  await tmux.waitFor("alice", "bo completed", (rows) => lastRow(rows) === "alice> bobby:");
  await tmux.type("alice", "thanks");
  await tmux.press("alice", "Enter");
  await bob.expect(live("alice: bobby: thanks"));

  // Later in the line, an alias completes without the colon.
  await tmux.type("alice", "ping bob");
  await tmux.press("alice", "Tab");
  await tmux.waitFor("alice", "bob completed", (rows) => lastRow(rows) === "alice> ping bobby");
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
    await tmux.waitFor(name, "the prompt", (rows) => /^(alice|carol)>$/.test(lastRow(rows)));
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

Deno.test("confab join never echoes a typed password and keeps it out of the input history", async () => {
  await using server = startServer({ password: "sesame" });
  await using bob = await TestClient.connect(server.addr.port);
  await bob.expect(/^\? password: /);
  await bob.send("sesame");
  await bob.answerAlias("bob");
  await using tmux = new Tmux();
  await tmux.start("alice", ["--alias", "alice", "--port", String(server.addr.port)], {
    CONFAB_PASSWORD: "",
  });
  await tmux.waitFor("alice", "the password prompt", (rows) => lastRow(rows) === "password:");

  // A wrong one first: told so, and asked again.
  await tmux.type("alice", "guess1");
  await tmux.press("alice", "Enter");
  await tmux.waitFor(
    "alice",
    "the password asked again",
    (rows) => rows.some((r) => r.includes("! wrong password")) && lastRow(rows) === "password:",
  );
  // A typo fixed with Backspace makes readline redraw the line: still nothing shown.
  await tmux.type("alice", "sesamX");
  await tmux.press("alice", "BSpace");
  await tmux.type("alice", "e");
  await tmux.press("alice", "Enter");
  await bob.expect(live("--> alice joined"));
  const joined = trimmed(
    await tmux.waitFor("alice", "the prompt", (rows) => lastRow(rows) === "alice>"),
  );
  for (const secret of ["guess", "sesam"]) {
    assert.ok(!joined.some((r) => r.includes(secret)), `${secret} shown:\n${joined.join("\n")}`);
  }

  await tmux.type("alice", "first line");
  await tmux.press("alice", "Enter");
  await bob.expect(live("alice: first line"));
  await tmux.waitFor("alice", "an empty prompt", (rows) => lastRow(rows) === "alice>");
  // Up brings back what was said...
  await tmux.press("alice", "Up");
  await tmux.waitFor("alice", "the recalled line", (rows) => lastRow(rows) === "alice> first line");
  // ...and nothing older: one more Up either stays there or goes back to the
  // empty line. The marker typed after it shows that the key was handled.
  await tmux.press("alice", "Up");
  await tmux.type("alice", "?");
  const recalled = trimmed(
    await tmux.waitFor("alice", "the marker", (rows) => lastRow(rows).endsWith("?")),
  );
  assert.ok(
    ["alice> first line?", "alice> ?"].includes(lastRow(recalled)),
    recalled.join("\n"),
  );
  for (const secret of ["guess", "sesam"]) {
    assert.ok(
      !recalled.some((r) => r.includes(secret)),
      `${secret} shown:\n${recalled.join("\n")}`,
    );
  }

  await tmux.press("alice", "C-u");
  await tmux.waitFor("alice", "an empty prompt", (rows) => lastRow(rows) === "alice>");
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
    trimmed(await tmux.screen("anon")).some((r) => r.startsWith("choose an alias: 1 to 32")),
    "the server's rule is shown",
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
  await tmux.waitFor("anon", "the chat prompt", (rows) => lastRow(rows) === "alice>");
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
  // Both renames are shown, escaped; the prompt was redrawn before each if it was going to be.
  const rows = trimmed(
    await tmux.waitFor(
      "alice",
      "the rename lines",
      (rows) =>
        rows.some((r) => r.endsWith("alice is now known as ^[]2;pwned^G")) &&
        rows.some((r) => r.endsWith("alice is now known as ^[kpwned^[\\")),
    ),
  );
  assert.equal(lastRow(rows), "alice>", rows.join("\n"));
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
