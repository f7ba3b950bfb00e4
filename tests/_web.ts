/**
 * Test helpers for the web side: a WebSocket client that waits for the
 * line it expects, and raw HTTP over TCP for the requests a browser would
 * never make (a foreign Host, a foreign Origin, a client that stops reading).
 *
 * @module
 */

import { WAIT_MS, withTimeout } from "./_helpers.ts";

/** A WebSocket chat client for tests: each text frame is one line. */
export class WsClient implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly #lines: string[] = [];
  /** Every line seen so far, for failure messages. */
  readonly seen: string[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  /** The close event, once it came. */
  closeEvent: CloseEvent | undefined;
  readonly #done: Promise<void>;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      this.#lines.push(typeof event.data === "string" ? event.data : "<binary>");
      this.#wake?.();
    });
    this.#done = new Promise((resolve) => {
      socket.addEventListener("close", (event) => {
        this.#closed = true;
        this.closeEvent = event;
        this.#wake?.();
        resolve();
      });
    });
  }

  /** Opens `ws://127.0.0.1:PORT/ws` and waits until it is open. */
  static async connect(port: number, scheme = "ws"): Promise<WsClient> {
    const socket = new WebSocket(`${scheme}://127.0.0.1:${port}/ws`);
    const client = new WsClient(socket);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.addEventListener("open", () => resolve(), { once: true });
        socket.addEventListener("error", () => reject(new Error("WebSocket failed")), {
          once: true,
        });
      }),
      WAIT_MS,
      "the WebSocket to open",
    ).catch(async (error) => {
      await client.close();
      throw error;
    });
    return client;
  }

  /** Connects, answers the alias prompt and waits for the welcome and limits. */
  static async join(port: number, alias: string): Promise<WsClient> {
    const client = await WsClient.connect(port);
    try {
      await client.expect(/^\? alias: /);
      client.send(alias);
      await client.expect(/^\[\d\d:\d\d:\d\d\] -- welcome, /);
      await client.expect(/^\[\d\d:\d\d:\d\d\] -- limits: /);
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** Sends one line as one text frame. */
  send(line: string): void {
    this.socket.send(line);
  }

  /** The next line, or `null` once the socket closed. */
  async next(timeoutMs = WAIT_MS): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0 && !this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a line (seen: ${this.#recent()})`);
      await withTimeout(
        new Promise<void>((resolve) => (this.#wake = resolve)),
        left,
        `a line (seen: ${this.#recent()})`,
      );
    }
    const line = this.#lines.shift() ?? null;
    if (line !== null) this.seen.push(line);
    return line;
  }

  /** Skips lines until one matches; fails at the close or on timeout. */
  async expect(pattern: RegExp | string, timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const matches = (line: string) =>
      typeof pattern === "string" ? line.includes(pattern) : pattern.test(line);
    while (true) {
      const line = await this.next(Math.max(1, deadline - Date.now())).catch(() => {
        throw new Error(`timed out waiting for ${pattern} (seen: ${this.#recent()})`);
      });
      if (line === null) {
        throw new Error(`socket closed waiting for ${pattern} (seen: ${this.#recent()})`);
      }
      if (matches(line)) return line;
    }
  }

  /** Waits until the server closes the socket; returns the lines before. */
  async closed(timeoutMs = WAIT_MS): Promise<string[]> {
    const lines: string[] = [];
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const line = await this.next(Math.max(1, deadline - Date.now()));
      if (line === null) break;
      lines.push(line);
    }
    await withTimeout(this.#done, timeoutMs, "the close event");
    return lines;
  }

  /** Closes the socket and waits for the close to complete (idempotent). */
  async close(): Promise<void> {
    if (
      this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN
    ) {
      this.socket.close();
    }
    await withTimeout(this.#done, WAIT_MS, "the WebSocket to close");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #recent(): string {
    return JSON.stringify(this.seen.slice(-8));
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Sends one raw HTTP/1.1 request with these headers over TCP and returns
 * the status code of the answer; the connection is closed after.
 */
export async function rawStatus(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<number> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await writeAll(conn, encoder.encode(`GET ${path} HTTP/1.1\r\n${head}connection: close\r\n\r\n`));
  const [status] = await readHead(conn);
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(status)?.[1] ?? 0);
}

/** The headers of a WebSocket upgrade for `host` and `origin` (none if undefined). */
export function upgradeHeaders(host: string, origin?: string): Record<string, string> {
  return {
    host,
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
    ...(origin === undefined ? {} : { origin }),
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/**
 * Reads up to the end of the HTTP head (bounded: 16 KiB, WAIT_MS); returns
 * it and the bytes that came after it.
 */
async function readHead(conn: Deno.Conn): Promise<[string, Uint8Array]> {
  const buffer = new Uint8Array(16 * 1024);
  let length = 0;
  const deadline = Date.now() + WAIT_MS;
  while (length < buffer.length && Date.now() < deadline) {
    const n = await withTimeout(conn.read(buffer.subarray(length)), WAIT_MS, "an HTTP answer");
    if (n === null) break;
    length += n;
    const end = findHeadEnd(buffer.subarray(0, length));
    if (end >= 0) return [decoder.decode(buffer.subarray(0, end)), buffer.slice(end, length)];
  }
  return [decoder.decode(buffer.subarray(0, length)), new Uint8Array(0)];
}

/** Where the bytes after the first CRLF CRLF start, or -1. */
function findHeadEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i - 3] === 13 && bytes[i - 2] === 10 && bytes[i - 1] === 13 && bytes[i] === 10) {
      return i + 1;
    }
  }
  return -1;
}

/**
 * A WebSocket client spoken by hand over TCP, which reads only when told:
 * it upgrades, can send masked text frames, and otherwise leaves what the
 * server sends in the kernel's buffers, like a browser tab that hangs.
 */
export class StalledWsClient {
  readonly conn: Deno.Conn;
  /** Bytes read with the upgrade's answer, not yet parsed. */
  #early: Uint8Array;

  private constructor(conn: Deno.Conn, early: Uint8Array) {
    this.conn = conn;
    this.#early = early;
  }

  /** Connects and upgrades; resolves once the server answered 101. */
  static async connect(
    port: number,
    extra: Record<string, string> = {},
    caCerts?: string[],
  ): Promise<StalledWsClient> {
    const conn = caCerts === undefined
      ? await Deno.connect({ hostname: "127.0.0.1", port })
      : await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts });
    const head = Object.entries({ ...upgradeHeaders(`127.0.0.1:${port}`), ...extra })
      .map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await writeAll(conn, encoder.encode(`GET /ws HTTP/1.1\r\n${head}\r\n`));
    const [answer, early] = await readHead(conn);
    if (!answer.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`no upgrade: ${answer.split("\r\n")[0]}`);
    }
    return new StalledWsClient(conn, early);
  }

  /** Sends one text frame (masked, as a client must). */
  async send(text: string): Promise<void> {
    const payload = encoder.encode(text);
    if (payload.length > 125) throw new RangeError("only short frames");
    const mask = [1, 2, 3, 4];
    const frame = new Uint8Array(6 + payload.length);
    frame[0] = 0x81;
    frame[1] = 0x80 | payload.length;
    frame.set(mask, 2);
    for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i % 4]!;
    await writeAll(this.conn, frame);
  }

  /**
   * Reads again, until the server closes the TCP connection (bounded in
   * time), answering its close frame as a browser would; returns the text
   * frames that came.
   */
  async drainToEnd(timeoutMs = WAIT_MS): Promise<string[]> {
    return (await this.readFrames(undefined, timeoutMs)) ?? [];
  }

  /**
   * Reads text frames until one matches `until` (then returns them, the
   * rest kept for the next read) or, without `until`, to the end.
   */
  async readFrames(until: RegExp | undefined, timeoutMs = WAIT_MS): Promise<string[]> {
    const texts: string[] = [];
    const buffer = new Uint8Array(64 * 1024);
    let pending = this.#early;
    this.#early = new Uint8Array(0);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      // Server frames are unmasked: opcode, length (7, 16 or 64 bits), payload.
      while (pending.length >= 2) {
        let length = pending[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (pending.length < 4) break;
          length = (pending[2]! << 8) | pending[3]!;
          offset = 4;
        } else if (length === 127) {
          if (pending.length < 10) break;
          length = Number(new DataView(pending.buffer, pending.byteOffset + 2, 8).getBigUint64(0));
          offset = 10;
        }
        if (pending.length < offset + length) break;
        const opcode = pending[0]! & 0x0f;
        const text = opcode === 0x1
          ? decoder.decode(pending.subarray(offset, offset + length))
          : undefined;
        if (text !== undefined) texts.push(text);
        if (opcode === 0x8) await writeAll(this.conn, new Uint8Array([0x88, 0x80, 0, 0, 0, 0]));
        pending = pending.slice(offset + length);
        if (text !== undefined && until?.test(text)) {
          this.#early = pending;
          return texts;
        }
      }
      const n = await withTimeout(this.conn.read(buffer), timeoutMs, "the server to close")
        .catch((error) => {
          if (error instanceof Deno.errors.ConnectionReset) return null;
          throw error;
        });
      if (n === null) {
        if (until !== undefined) {
          throw new Error(`closed before ${until}: ${JSON.stringify(texts)}`);
        }
        return texts;
      }
      const joined = new Uint8Array(pending.length + n);
      joined.set(pending);
      joined.set(buffer.subarray(0, n), pending.length);
      pending = joined;
    }
    throw new Error(`timed out waiting for ${until ?? "the close"}: ${JSON.stringify(texts)}`);
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

/**
 * Waits until `condition()` holds, looking every 20 ms for at most
 * `timeoutMs`; fails saying `what` it waited for.
 */
export async function until(
  condition: () => boolean,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Reads `conn` to its end without answering anything, bounded in time;
 * returns how many bytes came. Fails if the other side never closes.
 */
export async function readToClose(conn: Deno.Conn, timeoutMs = WAIT_MS): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  const deadline = Date.now() + timeoutMs;
  let total = 0;
  while (true) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`the connection stayed open (${total} bytes read)`);
    const n = await withTimeout(conn.read(buffer), left, "the connection to close").catch(
      (error) => {
        if (error instanceof Deno.errors.ConnectionReset) return null;
        throw error;
      },
    );
    if (n === null) return total;
    total += n;
  }
}
