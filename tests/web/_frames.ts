/**
 * WebSocket frames by hand, for the cases a browser never sends: a web
 * listener that echoes each line back, masked client frames of any shape,
 * and a reader that parses what the server sends until it closes.
 *
 * @module
 */

import { WAIT_MS, withTimeout } from "../_helpers.ts";
import { serveWeb, type WebServer } from "../../server/web/mod.ts";
import type { Transport } from "../../server/transport.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A web listener (line limit 100) whose sockets echo each line back; `log` gets its lines. */
export function echoServer(
  extra: { requestTimeoutMs?: number } = {},
): { web: WebServer; log: string[] } {
  const log: string[] = [];
  const web = serveWeb({
    hostname: "127.0.0.1",
    port: 0,
    maxLineBytes: 100,
    ...extra,
    log: (line) => log.push(line),
    admit: (transport) => void echo(transport),
  });
  return { web, log };
}

async function echo(transport: Transport): Promise<void> {
  const buffer = new Uint8Array(4096);
  try {
    while (true) {
      const n = await transport.read(buffer);
      if (n === null) break;
      const data = buffer.slice(0, n);
      let offset = 0;
      while (offset < n) offset += await transport.write(data.subarray(offset));
    }
  } catch {
    // The socket closed under the echo.
  }
  try {
    transport.close();
  } catch {
    // Closed already.
  }
}

/** Options of one hand-made client frame. */
export interface FrameShape {
  fin?: boolean;
  /** Reserved bits, as they sit in the first byte (0x40 is RSV1). */
  rsv?: number;
  masked?: boolean;
  /** Give the length in 64 bits even when it is short. */
  long?: boolean;
}

/** One client frame: opcode, payload, masked unless told. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  { fin = true, rsv = 0, masked = true, long = false }: FrameShape = {},
): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  const n = bytes.length;
  const head: number[] = [(fin ? 0x80 : 0) | rsv | opcode];
  const m = masked ? 0x80 : 0;
  if (long || n >= 65536) {
    head.push(m | 127, 0, 0, 0, 0, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
  } else if (n >= 126) head.push(m | 126, n >> 8, n & 255);
  else head.push(m | n);
  const mask = [0x11, 0x22, 0x33, 0x44];
  if (masked) head.push(...mask);
  const out = new Uint8Array(head.length + n);
  out.set(head);
  for (let i = 0; i < n; i++) out[head.length + i] = masked ? bytes[i]! ^ mask[i & 3]! : bytes[i]!;
  return out;
}

/** A close frame's payload: the code and, if given, the reason's bytes. */
export function closePayload(code: number, reason: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(2 + reason.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(reason, 2);
  return out;
}

/** A frame from the server. */
export interface ServerFrame {
  opcode: number;
  payload: Uint8Array;
}

/** The frame as text: `text hello`, `pong pp`, `close 1000 reason`, `op3`... */
export function describe(frame: ServerFrame): string {
  const text = decoder.decode(frame.payload);
  if (frame.opcode === 0x1) return `text ${text}`;
  if (frame.opcode === 0xa) return `pong ${text}`;
  if (frame.opcode === 0x8) {
    const p = frame.payload;
    return p.length < 2 ? "close" : `close ${(p[0]! << 8) | p[1]!} ${text.slice(2)}`.trim();
  }
  return `op${frame.opcode}`;
}

/** A hand-spoken WebSocket connection (already upgraded). */
export class RawSocket {
  readonly conn: Deno.Conn;
  #pending: Uint8Array;
  /** Where the unparsed part of `#pending` starts. */
  #at = 0;

  private constructor(conn: Deno.Conn, early: Uint8Array) {
    this.conn = conn;
    this.#pending = early;
  }

  /** Connects and upgrades; fails unless the answer is 101. */
  static async connect(port: number): Promise<RawSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await writeAll(
        conn,
        encoder.encode(
          `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
            "Sec-WebSocket-Version: 13\r\n\r\n",
        ),
      );
      const socket = new RawSocket(conn, new Uint8Array(0));
      const head = await socket.#readUntilHead();
      if (!head.startsWith("HTTP/1.1 101")) throw new Error(`no upgrade: ${head.split("\r\n")[0]}`);
      return socket;
    } catch (error) {
      conn.close();
      throw error;
    }
  }

  async #readUntilHead(): Promise<string> {
    // Bounded: 16 KiB of head.
    while (this.#pending.length < 16 * 1024) {
      const text = decoder.decode(this.#pending);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#pending = this.#pending.slice(end + 4);
        return text.slice(0, end);
      }
      if (!await this.#fill(WAIT_MS)) break;
    }
    throw new Error("no answer head");
  }

  /** Reads more; false at the end (or a reset). */
  async #fill(timeoutMs: number): Promise<boolean> {
    const buffer = new Uint8Array(64 * 1024);
    const n = await withTimeout(this.conn.read(buffer), timeoutMs, "the server").catch((error) => {
      if (error instanceof Deno.errors.ConnectionReset) return null;
      throw error;
    });
    if (n === null) return false;
    const left = this.#pending.subarray(this.#at);
    this.#at = 0;
    const joined = new Uint8Array(left.length + n);
    joined.set(left);
    joined.set(buffer.subarray(0, n), left.length);
    this.#pending = joined;
    return true;
  }

  /** Sends these bytes. */
  async send(...frames: Uint8Array[]): Promise<void> {
    for (const frame of frames) await writeAll(this.conn, frame);
  }

  /** The next frame, or `null` at the end of the connection. */
  async next(timeoutMs = WAIT_MS): Promise<ServerFrame | null> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const frame = this.#parse();
      if (frame !== undefined) return frame;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a frame");
      if (!await this.#fill(left)) return null;
    }
  }

  /**
   * Every frame until the server ends the connection, described; its close
   * is answered, as a browser does, unless `answerClose` is false.
   */
  async rest(timeoutMs = WAIT_MS, answerClose = true): Promise<string[]> {
    const out: string[] = [];
    const deadline = Date.now() + timeoutMs;
    // Bounded: by the deadline.
    while (true) {
      const frame = await this.next(Math.max(1, deadline - Date.now()));
      if (frame === null) return out;
      out.push(describe(frame));
      if (frame.opcode === 0x8 && answerClose) {
        await writeAll(this.conn, new Uint8Array([0x88, 0x80, 0, 0, 0, 0])).catch(() => {});
      }
    }
  }

  #parse(): ServerFrame | undefined {
    const p = this.#pending.subarray(this.#at);
    if (p.length < 2) return undefined;
    let length = p[1]! & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (p.length < 4) return undefined;
      length = (p[2]! << 8) | p[3]!;
      offset = 4;
    } else if (length === 127) {
      if (p.length < 10) return undefined;
      length = Number(new DataView(p.buffer, p.byteOffset + 2, 8).getBigUint64(0));
      offset = 10;
    }
    if (p.length < offset + length) return undefined;
    const frame = { opcode: p[0]! & 0x0f, payload: p.slice(offset, offset + length) };
    this.#at += offset + length;
    return frame;
  }

  /** Closes the connection (idempotent). */
  close(): void {
    try {
      this.conn.close();
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) throw error;
    }
  }
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
