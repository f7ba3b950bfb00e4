/**
 * Just enough HTTP/1.1 for the web page: read one request's head (bounded
 * in size; the caller bounds it in time), answer it and close, or answer a
 * WebSocket upgrade (RFC 6455, section 4.2) and hand the connection on.
 *
 * @module
 */

/** The longest request head read, in bytes; a longer one is refused. */
export const MAX_HEAD_BYTES = 16 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One request's head, and the bytes that came after it. */
export interface HttpRequest {
  method: string;
  /** The HTTP version: `1.0` or `1.1`. */
  version: string;
  /** The request target as sent (`/ws`, `/app.js?x`). */
  target: string;
  headers: Headers;
  /** Bytes read past the head (the first frames of an upgraded socket). */
  rest: Uint8Array;
}

/** What is wrong with a request that could not be read; answered with this status. */
export class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * Reads a request head from `conn`. Resolves to `null` if the peer closed
 * before sending one; rejects with {@linkcode BadRequest} for a malformed
 * or too long one, and with what the connection throws.
 */
export async function readRequest(conn: Deno.Conn): Promise<HttpRequest | null> {
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  let length = 0;
  while (true) {
    if (length === buffer.length) throw new BadRequest(431, "request head too long");
    const n = await conn.read(buffer.subarray(length));
    if (n === null) {
      if (length === 0) return null;
      throw new BadRequest(400, "request cut short");
    }
    const from = Math.max(0, length - 3);
    const before = length;
    length += n;
    const end = headEnd(buffer, from, length);
    // A line ending in a bare LF would never end the head: say so at once.
    for (let i = before; i < (end >= 0 ? end : length); i++) {
      if (buffer[i] === 10 && (i === 0 || buffer[i - 1] !== 13)) {
        throw new BadRequest(400, "lines must end with CRLF");
      }
    }
    if (end >= 0) return parseHead(buffer.subarray(0, end), buffer.slice(end, length));
  }
}

function headEnd(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from + 3; i < to; i++) {
    if (bytes[i - 3] === 13 && bytes[i - 2] === 10 && bytes[i - 1] === 13 && bytes[i] === 10) {
      return i + 1;
    }
  }
  return -1;
}

function parseHead(head: Uint8Array, rest: Uint8Array): HttpRequest {
  const lines = decoder.decode(head).split("\r\n");
  const match = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0] ?? "");
  if (match === null) throw new BadRequest(400, "not an HTTP/1.1 request");
  if (!match[2]!.startsWith("/")) throw new BadRequest(400, "the request target must be a path");
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new BadRequest(400, "malformed header");
    if (headers.has("host") && line.slice(0, colon).toLowerCase() === "host") {
      throw new BadRequest(400, "more than one Host header");
    }
    try {
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    } catch {
      throw new BadRequest(400, "malformed header");
    }
  }
  return { method: match[1]!, version: match[3]!, target: match[2]!, headers, rest };
}

const REASONS: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/** The bytes of a whole answer; the connection is closed after it. */
export function response(
  status: number,
  headers: Record<string, string>,
  body: string,
  head = false,
): Uint8Array {
  const bytes = encoder.encode(body);
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push(`content-length: ${bytes.length}`, "connection: close", "", "");
  const top = encoder.encode(lines.join("\r\n"));
  if (head) return top;
  const out = new Uint8Array(top.length + bytes.length);
  out.set(top);
  out.set(bytes, top.length);
  return out;
}

/**
 * Why `request` is not a valid WebSocket upgrade (RFC 6455, section 4.2.1),
 * or `undefined`.
 */
export function checkUpgrade(request: HttpRequest): string | undefined {
  if (request.method !== "GET") return "a WebSocket upgrade must be a GET";
  if (request.version !== "1.1") return "a WebSocket upgrade must be HTTP/1.1";
  const connection = request.headers.get("connection") ?? "";
  if (!connection.toLowerCase().split(",").some((token) => token.trim() === "upgrade")) {
    return "no 'Connection: Upgrade'";
  }
  if (request.headers.get("sec-websocket-version") !== "13") {
    return "Sec-WebSocket-Version is not 13";
  }
  const key = request.headers.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return "no valid Sec-WebSocket-Key";
  return undefined;
}

/** The 101 answer to an upgrade with this `Sec-WebSocket-Key`. */
export async function upgradeAnswer(key: string): Promise<Uint8Array> {
  const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
  return encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
      `sec-websocket-accept: ${accept}\r\n\r\n`,
  );
}

/** Whether a header's value (`Upgrade`, `Connection`) lists `token`, in any case. */
export function hasToken(value: string | null, token: string): boolean {
  return (value ?? "").toLowerCase().split(",").some((t) => t.trim() === token);
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
