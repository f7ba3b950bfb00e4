/**
 * `confab`: a terminal chat room. This entrypoint only parses the command line
 * and dispatches to `serve` (server/) or `join` (client/); it is the one place
 * that exits the process.
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import { type ChatServer, serve, SERVE_DEFAULTS, type ServeOptions } from "./server/mod.ts";
import { EXIT, type JoinOptions, runJoin } from "./client/mod.ts";
import { checkAlias } from "./protocol/alias.ts";
import { checkRoomName } from "./protocol/room_name.ts";
import { formatAddress, writeAllSync } from "./protocol/io_util.ts";
import { definedOnly, type Logger, MAX_TIMEOUT_MS } from "./server/options.ts";
import { AddressSet, LOOPBACK_RANGES } from "./server/address.ts";
import { DEFAULT_HOST, DEFAULT_PORT, plural } from "./protocol/wire.ts";
import {
  describeOpenError,
  formatLogLine,
  LOG_FORMATS,
  LogFile,
  type LogFormat,
} from "./server/log_file.ts";
import { MOTD_MAX_BYTES, MOTD_MAX_LINES, motdLines } from "./server/motd.ts";

/** The version, from deno.json: the one place it is written. */
export const VERSION: string = denoJson.version;

/** A mistake on the command line: reported with a usage hint, exit 2. */
export class UsageError extends Error {
  /** Makes a usage error for `command` (the subcommand, or "" for none). */
  constructor(message: string, readonly command = "") {
    super(message);
    this.name = "UsageError";
  }
}

const D = SERVE_DEFAULTS;
const seconds = (ms: number) => `${ms / 1000}`;

const MAIN_HELP = `confab ${VERSION}: a chat room in your terminal

Usage:
  confab serve [options]   run a chat room (default ${DEFAULT_HOST}:${DEFAULT_PORT})
  confab join [options]    join a chat room
  confab --help | --version

Run 'confab serve --help' or 'confab join --help' for their options.
`;

const SERVE_HELP = `Usage: confab serve [options]

Runs a chat room. Anyone who can reach the port can join, with 'confab join',
nc or telnet. Ctrl-C (or SIGTERM) tells everyone and stops it. With --log or
--motd, SIGHUP reopens the log and re-reads the message of the day.

Options:
  --host HOST            address to listen on (default ${D.hostname})
  --port PORT            port to listen on, 0 for any free one (default ${D.port})
  --tls-cert FILE        PEM certificate chain: speak TLS (needs --tls-key)
  --tls-key FILE         PEM private key for --tls-cert
  --password-file FILE   ask for the password in FILE before the alias
                         (or set CONFAB_PASSWORD)
  --history N            messages replayed to newcomers, 0 for none (default ${D.historySize})
  --max-line-bytes N     longest line accepted from a client (default ${D.maxLineBytes})
  --outbox-bytes N       bytes queued for one client before it is dropped as
                         too slow (default ${D.outboxBytes})
  --write-timeout SECS   drop a client whose socket takes no data for this long
                         (default ${seconds(D.writeTimeoutMs)})
  --rate N               lines per second per client, 0 for no limit (default ${D.rateLimit})
  --burst N              lines a client may send at once (default ${D.rateBurst})
  --alias-timeout SECS   time a newcomer has to choose an alias (default ${
  seconds(D.aliasTimeoutMs)
})
  --idle-timeout SECS    drop clients silent for this long, 0 for never (default ${
  seconds(D.idleTimeoutMs)
})
  --max-clients N        most connections at once (default ${D.maxClients})
  --max-per-address N    most connections from one address (default ${D.maxPerAddress});
                         loopback (127.0.0.0/8, ::1) is exempt
  --exempt ADDR[/BITS]   also exempt these addresses or CIDR ranges from
                         --max-per-address (repeat it, or separate with commas)
  --shutdown-grace SECS  on shutdown, time to deliver what is queued (default ${
  seconds(D.shutdownGraceMs)
})
  --room NAME            the room everyone starts in (default ${D.defaultRoom})
  --max-rooms N          most rooms at once, the first one included (default ${D.maxRooms})
  --quiet-above N        from N members on, joins and leaves are summed up every
                         5 s instead of announced one by one; 0 = always one by
                         one (default ${D.quietAbove})
  --log FILE             append the log to FILE instead of stderr (needs
                         --allow-write under deno run)
  --log-format FORMAT    text or json, one object per line (default text)
  --motd FILE            message of the day shown to newcomers (at most
                         ${MOTD_MAX_LINES} lines, ${MOTD_MAX_BYTES} bytes)
  --web PORT             also serve the web page and its WebSocket on PORT
                         (same address; https/wss with --tls-cert)
  --web-origin ORIGIN    origins whose pages may connect, like
                         https://chat.example.com (repeatable; default: the
                         page's own); their host names are accepted too
  --web-host NAME        host names the page answers to besides IP addresses,
                         localhost and --host (repeatable; against DNS rebinding)
  --trust-proxy ADDR[/BITS]  believe X-Forwarded-For from these proxies: the
                         client is its last hop (repeatable)
  --redis URL            share rooms, aliases and history with every confab
                         serve on the same Redis (redis://[:PASSWORD@]HOST[:PORT][/DB],
                         rediss:// for TLS); see README "Scaling out"
  --cluster NAME         keep apart from other confab servers on that Redis
                         (default main)
  -h, --help             show this help
`;

const JOIN_HELP = `Usage: confab join [options]

Joins a chat room. On a terminal, type lines to talk, /help for commands,
Ctrl-D or /quit to leave. With stdin or stdout a pipe or file, every input
line is sent, room lines are printed plain, and it leaves at the end of the
input. A server that is not confab (one that asks 'alias?', or says nothing
first) is talked to line by line: its lines shown, its name prompt answered
with --alias, yours sent as typed.

Options:
  --host HOST            server address (default ${DEFAULT_HOST})
  --port PORT            server port (default ${DEFAULT_PORT})
  --alias NAME           your alias (asked for on a terminal if not given)
  --room NAME            start in room NAME (#NAME works too) instead of the
                         server's default room
  --tls                  connect with TLS
  --ca FILE              also trust this PEM certificate for --tls (added to
                         Deno's roots: its bundled Mozilla set, or the
                         system's with DENO_TLS_CA_STORE=system)
  --password-file FILE   room password (or set CONFAB_PASSWORD; asked for on a
                         terminal if the room needs one)
  --no-history           do not replay the room's recent messages on joining
  --json                 print one JSON object per event instead of text
  --no-color             no colours (also off with NO_COLOR or when piped)
  --no-time              do not show timestamps
  --bell                 ring the terminal bell when your alias is mentioned
  -h, --help             show this help

Exit status: 0 left, 1 internal error, 2 bad usage, 3 cannot connect,
4 connection lost (or closed by a server that is not confab), 5 server shut
down, 6 disconnected by the server, 7 refused at the door (server full,
alias, password, or the --room refused when piped), 130 a second Ctrl-C.
`;

type Flags = Record<string, string | boolean | string[] | undefined>;

/**
 * `--flag -1` as `--flag=-1` for flags that take a value: a negative number
 * is a value to complain about, not an unknown option.
 */
function joinNegativeValues(args: string[], options: Record<string, { type: string }>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith("--") ? arg.slice(2) : "";
    if (options[name]?.type === "string" && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function parse(
  command: string,
  args: string[],
  options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>,
): Flags {
  try {
    return parseArgs({
      args: joinNegativeValues(args, options),
      options,
      strict: true,
      allowPositionals: false,
    }).values as Flags;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: string }).code;
    const name = /'(-{1,2}[^']*)'/.exec(message)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw new UsageError(`unknown option ${name}`, command);
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const option = /--([\w-]+)/.exec(message)?.[1];
      throw new UsageError(
        option && options[option]?.type === "boolean"
          ? `--${option} takes no value`
          : `--${option ?? name} needs a value`,
        command,
      );
    }
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      const word = /'([^']*)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`unexpected argument '${word}': ${command} takes only options`, command);
    }
    throw new UsageError(message, command);
  }
}

function integer(command: string, flag: string, value: unknown, min: number, max: number) {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) && !/^-?\d+$/.test(text)) {
    throw new UsageError(`--${flag} must be a whole number, received '${text}'`, command);
  }
  if (!(n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `between ${min} and ${max}`;
    throw new UsageError(`--${flag} must be ${range}, received ${text}`, command);
  }
  return n;
}

/** Longest time a seconds flag takes, in seconds (the server's limit is in ms). */
const MAX_SECONDS = MAX_TIMEOUT_MS / 1000;

function secondsFlag(command: string, flag: string, value: unknown, allowZero: boolean) {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  const least = allowZero ? "0 or more" : "above 0";
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new UsageError(
      `--${flag} must be a number of seconds ${least}, received '${text}'`,
      command,
    );
  }
  if (n > MAX_SECONDS) {
    throw new UsageError(
      `--${flag} must be at most ${MAX_SECONDS} seconds (7 days), received ${text}`,
      command,
    );
  }
  return Math.round(n * 1000);
}

/** `--room NAME`, with or without its `#`, as the server names rooms. */
function roomFlag(command: string, value: string): string {
  const check = checkRoomName(value);
  if (!check.ok) throw new UsageError(`--room: ${check.reason}, received '${value}'`, command);
  return check.name;
}

/** `--exempt` values (each may list several, comma-separated) added to loopback. */
function exemptFlag(command: string, values: unknown): string[] | undefined {
  if (!Array.isArray(values)) return undefined;
  const entries = values.flatMap((v) => String(v).split(",")).map((v) => v.trim())
    .filter((v) => v !== "");
  try {
    new AddressSet(entries);
  } catch (error) {
    throw new UsageError(`--exempt: ${(error as Error).message}`, command);
  }
  return [...LOOPBACK_RANGES, ...entries];
}

/** Reads a file named on the command line; a file that can't be read is a usage error. */
function readTextFile(command: string, flag: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new UsageError(`cannot read ${flag} ${path}: ${why}`, command);
  }
}

/** The password from a file (its last line ending dropped) or the environment. */
function readPassword(command: string, file: unknown): string | undefined {
  if (typeof file === "string") {
    return readTextFile(command, "--password-file", file).replace(/\r?\n$/, "");
  }
  return Deno.env.get("CONFAB_PASSWORD") || undefined;
}

/** The flag for each option `serve()` may complain about. */
const SERVE_FLAGS: Record<string, string> = {
  port: "--port",
  maxLineBytes: "--max-line-bytes",
  outboxBytes: "--outbox-bytes",
  writeTimeoutMs: "--write-timeout",
  rateLimit: "--rate",
  rateBurst: "--burst",
  aliasTimeoutMs: "--alias-timeout",
  idleTimeoutMs: "--idle-timeout",
  maxClients: "--max-clients",
  maxPerAddress: "--max-per-address",
  historySize: "--history",
  defaultRoom: "--room",
  maxRooms: "--max-rooms",
  quietAbove: "--quiet-above",
  shutdownGraceMs: "--shutdown-grace",
  webPort: "--web",
  webOrigins: "--web-origin",
  webHosts: "--web-host",
  trustProxy: "--trust-proxy",
};

/** A repeatable flag's values, each of which may list several, comma-separated. */
function listFlag(values: unknown): string[] | undefined {
  if (!Array.isArray(values)) return undefined;
  return values.flatMap((v) => String(v).split(",")).map((v) => v.trim()).filter((v) => v !== "");
}

const SIGNALS: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];

/**
 * How close together two interrupts must come to count as one. `deno task`
 * passes the terminal's Ctrl-C on to confab, which also gets it from the
 * terminal itself: one key press arrives twice, a few milliseconds apart.
 */
export const SAME_PRESS_MS = 500;

/**
 * Tells a first interrupt (stop cleanly) from a second one (stop now),
 * counting signals that come within {@linkcode SAME_PRESS_MS} of the first
 * as the same press.
 *
 * @example Usage
 * ```ts
 * import { Interrupts } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * const interrupts = new Interrupts();
 * assert.equal(interrupts.receive(1000), "first");
 * assert.equal(interrupts.receive(1003), "same"); // the same press, passed on
 * assert.equal(interrupts.receive(2500), "again");
 * ```
 */
export class Interrupts {
  #first: number | undefined;

  /** Classifies a signal received at `now` (ms). */
  receive(now: number): "first" | "same" | "again" {
    if (this.#first === undefined) {
      this.#first = now;
      return "first";
    }
    return now - this.#first < SAME_PRESS_MS ? "same" : "again";
  }
}

/**
 * Aborts `controller` on the first SIGINT/SIGTERM, so the command can end
 * cleanly, and exits at once on a second, separate one. Returns a function
 * that stops listening.
 */
function abortOnSignals(controller: AbortController): () => void {
  const interrupts = new Interrupts();
  const handlers = SIGNALS.map((signal) => {
    const handler = () => {
      const seen = interrupts.receive(performance.now());
      if (seen === "again") {
        printError(`confab: second ${signal}; exiting now`);
        Deno.exit(130);
      }
      if (seen === "first") controller.abort();
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  return () => handlers.forEach(([s, h]) => Deno.removeSignalListener(s, h));
}

/** A `--redis` value as it may be shown: its scheme and host at most, never a password. */
function redisShown(value: string): string {
  const parts = /^([a-z][a-z0-9+.-]*:)(\/\/)?(?:[^@/?#]*@)?([^/?#@]*)/i.exec(value);
  if (parts === null) return "(not a URL)";
  return `${parts[1]}${parts[2] ?? ""}${parts[3]}`;
}

/** `--redis URL`, checked for its scheme (the client reads the rest). */
function redisFlag(command: string, value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(
      `--redis must be a URL like redis://127.0.0.1:6379, received '${redisShown(value)}'`,
      command,
    );
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new UsageError(
      `--redis must start with redis:// or rediss://, received '${url.protocol}//'`,
      command,
    );
  }
  return value;
}

/** `--cluster NAME`: letters, digits, '.', '_' and '-'; only with --redis. */
function clusterFlag(command: string, value: unknown, shared: boolean): string {
  if (value === undefined) return "main";
  if (!shared) throw new UsageError("--cluster needs --redis", command);
  const name = String(value);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw new UsageError(
      `--cluster must be 1 to 64 letters, digits, '.', '_' or '-', received '${name}'`,
      command,
    );
  }
  return name;
}

/** `--log-format`'s value, checked. */
function logFormatFlag(command: string, value: unknown): LogFormat {
  if (value === undefined) return "text";
  const format = LOG_FORMATS.find((f) => f === value);
  if (format === undefined) {
    throw new UsageError(`--log-format must be text or json, received '${value}'`, command);
  }
  return format;
}

/** Opens `--log FILE`; a log that cannot be opened stops the start (exit 1). */
function openLog(path: string): LogFile {
  try {
    return LogFile.open(path);
  } catch (error) {
    throw new Error(`cannot open --log ${path}: ${describeOpenError(error)}`);
  }
}

/** The server's log: to `file` or stderr, as `format`; a failed write is dropped. */
function makeLogger(file: LogFile | undefined, format: LogFormat): Logger {
  return (line) => {
    const text = formatLogLine(line, format);
    if (file !== undefined) return file.write(text);
    try {
      writeAllSync(Deno.stderr, text);
    } catch {
      // Nowhere left to report it.
    }
  };
}

/**
 * Calls `reload` on every SIGHUP (what logrotate sends); returns a function
 * that stops listening. Windows has no SIGHUP, so nothing is registered there.
 */
function reloadOnHangup(reload: () => void): () => void {
  if (Deno.build.os === "windows") return () => {};
  Deno.addSignalListener("SIGHUP", reload);
  return () => Deno.removeSignalListener("SIGHUP", reload);
}

/** Reopens the log by its path; if that fails, says why and keeps the old file. */
function reopenLog(file: LogFile, log: Logger): void {
  try {
    file.reopen();
    log("log reopened");
  } catch (error) {
    const why = describeOpenError(error);
    log(`cannot reopen --log ${file.path}: ${why}; still writing to the old file`);
  }
}

/** Reads the message of the day again; one that cannot be read leaves the old one. */
function reloadMotd(server: ChatServer, read: () => string[], log: Logger): void {
  let lines: string[];
  try {
    lines = read();
  } catch (error) {
    log(`motd not reloaded: ${(error as Error).message}; keeping the old one`);
    return;
  }
  log(`motd reloaded (${plural(server.setMotd(lines), "line")})`);
}

async function runServe(args: string[]): Promise<number> {
  const flags = parse("serve", args, {
    help: { type: "boolean", short: "h" },
    host: { type: "string" },
    port: { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "password-file": { type: "string" },
    history: { type: "string" },
    "max-line-bytes": { type: "string" },
    "outbox-bytes": { type: "string" },
    "write-timeout": { type: "string" },
    rate: { type: "string" },
    burst: { type: "string" },
    "alias-timeout": { type: "string" },
    "idle-timeout": { type: "string" },
    "max-clients": { type: "string" },
    "max-per-address": { type: "string" },
    exempt: { type: "string", multiple: true },
    "shutdown-grace": { type: "string" },
    room: { type: "string" },
    "max-rooms": { type: "string" },
    "quiet-above": { type: "string" },
    log: { type: "string" },
    "log-format": { type: "string" },
    motd: { type: "string" },
    web: { type: "string" },
    "web-origin": { type: "string", multiple: true },
    "web-host": { type: "string", multiple: true },
    "trust-proxy": { type: "string", multiple: true },
    redis: { type: "string" },
    cluster: { type: "string" },
  });
  if (flags.help) {
    print(SERVE_HELP);
    return 0;
  }
  const big = Number.MAX_SAFE_INTEGER;
  const cmd = "serve";
  if ((flags["tls-cert"] === undefined) !== (flags["tls-key"] === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together", cmd);
  }
  const controller = new AbortController();
  const logFormat = logFormatFlag(cmd, flags["log-format"]);
  const motdPath = typeof flags.motd === "string" ? flags.motd : undefined;
  const readMotd = (path: string) => motdLines(readTextFile(cmd, "--motd", path));
  const options: ServeOptions = definedOnly({
    hostname: typeof flags.host === "string" ? flags.host : undefined,
    port: integer(cmd, "port", flags.port, 0, 65535),
    cert: typeof flags["tls-cert"] === "string"
      ? readTextFile(cmd, "--tls-cert", flags["tls-cert"])
      : undefined,
    key: typeof flags["tls-key"] === "string"
      ? readTextFile(cmd, "--tls-key", flags["tls-key"])
      : undefined,
    password: readPassword(cmd, flags["password-file"]),
    historySize: integer(cmd, "history", flags.history, 0, 100_000),
    maxLineBytes: integer(cmd, "max-line-bytes", flags["max-line-bytes"], 16, 1 << 20),
    outboxBytes: integer(cmd, "outbox-bytes", flags["outbox-bytes"], 1024, 1 << 30),
    writeTimeoutMs: secondsFlag(cmd, "write-timeout", flags["write-timeout"], false),
    rateLimit: integer(cmd, "rate", flags.rate, 0, big),
    rateBurst: integer(cmd, "burst", flags.burst, 1, big),
    aliasTimeoutMs: secondsFlag(cmd, "alias-timeout", flags["alias-timeout"], false),
    idleTimeoutMs: secondsFlag(cmd, "idle-timeout", flags["idle-timeout"], true),
    maxClients: integer(cmd, "max-clients", flags["max-clients"], 1, big),
    maxPerAddress: integer(cmd, "max-per-address", flags["max-per-address"], 1, big),
    exemptAddresses: exemptFlag(cmd, flags.exempt),
    shutdownGraceMs: secondsFlag(cmd, "shutdown-grace", flags["shutdown-grace"], true),
    defaultRoom: typeof flags.room === "string" ? roomFlag(cmd, flags.room) : undefined,
    maxRooms: integer(cmd, "max-rooms", flags["max-rooms"], 1, big),
    quietAbove: integer(cmd, "quiet-above", flags["quiet-above"], 0, big),
    motd: motdPath === undefined ? undefined : readMotd(motdPath),
    webPort: integer(cmd, "web", flags.web, 0, 65535),
    webOrigins: listFlag(flags["web-origin"]),
    webHosts: listFlag(flags["web-host"]),
    trustProxy: listFlag(flags["trust-proxy"]),
    signal: controller.signal,
  });
  if (options.webPort === undefined) {
    for (const flag of ["web-origin", "web-host", "trust-proxy"]) {
      if (flags[flag] !== undefined) throw new UsageError(`--${flag} needs --web`, cmd);
    }
  }
  const redisUrl = redisFlag(cmd, flags.redis);
  const cluster = clusterFlag(cmd, flags.cluster, redisUrl !== undefined);
  const logFile = typeof flags.log === "string" ? openLog(flags.log) : undefined;
  const log = makeLogger(logFile, logFormat);
  options.log = log;
  let shared: { start(): Promise<void>; stop(): Promise<void> } | undefined;
  let link: { close(): Promise<void> } | undefined;
  if (redisUrl !== undefined) {
    // Loaded only for --redis, so that nothing else pays for the client.
    const { RedisLink, RedisRegistry } = await import("./server/redis/mod.ts");
    const connected = await RedisLink.connect({ url: redisUrl, log });
    link = connected;
    options.registry = (settings) => {
      const registry = new RedisRegistry(connected, cluster, settings, {
        maxLineBytes: options.maxLineBytes,
      });
      shared = registry;
      return registry;
    };
  }
  let server;
  try {
    server = serve(options);
  } catch (error) {
    await link?.close();
    if (error instanceof RangeError || error instanceof TypeError) {
      const message = error.message.replace(/^Cannot start server: /, "")
        .replace(/\b\w+\b/g, (name) => SERVE_FLAGS[name] ?? name);
      throw new UsageError(message, cmd);
    }
    throw error;
  }
  if (shared !== undefined) {
    try {
      await shared.start();
    } catch (error) {
      await server.shutdown();
      await link?.close();
      throw new Error(`cannot join the servers on Redis: ${(error as Error)?.message ?? error}`);
    }
  }
  // Handle signals before saying where it listens: whoever reads that line
  // may stop the server right away, and must get a clean shutdown.
  const stopSignals = abortOnSignals(controller);
  const stopReloading = logFile === undefined && motdPath === undefined
    ? () => {}
    : reloadOnHangup(() => {
      if (logFile !== undefined) reopenLog(logFile, log);
      if (motdPath !== undefined) reloadMotd(server, () => readMotd(motdPath), log);
    });
  const proto = server.tls ? " (TLS)" : "";
  print(
    `confab ${VERSION} listening on ${
      formatAddress(server.addr.hostname, server.addr.port)
    }${proto}\n`,
  );
  if (server.webAddr !== undefined) {
    const scheme = server.tls ? "https" : "http";
    print(
      `web page at ${scheme}://${formatAddress(server.webAddr.hostname, server.webAddr.port)}/\n`,
    );
  }
  await server.finished;
  await shared?.stop();
  stopSignals();
  stopReloading();
  logFile?.close();
  return 0;
}

async function runJoinCommand(args: string[]): Promise<number> {
  const flags = parse("join", args, {
    help: { type: "boolean", short: "h" },
    host: { type: "string" },
    port: { type: "string" },
    alias: { type: "string" },
    room: { type: "string" },
    tls: { type: "boolean" },
    ca: { type: "string" },
    "password-file": { type: "string" },
    "no-history": { type: "boolean" },
    json: { type: "boolean" },
    "no-color": { type: "boolean" },
    "no-time": { type: "boolean" },
    bell: { type: "boolean" },
  });
  if (flags.help) {
    print(JOIN_HELP);
    return 0;
  }
  const cmd = "join";
  if (flags.ca !== undefined && !flags.tls) throw new UsageError("--ca needs --tls", cmd);
  // Line editing needs the terminal on both sides; otherwise plain lines.
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  if (flags.alias === undefined && !interactive) {
    throw new UsageError("--alias is needed when stdin or stdout is not a terminal", cmd);
  }
  if (typeof flags.alias === "string") {
    const check = checkAlias(flags.alias);
    if (!check.ok) throw new UsageError(`--alias: ${check.reason}`, cmd);
  }
  const room = typeof flags.room === "string" ? roomFlag(cmd, flags.room) : undefined;
  const password = readPassword(cmd, flags["password-file"]);
  if (password !== undefined && password.trim() === "") {
    throw new UsageError(
      typeof flags["password-file"] === "string"
        ? `--password-file ${flags["password-file"]} holds no password`
        : "CONFAB_PASSWORD is blank",
      cmd,
    );
  }
  // Colour only for the interactive terminal client; a filter prints plain text.
  const color = !flags["no-color"] && !flags.json && interactive && !Deno.env.get("NO_COLOR");
  const controller = new AbortController();
  const options: JoinOptions = {
    hostname: typeof flags.host === "string" ? flags.host : DEFAULT_HOST,
    port: integer(cmd, "port", flags.port, 1, 65535) ?? DEFAULT_PORT,
    alias: typeof flags.alias === "string" ? flags.alias : undefined,
    room,
    tls: flags.tls === true,
    caCerts: typeof flags.ca === "string" ? [readTextFile(cmd, "--ca", flags.ca)] : undefined,
    password,
    history: !flags["no-history"],
    json: flags.json === true,
    color,
    timestamps: !flags["no-time"],
    bell: flags.bell === true,
    interactive,
    signal: controller.signal,
  };
  const stopSignals = abortOnSignals(controller);
  try {
    return await runJoin(options);
  } finally {
    stopSignals();
  }
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  serve: runServe,
  join: runJoinCommand,
};

function print(text: string): void {
  writeAllSync(Deno.stdout, text);
}

function printError(text: string): void {
  writeAllSync(Deno.stderr, text + "\n");
}

/** Runs the command line `args` and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === "--version" || command === "-V") {
      print(`confab ${VERSION}\n`);
      return 0;
    }
    if (command === "--help" || command === "-h" || command === "help") {
      print(MAIN_HELP);
      return 0;
    }
    if (command === undefined) throw new UsageError("no command given");
    const run = COMMANDS[command];
    if (run === undefined) throw new UsageError(`unknown command '${command}'`);
    return await run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      const help = error.command ? `confab ${error.command} --help` : "confab --help";
      printError(`confab: ${error.message}\nTry '${help}' for more information.`);
      return EXIT.usage;
    }
    // ListenError and the like: one line, exit 1.
    printError(`confab: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
