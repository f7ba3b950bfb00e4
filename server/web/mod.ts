/**
 * The web side of a server: one page (HTML, script, styles, all inside the
 * program) and the WebSocket it talks through, on a port of its own. Each
 * WebSocket becomes a {@linkcode WebSocketTransport} that the server admits
 * like a TCP connection, so browser users are ordinary members.
 *
 * The port has its own listener and speaks just enough HTTP/1.1 itself
 * (server/web/http.ts): each connection has {@linkcode REQUEST_TIMEOUT_MS}
 * for its request and the answer, and at most {@linkcode MAX_PENDING} are
 * in their request at once ({@linkcode MAX_PENDING_PER_ADDRESS} from one
 * address), so silent or slow connections cannot pile up; the WebSocket's
 * connection stays the server's to end (server/web/ws_transport.ts).
 *
 * @module
 */

import { formatAddress } from "../../protocol/io_util.ts";
import { AddressSet } from "../address.ts";
import type { Logger } from "../options.ts";
import type { Transport } from "../transport.ts";
import { malformedHost, WebGuard, type WebGuardOptions } from "./guard.ts";
import { APP_CSS, APP_HTML } from "./page.ts";
import { APP_JS } from "./_app_bundle.ts";
import {
  BadRequest,
  checkUpgrade,
  hasToken,
  type HttpRequest,
  readRequest,
  response,
  upgradeAnswer,
  writeAll,
} from "./http.ts";
import { CLOSE_WAIT_MS, WebSocketTransport } from "./ws_transport.ts";

/**
 * After an answer, how long (ms) the rest of a request (a body, pipelined
 * requests) is read and dropped before the connection is closed, so closing
 * with unread bytes does not reset the connection before the peer has the
 * answer.
 */
const LINGER_MS = 100;
/** And at most this many bytes. */
const LINGER_BYTES = 1024 * 1024;

/** On shutdown, how long (ms) past a close's own wait a socket may take to finish closing. */
const SHUTDOWN_EXTRA_MS = 1000;

/**
 * How long (ms) a connection may take to send its request and take the
 * answer (page or upgrade) before it is closed.
 */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Connections still in their request, at most (more are closed at once). */
export const MAX_PENDING = 128;
/** Of those, from one address at most (trusted proxies and exempt addresses are not limited). */
export const MAX_PENDING_PER_ADDRESS = 16;
/** Refused requests logged per address in {@linkcode REFUSAL_LOG_MS}, at most. */
export const REFUSAL_LOG_LINES = 10;
/** The window (ms) of {@linkcode REFUSAL_LOG_LINES}. */
export const REFUSAL_LOG_MS = 60_000;

/** The path of the WebSocket endpoint. */
export const WS_PATH = "/ws";

/** Options for {@linkcode serveWeb}. */
export interface WebOptions extends Omit<WebGuardOptions, "tls"> {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** PEM certificate chain; with `key`, the page is https and the socket wss. */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** The server's longest line, for the transport's own cap. */
  maxLineBytes: number;
  /**
   * Ms a connection may take over its request; see {@linkcode REQUEST_TIMEOUT_MS}.
   *
   * @default {10000}
   */
  requestTimeoutMs?: number;
  /** Ms between WebSocket pings; see the transport's `pingIntervalMs`. */
  pingIntervalMs?: number;
  /**
   * Addresses or ranges not held to {@linkcode MAX_PENDING_PER_ADDRESS}
   * (a proxy on the same machine, say), like `--exempt` for the other caps.
   *
   * @default {[]}
   */
  exemptAddresses?: readonly string[];
  /** Where log lines go. */
  log: Logger;
  /**
   * Hands over a new WebSocket: its transport, the client's address (for
   * the per-address cap) and how to name it in the log.
   */
  admit(transport: Transport, address: string, peer: string): void;
}

/** The web listener of a running server. */
export interface WebServer {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** Resolves once it has stopped. */
  readonly finished: Promise<void>;
  /** Connections open on the web port: in their request, or WebSockets. */
  readonly connections: number;
  /** Stops accepting; resolves once open requests are done. */
  shutdown(): Promise<void>;
}

const PAGE_HEADERS = {
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Nothing but this page's own script and styles, and its own socket.
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
};

const FILES: Record<string, { type: string; body: string }> = {
  "/": { type: "text/html; charset=utf-8", body: APP_HTML },
  "/app.js": { type: "text/javascript; charset=utf-8", body: APP_JS },
  "/app.css": { type: "text/css; charset=utf-8", body: APP_CSS },
};

type Answer = { status: number; text: string; extra?: Record<string, string> };

/**
 * Starts the web listener. Throws what `Deno.listen` throws if it cannot
 * listen, and a `TypeError` for a bad origin or proxy range.
 *
 * @example Usage
 * ```ts ignore
 * const web = serveWeb({ hostname: "127.0.0.1", port: 8080, maxLineBytes: 4096, log, admit });
 * await web.shutdown();
 * ```
 */
export function serveWeb(o: WebOptions): WebServer {
  const tls = o.cert !== undefined && o.key !== undefined;
  const guard = new WebGuard({ ...o, tls });
  const unlimited = new AddressSet([...(o.trustProxy ?? []), ...(o.exemptAddresses ?? [])]);
  const requestTimeoutMs = o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const listener: Deno.Listener = tls
    ? Deno.listenTls({ hostname: o.hostname, port: o.port, cert: o.cert!, key: o.key! })
    : Deno.listen({ hostname: o.hostname, port: o.port });
  const sockets = new Set<WebSocketTransport>();
  /** Connections still in their request, and how many per address. */
  const pending = new Set<Deno.Conn>();
  const pendingFrom = new Map<string, number>();
  const refusalLogged = new Map<string, { since: number; count: number }>();
  let stopping = false;
  /**
   * Over TLS, settles once a connection's handshake is over (done or
   * failed). Before that, closing it would not free its socket (the close
   * waits for the handshake, however long the peer takes), so it is closed
   * only then and stays counted as pending until it is.
   */
  const handshakes = new Map<Deno.Conn, Promise<void>>();
  /** The accept loop, waiting for a pending connection to go. */
  let wakeAccept: (() => void) | undefined;

  /** Counts `conn` no more (it is closed, or a WebSocket now). */
  function forget(conn: Deno.Conn): void {
    pending.delete(conn);
    handshakes.delete(conn);
    const wake = wakeAccept;
    wakeAccept = undefined;
    wake?.();
  }

  /** Closes `conn` as soon as that frees its socket, then forgets it. */
  function release(conn: Deno.Conn): void {
    const handshake = handshakes.get(conn);
    if (handshake === undefined) {
      closeQuietly(conn);
      forget(conn);
      return;
    }
    handshake.then(() => {
      closeQuietly(conn);
      forget(conn);
    });
  }

  /**
   * Logs a refusal: up to {@linkcode REFUSAL_LOG_LINES} per address in
   * {@linkcode REFUSAL_LOG_MS}, then one line saying the rest are not.
   */
  function logRefusal(address: string, line: string): void {
    const now = Date.now();
    let entry = refusalLogged.get(address);
    if (entry === undefined || now - entry.since >= REFUSAL_LOG_MS) {
      if (refusalLogged.size >= 1024) refusalLogged.clear();
      entry = { since: now, count: 0 };
      refusalLogged.set(address, entry);
    }
    entry.count++;
    if (entry.count <= REFUSAL_LOG_LINES) o.log(line);
    else if (entry.count === REFUSAL_LOG_LINES + 1) {
      o.log(`${address} -: web: more refused requests; not logged for a minute`);
    }
  }

  /** What to answer to a request that is not (or not yet) an upgrade. */
  function answer(request: HttpRequest, peer: string, remote: string): Answer | "upgrade" {
    const host = request.headers.get("host");
    const malformed = malformedHost(host);
    if (malformed !== undefined) {
      logRefusal(remote, `${peer} -: web: bad request (${malformed})`);
      return { status: 400, text: `bad request: ${malformed}` };
    }
    const badHost = guard.checkHost(host);
    if (badHost !== undefined) {
      logRefusal(remote, `${peer} -: web: refused (${badHost})`);
      return { status: 403, text: "forbidden: this server does not answer to that host name" };
    }
    const path = request.target.split("?")[0];
    if (path === WS_PATH) {
      if (!hasToken(request.headers.get("upgrade"), "websocket")) {
        return {
          status: 426,
          text: "this is the WebSocket endpoint",
          extra: { upgrade: "websocket" },
        };
      }
      const badUpgrade = checkUpgrade(request);
      if (badUpgrade !== undefined) {
        logRefusal(remote, `${peer} -: web: bad upgrade (${badUpgrade})`);
        return {
          status: 400,
          text: `bad request: ${badUpgrade}`,
          extra: { "sec-websocket-version": "13" },
        };
      }
      const badOrigin = guard.checkOrigin(request.headers.get("origin"), host);
      if (badOrigin !== undefined) {
        logRefusal(remote, `${peer} -: web: refused (${badOrigin})`);
        return { status: 403, text: "forbidden: pages from that origin may not connect" };
      }
      return "upgrade";
    }
    const file = path === undefined ? undefined : FILES[path];
    if (file === undefined) return { status: 404, text: "not found" };
    if (request.method !== "GET" && request.method !== "HEAD") {
      return { status: 405, text: "method not allowed", extra: { allow: "GET, HEAD" } };
    }
    return { status: 200, text: file.body, extra: { "content-type": file.type } };
  }

  async function handle(conn: Deno.Conn): Promise<void> {
    const remote = conn.remoteAddr as Deno.NetAddr;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      release(conn);
    }, requestTimeoutMs);
    let upgraded = false;
    try {
      let request: HttpRequest | null;
      try {
        request = await readRequest(conn);
      } catch (error) {
        if (!(error instanceof BadRequest)) return;
        const peer = formatAddress(remote.hostname, remote.port);
        logRefusal(remote.hostname, `${peer} -: web: bad request (${error.message})`);
        await writeAll(conn, plain(error.status, `bad request: ${error.message}`));
        await linger(conn);
        return;
      }
      if (request === null) return;
      const client = guard.clientAddress(remote.hostname, request.headers.get("x-forwarded-for"));
      const peer = client.via === undefined
        ? formatAddress(remote.hostname, remote.port)
        : `${client.address} (via ${formatAddress(remote.hostname, remote.port)})`;
      const reply = stopping
        ? { status: 503, text: "server shutting down" }
        : answer(request, peer, client.address);
      if (reply !== "upgrade") {
        const head = request.method === "HEAD";
        await writeAll(conn, plain(reply.status, reply.text, reply.extra, head));
        await linger(conn);
        return;
      }
      await writeAll(conn, await upgradeAnswer(request.headers.get("sec-websocket-key")!));
      clearTimeout(timer);
      if (timedOut || stopping) return;
      upgraded = true;
      const transport = new WebSocketTransport(conn, request.rest, {
        maxLineBytes: o.maxLineBytes,
        ...(o.pingIntervalMs !== undefined ? { pingIntervalMs: o.pingIntervalMs } : {}),
        onRefuse: (reason) => o.log(`${peer} -: web: closing the socket (${reason})`),
      });
      sockets.add(transport);
      transport.finished.then(() => sockets.delete(transport));
      o.admit(transport, client.address, peer);
    } catch {
      // The peer went away or timed out: nothing to tell anyone.
    } finally {
      clearTimeout(timer);
      const left = (pendingFrom.get(remote.hostname) ?? 1) - 1;
      if (left > 0) pendingFrom.set(remote.hostname, left);
      else pendingFrom.delete(remote.hostname);
      if (upgraded) forget(conn);
      else release(conn);
    }
  }

  async function acceptLoop(): Promise<void> {
    while (true) {
      // Over TLS, refused connections cannot be closed at once (see
      // `handshakes`): at the cap, accept no more until some have gone.
      // Bounded: each turn waits for one to go.
      while (tls && !stopping && pending.size >= MAX_PENDING) {
        await new Promise<void>((resolve) => (wakeAccept = resolve));
      }
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping || error instanceof Deno.errors.BadResource) return;
        o.log(`web: accept failed: ${error instanceof Error ? error.message : String(error)}`);
        // Out of file descriptors, say: let some close before trying again.
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const address = (conn.remoteAddr as Deno.NetAddr).hostname;
      const fromHere = pendingFrom.get(address) ?? 0;
      if (
        stopping || pending.size >= MAX_PENDING ||
        (fromHere >= MAX_PENDING_PER_ADDRESS && !unlimited.has(address))
      ) {
        if (tls && !stopping) {
          // Counted until it can really be closed.
          pending.add(conn);
          handshakes.set(conn, settled(conn as Deno.TlsConn));
          release(conn);
        } else closeQuietly(conn);
        continue;
      }
      pending.add(conn);
      if (tls) handshakes.set(conn, settled(conn as Deno.TlsConn));
      pendingFrom.set(address, fromHere + 1);
      handle(conn);
    }
  }

  const finished = acceptLoop();
  return {
    addr: listener.addr as Deno.NetAddr,
    finished,
    get connections() {
      return pending.size + sockets.size;
    },
    shutdown: async () => {
      stopping = true;
      wakeAccept?.();
      closeQuietly(listener);
      for (const conn of pending) closeQuietly(conn);
      // Sockets the sessions closed finish closing first, within a bound:
      // a peer that never answers the close is not waited for.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS + SHUTDOWN_EXTRA_MS);
      });
      await Promise.race([Promise.all([...sockets].map((s) => s.finished)), late]);
      clearTimeout(timer);
      await finished;
    },
  };
}

function plain(
  status: number,
  text: string,
  extra: Record<string, string> = {},
  head = false,
): Uint8Array {
  return response(
    status,
    {
      "content-type": "text/plain; charset=utf-8",
      ...PAGE_HEADERS,
      ...extra,
    },
    status === 200 ? text : text + "\n",
    head,
  );
}

/**
 * Ends the sending side of `conn` (its answer is whole) and reads what the
 * peer still sends, until it closes or for {@linkcode LINGER_MS} at most.
 */
async function linger(conn: Deno.Conn): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), LINGER_MS)));
  try {
    await conn.closeWrite();
    const buffer = new Uint8Array(16 * 1024);
    for (let read = 0; read < LINGER_BYTES;) {
      const n = await Promise.race([conn.read(buffer), late]);
      if (n === null) break;
      read += n;
    }
  } catch {
    // The peer is gone already.
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once the TLS handshake of `conn` is over, whether it worked or not. */
function settled(conn: Deno.TlsConn): Promise<void> {
  return conn.handshake().then(() => {}, () => {});
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
