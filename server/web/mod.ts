/**
 * The web side of a server: one page (HTML, script, styles, all inside the
 * program) and the WebSocket it talks through, on a port of its own. Each
 * WebSocket becomes a {@linkcode WebSocketTransport} that the server admits
 * like a TCP connection, so browser users are ordinary members.
 *
 * @module
 */

import { formatAddress } from "../../protocol/io_util.ts";
import type { Logger } from "../options.ts";
import type { Transport } from "../transport.ts";
import { WebGuard, type WebGuardOptions } from "./guard.ts";
import { APP_CSS, APP_HTML } from "./page.ts";
import { APP_JS } from "./_app_bundle.ts";
import { CLOSE_WAIT_MS, WebSocketTransport } from "./ws_transport.ts";

/** On shutdown, how long (ms) past a close's own wait a socket may take to finish closing. */
const SHUTDOWN_EXTRA_MS = 1000;

/**
 * Seconds a WebSocket may go without answering the server's ping before it
 * is closed: a browser that vanished (a laptop lid shut, a lost network)
 * is noticed this soon, whatever `--idle-timeout` says.
 */
export const WS_IDLE_TIMEOUT_S = 30;

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

function plain(status: number, text: string, extra: Record<string, string> = {}): Response {
  return new Response(text + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...PAGE_HEADERS, ...extra },
  });
}

/**
 * Starts the web listener. Throws what `Deno.serve` throws if it cannot
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
  const sockets = new Set<WebSocketTransport>();

  function handle(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    const remote = info.remoteAddr;
    const client = guard.clientAddress(remote.hostname, request.headers.get("x-forwarded-for"));
    const peer = client.via === undefined
      ? formatAddress(remote.hostname, remote.port)
      : `${client.address} (via ${formatAddress(remote.hostname, remote.port)})`;
    const host = request.headers.get("host");
    const badHost = guard.checkHost(host);
    if (badHost !== undefined) {
      o.log(`${peer} -: web: refused (${badHost})`);
      return plain(403, "forbidden: this server does not answer to that host name");
    }
    const path = new URL(request.url).pathname;
    if (path === WS_PATH) {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return plain(426, "this is the WebSocket endpoint", { upgrade: "websocket" });
      }
      const badOrigin = guard.checkOrigin(request.headers.get("origin"), host);
      if (badOrigin !== undefined) {
        o.log(`${peer} -: web: refused (${badOrigin})`);
        return plain(403, "forbidden: pages from that origin may not connect");
      }
      const { socket, response } = Deno.upgradeWebSocket(request, {
        idleTimeout: WS_IDLE_TIMEOUT_S,
      });
      const transport = new WebSocketTransport(socket, {
        maxLineBytes: o.maxLineBytes,
        onRefuse: (reason) => o.log(`${peer} -: web: closing the socket (${reason})`),
      });
      sockets.add(transport);
      transport.finished.then(() => sockets.delete(transport));
      o.admit(transport, client.address, peer);
      return response;
    }
    const file = FILES[path];
    if (file === undefined) return plain(404, "not found");
    if (request.method !== "GET" && request.method !== "HEAD") {
      return plain(405, "method not allowed", { allow: "GET, HEAD" });
    }
    return new Response(request.method === "HEAD" ? null : file.body, {
      headers: { "content-type": file.type, ...PAGE_HEADERS },
    });
  }

  const server = Deno.serve({
    hostname: o.hostname,
    port: o.port,
    ...(tls ? { cert: o.cert!, key: o.key! } : {}),
    onListen: () => {},
    onError: (error) => {
      o.log(`web: request failed: ${error instanceof Error ? error.message : String(error)}`);
      return plain(500, "internal error");
    },
  }, handle);
  return {
    addr: server.addr,
    finished: server.finished,
    shutdown: async () => {
      // Sockets the sessions closed finish closing first, within a bound:
      // a peer that never answers the close is not waited for.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS + SHUTDOWN_EXTRA_MS);
      });
      await Promise.race([Promise.all([...sockets].map((s) => s.finished)), late]);
      clearTimeout(timer);
      await server.shutdown();
    },
  };
}
