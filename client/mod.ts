/**
 * `confab join`: connects, answers the server's prompts, then runs two loops
 * tied together, the user's lines to the socket and the socket's lines to the
 * screen. Whichever ends first ends the other, and the exit code says how.
 *
 * @module
 */

import { checkAlias } from "../server/alias.ts";
import { COMMAND_NAMES } from "../server/commands.ts";
import { closeQuietly, formatAddress, writeAllSync } from "../server/io_util.ts";
import { LineReader } from "../server/line_reader.ts";
import { parseServerLine, type ServerEvent, SHUTDOWN_TEXT } from "../server/protocol.ts";
import { sanitize } from "../server/sanitize.ts";
import { PipeIO, TerminalIO, type UserIO } from "./io.ts";
import { Pacer } from "./pacer.ts";
import { Renderer } from "./render.ts";

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
  /** stdin and stdout are a terminal: edit lines, ask for what is missing. */
  interactive: boolean;
  /** Leave the room when aborted (Ctrl-C as a signal). */
  signal?: AbortSignal;
  /**
   * How long to wait for the connection, then for the server's first line (ms).
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
/** How long to wait for the connection and for the server's first line. */
const GREETING_MS = 5000;
/** After the greeting, how long each answer of the server's may take. */
const HANDSHAKE_STEP_MS = 15_000;
/** After we stop sending, how long the server has to close its side. */
const LEAVE_TIMEOUT_MS = 3000;
/** How long to wait for the server's `limits:` notice before sending anyway. */
const LIMITS_WAIT_MS = 2000;

const LIMITS_RE = /^limits: (?:(\d+) lines per second, bursts of (\d+)|no rate limit)/;
const WELCOME_RE = /^welcome, [^!]+! \d+ online: (.*?)(?: and \d+ more)?$/;

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

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Connects (TLS included), giving up after the greeting timeout or on abort. */
async function connect(o: JoinOptions, signal: AbortSignal): Promise<Deno.Conn> {
  const where = formatAddress(o.hostname, o.port);
  const timeout = o.greetingTimeoutMs ?? GREETING_MS;
  const gaveUp = new AbortController();
  const stop = () => gaveUp.abort();
  signal.addEventListener("abort", stop, { once: true });
  const timer = setTimeout(stop, timeout);
  let conn: Deno.Conn | undefined;
  try {
    if (!o.tls) {
      conn = await Deno.connect({ hostname: o.hostname, port: o.port, signal: gaveUp.signal });
      return conn;
    }
    // connectTls takes no signal: race it, and close what arrives too late.
    const pending = Deno.connectTls({
      hostname: o.hostname,
      port: o.port,
      ...(o.caCerts ? { caCerts: o.caCerts } : {}),
    });
    const stopped = delay(timeout + 1, gaveUp.signal).then(() => undefined);
    conn = await Promise.race([pending, stopped]);
    if (conn === undefined) {
      pending.then(closeQuietly, () => {});
      throw new Deno.errors.TimedOut("no connection");
    }
    const tls = conn as Deno.TlsConn;
    const shook = await Promise.race([tls.handshake().then(() => true), stopped.then(() => false)])
      .catch((error) => {
        throw new JoinError(
          `TLS with ${where} failed: ${describe(error)} (is the server using TLS?)`,
          EXIT.connect,
        );
      });
    if (!shook) throw new Deno.errors.TimedOut("no TLS handshake");
    return conn;
  } catch (error) {
    if (conn !== undefined) closeQuietly(conn);
    if (error instanceof JoinError) throw error;
    if (signal.aborted) throw new JoinError("", EXIT.ok);
    const why = gaveUp.signal.aborted ? `no answer within ${timeout / 1000} s` : describe(error);
    throw new JoinError(`cannot connect to ${where}: ${why}`, EXIT.connect);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", stop);
    gaveUp.abort(); // ends the pending delay, and its timer
  }
}

/**
 * Joins a room and runs until the user leaves or the connection ends.
 * Returns the exit code ({@linkcode EXIT}); never throws for anything the
 * network or the server did.
 */
export async function runJoin(o: JoinOptions): Promise<number> {
  const renderer = new Renderer(o);
  const online = new Set<string>();
  // Ends the session: the user's signal, or stdout gone away.
  const leave = new AbortController();
  const io: UserIO = o.interactive
    ? new TerminalIO({
      completer: (line: string) => complete(line, online),
      onClosed: () => leave.abort(),
      wrap: !o.json,
    })
    : new PipeIO(() => leave.abort());
  const onSignal = () => leave.abort();
  o.signal?.addEventListener("abort", onSignal, { once: true });
  leave.signal.addEventListener("abort", () => io.close(), { once: true });
  const status = (text: string) => {
    try {
      writeAllSync(Deno.stderr, `confab: ${text}\n`);
    } catch {
      // stderr is gone too; the exit code still says what happened.
    }
  };
  let conn: Deno.Conn | undefined;
  try {
    conn = await connect(o, leave.signal);
    const joined = await handshake(conn, o, io, renderer, leave.signal);
    return await chat(conn, joined, o, io, renderer, online, status, leave.signal);
  } catch (error) {
    if (error instanceof JoinError) {
      if (error.message !== "") status(error.message);
      return error.code;
    }
    status(`internal error: ${error instanceof Error ? error.stack : error}`);
    return EXIT.internal;
  } finally {
    o.signal?.removeEventListener("abort", onSignal);
    io.close();
    if (conn) closeQuietly(conn);
  }
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

/** A name from the server, if it is a valid alias (never raw bytes to show). */
function validAlias(name: string): string | undefined {
  const check = checkAlias(name);
  return check.ok && check.alias === name ? name : undefined;
}

function trackOnline(event: ServerEvent, online: Set<string>): void {
  const add = (name: string) => {
    if (validAlias(name)) online.add(name);
  };
  switch (event.kind) {
    case "join":
      add(event.alias);
      break;
    case "leave":
      online.delete(event.alias);
      break;
    case "nick":
      online.delete(event.from);
      add(event.to);
      break;
    case "message":
    case "action":
      if (!event.history) add(event.from);
      break;
    case "notice": {
      const names = WELCOME_RE.exec(event.text)?.[1];
      if (names) names.split(", ").forEach(add);
      break;
    }
  }
}

/** What the handshake ends with: our alias and the first line from the room. */
interface Joined {
  alias: string;
  first: ServerEvent;
  lines: AsyncGenerator<string>;
}

/** The exit code for the server's goodbye, by what it said. */
function byeCode(text: string): number {
  if (text === SHUTDOWN_TEXT) return EXIT.shutdown;
  return /password/.test(text) ? EXIT.refused : EXIT.disconnected;
}

/**
 * Answers the server's prompts (password, alias) until the first line from
 * the room arrives. Asks the user on a terminal; otherwise a refusal ends it.
 */
async function handshake(
  conn: Deno.Conn,
  o: JoinOptions,
  io: UserIO,
  renderer: Renderer,
  signal: AbortSignal,
): Promise<Joined> {
  const where = formatAddress(o.hostname, o.port);
  const lines = serverLines(conn);
  const show = (event: ServerEvent) => io.print(renderer.render(event));
  const notConfab = `${where} does not speak the confab protocol` +
    (o.tls ? "" : " (if it uses TLS, add --tls)");
  let alias = o.alias;
  let aliasSent = false;
  let askedToSkipHistory = false;
  let passwordSent = false;
  let greeted = false;
  // A server that goes quiet is given up on: the socket is closed, which ends
  // the read. So is the session when the user aborts (Ctrl-C, SIGTERM).
  let silence: "" | "greeting" | "answer" = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expectAnswer = (ms: number, kind: "greeting" | "answer") => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      silence = kind;
      closeQuietly(conn);
    }, ms);
  };
  const onAbort = () => closeQuietly(conn);
  signal.addEventListener("abort", onAbort, { once: true });
  /** Asks on the terminal until the answer is not blank; undefined if input ended. */
  const askUntilAnswered = async (question: string, hidden: boolean) => {
    while (true) {
      const answer = await io.ask(question, hidden);
      if (answer === null) return undefined;
      if (answer.trim() !== "") return answer;
    }
  };
  const failure = (error: unknown): JoinError => {
    if (error instanceof JoinError) return error;
    if (signal.aborted) return new JoinError("", EXIT.ok);
    if (silence === "greeting") {
      return new JoinError(`no greeting from ${where}; ${notConfab}`, EXIT.connect);
    }
    if (silence === "answer") {
      return new JoinError(`${where} stopped answering during the handshake`, EXIT.lost);
    }
    if (!greeted) {
      return new JoinError(
        error === undefined
          ? `${where} closed the connection at once; ${notConfab}`
          : `${notConfab}: ${describe(error)}`,
        EXIT.connect,
      );
    }
    return new JoinError(
      error === undefined
        ? `${where} closed the connection before we joined`
        : `lost the connection to ${where}: ${describe(error)}`,
      EXIT.lost,
    );
  };
  try {
    expectAnswer(o.greetingTimeoutMs ?? GREETING_MS, "greeting");
    // A blank line is ignored by a confab server, but makes a TLS server fail
    // its handshake at once instead of waiting for us: a fast, clear error.
    await writeAll(conn, "\n");
    // Not for-await: leaving that loop early would close the generator.
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      clearTimeout(timer);
      greeted = true;
      const event = parseServerLine(next.value);
      if (event.kind === "unknown" && !aliasSent && !passwordSent) {
        throw new JoinError(notConfab, EXIT.connect);
      }
      if (event.kind === "prompt" && event.prompt === "password") {
        let password = passwordSent ? undefined : o.password;
        if (password === undefined && o.interactive) {
          password = await askUntilAnswered("password: ", true);
          if (password === undefined) throw new JoinError("", EXIT.ok);
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
        if (!o.history && !askedToSkipHistory) {
          askedToSkipHistory = true;
          await writeAll(conn, "/nohistory\n");
        } else {
          if (aliasSent && !o.interactive) {
            throw new JoinError(`alias ${sanitize(alias ?? "")} was refused`, EXIT.refused);
          }
          if (alias === undefined || aliasSent) {
            if (!aliasSent) io.print(sanitize(event.text));
            alias = await askUntilAnswered("alias: ", false);
            if (alias === undefined) throw new JoinError("", EXIT.ok);
          }
          alias = alias.trim();
          // "/quit" at the alias prompt: leave without joining.
          if (/^\/quit(\s|$)/i.test(alias)) throw new JoinError("", EXIT.ok);
          aliasSent = true;
          await writeAll(conn, alias + "\n");
        }
      } else if (event.kind === "error") {
        show(event);
      } else if (event.kind === "bye") {
        show(event);
        throw new JoinError(
          `the server closed the connection: ${sanitize(event.text)}`,
          byeCode(event.text),
        );
      } else if (!aliasSent) {
        // A room line before we even said who we are: not a confab server.
        throw new JoinError(notConfab, EXIT.connect);
      } else {
        return { alias, first: event, lines } as Joined;
      }
      expectAnswer(HANDSHAKE_STEP_MS, "answer");
    }
  } catch (error) {
    throw failure(error);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
  throw failure(undefined);
}

/** The two loops, from the first room line until one side ends. */
async function chat(
  conn: Deno.Conn,
  joined: Joined,
  o: JoinOptions,
  io: UserIO,
  renderer: Renderer,
  online: Set<string>,
  status: (text: string) => void,
  signal: AbortSignal,
): Promise<number> {
  const where = formatAddress(o.hostname, o.port);
  const show = (event: ServerEvent) => io.print(renderer.render(event));
  const pacer = new Pacer();
  let limitsKnown!: () => void;
  const limits = new Promise<void>((resolve) => (limitsKnown = resolve));
  renderer.me = joined.alias.normalize("NFC");
  io.setPrompt(`${sanitize(renderer.me)}> `);
  let quitting = false;
  let leaving = false;
  // Leaving (Ctrl-C, end of input) must not hang on a server that stopped
  // reading: after a grace period the socket is closed, which ends any write.
  let forceClose: ReturnType<typeof setTimeout> | undefined;
  const onLeave = () => {
    leaving = true;
    forceClose ??= setTimeout(() => closeQuietly(conn), LEAVE_TIMEOUT_MS);
  };
  if (signal.aborted) onLeave();
  else signal.addEventListener("abort", onLeave, { once: true });
  try {
    return await talk();
  } finally {
    signal.removeEventListener("abort", onLeave);
    clearTimeout(forceClose);
  }

  async function talk(): Promise<number> {
    const onEvent = (event: ServerEvent) => {
      trackOnline(event, online);
      if (event.kind === "nick" && event.from === renderer.me && validAlias(event.to)) {
        renderer.me = event.to;
        io.setPrompt(`${renderer.me}> `);
      }
      if (event.kind === "notice") {
        const found = LIMITS_RE.exec(event.text);
        if (found) {
          pacer.set(Number(found[1] ?? 0), Number(found[2] ?? 0));
          limitsKnown();
        }
      }
      show(event);
    };
    onEvent(joined.first);

    const fromServer = (async (): Promise<number> => {
      try {
        for await (const line of joined.lines) {
          const event = parseServerLine(line);
          onEvent(event);
          if (event.kind === "bye") {
            if (quitting) return EXIT.ok;
            io.close();
            // On a terminal the goodbye is on screen already.
            if (!o.interactive) status(`disconnected by the server: ${sanitize(event.text)}`);
            return byeCode(event.text);
          }
        }
        if (leaving || quitting) return EXIT.ok;
        io.close();
        status(`the connection to ${where} was closed`);
        return EXIT.lost;
      } catch (error) {
        if (leaving || quitting) return EXIT.ok;
        io.close();
        status(`lost the connection to ${where}: ${describe(error)}`);
        return EXIT.lost;
      }
    })();

    const fromUser = (async (): Promise<"done" | "failed"> => {
      // Send nothing until the server has said how fast we may.
      const waited = new AbortController();
      const gaveUp = AbortSignal.any([signal, waited.signal]);
      await Promise.race([limits, delay(LIMITS_WAIT_MS, gaveUp)]);
      waited.abort();
      for await (const line of io.lines()) {
        if (line.trim() === "") continue;
        await pacer.wait();
        const quit = /^\/quit(\s|$)/i.test(line);
        if (quit) quitting = true;
        await writeAll(conn, line + "\n");
        if (o.interactive && !o.json) {
          const me = /^\/me\s+(\S.*)$/is.exec(line);
          if (!line.startsWith("/") || line.startsWith("//")) {
            io.print(renderer.renderOwn("message", line.startsWith("//") ? line.slice(1) : line));
          } else if (me) {
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
      new Promise<number>((resolve) => {
        timer = setTimeout(() => resolve(EXIT.ok), LEAVE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    return code;
  }
}
