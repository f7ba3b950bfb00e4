/**
 * The chat server: listens, admits connections within the caps, gives each
 * its own {@linkcode Session} (started without awaiting it), and shuts down
 * in one place.
 *
 * Architecture in three sentences: the accept loop hands every connection to
 * a `Session`, which reads lines in its own task and writes only through its
 * bounded `Outbox`. Everything said goes to the session's `Room`, which
 * formats it once and enqueues the same bytes for every other member, never
 * waiting on a socket; the `Registry` beside the rooms holds the aliases and
 * the rooms, and carries private messages between them. One timer enforces
 * every deadline, and one abort path (signal or `shutdown()`) stops it all.
 *
 * @module
 */

import { encodeLine, type Room } from "./room.ts";
import { LocalRegistry, type Registry } from "./registry.ts";
import {
  type Logger,
  type ResolvedServeOptions,
  resolveServeOptions,
  type ServeOptions,
} from "./options.ts";
import { peerName, Session, type SessionContext } from "./session.ts";
import { formatBye, FULL_TEXT, PER_ADDRESS_TEXT, plural, SHUTDOWN_TEXT } from "../protocol/wire.ts";
import { closeQuietly, formatAddress } from "../protocol/io_util.ts";
import { AddressSet } from "./address.ts";
import { MOTD_MAX_BYTES, MOTD_MAX_LINES, prepareMotd } from "./motd.ts";
import { ACCEPT_BACKOFF_MS, isConnectionError } from "./accept_error.ts";
import type { Transport } from "./transport.ts";
import { IoTurn } from "./io_turn.ts";
import { serveWeb, type WebServer } from "./web/mod.ts";

export type { ServeOptions } from "./options.ts";
export { SERVE_DEFAULTS } from "./options.ts";

/** A running server. */
export interface ChatServer extends AsyncDisposable {
  /** Where it listens (with the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Whether it speaks TLS. */
  readonly tls: boolean;
  /** Where the web page listens, when `webPort` was given. */
  readonly webAddr?: Deno.NetAddr;
  /** Connections open now, joined or not. */
  readonly connections: number;
  /** Connections open on the web port (in their request, or WebSockets); 0 without one. */
  readonly webConnections: number;
  /** The aliases and rooms. */
  readonly registry: Registry;
  /** The default room (`registry.defaultRoom`). */
  readonly room: Room;
  /** Resolves once the server has shut down completely. Never rejects. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, tells every client the server is shutting down, waits
   * (at most the grace time) for queued lines to go out, closes everything.
   */
  shutdown(): Promise<void>;
  /**
   * Replaces the message of the day shown to newcomers from now on (escaped
   * and capped as `ServeOptions.motd` is); returns how many lines were kept.
   */
  setMotd(lines: readonly string[]): number;
}

/** The server could not start listening; the message says why, for people. */
export class ListenError extends Error {
  /** Wraps the underlying error with a message naming the address. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ListenError";
  }
}

/** How long a refused connection may take to receive its one reason line. */
const REFUSE_GRACE_MS = 1000;

function describeListenError(error: unknown): string {
  if (error instanceof Deno.errors.AddrInUse) return "address already in use";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "not allowed (run with --allow-net)";
  if (error instanceof Deno.errors.AddrNotAvailable) return "address not available on this machine";
  if (error instanceof Error) return error.message;
  return String(error);
}

function listen(o: ResolvedServeOptions): Deno.Listener {
  const where = { hostname: o.hostname, port: o.port };
  try {
    return o.cert !== undefined && o.key !== undefined
      ? Deno.listenTls({ ...where, cert: o.cert, key: o.key })
      : Deno.listen(where);
  } catch (error) {
    throw new ListenError(
      `cannot listen on ${formatAddress(o.hostname, o.port)}: ${describeListenError(error)}`,
      { cause: error },
    );
  }
}

function sweepPeriod(o: ResolvedServeOptions): number {
  const candidates = [o.aliasTimeoutMs, o.writeTimeoutMs, 1000, o.shutdownGraceMs || 1000];
  if (o.idleTimeoutMs > 0) candidates.push(o.idleTimeoutMs);
  return Math.max(10, Math.min(1000, Math.min(...candidates) / 4));
}

/**
 * Starts a chat server. Throws {@linkcode ListenError} if it cannot listen,
 * and `RangeError`/`TypeError` for bad options; never throws later.
 *
 * @example Usage
 * ```ts
 * import { serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0, log: () => {} });
 * using conn = await Deno.connect({ port: server.addr.port });
 * const buffer = new Uint8Array(256);
 * const n = await conn.read(buffer);
 * assert.match(new TextDecoder().decode(buffer.subarray(0, n!)), /^\? alias: /);
 * ```
 */
export function serve(options: ServeOptions = {}): ChatServer {
  const o = resolveServeOptions(options);
  const log: Logger = o.log;
  const listener = listen(o);
  const addr = listener.addr as Deno.NetAddr;
  // Replayed history may fill at most half a newcomer's queue.
  const historyBytes = o.outboxBytes / 2;
  // A room is busy (its senders wait) well before any member's queue is full.
  const busyBytes = Math.min(64 * 1024, Math.floor(o.outboxBytes / 4));
  // Long write rounds let members' input in between their steps.
  const ioTurn = new IoTurn((why) =>
    log(`${why}: big rooms' write rounds pause on a timer instead`)
  );
  const turn = () => ioTurn.next();
  const registry: Registry = o.registry?.({
    defaultRoom: o.defaultRoom,
    maxRooms: o.maxRooms,
    historySize: o.historySize,
    historyBytes,
    busyBytes,
    quietAbove: o.quietAbove,
    turn,
    log,
  }) ?? new LocalRegistry({
    defaultRoom: o.defaultRoom,
    maxRooms: o.maxRooms,
    room: { historySize: o.historySize, historyBytes, busyBytes, quietAbove: o.quietAbove, turn },
  });
  let motd: readonly string[] = [];
  const ctx: SessionContext = {
    registry,
    options: o,
    log,
    ended,
    get motd() {
      return motd;
    },
  };
  /** Every session, with the address its per-address count is kept under (if capped). */
  const sessions = new Map<Session, string | undefined>();
  /** Resolves the wait for every session to end, once one is waited for. */
  let allEnded: (() => void) | undefined;
  const tasks = new Set<Promise<void>>();
  const perAddress = new Map<string, number>();
  const exempt = new AddressSet(o.exemptAddresses);
  let stopping = false;
  let backoff: ReturnType<typeof setTimeout> | undefined;
  let wakeBackoff: (() => void) | undefined;

  let web: WebServer | undefined;
  if (o.webPort !== undefined) {
    try {
      web = serveWeb({
        hostname: o.hostname,
        port: o.webPort,
        ...(o.cert !== undefined && o.key !== undefined ? { cert: o.cert, key: o.key } : {}),
        origins: o.webOrigins,
        hosts: o.webHosts,
        trustProxy: o.trustProxy,
        exemptAddresses: o.exemptAddresses,
        maxLineBytes: o.maxLineBytes,
        log,
        admit: (transport, address, peer) => start(transport, address, peer),
      });
    } catch (error) {
      closeQuietly(listener);
      throw new ListenError(
        `cannot listen on ${formatAddress(o.hostname, o.webPort)} for the web page: ${
          describeListenError(error)
        }`,
        { cause: error },
      );
    }
  }
  // Only once every port is bound: a web port that is taken stops the start.
  log(`listening on ${formatAddress(addr.hostname, addr.port)}${o.cert ? " (TLS)" : ""}`);
  if (web !== undefined) {
    const w = web.addr;
    log(`web page on ${o.cert ? "https" : "http"}://${formatAddress(w.hostname, w.port)}/`);
  }

  function setMotd(lines: readonly string[]): number {
    // Room for it in any newcomer's queue, next to history (half of it).
    const maxBytes = Math.min(MOTD_MAX_BYTES, Math.floor(o.outboxBytes / 4));
    const prepared = prepareMotd(lines, maxBytes);
    if (prepared.cut) {
      const kept = plural(prepared.lines.length, "line");
      log(`motd cut to ${kept} (${MOTD_MAX_LINES} lines and ${maxBytes} bytes at most)`);
    }
    motd = prepared.lines;
    return motd.length;
  }
  if (o.motd !== undefined) setMotd(o.motd);

  const ticker = setInterval(() => {
    const now = o.clock();
    for (const session of sessions.keys()) session.tick(now);
  }, sweepPeriod(o));

  function track(task: Promise<void>): void {
    tasks.add(task);
    task.catch(() => {}).finally(() => tasks.delete(task));
  }

  function refuse(conn: Transport, peer: string | Deno.NetAddr, reason: string): void {
    log(`${peerName(peer)} -: refused (${reason})`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const wrote = conn.write(encodeLine(formatBye(reason))).then(() => {});
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, REFUSE_GRACE_MS)));
    track(
      Promise.race([wrote, late]).catch(() => {}).finally(() => {
        clearTimeout(timer);
        closeQuietly(conn);
      }),
    );
  }

  function admit(conn: Deno.Conn): void {
    const remote = conn.remoteAddr as Deno.NetAddr;
    if ("setNoDelay" in conn) {
      const tcp = conn as Deno.TcpConn;
      try {
        tcp.setNoDelay(true);
        tcp.setKeepAlive(true);
      } catch {
        // The peer may already be gone; its first read will say so.
      }
    }
    start(conn, remote.hostname, remote);
  }

  /**
   * Admits a connection from `address` within the caps and starts its
   * session; `peer` is written in the log (see `Session`).
   */
  function start(conn: Transport, address: string, peer: string | Deno.NetAddr): void {
    if (stopping) return refuse(conn, peer, SHUTDOWN_TEXT);
    if (sessions.size >= o.maxClients) {
      return refuse(conn, peer, `${FULL_TEXT} (${plural(o.maxClients, "connection")})`);
    }
    const capped = !exempt.has(address);
    const count = capped ? perAddress.get(address) ?? 0 : 0;
    if (capped && count >= o.maxPerAddress) {
      return refuse(conn, peer, `${PER_ADDRESS_TEXT} (${o.maxPerAddress})`);
    }
    if (capped) perAddress.set(address, count + 1);
    const session = new Session(conn, peer, ctx);
    sessions.set(session, capped ? address : undefined);
    // No frame or handler chain of the server's own: an idle client holds
    // only its session's pending read, and the session calls ended() when
    // it is over.
    session.run();
  }

  /** A session is over, its socket closed: it no longer counts. */
  function ended(session: Session): void {
    const address = sessions.get(session);
    if (!sessions.delete(session)) return;
    if (address !== undefined) {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left === 0) perAddress.delete(address);
      else perAddress.set(address, left);
    }
    if (sessions.size === 0) allEnded?.();
  }

  /** Resolves once every session has ended. */
  function sessionsEnded(): Promise<void> {
    if (sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => (allEnded = resolve));
  }

  // Accept errors: one that concerns a single connection (it was reset or
  // aborted before we took it) is skipped at once; anything else (out of
  // file descriptors or memory, or unforeseen) backs off, logged once per
  // episode.
  let failing = false;
  async function acceptLoop(): Promise<void> {
    while (!stopping) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping) break;
        if (error instanceof Deno.errors.BadResource) break;
        // Not the listener's fault: the next connection is unaffected.
        if (isConnectionError(error)) continue;
        if (!failing) {
          failing = true;
          log(
            `accept failed: ${describeListenError(error)}; retrying every ${ACCEPT_BACKOFF_MS} ms`,
          );
        }
        await new Promise<void>((resolve) => {
          wakeBackoff = resolve;
          backoff = setTimeout(resolve, ACCEPT_BACKOFF_MS);
        });
        continue;
      }
      if (failing) {
        failing = false;
        log("accepting again");
      }
      if (stopping) {
        conn.close();
        break;
      }
      admit(conn);
    }
  }

  const accepting = acceptLoop().catch((error) => log(`accept loop failed: ${error}`));
  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
  let shuttingDown = false;

  async function stop(): Promise<void> {
    stopping = true;
    o.signal?.removeEventListener("abort", onAbort);
    clearTimeout(backoff);
    wakeBackoff?.();
    closeQuietly(listener);
    const where = registry.rooms > 1 ? `in ${plural(registry.rooms, "room")}` : "in the room";
    log(`shutting down; ${registry.members} ${where}`);
    registry.close();
    for (const session of sessions.keys()) session.shutdown();
    await accepting;
    // Sessions close themselves within the grace time (the ticker enforces
    // it); this is the backstop in case a close itself hangs.
    let backstop: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      backstop = setTimeout(() => resolve(true), o.shutdownGraceMs + 2000);
    });
    const settled = () => Promise.all([sessionsEnded(), Promise.allSettled([...tasks])]);
    if (await Promise.race([settled().then(() => false), timedOut])) {
      for (const session of sessions.keys()) session.abort();
      await settled();
    }
    clearTimeout(backstop);
    clearInterval(ticker);
    // Only now: shutting the web listener down closes its WebSockets at
    // once, before their closing lines are out. Until then it refuses
    // newcomers with the shutdown line.
    await web?.shutdown().catch((error) => log(`web shutdown failed: ${error}`));
    // Again: sessions that were already leaving may have left notices since.
    registry.close();
    log("stopped");
  }

  function shutdown(): Promise<void> {
    if (!shuttingDown) {
      shuttingDown = true;
      stop().catch((error) => log(`shutdown failed: ${error}`))
        .finally(() => ioTurn.close())
        .finally(resolveFinished);
    }
    return finished;
  }

  function onAbort(): void {
    void shutdown();
  }
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener("abort", onAbort, { once: true });

  const server: ChatServer = {
    addr,
    tls: o.cert !== undefined,
    ...(web !== undefined ? { webAddr: web.addr } : {}),
    get connections() {
      return sessions.size;
    },
    get webConnections() {
      return web?.connections ?? 0;
    },
    registry,
    room: registry.defaultRoom,
    finished,
    shutdown,
    setMotd,
    [Symbol.asyncDispose]: shutdown,
  };
  return server;
}
