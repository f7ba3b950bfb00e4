/**
 * One client connection, from the first byte to the close: the handshake
 * (password, alias), the one chain of reads, and what each line does.
 *
 * A session owns its socket. It has at most one read pending, each started
 * when the last one's bytes are seen to, and writes only through its
 * {@linkcode Outbox}, so nothing else ever touches the socket.
 * The server calls {@linkcode Session.tick} on a timer to enforce deadlines;
 * the room has its outbox follow the room's log, and calls
 * {@linkcode Session.deliver} to queue lines for it alone.
 *
 * A session is in one room at a time and moves through the registry. It
 * alone takes itself out of its room: when the room finds it too slow, it
 * only asks ({@linkcode Session.evicted}). What the registry answers comes
 * as a promise; until it settles the session reads no further line, and if
 * the session closed meanwhile, it gives back what it was granted.
 *
 * Flood control paces the reader: a client over its rate is not cut off,
 * its socket is just not read until its next line may pass. What it sent
 * waits in the kernel's buffers and TCP slows the sender down, so nothing
 * is lost and the server never holds more than one read buffer of it. A
 * room whose writers fall behind paces every sender in it the same way.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { ALIAS_RULE, checkAlias } from "../protocol/alias.ts";
import { closeQuietly, formatAddress } from "../protocol/io_util.ts";
import { runCommand, WHO_BYTES } from "./commands.ts";
import { LineReader } from "../protocol/line_reader.ts";
import type { Logger, ResolvedServeOptions } from "./options.ts";
import { Outbox } from "./outbox.ts";
import {
  ALIAS_FIRST,
  formatBye,
  formatError,
  formatJoiningPrefix,
  formatLimits,
  formatNotice,
  formatPrompt,
  formatTaken,
  plural,
  SHUTDOWN_TEXT,
} from "../protocol/wire.ts";
import { isQuit } from "../protocol/commands.ts";
import { RateLimiter } from "./rate_limit.ts";
import { encodeLine, type Member, type Room } from "./room.ts";
import type { Registry } from "./registry.ts";
import type { Transport } from "./transport.ts";
import { checkRoomName, roomKey } from "../protocol/room_name.ts";
import { sanitize } from "../protocol/sanitize.ts";
import { type TelnetCommand, TelnetFilter } from "./telnet.ts";
import { ReadBuffers } from "./read_buffers.ts";

/** What all sessions of one server share. */
export interface SessionContext {
  /** The aliases and rooms sessions move through. */
  readonly registry: Registry;
  /** The server's resolved options. */
  readonly options: ResolvedServeOptions;
  /** Where log lines go. */
  readonly log: Logger;
  /** The message of the day, escaped and capped, shown after the limits. */
  readonly motd?: readonly string[];
  /** Hears that a session is over (its socket closed), once. */
  readonly ended?: (session: Session) => void;
}

/** The byte that starts a telnet command. */
const IAC = 0xff;
/** Wrong passwords allowed before the connection is closed. */
const PASSWORD_TRIES = 3;
/** How long a connection being closed may take to deliver its last line. */
const CLOSE_GRACE_MS = 1000;
/**
 * The read buffer of a client under flood control, and the first one of
 * every client: it reads at most `rateLimit` lines a second, so a bigger
 * buffer would only hold more of what it sent while it waits its turn. An
 * idle client holds one, in its pending read, so it is small: a long line
 * just takes a few reads.
 */
const READ_MIN = 256;
/** Where the READ_MIN buffers come from (shared by every session in the process). */
const readBuffers = new ReadBuffers(READ_MIN);
/** Largest read buffer, for clients that send a lot at once with flood control off. */
const READ_MAX = 64 * 1024;
/** A session's read buffer before it runs. */
const NO_BYTES = new Uint8Array(0);
/** Consecutive small reads after which a grown read buffer shrinks back. */
const SHRINK_AFTER = 8;
/**
 * Blank first lines that come before the first prompt is out, or this soon
 * after, are not answers to it (no one reads a prompt and presses Enter that
 * fast): they are a client finding out whether it is talking to a TLS port
 * by mistake, as older `confab join` clients do, and they are ignored.
 */
const FIRST_PROMPT_GRACE_MS = 500;
/** At most this many such blank lines are ignored (a probe is up to five LFs). */
const PROBE_LINES = 5;

type State = "password" | "alias" | "joined" | "closing";

/** Matches a line with anything but white space in it. */
const NOT_BLANK = /\S/;

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/** Describes a socket error for the log and the `left` notice. */
function describeError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.BrokenPipe) return "connection broken";
  if (error instanceof Deno.errors.ConnectionAborted) return "connection aborted";
  if (error instanceof Deno.errors.TimedOut) return "connection timed out";
  if (error instanceof Deno.errors.InvalidData) return `bad data: ${(error as Error).message}`;
  if (error instanceof Deno.errors.UnexpectedEof) return "connection closed mid-stream";
  return error instanceof Error ? error.message : String(error);
}

/** Whether an error just means the socket was already closed by us. */
function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

/** A peer's address for the log: as it is, or `host:port` from a `Deno.NetAddr`. */
export function peerName(peer: string | Deno.NetAddr): string {
  return typeof peer === "string" ? peer : formatAddress(peer.hostname, peer.port);
}

/**
 * One client connection; see the module documentation.
 *
 * @example Usage
 * ```ts ignore
 * const session = new Session(conn, "127.0.0.1:40000", { registry, options, log });
 * session.run(); // serves it; `ended` is told once the socket is closed
 * ```
 */
export class Session implements Member {
  alias = "";
  joinedAt = 0;
  away = "";
  replyTo: Member | undefined = undefined;
  /**
   * The remote address for the log, or the `Deno.NetAddr` it is written
   * from when needed: the connection holds that object anyway, and most
   * sessions never log their address more than twice.
   */
  readonly #peer: string | Deno.NetAddr;
  /** When the connection was accepted, on the server's clock (`ServeOptions.clock`, ms). */
  readonly connectedAt: number;

  readonly #conn: Transport;
  readonly #ctx: SessionContext;
  readonly #outbox: Outbox;
  readonly #reader: LineReader;
  /** Made when the first telnet command byte (IAC) comes; most clients send none. */
  #telnet: TelnetFilter | undefined;
  #limiter: RateLimiter;
  #state: State;
  #passwordTries = 0;
  #wantHistory = true;
  /** The room asked for at the alias prompt; the default room if none. */
  #entering: string | undefined;
  /** The room it is in, once joined. */
  #room: Room | undefined;
  /** What the registry has yet to answer; the next line waits for it. */
  #pending: Promise<void> | undefined;
  /** When the client last sent something or waited on us, on the server's clock. */
  #lastInput: number;
  /** Whether a line with something in it has come yet. */
  #answered = false;
  /** Blank first lines ignored as a TLS probe so far. */
  #probeLines = 0;
  /** When the first prompt was written out, on the server's clock; -1 until then. */
  #promptedAt = -1;
  /** Whether the client was told it is being slowed down since it last rested. */
  #throttled = false;
  /** Whether the reader has just waited for the rate limit. */
  #waited = false;
  /** While the reader waits for a token: ends the wait early (on close). */
  #wake: (() => void) | undefined;
  #pauseTimer: ReturnType<typeof setTimeout> | undefined;
  #closeAt = 0;
  #closed = false;
  /** While the input's end waits for the socket to close: ends the wait. */
  #onClosed: (() => void) | undefined;
  /**
   * What the next read goes into: from the shared pool while it is
   * READ_MIN long, given back once no read into it can be pending.
   */
  #buffer: Uint8Array = NO_BYTES;
  /** Small reads in a row into a grown buffer; enough of them shrink it. */
  #smallReads = 0;
  /** Whether no read has returned yet. */
  #first = true;
  readonly #onRead = this.#readDone.bind(this);
  readonly #onReadError = this.#readFailed.bind(this);

  /**
   * Wraps an accepted connection (a `Deno.Conn` or a WebSocket's
   * transport) from `peer` (its address, for the log: a `host:port`
   * string, or the `Deno.NetAddr` to write one from); call
   * {@linkcode Session.run} to serve it.
   */
  constructor(conn: Transport, peer: string | Deno.NetAddr, ctx: SessionContext) {
    this.#conn = conn;
    this.#peer = peer;
    this.#ctx = ctx;
    const o = ctx.options;
    this.connectedAt = this.#lastInput = o.clock();
    this.#outbox = new Outbox(conn, {
      maxBytes: o.outboxBytes,
      onError: this.#lost.bind(this),
      clock: o.clock,
    });
    this.#reader = new LineReader({
      maxLineBytes: o.maxLineBytes,
      onLine: this.#onLine.bind(this),
      onOverflow: this.#onOverflow.bind(this),
    });
    this.#limiter = this.#newLimiter();
    this.#state = o.password === undefined ? "alias" : "password";
  }

  /** The remote address, `host:port`, for the log. */
  get peer(): string {
    return peerName(this.#peer);
  }

  /** Whether the session has joined a room and is not leaving. */
  get joined(): boolean {
    return this.#state === "joined";
  }

  /**
   * Whether the session is on its way out: checked after each answer from
   * the registry, since it may have closed while it waited.
   */
  get #leaving(): boolean {
    return this.#state === "closing";
  }

  /** The room it is in, once joined. */
  get room(): Room | undefined {
    return this.#room;
  }

  /** Its writer, which the room has follow its log. */
  get outbox(): Outbox {
    return this.#outbox;
  }

  deliver(bytes: Uint8Array): boolean {
    return this.#outbox.push(bytes);
  }

  evicted(reason: string): void {
    // Make room in the queue for the reason; #finish leaves the room.
    this.#outbox.clear();
    this.#finish(reason, `disconnected: ${reason}`);
  }

  /**
   * Serves the connection: prompts, then reads until the peer leaves or the
   * session is closed, and tells `SessionContext.ended` once the socket is
   * closed. Returns at once; never throws.
   *
   * Between reads the session waits in its pending read alone, with a
   * callback, not in a suspended async function: an idle client is most of
   * a big server's clients, and that frame would be a tenth of its memory.
   */
  run(): void {
    try {
      if (this.#state === "password") this.#promptPassword();
      else this.#promptAlias();
      this.#outbox.drained().then(() => (this.#promptedAt = this.#now()));
      this.#buffer = readBuffers.take();
      this.#read();
    } catch (error) {
      this.#crashed(error);
      this.#tellEnded();
    }
  }

  /** Starts the next read, or ends the input once the session is closed. */
  #read(): void {
    if (this.#closed) return void this.#endInput(false);
    try {
      this.#conn.read(this.#buffer).then(this.#onRead, this.#onReadError);
    } catch (error) {
      void this.#endInput(true, error);
    }
  }

  /** A read returned `n` bytes, or `null` at the end of input. */
  #readDone(n: number | null): void {
    try {
      if (n === null) return void this.#endInput(false);
      this.#lastInput = this.#now();
      const buffer = this.#buffer;
      if (this.#first) {
        this.#first = false;
        const tls = n >= 2 && buffer[0] === 0x16 && buffer[1] === 0x03;
        if (this.#ctx.options.cert === undefined && tls) {
          this.#ctx.log(`${this.peer} sent a TLS handshake to a plaintext port; closing`);
          this.#finish("TLS handshake on a plaintext port", undefined);
          this.#closeConn();
          return void this.#endInput(false);
        }
      }
      void this.#serveRead(buffer.subarray(0, n));
    } catch (error) {
      void this.#endInput(true, error);
    }
  }

  /** Takes in what one read returned, resizes the buffer if need be, and reads on. */
  async #serveRead(bytes: Uint8Array): Promise<void> {
    try {
      await this.#take(bytes);
      const n = bytes.length;
      const buffer = this.#buffer;
      // Only an unpaced reader grows its buffer: a paced one waits its turn
      // with what it has read in hand, and its rate, not the size of its
      // reads, sets how fast it goes.
      if (!this.#limiter.enabled && n === buffer.length && buffer.length < READ_MAX) {
        // Made before the old one goes back: if it cannot be, the old one
        // is still this session's, to give back once.
        const grown = new Uint8Array(buffer.length * 4);
        this.#buffer = grown;
        readBuffers.give(buffer);
        this.#smallReads = 0;
      } else if (
        buffer.length > READ_MIN && n <= READ_MIN / 2 && ++this.#smallReads >= SHRINK_AFTER
      ) {
        this.#buffer = readBuffers.take();
        this.#smallReads = 0;
      }
    } catch (error) {
      return this.#endInput(true, error);
    }
    this.#read();
  }

  /**
   * No more is read: the peer sent its last byte, the session was closed,
   * or (`failed`) a read failed with `error`. Whatever was read is seen
   * to, the session finishes, and once the socket is closed the server is
   * told. Called once, when no read is pending; never rejects.
   */
  async #endInput(failed: boolean, error?: unknown): Promise<void> {
    try {
      let reason = "";
      try {
        if (failed) throw error;
        if (this.#reader.pendingBytes > 0) await this.#pace();
        if (!this.#closed) this.#reader.end();
        if (this.#pending !== undefined) await this.#pending;
      } catch (error) {
        if (!(this.#closed && isClosedError(error))) reason = describeError(error);
      }
      // From the shared pool while it is READ_MIN long, and back to it now
      // that no read into it is pending.
      readBuffers.give(this.#buffer);
      this.#finish(reason, undefined);
      if (!this.#closed) await new Promise<void>((resolve) => (this.#onClosed = resolve));
    } catch (error) {
      this.#crashed(error);
    } finally {
      this.#tellEnded();
    }
  }

  #readFailed(error: unknown): Promise<void> {
    return this.#endInput(true, error);
  }

  /** Tells the server the session is over; whatever it throws stays here. */
  #tellEnded(): void {
    try {
      this.#ctx.ended?.(this);
    } catch (error) {
      this.#logUnexpected(error);
    }
  }

  /**
   * Something unforeseen was thrown: nothing a peer does gets here, and if
   * something does, this connection ends, not the server.
   */
  #crashed(error: unknown): void {
    try {
      this.abort();
    } catch {
      // The socket is closed below all the same.
    }
    try {
      this.#closeConn();
    } catch {
      // Nothing more to do for this connection.
    }
    this.#logUnexpected(error);
  }

  /** Logs what was thrown, with its stack; if even that fails, nowhere is left to say it. */
  #logUnexpected(error: unknown): void {
    try {
      this.#ctx.log(`${this.peer}: unexpected error: ${(error as Error)?.stack ?? error}`);
    } catch {
      // Nowhere left to say it.
    }
  }

  /**
   * Hands what one read returned to the line reader, telnet commands taken
   * out, waiting whenever the rate limit says the next line must wait.
   * `bytes` is not read into meanwhile, so it is all that is held.
   */
  async #take(bytes: Uint8Array): Promise<void> {
    let rest = bytes;
    while (rest.length > 0 && !this.#closed) {
      const { data, used, command } = this.#telnet === undefined && !rest.includes(IAC)
        ? { data: rest, used: rest.length, command: undefined }
        : (this.#telnet ??= new TelnetFilter()).filter(rest);
      let unread = data;
      while (unread.length > 0 && !this.#closed) {
        await this.#pace();
        unread = unread.subarray(this.#reader.push(unread));
      }
      if (command !== undefined && !this.#closed) await this.#onTelnet(command);
      rest = rest.subarray(used);
    }
  }

  /**
   * Waits, if the rate limit says so, until the next line may pass; the
   * first wait since the client last rested tells it why.
   */
  async #pace(): Promise<void> {
    if (this.#pending !== undefined) await this.#pending;
    // The room's writers are behind: nothing more is read until they catch
    // up, so the load waits in the senders' sockets, not in the server.
    while (this.#room?.busy && this.#state !== "closing") {
      const room = this.#room;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        room.ready().then(resolve);
      });
      this.#wake = undefined;
      this.#lastInput = this.#now();
    }
    const o = this.#ctx.options;
    const wait = this.#limiter.delay(this.#now());
    if (wait === 0 || this.#state === "closing") return;
    if (!this.#throttled) {
      this.#throttled = true;
      this.#tell(formatNotice(
        Date.now(),
        `slow down: at most ${
          plural(o.rateLimit, "line")
        } per second (bursts of ${o.rateBurst}); ` +
          "your lines are being delayed, none are lost",
      ));
    }
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#pauseTimer = setTimeout(resolve, wait);
    });
    this.#wake = undefined;
    this.#waited = true;
    // Waiting on us is not being idle.
    this.#lastInput = this.#now();
  }

  /** Spends a line's token. */
  #spend(): void {
    const limiter = this.#limiter;
    if (!limiter.enabled) return;
    const now = this.#now();
    // A client that earned back its whole burst without being made to wait
    // has rested: next time it is told again.
    if (!this.#waited && limiter.full(now)) this.#throttled = false;
    this.#waited = false;
    limiter.take(now);
  }

  async #onTelnet(command: TelnetCommand): Promise<void> {
    if (this.#state === "closing") return;
    if (command === "are-you-there") {
      // Answered like a line is read: one token each, so a stream of them
      // is paced too.
      await this.#pace();
      // It may have been closed meanwhile.
      if ((this.#state as State) === "closing") return;
      this.#spend();
      this.#tell(formatNotice(Date.now(), "[yes]"));
    } else {
      this.#finish("", "bye", `telnet ${command}`);
    }
  }

  /** Enforces deadlines; called by the server's timer with the current time. */
  tick(now: number): void {
    const o = this.#ctx.options;
    if (this.#closed) return;
    if (this.#state === "closing") {
      if (now >= this.#closeAt) this.#closeConn();
      return;
    }
    if (this.#outbox.stalledFor(now) >= o.writeTimeoutMs) {
      this.#ctx.log(`${this.peer} ${this.alias || "-"}: write stalled; disconnecting`);
      this.#finish("write timed out", undefined);
      this.#closeConn();
    } else if (this.#state !== "joined" && now - this.connectedAt >= o.aliasTimeoutMs) {
      this.#finish("no alias in time", "too long without choosing an alias");
    } else if (
      this.#state === "joined" && o.idleTimeoutMs > 0 && this.#wake === undefined &&
      now - this.#lastInput >= o.idleTimeoutMs
    ) {
      this.#finish("idle", "idle for too long");
    }
  }

  /**
   * Ends the session for a server shutdown: the closing line, then the close
   * once it is written or the grace time is up. The room is not told.
   */
  shutdown(): void {
    if (this.#closed) return;
    const deadline = this.#now() + this.#ctx.options.shutdownGraceMs;
    if (this.#state === "closing") {
      this.#closeAt = Math.min(this.#closeAt, deadline);
      return;
    }
    this.#state = "closing";
    this.#send(formatBye(SHUTDOWN_TEXT));
    this.#closeAt = deadline;
    this.#outbox.drained().then(() => this.#closeConn());
  }

  /** Closes the socket now, without a closing line. */
  abort(): void {
    if (this.#state !== "closing") this.#finish("server stopped", undefined);
    this.#closeConn();
  }

  #send(line: string): boolean {
    return this.#outbox.push(encodeLine(line));
  }

  /** A line for this client only; a client too slow to take it is dropped. */
  #tell(line: string): void {
    // Nothing follows the closing line.
    if (this.#state === "closing") return;
    if (!this.#send(line)) {
      this.#outbox.clear();
      this.#finish("too slow: could not keep up", "disconnected: too slow");
    }
  }

  /** The alias prompt, saying what the newcomer asked for so far (history off, a room). */
  #promptAlias(): void {
    this.#tell(formatPrompt("alias", `${this.#prefixes()}choose an alias: ${ALIAS_RULE}`));
  }

  #promptPassword(): void {
    this.#tell(formatPrompt("password", "this room needs a password"));
  }

  #onOverflow(): boolean {
    if (this.#state === "closing") return true;
    this.#spend();
    const max = this.#ctx.options.maxLineBytes;
    this.#tell(formatError(`line too long: at most ${max} bytes; it was not delivered`));
    this.#promptAgain();
    return this.#mayGoOn();
  }

  /** Prompts again, if still in the handshake, after an error about the answer. */
  #promptAgain(): void {
    if (this.#state === "alias") this.#promptAlias();
    if (this.#state === "password") this.#promptPassword();
  }

  /** Whether the next line may be read now (see {@linkcode LineReader.push}). */
  #mayGoOn(): boolean {
    if (this.#state === "closing") return true;
    return this.#pending === undefined && !this.#room?.busy &&
      this.#limiter.delay(this.#now()) === 0;
  }

  /** Holds the next line until `work` (an answer from the registry) is done. */
  #hold(work: void | Promise<void>): void {
    if (work === undefined) return;
    const pending: Promise<void> = work
      .catch((error) => {
        this.#ctx.log(
          `${this.peer} ${this.alias || "-"}: unexpected error: ${describeError(error)}`,
        );
      })
      .finally(() => {
        if (this.#pending === pending) this.#pending = undefined;
      });
    this.#pending = pending;
  }

  #onLine(line: string): boolean {
    if (this.#state === "closing") return true;
    // Every line costs a token, blank ones too: the server reads at most the
    // rate, whatever the lines hold.
    this.#spend();
    if (!NOT_BLANK.test(line)) {
      // Blank lines are ignored once joined. Before, they are answered, so
      // someone at a bare prompt sees that the server is there.
      if (this.#state === "joined") return this.#mayGoOn();
      if (
        !this.#answered && this.#probeLines < PROBE_LINES &&
        (this.#promptedAt < 0 || this.#now() - this.#promptedAt < FIRST_PROMPT_GRACE_MS)
      ) {
        this.#probeLines++;
        return this.#mayGoOn();
      }
      this.#tell(formatError(
        this.#state === "alias" ? "an alias cannot be empty" : "the password cannot be empty",
      ));
      this.#promptAgain();
      return this.#mayGoOn();
    }
    this.#answered = true;
    switch (this.#state) {
      case "password":
        this.#onPassword(line);
        break;
      case "alias":
        this.#onAlias(line);
        break;
      case "joined":
        this.#onChat(line);
        break;
    }
    return this.#mayGoOn();
  }

  #onPassword(line: string): void {
    const expected = this.#ctx.options.password!;
    if (timingSafeEqual(digest(line), digest(expected))) {
      this.#state = "alias";
      this.#promptAlias();
      return;
    }
    this.#passwordTries++;
    this.#ctx.log(`${this.peer} -: wrong password (${this.#passwordTries} of ${PASSWORD_TRIES})`);
    if (this.#passwordTries >= PASSWORD_TRIES) {
      this.#finish("wrong password", "wrong password; closing");
      return;
    }
    this.#tell(formatError("wrong password"));
    this.#promptPassword();
  }

  #onAlias(line: string): void {
    const wanted = line.trim();
    if (wanted.startsWith("/")) {
      const command = wanted.toLowerCase();
      if (isQuit(command)) {
        this.#finish("", "bye");
      } else if (command === "/nohistory") {
        this.#wantHistory = false;
        this.#promptAlias();
      } else if (/^\/join(\s|$)/.test(command)) {
        this.#chooseRoom(wanted.slice("/join".length));
      } else {
        this.#tell(formatError(`${ALIAS_FIRST} (/quit leaves, /nohistory skips history)`));
        this.#promptAlias();
      }
      return;
    }
    const check = checkAlias(wanted);
    if (!check.ok) {
      this.#tell(formatError(check.reason));
      this.#promptAlias();
      return;
    }
    this.#hold(this.#admit(check.alias));
  }

  /** What the prompt says was asked for at it: no history, another room. */
  #prefixes(): string {
    const history = this.#wantHistory ? "" : "history replay off; ";
    return this.#entering === undefined ? history : history + formatJoiningPrefix(this.#entering);
  }

  /** `/join [ROOM]` at the alias prompt: start in ROOM (by default, the default room). */
  #chooseRoom(args: string): void {
    const registry = this.#ctx.registry;
    const check = args.trim() === ""
      ? { ok: true as const, name: registry.defaultRoom.name }
      : checkRoomName(args);
    const refused = check.ok ? registry.refusal(check.name) : check.reason;
    if (refused !== undefined) {
      this.#tell(formatError(refused));
      this.#promptAlias();
      return;
    }
    if (check.ok) {
      // An existing room is named as it was made, whatever case was typed.
      const key = roomKey(check.name);
      this.#entering = registry.list().find((r) => roomKey(r.name) === key)?.name ?? check.name;
    }
    this.#promptAlias();
  }

  /** Claims the alias, then enters the room chosen at the prompt. */
  async #admit(alias: string): Promise<void> {
    const registry = this.#ctx.registry;
    if (!(await registry.claim(this, alias))) {
      if (this.#leaving) return;
      this.#tell(formatError(formatTaken(alias)));
      this.#promptAlias();
      return;
    }
    // The alias is ours from here on, closed or not: release() finds it by it.
    this.alias = alias;
    if (this.#leaving) {
      registry.release(this);
      return;
    }
    this.joinedAt = Date.now();
    const defaultRoom = registry.defaultRoom.name;
    const name = this.#entering ?? defaultRoom;
    const entered = await registry.enter(this, name, {
      history: this.#wantHistory,
      nameRoom: roomKey(name) !== roomKey(defaultRoom),
    });
    if (this.#leaving) {
      registry.release(this);
      return;
    }
    if (!entered.ok) {
      // The room could be made when it was asked for, but no longer.
      registry.release(this);
      this.alias = "";
      this.#entering = undefined;
      this.#tell(formatError(entered.reason));
      this.#promptAlias();
      return;
    }
    this.#room = entered.room;
    this.#state = "joined";
    // The handshake's lines (password, tries at an alias, /nohistory) do not
    // count against the chat rate the client is told about next.
    this.#limiter = this.#newLimiter();
    const o = this.#ctx.options;
    const limits = { rate: o.rateLimit, burst: o.rateBurst, maxLineBytes: o.maxLineBytes };
    this.#tell(formatNotice(Date.now(), formatLimits(limits)));
    for (const text of this.#ctx.motd ?? []) this.#tell(formatNotice(Date.now(), text));
    const where = roomKey(name) === roomKey(defaultRoom) ? "" : ` #${entered.room.name}`;
    this.#ctx.log(`${this.peer} ${this.alias}: joined${where} (${entered.room.size} online)`);
  }

  /** Moves to room `name` through the registry; resolves to why not, if not. */
  async #move(name: string): Promise<string | undefined> {
    const registry = this.#ctx.registry;
    const entered = await registry.enter(this, name, {
      history: this.#wantHistory,
      nameRoom: true,
    });
    if (!entered.ok) return entered.reason;
    if (this.#leaving) {
      registry.release(this);
      return undefined;
    }
    this.#room = entered.room;
    this.#ctx.log(`${this.peer} ${this.alias}: moved to #${entered.room.name}`);
    return undefined;
  }

  #onChat(line: string): void {
    const room = this.#room!;
    if (line.startsWith("/") && !line.startsWith("//")) {
      this.#hold(runCommand({
        room,
        registry: this.#ctx.registry,
        move: (name) => this.#move(name),
        member: this,
        now: Date.now(),
        // A quarter of the queue: a listing never fills it, however small.
        replyBytes: Math.min(WHO_BYTES, Math.floor(this.#ctx.options.outboxBytes / 4)),
        reply: (text) => this.#tell(formatNotice(Date.now(), text)),
        fail: (text) => this.#tell(formatError(text)),
        quit: (reason) => this.#finish(reason, reason ? `bye: ${reason}` : "bye", "quit"),
      }, line));
      return;
    }
    room.say(this, sanitize(line.startsWith("//") ? line.slice(1) : line));
  }

  /** The writer failed: the peer is gone. */
  #lost(error: unknown): void {
    if (this.#closed) return;
    if (this.#state !== "closing") {
      this.#finish(`write failed: ${describeError(error)}`, undefined);
    }
    this.#closeConn();
  }

  /**
   * The one way out: leaves the room (telling it `reason`) and gives up the
   * alias, optionally sends a closing line, and closes the socket once that
   * line is written or a short grace time is up. `logReason` replaces a
   * reason the user wrote, which is not logged.
   */
  #finish(reason: string, bye: string | undefined, logReason: string = reason): void {
    if (this.#state === "closing") return;
    const wasJoined = this.#state === "joined";
    this.#state = "closing";
    this.#ctx.registry.leave(this, reason);
    this.#ctx.registry.release(this);
    if (wasJoined) {
      this.#ctx.log(`${this.peer} ${this.alias}: left${logReason ? ` (${logReason})` : ""}`);
    } else if (logReason) {
      this.#ctx.log(`${this.peer} -: closed before joining (${logReason})`);
    }
    // The closing line goes out even past the byte limit: nothing follows it.
    if (bye !== undefined) this.#outbox.pushLast(encodeLine(formatBye(bye)));
    this.#closeAt = this.#now() + CLOSE_GRACE_MS;
    this.#outbox.drained().then(() => this.#closeConn());
  }

  /**
   * The time for deadlines and flood control: the server's clock, which
   * never goes backwards (not the wall clock of the stamps on lines).
   */
  #now(): number {
    return this.#ctx.options.clock();
  }

  #newLimiter(): RateLimiter {
    const o = this.#ctx.options;
    return new RateLimiter({ rate: o.rateLimit, burst: o.rateBurst });
  }

  #closeConn(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A reader waiting out the rate limit stops waiting.
    clearTimeout(this.#pauseTimer);
    this.#wake?.();
    this.#outbox.close();
    closeQuietly(this.#conn);
    this.#onClosed?.();
    this.#onClosed = undefined;
  }
}
