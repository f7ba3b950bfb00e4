/**
 * Everything a server can be configured with, its defaults, and the checks
 * that turn bad values into one clear error before anything listens.
 *
 * @module
 */

import {
  DEFAULT_BURST,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_RATE,
  MAX_LINE_BYTES,
} from "../protocol/wire.ts";
import { OUTBOX_BYTES } from "./outbox.ts";
import { QUIET_ABOVE } from "./room.ts";
import { writeAllSync } from "../protocol/io_util.ts";
import { MAX_EXPANSION } from "../protocol/sanitize.ts";
import { AddressSet, LOOPBACK_RANGES } from "./address.ts";
import { checkRoomName, DEFAULT_ROOM } from "../protocol/room_name.ts";
import { parseHostName, parseOrigin } from "./web/guard.ts";
import type { Registry, RegistrySettings } from "./registry.ts";

/** Receives one line of server log (no trailing newline). */
export type Logger = (line: string) => void;

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /**
   * Address to listen on.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks a free one (read it from `ChatServer.addr`).
   *
   * @default {55555}
   */
  port?: number;
  /** PEM certificate chain; with `key`, the server speaks TLS. */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** Room password; when set, it is asked for before the alias. */
  password?: string;
  /**
   * Longest line accepted from a client, in bytes.
   *
   * @default {4096}
   */
  maxLineBytes?: number;
  /**
   * Most bytes queued for one client; a client whose queue would overflow is
   * disconnected as too slow.
   *
   * @default {1048576} (or `2 * (3 * maxLineBytes + 256)`, if that is more
   * and this is not given)
   */
  outboxBytes?: number;
  /**
   * A write to a client that makes no progress for this long (ms) ends that
   * connection.
   *
   * @default {30000}
   */
  writeTimeoutMs?: number;
  /**
   * Lines per second read from a client, sustained, a whole number; 0 turns
   * flood control off. A client that sends faster is read more slowly: its lines are
   * delayed, never dropped.
   *
   * @default {5}
   */
  rateLimit?: number;
  /**
   * Lines a client may send at once after a quiet spell, a whole number.
   *
   * @default {20}
   */
  rateBurst?: number;
  /**
   * Time (ms) a new connection has to choose an alias (and give the password).
   *
   * @default {60000}
   */
  aliasTimeoutMs?: number;
  /**
   * A client that sends nothing for this long (ms) is disconnected; 0 never.
   *
   * @default {0}
   */
  idleTimeoutMs?: number;
  /**
   * Most connections at once, joined or not.
   *
   * @default {10000}
   */
  maxClients?: number;
  /**
   * Most connections at once from one remote address, except the addresses
   * in `exemptAddresses`.
   *
   * @default {64}
   */
  maxPerAddress?: number;
  /**
   * Addresses and CIDR ranges (`10.0.0.0/8`, `::1`) that `maxPerAddress`
   * does not apply to: one address there stands for many people (a TLS
   * terminator, a proxy, an office NAT, a load test). `maxClients` still
   * applies to them. An empty list exempts no one.
   *
   * @default {["127.0.0.0/8", "::1"]}
   */
  exemptAddresses?: readonly string[];
  /**
   * Messages kept and replayed to newcomers; 0 keeps none.
   *
   * @default {20}
   */
  historySize?: number;
  /**
   * The name of the room everyone starts in, without the `#`.
   *
   * @default {"lobby"}
   */
  defaultRoom?: string;
  /**
   * Most rooms at once, the default room included; creating one more is
   * refused with a reason.
   *
   * @default {1000}
   */
  maxRooms?: number;
  /**
   * From this many members on, a room sums up its joins and leaves every
   * few seconds instead of announcing each; 0 always announces each.
   *
   * @default {250}
   */
  quietAbove?: number;
  /**
   * On shutdown, how long (ms) to wait for queued lines to reach clients.
   *
   * @default {2000}
   */
  shutdownGraceMs?: number;
  /**
   * Message of the day: lines shown to each newcomer as notices, after the
   * welcome and limits. They are escaped and cut to 20 lines and 4096 bytes
   * (or a quarter of `outboxBytes`); `ChatServer.setMotd()` replaces them.
   *
   * @default {[]}
   */
  motd?: readonly string[];
  /**
   * Also serve the web page and its WebSocket on this port (0 picks a free
   * one; read it from `ChatServer.webAddr`), on the same address and, with
   * `cert` and `key`, over https/wss. Browser users are ordinary members.
   * Off when not given.
   */
  webPort?: number;
  /**
   * Origins (`https://chat.example.com`) whose pages may open the
   * WebSocket; their host names are also accepted as `Host`. Empty: only
   * the page's own origin.
   *
   * @default {[]}
   */
  webOrigins?: readonly string[];
  /**
   * Host names the web page answers to besides IP addresses, `localhost`,
   * `hostname` and the hosts of `webOrigins`; any other `Host` is refused
   * (against DNS rebinding).
   *
   * @default {[]}
   */
  webHosts?: readonly string[];
  /**
   * Proxies (addresses or CIDR ranges) in front of the web page: from them,
   * the client's address (for `maxPerAddress` and the log) is the last hop
   * of `X-Forwarded-For`. Empty: the header is ignored.
   *
   * @default {[]}
   */
  trustProxy?: readonly string[];
  /**
   * Makes the registry the rooms live in, from what the server derives from
   * its options. By default a `LocalRegistry`, in this process; one shared
   * through Redis (`server/redis/`) makes several servers one.
   */
  registry?: (settings: RegistrySettings) => Registry;
  /** Stops the server when aborted. */
  signal?: AbortSignal;
  /** Where log lines go. Defaults to stderr with a UTC timestamp. */
  log?: Logger;
  /**
   * Where the server reads the time (ms, from any origin) for everything
   * that measures it: flood control, the alias, idle, write and close
   * deadlines, and the timer that enforces them. It must never go
   * backwards, so the default is a monotonic clock, which a change of the
   * system time (an NTP step) does not move. The times stamped on lines are
   * the wall clock, not this one. A test can move it forward to see what
   * deadlines do without waiting.
   *
   * @default {performance.now}
   */
  clock?: () => number;
}

/** {@linkcode ServeOptions} with every default filled in and every value checked. */
export type ResolvedServeOptions =
  & Required<
    Omit<ServeOptions, "cert" | "key" | "password" | "signal" | "motd" | "webPort" | "registry">
  >
  & Pick<ServeOptions, "cert" | "key" | "password" | "signal" | "motd" | "webPort" | "registry">;

/** The defaults, one place for the code, the help text and the README. */
export const SERVE_DEFAULTS = {
  hostname: DEFAULT_HOST,
  port: DEFAULT_PORT,
  maxLineBytes: MAX_LINE_BYTES,
  outboxBytes: OUTBOX_BYTES,
  writeTimeoutMs: 30_000,
  rateLimit: DEFAULT_RATE,
  rateBurst: DEFAULT_BURST,
  aliasTimeoutMs: 60_000,
  idleTimeoutMs: 0,
  maxClients: 10_000,
  maxPerAddress: 64,
  exemptAddresses: LOOPBACK_RANGES,
  historySize: 20,
  defaultRoom: DEFAULT_ROOM,
  maxRooms: 1000,
  quietAbove: QUIET_ABOVE,
  shutdownGraceMs: 2_000,
  webOrigins: [] as readonly string[],
  webHosts: [] as readonly string[],
  trustProxy: [] as readonly string[],
} as const;

/** Longest timeout accepted: timers cannot wait longer than about 24 days. */
export const MAX_TIMEOUT_MS = 7 * 24 * 3600 * 1000;

/**
 * Writes a timestamped log line to stderr. A log that cannot be written
 * (stderr closed, a full disk) is dropped: logging never stops the server.
 */
export function stderrLogger(line: string): void {
  try {
    writeAllSync(Deno.stderr, `${new Date().toISOString()} ${line}\n`);
  } catch {
    // Nowhere left to report it.
  }
}

function check(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new RangeError(`Cannot start server: ${what}, received ${value}`);
}

/**
 * Fills in defaults and checks every value, throwing a `RangeError` or
 * `TypeError` that names the bad one.
 */
export function resolveServeOptions(options: ServeOptions): ResolvedServeOptions {
  const given = definedOnly(options);
  const o: ResolvedServeOptions = {
    ...SERVE_DEFAULTS,
    log: stderrLogger,
    clock: () => performance.now(),
    ...given,
  };
  // Longer lines need a bigger queue: unless one was given, it grows with them.
  if (given.outboxBytes === undefined && Number.isFinite(o.maxLineBytes)) {
    o.outboxBytes = Math.max(o.outboxBytes, minOutboxBytes(o.maxLineBytes));
  }
  // A logger that throws must not take a connection (or the server) down.
  const log = o.log;
  o.log = (line) => {
    try {
      log(line);
    } catch {
      // Dropped, as in stderrLogger.
    }
  };
  check(
    Number.isInteger(o.port) && o.port >= 0 && o.port <= 65535,
    "port must be between 0 and 65535",
    o.port,
  );
  const positive: (keyof ResolvedServeOptions)[] = [
    "maxLineBytes",
    "outboxBytes",
    "writeTimeoutMs",
    "rateBurst",
    "aliasTimeoutMs",
    "maxClients",
    "maxPerAddress",
    "maxRooms",
  ];
  for (const name of positive) {
    const v = o[name] as number;
    check(Number.isFinite(v) && v > 0, `${name} must be a positive number`, v);
  }
  for (const name of ["rateLimit", "idleTimeoutMs", "shutdownGraceMs", "quietAbove"] as const) {
    check(Number.isFinite(o[name]) && o[name] >= 0, `${name} must be zero or more`, o[name]);
  }
  for (
    const name of ["writeTimeoutMs", "aliasTimeoutMs", "idleTimeoutMs", "shutdownGraceMs"] as const
  ) {
    check(o[name] <= MAX_TIMEOUT_MS, `${name} must be at most ${MAX_TIMEOUT_MS} (7 days)`, o[name]);
  }
  // Whole numbers, as the command line takes them and the limits notice
  // tells clients (which read only whole numbers).
  for (const name of ["rateLimit", "rateBurst"] as const) {
    check(Number.isInteger(o[name]), `${name} must be a whole number`, o[name]);
  }
  check(
    Number.isInteger(o.historySize) && o.historySize >= 0,
    "historySize must be a whole number",
    o.historySize,
  );
  const room = checkRoomName(o.defaultRoom);
  if (!room.ok || room.name !== o.defaultRoom) {
    const why = room.ok
      ? `give it as "${room.name}" (no '#', spaces, or decomposed letters)`
      : room.reason;
    throw new TypeError(`Cannot start server: defaultRoom: ${why}, received '${o.defaultRoom}'`);
  }
  const minOutbox = minOutboxBytes(o.maxLineBytes);
  check(
    o.outboxBytes >= minOutbox,
    `outboxBytes must hold at least two of the longest lines, 2 x (3 x maxLineBytes + 256) = ${minOutbox} bytes`,
    o.outboxBytes,
  );
  try {
    new AddressSet(o.exemptAddresses);
  } catch (error) {
    throw new TypeError(`Cannot start server: exemptAddresses: ${(error as Error).message}`);
  }
  if (o.webPort !== undefined) {
    check(
      Number.isInteger(o.webPort) && o.webPort >= 0 && o.webPort <= 65535,
      "webPort must be between 0 and 65535",
      o.webPort,
    );
    check(o.webPort === 0 || o.webPort !== o.port, "webPort must differ from port", o.webPort);
  }
  for (const origin of o.webOrigins) {
    try {
      parseOrigin(origin);
    } catch (error) {
      throw new TypeError(`Cannot start server: webOrigins: ${(error as Error).message}`);
    }
  }
  for (const host of o.webHosts) {
    try {
      parseHostName(host);
    } catch (error) {
      throw new TypeError(`Cannot start server: webHosts: ${(error as Error).message}`);
    }
  }
  try {
    new AddressSet(o.trustProxy);
  } catch (error) {
    throw new TypeError(`Cannot start server: trustProxy: ${(error as Error).message}`);
  }
  if ((o.cert === undefined) !== (o.key === undefined)) {
    throw new TypeError("Cannot start server: TLS needs both a certificate and a key");
  }
  if (o.password !== undefined && (o.password.trim() === "" || /[\r\n]/.test(o.password))) {
    throw new TypeError(
      "Cannot start server: the room password must be one line and not blank",
    );
  }
  return o;
}

/**
 * The smallest outbox that can hold two of the longest lines a client may
 * be sent: a line at the limit, grown by escaping, plus its prefix.
 */
export function minOutboxBytes(maxLineBytes: number): number {
  return 2 * (MAX_EXPANSION * maxLineBytes + 256);
}

/** `value` without the fields that are `undefined`, so defaults apply to them. */
export function definedOnly<T extends object>(
  value: { [K in keyof T]: T[K] | undefined },
): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
