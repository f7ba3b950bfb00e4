/**
 * A browser's WebSocket as a {@linkcode Transport}, spoken over the TCP (or
 * TLS) connection itself (RFC 6455, server side), so a session serves it
 * with the same code as a TCP connection and the server keeps control of
 * the connection: it can always end it.
 *
 * Each text message a browser sends is one line: the session's line reader
 * gets its bytes and an LF. Each line the session writes goes out as one
 * text frame, without its LF. Binary messages, messages with a CR or LF in
 * them and malformed frames close the socket with a reason.
 *
 * Both directions stay bounded, as for a TCP member. A message longer than
 * a line is kept only up to one byte past the line limit (the rest is read
 * and dropped as it comes), and one past {@linkcode maxMessageBytes} closes
 * the socket. Messages the session has not read yet wait here up to a byte
 * and a count limit; past that the socket is simply not read, so a browser
 * that sends faster than the server reads is slowed down by TCP, not
 * dropped. `write()` sends whole lines, about {@linkcode WRITE_CHUNK_BYTES}
 * at a time, and resolves once the kernel took them, so the session's
 * outbox sees a slow reader's progress line by line. A close waits at most
 * {@linkcode CLOSE_WAIT_MS} for the peer's answer, then ends the connection.
 *
 * @module
 */

import type { Transport } from "../transport.ts";

/** `write()` sends whole lines until it has about this many bytes to send. */
export const WRITE_CHUNK_BYTES = 16 * 1024;
/** How long (ms) a close waits for the last lines to leave and the peer to answer. */
export const CLOSE_WAIT_MS = 1000;
/** Messages received and not yet read by the session, at most, before reading pauses. */
export const MAX_QUEUED_FRAMES = 256;
/** Default ms between pings; a peer that sent nothing since the last one is gone. */
export const PING_INTERVAL_MS = 30_000;

/** Close codes (RFC 6455, section 7.4.1). */
const NORMAL = 1000;
const PROTOCOL_ERROR = 1002;
const UNSUPPORTED = 1003;
const BAD_DATA = 1007;
const POLICY = 1008;
const TOO_BIG = 1009;

const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

const LF = 0x0a;
const CR = 0x0d;
const encoder = new TextEncoder();

/** The longest message accepted (and cut to a line) for a line limit of `maxLineBytes`. */
export function maxMessageBytes(maxLineBytes: number): number {
  return Math.max(64 * 1024, 16 * (maxLineBytes + 1));
}

/** Options for {@linkcode WebSocketTransport}. */
export interface WebSocketTransportOptions {
  /**
   * The server's longest line: a longer message is kept only up to one byte
   * past it, so the session reports it too long without holding it.
   *
   * @default {4096}
   */
  maxLineBytes?: number;
  /**
   * Bytes received and not yet read by the session, at most; past that the
   * socket is not read until the session catches up.
   *
   * @default {65536} (or `4 * (maxLineBytes + 1)`, if that is more)
   */
  maxQueuedBytes?: number;
  /**
   * Ms between pings; a peer that sent nothing in that long (while it was
   * being read) is disconnected.
   *
   * @default {30000}
   */
  pingIntervalMs?: number;
  /** Called once with the reason when the transport closes the socket itself. */
  onRefuse?: (reason: string) => void;
}

/** Why a frame closes the socket: the close code and the reason sent with it. */
class Refusal extends Error {
  constructor(readonly code: number, reason: string) {
    super(reason);
  }
}

/**
 * Wraps a connection whose upgrade was answered with 101 as a
 * {@linkcode Transport}.
 *
 * @example Usage
 * ```ts ignore
 * await writeAll(conn, encoder.encode(upgradeAnswer(key)));
 * const transport = new WebSocketTransport(conn, request.rest);
 * const session = new Session(transport, peer, ctx);
 * session.run();
 * ```
 */
export class WebSocketTransport implements Transport {
  readonly #conn: Deno.Conn;
  readonly #maxLineBytes: number;
  readonly #maxMessageBytes: number;
  readonly #maxQueuedBytes: number;
  readonly #onRefuse: (reason: string) => void;
  /** Bytes read from the connection and not parsed yet: `#in[#start..#end]`. */
  #in = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  /** Messages received, as bytes with their LF, oldest first; `#offset` into the first. */
  #frames: Uint8Array[] = [];
  #offset = 0;
  #queuedBytes = 0;
  /** The peer closed, failed, or was refused: reads end once the queue is empty. */
  #ended = false;
  /** `close()` was called. */
  #closed = false;
  /** A close frame was sent (or is queued). */
  #closeSent = false;
  /** The connection itself was closed. */
  #shut = false;
  /** A write failed: later ones fail at once. */
  #broken = false;
  /** A read waiting for a message or the end. */
  #wakeReader: (() => void) | undefined;
  /** The reading loop, waiting for the session to catch up. */
  #wakePump: (() => void) | undefined;
  /** Frames go out one after another, in this order. */
  #writing: Promise<void> = Promise.resolve();
  /** The part of an outgoing line written without its LF yet. */
  #partial: Uint8Array | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  /** The payload of the pong waiting to go out, if one is (later pings replace it). */
  #pong: Uint8Array | undefined;
  /** The peer's close frame came: nothing after it is read. */
  #closeReceived = false;
  /** Something came from the peer since the last ping. */
  #heard = true;
  #paused = false;
  /** The reading loop ended: the peer is gone or the connection failed. */
  #pumpDone = false;
  #resolveFinished!: () => void;
  /** Resolves once the connection has closed, whoever closed it. */
  readonly finished: Promise<void>;

  /** Wraps `conn`; `early` are bytes already read past the upgrade request. */
  constructor(
    conn: Deno.Conn,
    early: Uint8Array = new Uint8Array(0),
    options: WebSocketTransportOptions = {},
  ) {
    this.#conn = conn;
    this.#maxLineBytes = options.maxLineBytes ?? 4096;
    this.#maxMessageBytes = maxMessageBytes(this.#maxLineBytes);
    this.#maxQueuedBytes = options.maxQueuedBytes ??
      Math.max(64 * 1024, 4 * (this.#maxLineBytes + 1));
    this.#onRefuse = options.onRefuse ?? (() => {});
    if (early.length > this.#in.length) this.#in = new Uint8Array(early.length);
    this.#in.set(early);
    this.#end = early.length;
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
    const interval = options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.#pingTimer = setInterval(() => this.#ping(), interval);
    this.#pump();
  }

  /** Bytes received and not yet read. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  #ping(): void {
    if (this.#closeSent || this.#paused) return;
    if (!this.#heard) {
      this.#onRefuse("no answer to ping");
      this.#onEnd();
      return this.#shutdown();
    }
    this.#heard = false;
    this.#send(frame(PING, new Uint8Array(0))).catch(() => {});
  }

  /** Reads and handles frames until the connection ends. */
  async #pump(): Promise<void> {
    try {
      while (true) {
        const header = await this.#need(2);
        if (!header) break;
        await this.#frame();
        if (this.#shut || this.#closeReceived) break;
        while (
          !this.#closed && !this.#ended &&
          (this.#frames.length >= MAX_QUEUED_FRAMES || this.#queuedBytes >= this.#maxQueuedBytes)
        ) {
          this.#paused = true;
          await new Promise<void>((resolve) => (this.#wakePump = resolve));
          this.#paused = false;
          this.#heard = true;
        }
      }
    } catch (error) {
      if (error instanceof Refusal) {
        this.#onRefuse(error.message);
        this.#onEnd();
        this.#startClose(error.code, error.message);
        // Read on (and drop) until the peer answers the close or the wait ends.
        await this.#drainUntilClosed();
        return;
      }
      // The connection failed or was closed here: nothing more to read.
    }
    this.#pumpDone = true;
    this.#onEnd();
    // After the peer's close, its answer goes out first (the close wait bounds it).
    if (this.#closeSent) this.#writing.then(() => this.#shutdown());
  }

  /**
   * After a refusal: reads on and drops what comes, up to the peer's close
   * (then ends the connection) or the end of the close wait.
   */
  async #drainUntilClosed(): Promise<void> {
    // Frames are still parsed, to see the close; their messages are dropped.
    // Bounded by the close wait, which ends the connection.
    try {
      while (!this.#shut && !this.#closeReceived) {
        // A frame refused after its header: skip the rest of its payload.
        if (this.#frameLeft < 0) throw new Refusal(PROTOCOL_ERROR, "cannot find the next frame");
        let skip = this.#frameLeft;
        while (skip > 0 && (this.#end > this.#start || await this.#need(1))) {
          const n = Math.min(skip, this.#end - this.#start);
          this.#start += n;
          skip -= n;
        }
        if (skip > 0 || !await this.#need(2)) break;
        this.#message = undefined;
        await this.#frame().catch((error) => {
          if (!(error instanceof Refusal)) throw error;
        });
      }
    } catch {
      // Something that cannot be parsed: drop the rest unparsed.
      await this.#discard();
    }
    await this.#writing;
    this.#shutdown();
  }

  async #discard(): Promise<void> {
    try {
      while (!this.#shut) {
        this.#start = this.#end = 0;
        const n = await this.#conn.read(this.#in);
        if (n === null) break;
      }
    } catch {
      // Closed: done.
    }
    this.#shutdown();
  }

  /** Makes sure at least `n` unparsed bytes are buffered; false at the end of input. */
  async #need(n: number): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (this.#start > 0) {
        this.#in.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#in.length < n) {
        const bigger = new Uint8Array(n);
        bigger.set(this.#in.subarray(0, this.#end));
        this.#in = bigger;
      }
      const got = await this.#conn.read(this.#in.subarray(this.#end));
      if (got === null) return false;
      this.#end += got;
      this.#heard = true;
    }
    return true;
  }

  /** Text message being received: its bytes kept so far and its whole length. */
  #message: Uint8Array[] | undefined;
  #messageKept = 0;
  #messageLength = 0;
  /** Payload bytes of the frame being read that are not read yet. */
  #frameLeft = 0;
  /** Checks the whole message is UTF-8, chunk by chunk, kept or not. */
  #messageText = new TextDecoder("utf-8", { fatal: true });

  /** Reads one frame (its first two bytes are buffered) and acts on it. */
  async #frame(): Promise<void> {
    this.#frameLeft = -1;
    const b0 = this.#in[this.#start]!;
    const b1 = this.#in[this.#start + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) throw new Refusal(PROTOCOL_ERROR, "reserved bits set");
    if ((b1 & 0x80) === 0) throw new Refusal(PROTOCOL_ERROR, "frames from a client must be masked");
    let length = b1 & 0x7f;
    let headerLength = 2;
    if (length === 126) headerLength = 4;
    if (length === 127) headerLength = 10;
    if (!await this.#need(headerLength + 4)) throw new Deno.errors.UnexpectedEof("cut frame");
    const view = new DataView(this.#in.buffer, this.#start);
    if (length === 126) length = view.getUint16(2);
    if (length === 127) {
      const big = view.getBigUint64(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Refusal(TOO_BIG, "message too big");
      length = Number(big);
    }
    const mask = this.#in.slice(this.#start + headerLength, this.#start + headerLength + 4);
    this.#start += headerLength + 4;
    this.#frameLeft = length;

    if (opcode >= 0x8) {
      if (!fin || length > 125) throw new Refusal(PROTOCOL_ERROR, "bad control frame");
      if (!await this.#need(length)) throw new Deno.errors.UnexpectedEof("cut frame");
      const payload = this.#in.slice(this.#start, this.#start + length);
      this.#start += length;
      this.#frameLeft = 0;
      unmask(payload, mask, 0);
      return this.#control(opcode, payload);
    }
    if (opcode === BINARY) {
      throw new Refusal(UNSUPPORTED, "binary frames are not accepted; send text");
    }
    if (opcode === TEXT) {
      if (this.#message !== undefined) {
        throw new Refusal(PROTOCOL_ERROR, "a new message inside a fragmented one");
      }
      this.#message = [];
      this.#messageKept = 0;
      this.#messageLength = 0;
      this.#messageText = new TextDecoder("utf-8", { fatal: true });
    } else if (opcode !== 0 || this.#message === undefined) {
      throw new Refusal(PROTOCOL_ERROR, `unexpected frame (opcode ${opcode})`);
    }
    this.#messageLength += length;
    if (this.#messageLength > this.#maxMessageBytes) {
      throw new Refusal(TOO_BIG, `message too big (at most ${this.#maxMessageBytes} bytes)`);
    }
    // The payload as it comes: checked whole, kept up to one byte past a line.
    let maskOffset = 0;
    let left = length;
    while (left > 0) {
      if (this.#end === this.#start && !await this.#need(1)) {
        throw new Deno.errors.UnexpectedEof("cut frame");
      }
      const n = Math.min(left, this.#end - this.#start);
      const chunk = this.#in.subarray(this.#start, this.#start + n);
      unmask(chunk, mask, maskOffset);
      if (chunk.includes(LF) || chunk.includes(CR)) {
        throw new Refusal(POLICY, "a message must be one line (no CR or LF)");
      }
      try {
        this.#messageText.decode(chunk, { stream: true });
      } catch {
        throw new Refusal(BAD_DATA, "a message must be UTF-8 text");
      }
      const room = this.#maxLineBytes + 1 - this.#messageKept;
      if (room > 0) {
        const kept = chunk.slice(0, room);
        this.#message.push(kept);
        this.#messageKept += kept.length;
      }
      this.#start += n;
      maskOffset += n;
      left -= n;
      this.#frameLeft = left;
    }
    if (fin) this.#deliver();
  }

  #deliver(): void {
    const parts = this.#message!;
    this.#message = undefined;
    const line = new Uint8Array(this.#messageKept + 1);
    let at = 0;
    for (const part of parts) {
      line.set(part, at);
      at += part.length;
    }
    line[at] = LF;
    try {
      // Every chunk was checked as it came: the message must not end inside a character.
      this.#messageText.decode();
    } catch {
      throw new Refusal(BAD_DATA, "a message must be UTF-8 text");
    }
    if (this.#closed || this.#ended) return;
    this.#frames.push(line);
    this.#queuedBytes += line.length;
    this.#wake();
  }

  #control(opcode: number, payload: Uint8Array): void {
    if (opcode === PING) {
      if (!this.#closeSent) this.#queuePong(payload);
    } else if (opcode === CLOSE) {
      this.#closeReceived = true;
      this.#onEnd();
      // Our close went out (or is going): the exchange is over once it is written.
      if (this.#closeSent) return void this.#writing.then(() => this.#shutdown());
      const [code, reason] = closeAnswer(payload);
      if (reason !== "") this.#onRefuse(reason);
      // Answer the close, then end the connection (the server's side ends it first).
      this.#startClose(code, reason);
      this.#writing.then(() => this.#shutdown());
    } else if (opcode !== PONG) {
      throw new Refusal(PROTOCOL_ERROR, `unknown control frame (opcode ${opcode})`);
    }
  }

  /**
   * Answers a ping. At most one pong waits to go out: a ping that comes
   * while one waits only replaces its payload (RFC 6455, section 5.5.3),
   * so a peer that pings and never reads cannot make the server queue.
   */
  #queuePong(payload: Uint8Array): void {
    const waiting = this.#pong !== undefined;
    this.#pong = payload;
    if (waiting) return;
    this.#send(() => {
      const last = this.#pong ?? new Uint8Array(0);
      this.#pong = undefined;
      return frame(PONG, last);
    }).catch(() => {});
  }

  #onEnd(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const reader = this.#wakeReader;
    this.#wakeReader = undefined;
    reader?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#closed) throw new Deno.errors.BadResource("the WebSocket is closed");
      const first = this.#frames[0];
      if (first !== undefined) {
        const n = Math.min(p.length, first.length - this.#offset);
        p.set(first.subarray(this.#offset, this.#offset + n));
        this.#offset += n;
        this.#queuedBytes -= n;
        if (this.#offset === first.length) {
          this.#frames.shift();
          this.#offset = 0;
        }
        const pump = this.#wakePump;
        this.#wakePump = undefined;
        pump?.();
        return n;
      }
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wakeReader = resolve));
    }
  }

  /**
   * Sends the whole lines at the start of `p`, up to about
   * {@linkcode WRITE_CHUNK_BYTES} (at least one), and resolves with the
   * bytes they took once the connection took them. Bytes after the last LF
   * are kept for the line's end (and counted as written).
   */
  async write(p: Uint8Array): Promise<number> {
    this.#check();
    const out: Uint8Array[] = [];
    let size = 0;
    let start = 0;
    while (start < p.length && size < WRITE_CHUNK_BYTES) {
      const lf = p.indexOf(LF, start);
      if (lf < 0) break;
      const line = join(this.#partial, p.subarray(start, lf));
      this.#partial = undefined;
      const f = frame(TEXT, utf8(line));
      out.push(f);
      size += f.length;
      start = lf + 1;
    }
    if (out.length === 0) {
      this.#partial = join(this.#partial, p);
      return p.length;
    }
    await this.#send(concat(out, size));
    return start;
  }

  /** Throws if the socket can no longer be written. */
  #check(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the WebSocket is closed");
    if (this.#ended || this.#broken || this.#closeSent) {
      throw new Deno.errors.BrokenPipe("connection closed");
    }
  }

  /**
   * Queues `bytes` (or what `bytes()` makes when their turn comes) after
   * what is being written; resolves once all are written.
   */
  #send(what: Uint8Array | (() => Uint8Array)): Promise<void> {
    const sent = this.#writing.then(async () => {
      if (this.#broken || this.#shut) throw new Deno.errors.BrokenPipe("connection closed");
      const bytes = typeof what === "function" ? what() : what;
      try {
        let offset = 0;
        while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
      } catch (error) {
        this.#broken = true;
        throw error;
      }
    });
    this.#writing = sent.catch(() => {});
    return sent;
  }

  /**
   * Sends a close frame after what was written, and ends the connection
   * once the peer answers, or after {@linkcode CLOSE_WAIT_MS} whatever the
   * peer does.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the WebSocket is closed");
    this.#closed = true;
    this.#frames = [];
    this.#queuedBytes = 0;
    this.#wake();
    const pump = this.#wakePump;
    this.#wakePump = undefined;
    pump?.();
    this.#startClose(NORMAL, "");
    // A peer that is gone cannot answer: end once the last lines are out.
    if (this.#pumpDone) this.#writing.then(() => this.#shutdown());
  }

  #startClose(code: number, reason: string): void {
    if (this.#closeSent || this.#shut) return;
    this.#closeSent = true;
    this.#closeTimer = setTimeout(() => this.#shutdown(), CLOSE_WAIT_MS);
    const reasonBytes = cutUtf8(encoder.encode(reason), 123);
    const payload = new Uint8Array(2 + reasonBytes.length);
    payload[0] = code >> 8;
    payload[1] = code & 0xff;
    payload.set(reasonBytes, 2);
    this.#send(frame(CLOSE, payload)).catch(() => {});
  }

  /** Ends the connection now. */
  #shutdown(): void {
    if (this.#shut) return;
    this.#shut = true;
    clearTimeout(this.#closeTimer);
    clearInterval(this.#pingTimer);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#onEnd();
    this.#resolveFinished();
  }
}

/** The longest start of UTF-8 `bytes` of at most `max` bytes that ends on a character boundary. */
export function cutUtf8(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * The code and reason to answer a peer's close frame with (RFC 6455,
 * sections 5.5.1 and 7.4): its own code if it may be sent, 1000 for none,
 * 1002 for a code that may not be sent or a 1-byte payload, 1007 for a
 * reason that is not UTF-8.
 */
export function closeAnswer(payload: Uint8Array): [number, string] {
  if (payload.length === 0) return [NORMAL, ""];
  if (payload.length === 1) return [PROTOCOL_ERROR, "a close frame's payload cannot be 1 byte"];
  const code = (payload[0]! << 8) | payload[1]!;
  const allowed = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
  if (!allowed) return [PROTOCOL_ERROR, `close code ${code} may not be sent`];
  try {
    strict.decode(payload.subarray(2));
  } catch {
    return [BAD_DATA, "a close reason must be UTF-8 text"];
  }
  return [code, ""];
}

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder();

/** `line` if it is UTF-8 (a browser drops a socket over a text frame that is not), else repaired. */
function utf8(line: Uint8Array): Uint8Array {
  try {
    strict.decode(line);
    return line;
  } catch {
    return encoder.encode(lenient.decode(line));
  }
}

/** One unmasked frame (server to client), FIN set. */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const headerLength = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(headerLength + n);
  out[0] = 0x80 | opcode;
  const view = new DataView(out.buffer);
  if (n < 126) {
    out[1] = n;
  } else if (n < 65536) {
    out[1] = 126;
    view.setUint16(2, n);
  } else {
    out[1] = 127;
    view.setBigUint64(2, BigInt(n));
  }
  out.set(payload, headerLength);
  return out;
}

function unmask(bytes: Uint8Array, mask: Uint8Array, offset: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i]! ^= mask[(offset + i) & 3]!;
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function join(head: Uint8Array | undefined, tail: Uint8Array): Uint8Array {
  if (head === undefined) return tail.slice();
  const both = new Uint8Array(head.length + tail.length);
  both.set(head);
  both.set(tail, head.length);
  return both;
}
