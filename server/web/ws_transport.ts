/**
 * A browser's WebSocket as a {@linkcode Transport}, so a session serves it
 * with the same code as a TCP connection.
 *
 * Each text frame a browser sends is one line: the session's line reader
 * gets its bytes and an LF. Each line the session writes goes out as one
 * text frame, without its LF. Binary frames are refused with a reason.
 *
 * Both directions stay bounded. Deno's `bufferedAmount` grows without a
 * cap when a browser stops reading, so `write()` only resolves once it is
 * back below {@linkcode BUFFERED_LIMIT}: the session's outbox then fills,
 * and its byte limit and write timeout drop the browser like any other
 * member. Frames that arrive while the session is not reading (flood
 * control) wait here, up to {@linkcode MAX_QUEUED_FRAMES} frames and a
 * byte limit; past that the socket is closed.
 *
 * @module
 */

import type { Transport } from "../transport.ts";

/** `write()` resolves once the socket's unsent bytes are at most this many. */
export const BUFFERED_LIMIT = 16 * 1024;
/** How often (ms) a write waiting for the socket to drain looks again. */
export const DRAIN_POLL_MS = 10;
/** How long (ms) a close waits for the last lines to leave before it is sent anyway. */
export const CLOSE_WAIT_MS = 1000;
/** Frames received and not yet read by the session, at most. */
export const MAX_QUEUED_FRAMES = 256;

/** Close codes (RFC 6455, section 7.4.1). */
const NORMAL = 1000;
const UNSUPPORTED = 1003;
const POLICY = 1008;
const TOO_BIG = 1009;

const LF = 0x0a;
const encoder = new TextEncoder();
/** Lines come whole, so decoding needs no state between them. */
const decoder = new TextDecoder();

/** Options for {@linkcode WebSocketTransport}. */
export interface WebSocketTransportOptions {
  /**
   * The server's longest line: a frame longer than this, with no LF in it,
   * is kept only up to one byte past it, so the session reports it too
   * long without holding it.
   *
   * @default {4096}
   */
  maxLineBytes?: number;
  /**
   * Bytes received and not yet read by the session, at most; a browser
   * that sends more than the server reads is disconnected.
   *
   * @default {65536} (or `4 * (maxLineBytes + 1)`, if that is more)
   */
  maxQueuedBytes?: number;
  /** Called once with the reason when the transport closes the socket itself. */
  onRefuse?: (reason: string) => void;
}

/**
 * Wraps a server-side WebSocket (from `Deno.upgradeWebSocket`) as a
 * {@linkcode Transport}.
 *
 * @example Usage
 * ```ts ignore
 * const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: 30 });
 * const session = new Session(new WebSocketTransport(socket), peer, ctx);
 * session.run();
 * return response;
 * ```
 */
export class WebSocketTransport implements Transport {
  readonly #socket: WebSocket;
  readonly #maxLineBytes: number;
  readonly #maxQueuedBytes: number;
  readonly #onRefuse: (reason: string) => void;
  /** Frames received, as bytes with their LF, oldest first; `#offset` into the first. */
  #frames: Uint8Array[] = [];
  #offset = 0;
  #queuedBytes = 0;
  /** The peer closed (or the socket failed): reads end once the queue is empty. */
  #ended = false;
  /** `close()` was called. */
  #closed = false;
  /** A read waiting for a frame or the end. */
  #wakeReader: (() => void) | undefined;
  /** A write waiting for the socket to open or drain. */
  #wakeWriter: (() => void) | undefined;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** The part of an outgoing line written without its LF yet. */
  #partial: Uint8Array | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves once the socket has closed, whoever closed it. */
  readonly finished: Promise<void>;

  /** Wraps `socket`; see {@linkcode WebSocketTransportOptions}. */
  constructor(socket: WebSocket, options: WebSocketTransportOptions = {}) {
    this.#socket = socket;
    this.#maxLineBytes = options.maxLineBytes ?? 4096;
    this.#maxQueuedBytes = options.maxQueuedBytes ??
      Math.max(64 * 1024, 4 * (this.#maxLineBytes + 1));
    this.#onRefuse = options.onRefuse ?? (() => {});
    socket.addEventListener("open", () => this.#wakeWriter?.());
    socket.addEventListener("message", (event) => this.#onMessage(event));
    socket.addEventListener("error", () => this.#onEnd());
    this.finished = new Promise((resolve) => {
      socket.addEventListener("close", () => {
        clearTimeout(this.#closeTimer);
        this.#onEnd();
        resolve();
      });
    });
  }

  /** Bytes received and not yet read. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  #onMessage(event: MessageEvent): void {
    if (this.#ended || this.#closed) return;
    if (typeof event.data !== "string") {
      return this.#refuse(UNSUPPORTED, "binary frames are not accepted; send text");
    }
    let bytes = encoder.encode(event.data);
    if (bytes.length > this.#maxLineBytes + 1 && !bytes.includes(LF)) {
      // Too long to be a line: the reader is shown enough to say so.
      bytes = bytes.subarray(0, this.#maxLineBytes + 1);
    }
    if (bytes.length + 1 > this.#maxQueuedBytes) {
      return this.#refuse(TOO_BIG, "message too big");
    }
    if (
      this.#frames.length >= MAX_QUEUED_FRAMES ||
      this.#queuedBytes + bytes.length + 1 > this.#maxQueuedBytes
    ) {
      return this.#refuse(POLICY, "sending faster than the server reads");
    }
    const frame = new Uint8Array(bytes.length + 1);
    frame.set(bytes);
    frame[bytes.length] = LF;
    this.#frames.push(frame);
    this.#queuedBytes += frame.length;
    this.#wake();
  }

  #refuse(code: number, reason: string): void {
    this.#onRefuse(reason);
    this.#onEnd();
    this.#closeSocket(code, reason);
  }

  #onEnd(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const reader = this.#wakeReader;
    this.#wakeReader = undefined;
    reader?.();
    const writer = this.#wakeWriter;
    this.#wakeWriter = undefined;
    writer?.();
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
        return n;
      }
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wakeReader = resolve));
    }
  }

  async write(p: Uint8Array): Promise<number> {
    await this.#opened();
    let start = 0;
    while (start < p.length) {
      const lf = p.indexOf(LF, start);
      if (lf < 0) {
        this.#partial = join(this.#partial, p.subarray(start));
        break;
      }
      const line = join(this.#partial, p.subarray(start, lf));
      this.#partial = undefined;
      this.#check();
      this.#socket.send(decoder.decode(line));
      start = lf + 1;
    }
    await this.#drained();
    return p.length;
  }

  /** Throws if the socket can no longer be written. */
  #check(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the WebSocket is closed");
    if (this.#ended || this.#socket.readyState !== WebSocket.OPEN) {
      throw new Deno.errors.BrokenPipe("connection closed");
    }
  }

  async #opened(): Promise<void> {
    while (this.#socket.readyState === WebSocket.CONNECTING && !this.#closed && !this.#ended) {
      await new Promise<void>((resolve) => (this.#wakeWriter = resolve));
    }
    this.#check();
  }

  /** Resolves once the socket's unsent bytes are back within the bound. */
  async #drained(): Promise<void> {
    while (this.#socket.bufferedAmount > BUFFERED_LIMIT) {
      this.#check();
      await new Promise<void>((resolve) => {
        this.#wakeWriter = resolve;
        this.#drainTimer = setTimeout(resolve, DRAIN_POLL_MS);
      });
      clearTimeout(this.#drainTimer);
      this.#drainTimer = undefined;
    }
  }

  /**
   * Closes the socket once what was sent has left (a close frame could
   * otherwise overtake the last lines), or after {@linkcode CLOSE_WAIT_MS}.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the WebSocket is closed");
    this.#closed = true;
    clearTimeout(this.#drainTimer);
    this.#frames = [];
    this.#queuedBytes = 0;
    this.#wake();
    this.#closeSocket(NORMAL, "");
  }

  #closeSocket(code: number, reason: string): void {
    const socket = this.#socket;
    if (socket.readyState === WebSocket.CONNECTING) {
      socket.addEventListener("open", () => this.#closeSocket(code, reason), { once: true });
      return;
    }
    const deadline = performance.now() + CLOSE_WAIT_MS;
    const attempt = () => {
      if (socket.readyState !== WebSocket.OPEN) return;
      if (socket.bufferedAmount > 0 && performance.now() < deadline) {
        this.#closeTimer = setTimeout(attempt, DRAIN_POLL_MS);
        return;
      }
      socket.close(code, reason);
    };
    attempt();
  }
}

function join(head: Uint8Array | undefined, tail: Uint8Array): Uint8Array {
  if (head === undefined) return tail.slice();
  const both = new Uint8Array(head.length + tail.length);
  both.set(head);
  both.set(tail, head.length);
  return both;
}
