/**
 * `confab join`: connects, answers the server's prompts, then runs two loops
 * tied together, the user's lines to the socket and the socket's lines to the
 * screen. Whichever ends first ends the other, and the exit code says how.
 *
 * A server that does not open with a confab prompt is talked to as a plain
 * line server (the classic tutorial chat, `ncat --chat`): its lines are shown
 * as they come, its first name prompt is answered with the alias, and the
 * user's lines are sent as typed.
 *
 * @module
 */

import { checkAlias } from "../protocol/alias.ts";
import { isQuit } from "../protocol/commands.ts";
import { closeQuietly, formatAddress, writeAllSync } from "../protocol/io_util.ts";
import { LineReader } from "../protocol/line_reader.ts";
import { showRoom } from "../protocol/room_name.ts";
import {
  ALIAS_FIRST,
  parseJoiningRoom,
  parseLimits,
  parseServerLine,
  parseWelcome,
  type ServerEvent,
  SHUTDOWN_TEXT,
} from "../protocol/wire.ts";
import { sanitize } from "../protocol/sanitize.ts";
import { complete, noteRoom, type RoomNames, trackRooms, validRoom } from "./complete.ts";
import { PipeIO, TerminalIO, type UserIO } from "./io.ts";
import { isNamePrompt } from "./name_prompt.ts";
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
  /** Could not connect: refused, unreachable, TLS failure, closed before a word. */
  connect: 3,
  /** The connection broke without the server saying goodbye (or a plain server closed it). */
  lost: 4,
  /** The server shut down. */
  shutdown: 5,
  /** The server disconnected us and said why (too slow, flooding, idle...). */
  disconnected: 6,
  /**
   * Refused at the door: turned away before joining (server full, too many
   * connections), alias refused or wrong password, and no one to ask; or,
   * with no one to ask either, the room given with `--room` refused.
   */
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
  /**
   * Room to start in (checked with `checkRoomName`); the server's default
   * room when missing.
   */
  room?: string | undefined;
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
   * How long to wait for the connection, TLS handshake included (ms).
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
/** How long to wait for the connection (TCP, and the TLS handshake). */
const GREETING_MS = 5000;
/**
 * How long a server has to speak first. A confab server prompts at once; one
 * that stays silent this long is probed (see {@linkcode opening}).
 */
export const SPEAK_FIRST_MS = 1000;
/**
 * What a silent plaintext server is sent: five blank lines. A TLS server
 * hangs up on it, since five bytes are a whole record header, which servers
 * built on OpenSSL wait for; confab ignores blank lines before its prompt is
 * answered, and a line server sees blank lines.
 */
export const PROBE = "\n".repeat(5);
/** After the probe, how long a TLS server has to hang up on it. */
const PROBE_MS = 500;
/**
 * How long reads must stay quiet before the unfinished end of a line is taken
 * as it is: a name prompt that ends in `": "` and no newline.
 */
const QUIET_MS = 200;
/**
 * In pipe mode, how long input is held for a server that said nothing even to
 * the probe, in case it is a confab server slow to prompt.
 */
const LATE_PROMPT_MS = 5000;
/**
 * In pipe mode, how long a line server must stay quiet after its last bytes
 * before input is sent with no name prompt answered.
 */
const SETTLE_MS = 500;
/** After the greeting, how long each answer of the server's may take. */
const HANDSHAKE_STEP_MS = 15_000;
/** After we stop sending, how long the server has to close its side. */
const LEAVE_TIMEOUT_MS = 3000;
/** How long to wait for the server's `limits:` notice before sending anyway. */
const LIMITS_WAIT_MS = 2000;

function describe(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  if (error instanceof Deno.errors.NotCapable) return "not allowed (run with --allow-net)";
  return error instanceof Error ? error.message : String(error);
}

/** Thrown when a plaintext connection gets a TLS record back. */
class TlsAnswer extends Error {
  constructor() {
    super("the server answered with TLS");
    this.name = "TlsAnswer";
  }
}

/** Whether bytes start like a TLS record (handshake or alert, version 3.x). */
function looksLikeTls(bytes: Uint8Array): boolean {
  return (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03;
}

/** What {@linkcode ServerLines.within} returns when no line came in time. */
const SILENT = Symbol("silent");

/**
 * Server lines from a connection, read on demand: `null` at the end of the
 * stream, an error thrown on a broken one. A wait for a line can give up
 * (`within`) without losing it: the next read takes it.
 */
class ServerLines {
  readonly #conn: Deno.Conn;
  readonly #plain: boolean;
  readonly #lines: string[] = [];
  #reader: LineReader;
  readonly #buffer = new Uint8Array(16 * 1024);
  #pending: Promise<string | null> | undefined;
  #reading: Promise<number | null> | undefined;
  /** The bytes after the last newline, up to {@linkcode TAIL_BYTES}. */
  #tail = new Uint8Array(0);
  #tailTooLong = false;
  #first = true;
  #ended = false;
  /**
   * Whether the unfinished end of a line is taken as a line once reads have
   * been quiet for {@linkcode QUIET_MS} (a name prompt without a newline).
   */
  tails = false;
  /** Whether {@linkcode PROBE} was sent. */
  probed = false;
  /** When the last bytes came (`performance.now()`), or `undefined` before any. */
  lastBytesAt: number | undefined;

  /** `plain`: the connection is not TLS, so a TLS record from the server is an error. */
  constructor(conn: Deno.Conn, plain: boolean) {
    this.#conn = conn;
    this.#plain = plain;
    this.#reader = this.#newReader();
  }

  #newReader(): LineReader {
    return new LineReader({
      maxLineBytes: SERVER_LINE_BYTES,
      onLine: (line) => this.#lines.push(line),
      onOverflow: () => this.#lines.push("! (a line from the server was too long and was dropped)"),
    });
  }

  /** The next line, or `null` at the end of the stream. */
  next(): Promise<string | null> {
    const line = this.#pending ?? this.#read();
    this.#pending = undefined;
    return line;
  }

  /** The next line, or {@linkcode SILENT} if none comes within `ms` or `signal` aborts. */
  async within(ms: number, signal: AbortSignal): Promise<string | null | typeof SILENT> {
    const pending = this.#pending ??= this.#read();
    pending.catch(() => {}); // handled by whoever takes it
    const stop = new AbortController();
    try {
      const got = await Promise.race([
        pending,
        delay(ms, AbortSignal.any([signal, stop.signal])).then((): typeof SILENT => SILENT),
      ]);
      if (got !== SILENT) this.#pending = undefined;
      return got;
    } finally {
      stop.abort();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (let line = await this.next(); line !== null; line = await this.next()) yield line;
  }

  async #read(): Promise<string | null> {
    while (this.#lines.length === 0) {
      if (this.#ended) return null;
      if (this.#reading === undefined) {
        this.#reading = this.#conn.read(this.#buffer);
        this.#reading.catch(() => {}); // handled by whoever awaits it
      }
      const reading = this.#reading;
      const n = this.tails && this.#tail.length > 0 && !this.#tailTooLong
        ? await this.#quietOr(reading)
        : await reading;
      if (n === SILENT) return this.#takeTail();
      this.#reading = undefined;
      if (n === null) {
        this.#ended = true;
        this.#reader.end();
        continue;
      }
      const bytes = this.#buffer.subarray(0, n);
      if (this.#first && this.#plain && looksLikeTls(bytes)) throw new TlsAnswer();
      this.#first = false;
      this.lastBytesAt = performance.now();
      this.#reader.push(bytes);
      this.#keepTail(bytes);
    }
    return this.#lines.shift()!;
  }

  /** The read, or {@linkcode SILENT} if it takes longer than {@linkcode QUIET_MS}. */
  async #quietOr(reading: Promise<number | null>): Promise<number | null | typeof SILENT> {
    const stop = new AbortController();
    try {
      return await Promise.race([
        reading,
        delay(QUIET_MS, stop.signal).then((): typeof SILENT => SILENT),
      ]);
    } finally {
      stop.abort();
    }
  }

  #keepTail(bytes: Uint8Array): void {
    const newline = bytes.lastIndexOf(0x0a);
    if (newline >= 0) {
      this.#tail = bytes.slice(newline + 1);
      this.#tailTooLong = false;
    } else if (!this.#tailTooLong) {
      const tail = new Uint8Array(this.#tail.length + bytes.length);
      tail.set(this.#tail);
      tail.set(bytes, this.#tail.length);
      this.#tail = tail;
    }
    if (this.#tail.length > TAIL_BYTES) {
      this.#tailTooLong = true;
      this.#tail = new Uint8Array(0);
    }
  }

  /** The unfinished line as it stands; what comes after it starts a new line. */
  #takeTail(): string {
    const text = new TextDecoder().decode(this.#tail);
    this.#tail = new Uint8Array(0);
    this.#reader = this.#newReader();
    return text;
  }
}

/** Longest unfinished line taken as it is (a name prompt is far shorter). */
const TAIL_BYTES = 1024;

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

/**
 * Why a TLS handshake failed, with what to do about it: a certificate that
 * is not trusted is a matter for `--ca`; anything else most likely means the
 * server does not speak TLS at all.
 */
function tlsTrouble(error: unknown, o: JoinOptions): string {
  const why = describe(error);
  if (!/certificate|UnknownIssuer|NotValidForName|Expired|BadSignature/i.test(why)) {
    return `${why} (is the server using TLS?)`;
  }
  if (/UnknownIssuer/.test(why)) {
    return o.caCerts
      ? `${why} (the certificate given with --ca is not the one that signed the server's)`
      : `${why} (to trust the CA that signed the server's certificate, add --ca FILE)`;
  }
  if (/NotValidForName/.test(why)) {
    return `${why} (the certificate is not for ${o.hostname}: check --host)`;
  }
  return why;
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
        throw new JoinError(`TLS with ${where} failed: ${tlsTrouble(error, o)}`, EXIT.connect);
      });
    if (!shook) {
      throw new JoinError(
        `TLS with ${where} got no answer within ${timeout / 1000} s (is the server using TLS?)`,
        EXIT.connect,
      );
    }
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
  // Pipe mode promises plain text: the bell only ever goes to a terminal.
  const renderer = new Renderer({ ...o, bell: o.bell && Deno.stdout.isTerminal() });
  const online = new Set<string>();
  const rooms: RoomNames = new Map();
  let plain = false;
  // Ends the session: the user's signal, or stdout gone away.
  const leave = new AbortController();
  const io: UserIO = o.interactive
    ? new TerminalIO({
      completer: (line: string) => plain ? [[], line] : complete(line, online, rooms),
      onClosed: () => leave.abort(),
      wrap: !o.json,
    })
    : new PipeIO(() => leave.abort());
  const onSignal = () => leave.abort();
  o.signal?.addEventListener("abort", onSignal, { once: true });
  leave.signal.addEventListener("abort", () => io.close(), { once: true });
  // Error messages can carry the server's words (a TLS error names its
  // certificate): every line is shown escaped.
  const status = (text: string) => {
    try {
      writeAllSync(Deno.stderr, `confab: ${text.split("\n").map(sanitize).join("\n")}\n`);
    } catch {
      // stderr is gone too; the exit code still says what happened.
    }
  };
  const session: Session = { o, io, renderer, status, signal: leave.signal };
  let conn: Deno.Conn | undefined;
  try {
    conn = await connect(o, leave.signal);
    const lines = new ServerLines(conn, !o.tls);
    let first = await opening(conn, lines, o, leave.signal);
    let noted = false;
    if (first === undefined) {
      noted = true;
      notePlain(session);
      // On a terminal, a line typed after the notice ends the wait: it is
      // meant for this server, whatever it turns out to be.
      const typing = new AbortController();
      if (o.interactive) {
        io.setPrompt(o.alias === undefined ? "> " : `${sanitize(o.alias)}> `);
        const typed = session.typed = io.lines().next();
        typed.then(() => typing.abort());
      }
      first = await lateWords(lines, AbortSignal.any([leave.signal, typing.signal]));
      if (leave.signal.aborted) return EXIT.ok;
      if (first !== undefined && speaksConfab(first)) {
        status(`${formatAddress(o.hostname, o.port)} prompted late: it is a confab server`);
      }
    }
    if (first !== undefined && speaksConfab(first)) {
      lines.tails = false;
      const joined = await handshake(conn, first, lines, rooms, session);
      return await chat(conn, joined, online, rooms, session);
    }
    plain = true;
    if (!noted) notePlain(session);
    return await chatPlain(conn, first, lines, session);
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

/** What every stage of a session after connecting works with. */
interface Session {
  o: JoinOptions;
  io: UserIO;
  renderer: Renderer;
  /** Prints a diagnostic on stderr. */
  status: (text: string) => void;
  /** Aborts when the user leaves (a signal, Ctrl-C, stdout gone). */
  signal: AbortSignal;
  /** The user's next line, if it was asked for before the chat began. */
  typed?: Promise<IteratorResult<string>> | undefined;
}

/** The user's lines: the one already asked for (`typed`), then the rest of `input`. */
async function* typedFirst(
  typed: Promise<IteratorResult<string>> | undefined,
  input: AsyncIterableIterator<string>,
): AsyncGenerator<string> {
  if (typed !== undefined) {
    const first = await typed;
    if (first.done) return;
    yield first.value;
  }
  yield* input;
}

/** Whether the first line a server sent is how a confab server opens. */
function speaksConfab(line: string): boolean {
  const kind = parseServerLine(line).kind;
  return kind === "prompt" || kind === "bye";
}

/**
 * The server's first line, or `undefined` if it says nothing first (some
 * line servers wait for you to speak). A name prompt without a newline
 * counts as a line once the server has gone quiet after it. Nothing is sent
 * while waiting, with one exception: a plaintext connection that has heard
 * not one byte after {@linkcode SPEAK_FIRST_MS} sends {@linkcode PROBE}.
 * confab and most line servers ignore it; a TLS server takes it for a broken
 * handshake and hangs up at once, which tells a TLS port from a quiet one.
 */
async function opening(
  conn: Deno.Conn,
  lines: ServerLines,
  o: JoinOptions,
  signal: AbortSignal,
): Promise<string | undefined> {
  const where = formatAddress(o.hostname, o.port);
  const failure = (error: unknown, probed: boolean): JoinError => {
    if (signal.aborted) return new JoinError("", EXIT.ok);
    if (error instanceof TlsAnswer) {
      return new JoinError(`${where} answered in TLS: add --tls`, EXIT.connect);
    }
    if (probed) {
      return new JoinError(
        `${where} hung up on the first line sent to it, as a TLS server does: if it uses TLS, add --tls`,
        EXIT.connect,
      );
    }
    return new JoinError(
      error === undefined
        ? `${where} closed the connection without a word`
        : `${where} dropped the connection before saying anything: ${describe(error)}`,
      EXIT.connect,
    );
  };
  let first: string | null | typeof SILENT;
  let probed = false;
  lines.tails = true;
  try {
    first = await lines.within(SPEAK_FIRST_MS, signal);
    // Some bytes came: their line (or prompt) is on its way, and no probe may follow them.
    if (first === SILENT && lines.lastBytesAt !== undefined) first = await lines.next();
    // The TLS handshake has told us all the probe could.
    if (first === SILENT && !o.tls) {
      probed = lines.probed = true;
      await writeAll(conn, PROBE);
      first = await lines.within(PROBE_MS, signal);
      if (first === SILENT && lines.lastBytesAt !== undefined) first = await lines.next();
    }
  } catch (error) {
    throw failure(error, probed);
  }
  if (signal.aborted) throw new JoinError("", EXIT.ok);
  if (first === null) throw failure(undefined, probed);
  return first === SILENT ? undefined : first;
}

/**
 * Waits up to {@linkcode LATE_PROMPT_MS} (or until `signal` aborts) for the
 * first words of a server that said nothing even to the probe: a confab
 * server behind a slow link prompts late, and the input it would have
 * answered must not have gone out as chat. `undefined` if it stays silent
 * (or closes: plain mode says so).
 */
async function lateWords(
  lines: ServerLines,
  signal: AbortSignal,
): Promise<string | undefined> {
  try {
    const first = await lines.within(LATE_PROMPT_MS, signal);
    if (first === SILENT && lines.lastBytesAt !== undefined) return await lines.next() ?? undefined;
    return typeof first === "string" ? first : undefined;
  } catch {
    // The broken connection is found again, and reported, in plain mode.
    return undefined;
  }
}

/** A name from the server, if it is a valid alias (never raw bytes to show). */
function validAlias(name: string): string | undefined {
  const check = checkAlias(name);
  return check.ok && check.alias === name ? name : undefined;
}

/** The input prompt: the alias, and the room once it is known (`alice #dev> `). */
function chatPrompt(alias: string, room: string | undefined): string {
  return room === undefined
    ? `${sanitize(alias)}> `
    : `${sanitize(alias)} ${sanitize(showRoom(room))}> `;
}

/** Most aliases kept for completion: a server's default cap on connections. */
const MAX_ONLINE_NAMES = 10_000;

function trackOnline(event: ServerEvent, online: Set<string>): void {
  const add = (name: string) => {
    if (!validAlias(name)) return;
    online.delete(name);
    online.add(name);
    // Bounded, whatever a server claims: the oldest names go first.
    while (online.size > MAX_ONLINE_NAMES) online.delete(online.values().next().value!);
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
    case "crowd":
      // Named on both sides: left, then came back.
      for (const name of event.left) online.delete(name);
      event.joined.forEach(add);
      break;
    case "notice": {
      parseWelcome(event.text)?.names.forEach(add);
      break;
    }
  }
}

/** What the handshake ends with: our alias, our room if known, and the first line from the room. */
interface Joined {
  alias: string;
  room: string | undefined;
  first: ServerEvent;
  lines: ServerLines;
}

/** How a confab server older than rooms answers `/join` at the alias prompt. */
const NO_ROOMS_RE = new RegExp(`^${ALIAS_FIRST}\\b`);

/** The exit code for the server's goodbye once joined, by what it said. */
function byeCode(text: string): number {
  if (text === SHUTDOWN_TEXT) return EXIT.shutdown;
  return /password/.test(text) ? EXIT.refused : EXIT.disconnected;
}

/**
 * Answers the server's prompts (password, alias), starting from its first
 * line, until the first line from the room arrives. Asks the user on a
 * terminal; otherwise a refusal ends it.
 */
async function handshake(
  conn: Deno.Conn,
  first: string,
  lines: ServerLines,
  rooms: RoomNames,
  { o, io, renderer, status, signal }: Session,
): Promise<Joined> {
  const where = formatAddress(o.hostname, o.port);
  const show = (event: ServerEvent) => io.print(renderer.render(event));
  let alias = o.alias;
  let aliasSent = false;
  let askedToSkipHistory = false;
  let passwordSent = false;
  // `/join ROOM` (or `/join` alone, to learn the default room's name) is
  // sent at the alias prompt; the prompt that comes back names the room.
  let wanted = o.room;
  let roomAsked = false;
  let awaitingRoom = false;
  let roomError: ServerEvent | undefined;
  let room: string | undefined;
  const askRoom = async () => {
    roomAsked = awaitingRoom = true;
    roomError = undefined;
    await writeAll(conn, wanted === undefined ? "/join\n" : `/join ${wanted}\n`);
  };
  /** The prompt that answers `/join`: the room it names, or why not. */
  const roomAnswered = async (prompt: string): Promise<boolean> => {
    awaitingRoom = false;
    const named = validRoom(parseJoiningRoom(prompt));
    if (named !== undefined) {
      room = named;
      renderer.room = room;
      noteRoom(rooms, room);
      return false;
    }
    const old = roomError?.kind === "error" && NO_ROOMS_RE.test(roomError.text);
    // An older server, asked only for the default room: carry on without its name.
    if (wanted === undefined) return false;
    const reason = roomError?.kind === "error" ? roomError.text : "no reason given";
    const shown = showRoom(wanted);
    if (!o.interactive) {
      throw new JoinError(
        old
          ? `${where} has no rooms: cannot start in ${shown}`
          : `${where} refused ${shown}: ${reason}`,
        EXIT.refused,
      );
    }
    // On a terminal, the reason is shown and the chat goes on in the default room.
    if (roomError !== undefined && !old) show(roomError);
    const note = old
      ? `${where} has no rooms: joining without ${shown}`
      : `not starting in ${shown}: joining the default room instead`;
    if (o.json) status(note);
    else io.print(renderer.renderLocal(note));
    wanted = undefined;
    if (old) return false;
    await askRoom();
    return true;
  };
  // A server older than the probe answers each of its blank lines but the
  // first with "cannot be empty" and the prompt again: those are not asked of us.
  let probeEchoes = lines.probed ? PROBE.length - 1 : 0;
  /** The server's last `! ` line, for saying why we could not join. */
  let lastError: string | undefined;
  let skipPrompt = false;
  // A server that goes quiet is given up on: the socket is closed, which ends
  // the read. So is the session when the user aborts (Ctrl-C, SIGTERM).
  let silent = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expectAnswer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      silent = true;
      closeQuietly(conn);
    }, HANDSHAKE_STEP_MS);
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
    if (silent) return new JoinError(`${where} stopped answering before we joined`, EXIT.lost);
    return new JoinError(
      error === undefined
        ? `${where} closed the connection before we joined`
        : `lost the connection to ${where} before we joined: ${describe(error)}`,
      EXIT.lost,
    );
  };
  try {
    for (let line: string | null = first; line !== null; line = await lines.next()) {
      clearTimeout(timer);
      const event = parseServerLine(line);
      if (event.kind === "error" && probeEchoes > 0 && /cannot be empty/.test(event.text)) {
        probeEchoes--;
        skipPrompt = true;
      } else if (event.kind === "prompt" && skipPrompt) {
        skipPrompt = false;
      } else if (event.kind === "error" && awaitingRoom) {
        roomError = event;
      } else if (
        event.kind === "prompt" && event.prompt === "alias" && awaitingRoom &&
        await roomAnswered(event.text)
      ) {
        // Asked again, for the default room.
      } else if (event.kind === "prompt" && event.prompt === "password") {
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
        } else if (!roomAsked) {
          await askRoom();
        } else {
          if (aliasSent && room !== undefined && parseJoiningRoom(event.text) === undefined) {
            // The alias was taken for us, but the room could not be made
            // after all (the server's last room went meanwhile): its prompt
            // no longer says where we are going.
            const shown = showRoom(room);
            room = undefined;
            renderer.room = undefined;
            if (!o.interactive) {
              const reason = lastError === undefined ? "no reason given" : sanitize(lastError);
              throw new JoinError(`${where} refused ${shown}: ${reason}`, EXIT.refused);
            }
            io.print(
              renderer.renderLocal(`not starting in ${shown}: joining the default room instead`),
            );
            // The same alias goes again, once the default room's name is known.
            aliasSent = false;
            wanted = undefined;
            await askRoom();
            expectAnswer();
            continue;
          }
          if (aliasSent && !o.interactive) {
            throw new JoinError(`alias ${sanitize(alias ?? "")} was refused`, EXIT.refused);
          }
          if (alias === undefined || aliasSent) {
            if (!aliasSent) show(event);
            alias = await askUntilAnswered("alias: ", false);
            if (alias === undefined) throw new JoinError("", EXIT.ok);
          }
          alias = alias.trim();
          // "/quit" at the alias prompt: leave without joining.
          if (isQuit(alias)) throw new JoinError("", EXIT.ok);
          aliasSent = true;
          await writeAll(conn, alias + "\n");
        }
      } else if (event.kind === "bye") {
        // Turned away before joining (full, too many connections...): refused
        // at the door, unless the whole server is going.
        show(event);
        throw new JoinError(
          `${where} closed the connection before we joined: ${sanitize(event.text)}`,
          event.text === SHUTDOWN_TEXT ? EXIT.shutdown : EXIT.refused,
        );
      } else if (event.kind === "error" || !aliasSent) {
        if (event.kind === "error") lastError = event.text;
        show(event);
      } else {
        return { alias, room, first: event, lines } as Joined;
      }
      expectAnswer();
    }
  } catch (error) {
    throw failure(error);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
  throw failure(undefined);
}

/**
 * How a session ends once both loops run: when one side ends, the other is
 * ended too. When the user is done, sending stops and the server sees the
 * end of our input and closes its side, so the others see us leave and
 * nothing queued is lost; after a grace period the socket is closed anyway.
 * Leaving (Ctrl-C, end of input) must not hang on a server that stopped
 * reading either: the same grace period ends any write.
 */
async function runLoops(
  conn: Deno.Conn,
  signal: AbortSignal,
  io: UserIO,
  loops: (state: { leaving: boolean }) => {
    fromServer: Promise<number>;
    fromUser: Promise<"done" | "failed">;
  },
): Promise<number> {
  const state = { leaving: false };
  let forceClose: ReturnType<typeof setTimeout> | undefined;
  const onLeave = () => {
    state.leaving = true;
    forceClose ??= setTimeout(() => closeQuietly(conn), LEAVE_TIMEOUT_MS);
  };
  if (signal.aborted) onLeave();
  else signal.addEventListener("abort", onLeave, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const { fromServer, fromUser } = loops(state);
    const winner = await Promise.race([fromServer, fromUser]);
    if (typeof winner === "number") {
      io.close();
      return winner;
    }
    // Sending failed: the connection is gone; the server side says how.
    if (winner === "failed") return await fromServer;
    state.leaving = true;
    try {
      await conn.closeWrite();
    } catch {
      // Already closed by the other side; fromServer will say how.
    }
    return await Promise.race([
      fromServer,
      new Promise<number>((resolve) => {
        timer = setTimeout(() => resolve(EXIT.ok), LEAVE_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onLeave);
    clearTimeout(forceClose);
  }
}

/** The two loops, from the first room line until one side ends. */
function chat(
  conn: Deno.Conn,
  joined: Joined,
  online: Set<string>,
  rooms: RoomNames,
  { o, io, renderer, status, signal, typed }: Session,
): Promise<number> {
  const where = formatAddress(o.hostname, o.port);
  const show = (event: ServerEvent) => io.print(renderer.render(event));
  const pacer = new Pacer();
  let limitsKnown!: () => void;
  const limits = new Promise<void>((resolve) => (limitsKnown = resolve));
  renderer.me = joined.alias.normalize("NFC");
  renderer.room = joined.room;
  io.setPrompt(chatPrompt(renderer.me, renderer.room));
  let quitting = false;

  return runLoops(conn, signal, io, (state) => {
    const onEvent = (event: ServerEvent) => {
      trackOnline(event, online);
      trackRooms(event, rooms);
      if (event.kind === "nick" && event.from === renderer.me && validAlias(event.to)) {
        renderer.me = event.to;
        io.setPrompt(chatPrompt(renderer.me, renderer.room));
      }
      if (event.kind === "notice") {
        // A welcome naming a room: we are in it now (after a /join).
        const welcome = parseWelcome(event.text);
        const room = validRoom(welcome?.room);
        if (room !== undefined && welcome?.alias === renderer.me && room !== renderer.room) {
          renderer.room = room;
          io.setPrompt(chatPrompt(renderer.me, renderer.room));
        }
        const limits = parseLimits(event.text);
        if (limits) {
          pacer.set(limits.rate, limits.burst);
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
        if (state.leaving || quitting) return EXIT.ok;
        io.close();
        status(`the connection to ${where} was closed`);
        return EXIT.lost;
      } catch (error) {
        if (state.leaving || quitting) return EXIT.ok;
        io.close();
        status(`lost the connection to ${where}: ${describe(error)}`);
        return EXIT.lost;
      }
    })();

    const fromUser = (async (): Promise<"done" | "failed"> => {
      // The prompt is on screen from here on: what is typed now is kept, but
      // nothing is sent until the server has said how fast we may.
      const input = typedFirst(typed, io.lines());
      const waited = new AbortController();
      const gaveUp = AbortSignal.any([signal, waited.signal]);
      await Promise.race([limits, delay(LIMITS_WAIT_MS, gaveUp)]);
      waited.abort();
      for await (const line of input) {
        if (line.trim() === "") continue;
        await pacer.wait();
        const quit = isQuit(line);
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

    return { fromServer, fromUser };
  });
}

/** Says, once, that the server is not confab and what that means. */
function notePlain({ o, io, renderer, status }: Session): void {
  const note = `${formatAddress(o.hostname, o.port)} is not a confab server: its lines are shown ` +
    "as they come and yours are sent as typed, so confab's commands may not apply";
  if (o.interactive && !o.json) io.print(renderer.renderLocal(note));
  else status(note);
}

/**
 * Talks to a server that is not confab: every line it sends is shown (as
 * `unknown` events in JSON), its first name prompt is answered with the alias
 * (asked for on a terminal), and every input line is sent as it is, unpaced,
 * since such a server announces no limits. A name prompt may end without a
 * newline: the unfinished line is taken once the server goes quiet. In pipe
 * mode input waits until the name prompt is answered, or until the server has
 * been quiet for {@linkcode SETTLE_MS} after its last bytes without asking.
 */
function chatPlain(
  conn: Deno.Conn,
  first: string | undefined,
  lines: ServerLines,
  { o, io, renderer, status, signal, typed }: Session,
): Promise<number> {
  const where = formatAddress(o.hostname, o.port);
  let alias = o.alias;
  let prompt = alias === undefined ? "> " : `${sanitize(alias)}> `;
  io.setPrompt(prompt);
  // Whether a name may still be asked for: until it is given or the user speaks.
  let nameWanted = true;
  let nameGiven!: () => void;
  const named = new Promise<void>((resolve) => (nameGiven = resolve));
  const noName = () => {
    nameWanted = false;
    lines.tails = false;
    nameGiven();
  };
  // One writer on the socket: the alias and the user's lines take turns.
  let sending = Promise.resolve();
  const send = (text: string) => (sending = sending.then(() => writeAll(conn, text)));

  /** Shows a server line; answers it if it is the first name prompt. */
  const onLine = async (line: string) => {
    io.print(renderer.render({ kind: "unknown", text: line }));
    if (!nameWanted || !isNamePrompt(line)) return;
    nameWanted = false;
    lines.tails = false;
    try {
      while (alias === undefined || alias.trim() === "") {
        const answer = await io.ask("alias: ");
        if (answer === null) return;
        alias = answer;
      }
      alias = alias.trim();
      prompt = `${sanitize(alias)}> `;
      io.setPrompt(prompt);
      await send(alias + "\n");
    } finally {
      noName();
    }
  };

  /** In pipe mode: until the name is given, or the server has been quiet a while without asking. */
  const settled = async () => {
    if (o.interactive) return;
    const stop = new AbortController();
    const gaveUp = AbortSignal.any([signal, stop.signal]);
    try {
      while (nameWanted && !gaveUp.aborted) {
        const quiet = lines.lastBytesAt === undefined
          ? SETTLE_MS
          : performance.now() - lines.lastBytesAt;
        if (quiet >= SETTLE_MS) return;
        await Promise.race([named, delay(SETTLE_MS - quiet, gaveUp)]);
      }
    } finally {
      stop.abort();
    }
  };

  return runLoops(conn, signal, io, (state) => {
    // The first line is dealt with (a name prompt answered) before any input is sent.
    const firstDone = first === undefined ? Promise.resolve() : onLine(first);
    const fromServer = (async (): Promise<number> => {
      try {
        await firstDone;
        for await (const line of lines) await onLine(line);
        if (state.leaving) return EXIT.ok;
        io.close();
        status(`${where} closed the connection`);
        return EXIT.lost;
      } catch (error) {
        if (state.leaving) return EXIT.ok;
        io.close();
        status(`lost the connection to ${where}: ${describe(error)}`);
        return EXIT.lost;
      }
    })();

    const fromUser = (async (): Promise<"done" | "failed"> => {
      // Typed input is kept from here on, and sent once the alias has gone.
      const input = typedFirst(typed, io.lines());
      await firstDone;
      await settled();
      for await (const line of input) {
        noName();
        await send(line + "\n");
        if (o.interactive && !o.json) io.print(prompt + sanitize(line));
      }
      return "done";
    })().catch(() => "failed" as const);

    return { fromServer, fromUser };
  });
}
