/**
 * `confab join`: connects, answers the server's prompts, then runs two loops
 * tied together, the user's lines to the socket and the socket's lines to the
 * screen. Whichever ends first ends the other, and the exit code says how.
 *
 * @module
 */

import { COMMAND_NAMES } from "../server/commands.ts";
import { LineReader } from "../server/line_reader.ts";
import { parseServerLine, type ServerEvent, SHUTDOWN_TEXT } from "../server/protocol.ts";
import { sanitize } from "../server/sanitize.ts";
import { PipeIO, TerminalIO, type UserIO } from "./io.ts";
import { Renderer } from "./render.ts";
import { Pacer } from "./pacer.ts";

/** Exit codes of `confab join`, documented in the README and `--help`. */
export const EXIT = {
  /** Left the room (end of input, Ctrl-C/Ctrl-D, /quit). */
  ok: 0,
  /** Something unexpected went wrong inside confab. */
  internal: 1,
  /** Bad command line. */
  usage: 2,
  /** Could not connect: refused, unreachable, TLS failure, no greeting. */
  connect: 3,
  /** The connection broke without the server saying goodbye. */
  lost: 4,
  /** The server shut down. */
  shutdown: 5,
  /** The server disconnected us and said why (too slow, flooding, idle...). */
  disconnected: 6,
  /** Refused at the door: alias refused or wrong password, and no one to ask. */
  refused: 7,
} as const;

/** Options for {@linkcode runJoin}. */
export interface JoinOptions {
  /** Server address. */
  hostname: string;
  /** Server port. */
  port: number;
  /** Alias to ask for; asked on a terminal when missing. */
  alias?: string | undefined;
  /** Connect with TLS. */
  tls: boolean;
  /** Extra PEM certificates to trust for TLS. */
  caCerts?: string[] | undefined;
  /** Room password, if the room has one. */
  password?: string | undefined;
  /** Replay the room's recent history on joining. */
  history: boolean;
  /** JSON output. */
  json: boolean;
  /** Colours. */
  color: boolean;
  /** Timestamps. */
  timestamps: boolean;
  /** Bell on mentions. */
  bell: boolean;
  /** stdin is a terminal: edit lines, ask for what is missing. */
  interactive: boolean;
  /** Leave the room when aborted (Ctrl-C as a signal). */
  signal?: AbortSignal;
  /**
   * How long to wait for the server's first line (ms).
   *
   * @default {5000}
   */
  greetingTimeoutMs?: number;
}

/** A connection-level failure, with the exit code it maps to. */
class JoinError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = "JoinError";
  }
}

const encoder = new TextEncoder();
/** Longest line accepted from a server (its own lines are far shorter). */
const SERVER_LINE_BYTES = 256 * 1024;
/** How long to wait for the server's first line, by default. */
const GREETING_MS = 5000;
/** After we stop sending, how long the server has to close its side. */
const LEAVE_TIMEOUT_MS = 3000;

function describe(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  if (error instanceof Deno.errors.NotCapable) return "not allowed (run with --allow-net)";
  return error instanceof Error ? error.message : String(error);
}

/** Reads server lines from a connection; ends at EOF, throws on errors. */
async function* serverLines(conn: Deno.Conn): AsyncGenerator<string> {
  const lines: string[] = [];
  const reader = new LineReader({
    maxLineBytes: SERVER_LINE_BYTES,
    onLine: (line) => lines.push(line),
    onOverflow: () => lines.push("! (a line from the server was too long and was dropped)"),
  });
  const buffer = new Uint8Array(16 * 1024);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    reader.push(buffer.subarray(0, n));
    yield* lines.splice(0);
  }
  reader.end();
  yield* lines.splice(0);
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

async function connect(o: JoinOptions): Promise<Deno.Conn> {
  const where = `${o.hostname}:${o.port}`;
  try {
    if (!o.tls) return await Deno.connect({ hostname: o.hostname, port: o.port });
    const conn = await Deno.connectTls({
      hostname: o.hostname,
      port: o.port,
      ...(o.caCerts ? { caCerts: o.caCerts } : {}),
    });
    try {
      await withTimeout(conn.handshake(), o.greetingTimeoutMs ?? GREETING_MS, "no TLS handshake");
    } catch (error) {
      closeQuietly(conn);
      throw new JoinError(
        `TLS with ${where} failed: ${describe(error)} (is the server using TLS?)`,
        EXIT.connect,
      );
    }
    return conn;
  } catch (error) {
    if (error instanceof JoinError) throw error;
    throw new JoinError(`cannot connect to ${where}: ${describe(error)}`, EXIT.connect);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Deno.errors.TimedOut(what)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const LIMITS_RE = /^limits: (?:(\d+) lines per second, bursts of (\d+)|no rate limit)/;
const WELCOME_RE = /^welcome, [^!]+! \d+ online: (.*?)(?: and \d+ more)?$/;

/**
 * Joins a room and runs until the user leaves or the connection ends.
 * Returns the exit code ({@linkcode EXIT}); never throws for anything the
 * network or the server did.
 */
export async function runJoin(o: JoinOptions): Promise<number> {
  const renderer = new Renderer(o);
  const online = new Set<string>();
  const io: UserIO = o.interactive
    ? new TerminalIO((line: string) => complete(line, online))
    : new PipeIO();
  const status = (text: string) => writeStderr(`confab: ${text}`);
  let conn: Deno.Conn | undefined;
  const onAbort = () => io.close();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    conn = await connect(o);
    return await chat(conn, o, io, renderer, online, status);
  } catch (error) {
    if (error instanceof JoinError) {
      status(error.message);
      return error.code;
    }
    status(`internal error: ${error instanceof Error ? error.stack : error}`);
    return EXIT.internal;
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    io.close();
    if (conn) closeQuietly(conn);
  }
}

function writeStderr(text: string): void {
  const bytes = encoder.encode(text + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
}

function complete(line: string, online: Set<string>): [string[], string] {
  if (/^\/\S*$/.test(line)) {
    const hits = COMMAND_NAMES.filter((c) => c.startsWith(line.toLowerCase()));
    return [hits.length ? hits.map((c) => c + " ") : [...COMMAND_NAMES], line];
  }
  const word = /(\S*)$/.exec(line)![1]!;
  if (word === "") return [[], word];
  const lower = word.toLowerCase();
  const atStart = line.length === word.length;
  const hits = [...online].filter((a) => a.toLowerCase().startsWith(lower))
    .map((a) => (atStart ? `${a}: ` : `${a} `));
  return [hits, word];
}

function trackOnline(event: ServerEvent, online: Set<string>): void {
  switch (event.kind) {
    case "join":
      online.add(event.alias);
      break;
    case "leave":
      online.delete(event.alias);
      break;
    case "nick":
      online.delete(event.from);
      online.add(event.to);
      break;
    case "message":
    case "action":
      if (!event.history) online.add(event.from);
      break;
    case "notice": {
      const names = WELCOME_RE.exec(event.text)?.[1];
      if (names) { for (const name of names.split(", ")) online.add(name); }
      break;
    }
  }
}

async function chat(
  conn: Deno.Conn,
  o: JoinOptions,
  io: UserIO,
  renderer: Renderer,
  online: Set<string>,
  status: (text: string) => void,
): Promise<number> {
  const where = `${o.hostname}:${o.port}`;
  const lines = serverLines(conn);
  const show = (event: ServerEvent) => io.print(renderer.render(event));
  const pacer = new Pacer();

  // Handshake: answer prompts until the first line from the room arrives.
  let alias = o.alias;
  let aliasSent = false;
  let noHistorySent = o.history;
  let passwordSent = false;
  let greeted = false;
  let greetingTimedOut = false;
  const greetingTimer = setTimeout(() => {
    greetingTimedOut = !greeted;
    if (greetingTimedOut) closeQuietly(conn);
  }, o.greetingTimeoutMs ?? GREETING_MS);
  const notConfab = `${where} does not speak the confab protocol` +
    (o.tls ? "" : " (if it uses TLS, add --tls)");
  let first: ServerEvent | undefined;
  try {
    // A blank line is ignored by a confab server, but makes a TLS server fail
    // its handshake at once instead of waiting for us: a fast, clear error.
    await writeAll(conn, "\n");
    // Not for-await: leaving that loop early would close the generator.
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      const line = next.value;
      greeted = true;
      clearTimeout(greetingTimer);
      const event = parseServerLine(line);
      if (event.kind === "unknown" && !aliasSent && !passwordSent) {
        throw new JoinError(notConfab, EXIT.connect);
      }
      if (event.kind === "prompt" && event.prompt === "password") {
        let password = passwordSent ? undefined : o.password;
        if (password === undefined && o.interactive) {
          if (passwordSent) show({ kind: "error", text: "wrong password" });
          password = await io.ask("password: ", true) ?? undefined;
          if (password === undefined) return EXIT.ok;
        }
        if (password === undefined) {
          throw new JoinError(
            passwordSent
              ? "wrong password"
              : "the room needs a password: use --password-file or CONFAB_PASSWORD",
            EXIT.refused,
          );
        }
        passwordSent = true;
        await writeAll(conn, password + "\n");
      } else if (event.kind === "prompt") {
        if (!noHistorySent) {
          noHistorySent = true;
          await writeAll(conn, "/nohistory\n");
          continue;
        }
        if (aliasSent && !o.interactive) {
          throw new JoinError(`alias ${alias} was refused`, EXIT.refused);
        }
        if (alias === undefined || aliasSent) {
          alias = (await io.ask("alias: ")) ?? undefined;
          if (alias === undefined) return EXIT.ok;
        }
        aliasSent = true;
        await writeAll(conn, alias.trim() + "\n");
      } else if (event.kind === "error") {
        show(event);
      } else if (event.kind === "bye") {
        show(event);
        throw new JoinError(
          `the server closed the connection: ${sanitize(event.text)}`,
          passwordSent && !aliasSent ? EXIT.refused : EXIT.disconnected,
        );
      } else {
        first = event;
        break;
      }
    }
  } catch (error) {
    if (error instanceof JoinError) throw error;
    if (greetingTimedOut) {
      throw new JoinError(`no greeting from ${where}; ${notConfab}`, EXIT.connect);
    }
    if (!greeted) throw new JoinError(`${notConfab}: ${describe(error)}`, EXIT.connect);
    throw new JoinError(`lost the connection to ${where}: ${describe(error)}`, EXIT.lost);
  } finally {
    clearTimeout(greetingTimer);
  }
  if (first === undefined) {
    if (greetingTimedOut) {
      throw new JoinError(`no greeting from ${where}; ${notConfab}`, EXIT.connect);
    }
    if (!greeted) {
      throw new JoinError(`${where} closed the connection at once; ${notConfab}`, EXIT.connect);
    }
    throw new JoinError(`${where} closed the connection before we joined`, EXIT.lost);
  }

  // Joined.
  renderer.me = alias!.trim().normalize("NFC");
  io.setPrompt(`${renderer.me}> `);
  let quitting = false;
  let leaving = false;
  const onEvent = (event: ServerEvent) => {
    trackOnline(event, online);
    if (event.kind === "nick" && event.from === renderer.me) {
      renderer.me = event.to;
      io.setPrompt(`${renderer.me}> `);
    }
    if (event.kind === "notice") {
      const limits = LIMITS_RE.exec(event.text);
      if (limits) pacer.set(Number(limits[1] ?? 0), Number(limits[2] ?? 0));
    }
    show(event);
  };
  onEvent(first);

  const fromServer = (async (): Promise<number> => {
    try {
      for await (const line of lines) {
        const event = parseServerLine(line);
        onEvent(event);
        if (event.kind === "bye") {
          if (quitting) return EXIT.ok;
          status(`disconnected by the server: ${sanitize(event.text)}`);
          return event.text === SHUTDOWN_TEXT ? EXIT.shutdown : EXIT.disconnected;
        }
      }
      if (leaving || quitting) return EXIT.ok;
      status(`the connection to ${where} was closed`);
      return EXIT.lost;
    } catch (error) {
      if (leaving || quitting) return EXIT.ok;
      status(`lost the connection to ${where}: ${describe(error)}`);
      return EXIT.lost;
    }
  })();

  const fromUser = (async (): Promise<"done" | "failed"> => {
    for await (const line of io.lines()) {
      if (line.trim() === "") continue;
      await pacer.wait();
      await writeAll(conn, line + "\n");
      const quit = /^\/quit(\s|$)/i.test(line);
      if (quit) quitting = true;
      if (o.interactive) {
        const me = /^\/me\s+(.*)$/is.exec(line);
        if (!line.startsWith("/") || line.startsWith("//")) {
          io.eraseSubmitted(line);
          io.print(renderer.renderOwn("message", line.startsWith("//") ? line.slice(1) : line));
        } else if (me) {
          io.eraseSubmitted(line);
          io.print(renderer.renderOwn("action", me[1]!));
        }
      }
      if (quit) break;
    }
    return "done";
  })().catch(() => "failed" as const);

  const winner = await Promise.race([fromServer, fromUser]);
  if (typeof winner === "number") {
    io.close();
    return winner;
  }
  // Sending failed: the connection is gone; the server side says how.
  if (winner === "failed") return await fromServer;
  // The user is done: stop sending, let the server see the end of our input
  // and close its side, so the others see us leave and nothing queued is lost.
  leaving = true;
  try {
    await conn.closeWrite();
  } catch {
    // Already closed by the other side; fromServer will say how.
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([
    fromServer,
    new Promise<number>((
      resolve,
    ) => (timer = setTimeout(() => resolve(EXIT.ok), LEAVE_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  return code;
}
