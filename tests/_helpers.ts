/**
 * Test helpers: real TCP clients that wait for the line they expect (with a
 * timeout, never a sleep), a quiet in-process server, and confab as a
 * subprocess.
 *
 * @module
 */

import { type ChatServer, serve, type ServeOptions } from "../server/mod.ts";

/** How long any single wait in a test may take before it fails. */
export const WAIT_MS = 5000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Rejects after `ms` with a message saying what was awaited. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Lines from a byte stream, read on demand: `next()` waits for the next
 * line, `expect()` skips lines until one matches.
 */
export class LineSource {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = "";
  #lines: string[] = [];
  #ended = false;
  #pending: Promise<void> | undefined;
  /** Every line seen so far, for failure messages. */
  readonly seen: string[] = [];

  /** Reads lines from `stream`. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Whether the stream has ended and every line has been taken. */
  get ended(): boolean {
    return this.#ended && this.#lines.length === 0;
  }

  async #fill(): Promise<void> {
    const { value, done } = await this.#reader.read();
    if (done) {
      this.#ended = true;
      if (this.#buffer !== "") this.#lines.push(this.#buffer);
      this.#buffer = "";
      return;
    }
    this.#buffer += decoder.decode(value, { stream: true });
    const parts = this.#buffer.split("\n");
    this.#buffer = parts.pop()!;
    for (const part of parts) this.#lines.push(part.replace(/\r$/, ""));
  }

  /** The next line, or `null` at the end of the stream. */
  async next(timeoutMs = WAIT_MS): Promise<string | null> {
    while (this.#lines.length === 0 && !this.#ended) {
      // One read at a time; a timed-out read is picked up by the next call.
      this.#pending ??= this.#fill().finally(() => (this.#pending = undefined));
      await withTimeout(this.#pending, timeoutMs, `a line (seen: ${this.#recent()})`);
    }
    const line = this.#lines.shift() ?? null;
    if (line !== null) this.seen.push(line);
    return line;
  }

  /** Skips lines until one matches; fails at the end of the stream or on timeout. */
  async expect(pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const matches = (line: string) =>
      typeof pattern === "string" ? line.includes(pattern) : pattern.test(line);
    while (true) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern} (seen: ${this.#recent()})`);
      let line: string | null;
      try {
        line = await this.next(left);
      } catch {
        throw new Error(`timed out waiting for ${pattern} (seen: ${this.#recent()})`);
      }
      if (line === null) {
        throw new Error(`stream ended waiting for ${pattern} (seen: ${this.#recent()})`);
      }
      if (matches(line)) return line;
    }
  }

  /** Waits for the end of the stream, returning the lines before it. */
  async rest(timeoutMs = WAIT_MS): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    while (true) {
      const line = await this.next(Math.max(1, deadline - Date.now()));
      if (line === null) return lines;
      lines.push(line);
    }
  }

  /** Stops reading. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  #recent(): string {
    return JSON.stringify(this.seen.slice(-8));
  }
}

/** A raw TCP chat client for tests. */
export class TestClient implements AsyncDisposable {
  readonly conn: Deno.Conn;
  readonly lines: LineSource;
  #closed = false;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.lines = new LineSource(conn.readable);
  }

  /** Connects without doing anything else. */
  static async connect(port: number): Promise<TestClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new TestClient(conn);
  }

  /** Connects, answers the alias prompt and waits for the welcome. */
  static async join(port: number, alias: string): Promise<TestClient> {
    const client = await TestClient.connect(port);
    await client.answerAlias(alias);
    return client;
  }

  /** Connects over TLS to 127.0.0.1, trusting only `caCerts`. */
  static async connectTls(port: number, caCerts: string[]): Promise<TestClient> {
    const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts });
    return new TestClient(conn);
  }

  /** Waits for the alias prompt, answers it and waits for the welcome and limits lines. */
  async answerAlias(alias: string): Promise<void> {
    await this.lines.expect(/^\? alias: /);
    await this.send(alias);
    await this.lines.expect(/^\[\d\d:\d\d:\d\d\] -- welcome, /);
    await this.lines.expect(/^\[\d\d:\d\d:\d\d\] -- limits: /);
  }

  /** Sends one line (LF added). */
  async send(line: string): Promise<void> {
    await this.write(encoder.encode(line + "\n"));
  }

  /** Sends raw bytes. */
  async write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /** Shorthand for `lines.expect`. */
  expect(pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    return this.lines.expect(pattern, timeoutMs);
  }

  /** Waits until the server closes the connection; returns the lines before. */
  closed(timeoutMs = WAIT_MS): Promise<string[]> {
    return this.lines.rest(timeoutMs);
  }

  /** Closes the connection (idempotent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.lines.cancel();
    try {
      this.conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The next line from `client`, which must come before the connection ends. */
export async function nextLine(client: TestClient, timeoutMs = WAIT_MS): Promise<string> {
  const line = await client.lines.next(timeoutMs);
  if (line === null) throw new Error("the connection ended early");
  return line;
}

/**
 * Reads until the server closes the connection. A reset counts as the end
 * too; then every line seen on the connection is returned.
 */
export async function readToEnd(client: TestClient, timeoutMs = WAIT_MS): Promise<string[]> {
  try {
    return await client.closed(timeoutMs);
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return client.lines.seen;
    throw error;
  }
}

/** Joins clients one after another, each earlier one seeing each later one arrive. */
export async function joinAll(port: number, aliases: string[]): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  try {
    for (const alias of aliases) {
      const client = await TestClient.join(port, alias);
      for (const earlier of clients) await earlier.expect(live(`--> ${alias} joined`));
      clients.push(client);
    }
  } catch (error) {
    await closeAll(clients);
    throw error;
  }
  return clients;
}

/**
 * Proves `client` received nothing since its last read: `from` says
 * `marker`, and that must be the very next line `client` gets.
 */
export async function assertNothingBefore(
  client: TestClient,
  from: TestClient,
  fromAlias: string,
  marker: string,
): Promise<void> {
  await from.send(marker);
  const line = await nextLine(client);
  if (!live(`${fromAlias}: ${marker}`).test(line)) {
    throw new Error(`expected ${fromAlias}'s marker "${marker}" next, got: ${line}`);
  }
}

/** Closes every client. */
export async function closeAll(clients: TestClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.close()));
}

/** A server on a free port with its log captured instead of printed. */
export function startServer(options: ServeOptions = {}): ChatServer & { log: string[] } {
  const log: string[] = [];
  const server = serve({
    port: 0,
    hostname: "127.0.0.1",
    log: (line) => log.push(line),
    ...options,
  });
  return Object.assign(server, { log });
}

/** A time stamp on a live line. */
export const T = String.raw`\[\d\d:\d\d:\d\d\] `;

/** A RegExp for a live line with the given body (a literal). */
export function live(body: string): RegExp {
  return new RegExp(`^${T}${body.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

/** Path of main.ts, for subprocess tests. */
export const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Permissions confab runs with, as in deno.json's tasks. */
export const RUN_FLAGS = ["run", "--allow-net", "--allow-read", "--allow-env"];

/** Permissions `confab serve --log` needs: those of {@linkcode RUN_FLAGS} and writing. */
export const SERVE_WRITE_COMMAND = [Deno.execPath(), ...RUN_FLAGS, "--allow-write", MAIN];

/**
 * Starts `confab serve --port 0 ARGS...` (by default allowed to write, for
 * `--log`) and waits for it to say where it listens; its signal handlers are
 * in place by then.
 */
export async function spawnServer(
  args: string[],
  command: string[] = SERVE_WRITE_COMMAND,
): Promise<ConfabProcess & { port: number }> {
  const proc = spawnConfab(["serve", "--port", "0", ...args], { command });
  try {
    const first = await proc.stdout.next(15_000);
    const port = Number(/^confab \S+ listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "")?.[1]);
    if (!port) {
      const stderr = await proc.stderr.rest().catch(() => proc.stderr.seen);
      throw new Error(`first line ${first}; stderr: ${stderr.join("\n")}`);
    }
    return Object.assign(proc, { port });
  } catch (error) {
    await proc[Symbol.asyncDispose]();
    throw error;
  }
}

/** A confab subprocess with piped stdio and line readers on its output. */
export interface ConfabProcess extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: LineSource;
  readonly stderr: LineSource;
  /** Writes to its stdin. */
  write(text: string): Promise<void>;
  /** Closes its stdin. */
  closeStdin(): Promise<void>;
  /** Waits for it to exit (killing it after the timeout) and returns the code. */
  exit(timeoutMs?: number): Promise<number>;
}

/** Starts `confab ARGS...` (or `command` instead of `deno run main.ts`). */
export function spawnConfab(
  args: string[],
  options: { env?: Record<string, string>; command?: string[] } = {},
): ConfabProcess {
  const [cmd, ...pre] = options.command ?? [Deno.execPath(), ...RUN_FLAGS, MAIN];
  const child = new Deno.Command(cmd!, {
    args: [...pre, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "", ...options.env },
  }).spawn();
  const writer = child.stdin.getWriter();
  let stdinClosed = false;
  const stdout = new LineSource(child.stdout);
  const stderr = new LineSource(child.stderr);
  let status: Promise<Deno.CommandStatus> | undefined;
  const exit = async (timeoutMs = WAIT_MS * 2) => {
    status ??= child.status;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
        resolve();
      }, timeoutMs);
    });
    const result = await Promise.race([status, killed.then(() => status!)]);
    clearTimeout(timer);
    return result.code;
  };
  const closeStdin = async () => {
    if (stdinClosed) return;
    stdinClosed = true;
    await writer.close().catch(() => {});
  };
  return {
    child,
    stdout,
    stderr,
    write: (text) => writer.write(encoder.encode(text)),
    closeStdin,
    exit,
    async [Symbol.asyncDispose]() {
      await closeStdin();
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
      // Drain what is left so the pipes close.
      await Promise.all([
        stdout.rest(WAIT_MS).catch(() => {}),
        stderr.rest(WAIT_MS).catch(() => {}),
      ]);
    },
  };
}

/** A process other than confab (nc, ncat, python3) with line readers on its output. */
export interface PeerProcess extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: LineSource;
  /** Its stderr, when asked for with `stderr: true` (else `undefined`). */
  readonly stderr: LineSource | undefined;
  /** Writes one line (LF added) to its stdin. */
  send(line: string): Promise<void>;
  /** Closes its stdin. */
  closeStdin(): Promise<void>;
}

/** Options for {@linkcode spawnPeer}. */
export interface PeerOptions {
  /**
   * Read its stderr too (as `stderr`), rather than discarding it.
   *
   * @default {false}
   */
  stderr?: boolean;
}

/** Starts `command ARGS...` with piped stdio; fails clearly if it is not installed. */
export function spawnPeer(
  command: string,
  args: string[],
  options: PeerOptions = {},
): PeerProcess {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: options.stderr ? "piped" : "null",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`this test needs the '${command}' command, which is not installed`);
    }
    throw error;
  }
  const writer = child.stdin.getWriter();
  let stdinClosed = false;
  const stdout = new LineSource(child.stdout);
  const stderr = options.stderr ? new LineSource(child.stderr) : undefined;
  const closeStdin = async () => {
    if (stdinClosed) return;
    stdinClosed = true;
    await writer.close().catch(() => {});
  };
  return {
    child,
    stdout,
    stderr,
    send: (line) => writer.write(encoder.encode(line + "\n")),
    closeStdin,
    async [Symbol.asyncDispose]() {
      await closeStdin();
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
      await stdout.rest(WAIT_MS).catch(() => {});
      await stderr?.rest(WAIT_MS).catch(() => {});
    },
  };
}

/** The side of a scripted TCP peer that {@linkcode withFakeServer} hands its script. */
export interface FakePeer {
  /** Lines from the client. */
  lines: LineSource;
  /** Writes `text` as it is (add the newlines). */
  send(text: string): Promise<void>;
}

/**
 * A TCP peer under the test's control, standing in for a server: it accepts
 * one connection and runs `script` on it, then closes it, while `body` runs
 * with its port.
 */
export async function withFakeServer(
  script: (peer: FakePeer) => Promise<void>,
  body: (port: number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    const lines = new LineSource(conn.readable);
    const send = async (text: string) => {
      const bytes = encoder.encode(text);
      let offset = 0;
      while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
    };
    try {
      await script({ lines, send });
    } finally {
      await lines.cancel();
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  })();
  // The script's failure is reported once the body is done (first, since it
  // is usually the cause), never as an uncaught error.
  const scriptFailed = served.then(() => undefined, (error: unknown) => ({ error }));
  let bodyFailed: { error: unknown } | undefined;
  try {
    await body((listener.addr as Deno.NetAddr).port);
  } catch (error) {
    bodyFailed = { error };
  }
  listener.close();
  const failure = (await scriptFailed) ?? bodyFailed;
  if (failure) throw failure.error;
}

/** Path of the line chat server that is not confab (see the fixture's docstring). */
export const LINE_CHAT_SERVER = new URL("./fixtures/line_chat_server.py", import.meta.url).pathname;

/**
 * Starts the fixture's line chat server (`python3`) on a free port with the
 * given options (`--prompt TEXT`, `--silent`) and waits until it listens.
 */
export async function startLineServer(
  args: string[] = [],
): Promise<PeerProcess & { port: number }> {
  const server = spawnPeer("python3", [LINE_CHAT_SERVER, "--port", "0", ...args]);
  try {
    const line = await server.stdout.expect(/^listening on 127\.0\.0\.1:\d+$/);
    return Object.assign(server, { port: Number(line.split(":").at(-1)) });
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}

/** How often `Tmux.waitFor` looks at the screen. */
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

/**
 * One private tmux server, on its own socket, killed by `dispose`: programs
 * on a real terminal (a pseudo-terminal 100x30 unless told otherwise), typed
 * into with `send-keys` and read with `capture-pane`.
 */
export class Tmux implements AsyncDisposable {
  readonly socket = `confab-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  #started = false;
  /** Where sessions started with `ctrlC` write confab's exit status. */
  #statusDir: string | undefined;
  readonly #statusFiles = new Map<string, string>();

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
          "these tests need the 'tmux' command, which is not installed; " +
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

  /**
   * Starts `confab join ARGS...` in a new detached session named `name`, in a
   * window `columns` wide. With `ctrlC`, Ctrl-C may be pressed there: Ctrl-C
   * signals every process of the terminal, which kills sh (dash) at once, so
   * confab runs under bash, which waits for confab and carries on if it
   * survives; its exit status goes to a file rather than to the screen.
   */
  async start(
    name: string,
    args: string[],
    env: Record<string, string> = {},
    options: { columns?: number; ctrlC?: boolean } = {},
  ): Promise<void> {
    await this.startCommand(
      name,
      [Deno.execPath(), ...RUN_FLAGS, MAIN, "join", ...args],
      env,
      options,
    );
  }

  /** Like {@linkcode Tmux.start}, for any command (`argv`), not only `confab join`. */
  async startCommand(
    name: string,
    argv: string[],
    env: Record<string, string> = {},
    options: { columns?: number; ctrlC?: boolean } = {},
  ): Promise<void> {
    const assignments = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`);
    const join = ["env", ...assignments, ...argv.map(shellQuote)].join(" ");
    let command: string;
    if (options.ctrlC) {
      this.#statusDir ??= await Deno.makeTempDir({ prefix: "confab-tmux-" });
      const file = `${this.#statusDir}/${name}`;
      this.#statusFiles.set(name, file);
      command = `exec bash -c ${shellQuote(`${join}; echo "$?" > ${shellQuote(file)}`)}`;
    } else {
      // The shell stays to print the exit status where the screen shows it.
      command = `${join}; echo "[exited $?]"`;
    }
    const first = this.#started
      ? []
      : ["start-server", ";", "set-option", "-g", "remain-on-exit", "on", ";"];
    this.#started = true;
    const columns = String(options.columns ?? 100);
    await this.run(...first, "new-session", "-d", "-s", name, "-x", columns, "-y", "30", command);
  }

  /**
   * The screen of session `name`, one string per row; `escapes` keeps colours
   * as SGR codes, `joined` puts rows the terminal wrapped back together.
   */
  async screen(name: string, escapes = false, joined = false): Promise<string[]> {
    const args = [
      "capture-pane",
      "-p",
      "-t",
      name,
      ...(escapes ? ["-e"] : []),
      ...(joined ? ["-J"] : []),
    ];
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
    options: { escapes?: boolean; joined?: boolean; timeoutMs?: number } = {},
  ): Promise<string[]> {
    const timeoutMs = options.timeoutMs ?? WAIT_MS;
    const deadline = Date.now() + timeoutMs;
    let rows: string[] = [];
    for (let attempt = 0; attempt < Math.ceil(timeoutMs / POLL_MS) + 1; attempt++) {
      rows = await this.screen(name, options.escapes, options.joined);
      if (check(rows)) return rows;
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(`timed out waiting for ${what}; screen:\n${rows.join("\n")}`);
  }

  /** Waits until `confab join` in session `name` has exited; returns its exit code. */
  async exitCode(name: string): Promise<number> {
    const file = this.#statusFiles.get(name);
    if (file !== undefined) return await this.#statusFileCode(name, file);
    const marker = /\[exited (\d+)\]/;
    const rows = await this.waitFor(
      name,
      "confab join to exit",
      (rows) => rows.some((r) => marker.test(r)),
    );
    return Number(marker.exec(rows.find((r) => marker.test(r))!)![1]);
  }

  /** Waits for the exit status that session `name` writes to `file`. */
  async #statusFileCode(name: string, file: string): Promise<number> {
    const deadline = Date.now() + WAIT_MS;
    for (let attempt = 0; attempt < Math.ceil(WAIT_MS / POLL_MS) + 1; attempt++) {
      const text = await Deno.readTextFile(file).catch(() => "");
      if (/^\d+\n$/.test(text)) return Number(text);
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(
      `timed out waiting for confab join to exit; screen:\n${(await this.screen(name)).join("\n")}`,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#started) return;
    const path = (await this.run("display-message", "-p", "#{socket_path}").catch(() => "")).trim();
    await this.run("kill-server").catch(() => {});
    // tmux leaves its socket file behind when killed.
    if (path !== "") await Deno.remove(path).catch(() => {});
    if (this.#statusDir !== undefined) await Deno.remove(this.#statusDir, { recursive: true });
  }
}
