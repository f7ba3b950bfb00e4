/**
 * The link to Redis: two connections (one for commands and scripts, one
 * subscribed to channels), connected once at start, then kept: TCP
 * keepalive, an application-level PING on each that forces a reconnect
 * when it goes unanswered, and reconnection with backoff. Whoever uses the
 * link hears when it goes down and when it is back (`onDown`, `onUp`); the
 * link neither queues commands while down nor retries them, so nothing is
 * sent twice or late, and it subscribes again only when told to.
 *
 * @module
 */

import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../options.ts";
import { type Script, SCRIPTS } from "./scripts.ts";

/** How often each connection is pinged, ms. */
const PING_EVERY_MS = 1000;
/** A connection whose ping has gone unanswered this long is dropped and made again, ms. */
const PING_DEADLINE_MS = 3000;
/** Longest wait between reconnection attempts, ms. */
const MAX_BACKOFF_MS = 2000;
/** How long the first connection may take, ms. */
const CONNECT_TIMEOUT_MS = 3000;

/** Options for {@linkcode RedisLink.connect}. */
export interface RedisLinkOptions {
  /** `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. */
  url: string;
  /** Where log lines go. */
  log: Logger;
}

/** `url` without its user and password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(the --redis URL)";
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What ioredis itself writes with `console.warn`: such lines start like these. */
const CLIENT_WARNING = /^(\[WARN\] |\[ERROR\] |\[ioredis\] |Skipping the ready check)/;

/** Where each link's client warnings go; the first link in a process puts `console.warn` in front. */
const warned = new Set<(line: string) => void>();
let consoleWarn: typeof console.warn | undefined;

/**
 * Sends ioredis's own warnings (a password Redis does not need, say) to
 * `to` as one line each, rather than to stderr as they are; returns how
 * to stop.
 */
function routeClientWarnings(to: (line: string) => void): () => void {
  if (consoleWarn === undefined) {
    // deno-lint-ignore no-console
    const original = consoleWarn = console.warn;
    // deno-lint-ignore no-console
    console.warn = (...args: unknown[]) => {
      const text = args.map((a) => typeof a === "string" ? a : String(a)).join(" ");
      if (warned.size === 0 || !CLIENT_WARNING.test(text)) return original(...args);
      for (const log of warned) log(text.replace(CLIENT_WARNING, "").split("\n")[0]!);
    };
  }
  warned.add(to);
  return () => {
    warned.delete(to);
    if (warned.size === 0 && consoleWarn !== undefined) {
      // deno-lint-ignore no-console
      console.warn = consoleWarn;
      consoleWarn = undefined;
    }
  };
}

/**
 * The two connections to Redis; see the module documentation.
 *
 * @example Usage
 * ```ts ignore
 * const link = await RedisLink.connect({ url: "redis://127.0.0.1:6379", log: console.error });
 * console.log(await link.run(EPOCH, ["confab:main:", "token"]));
 * await link.close();
 * ```
 */
export class RedisLink {
  /** For commands and scripts. */
  readonly cmd: Redis;
  /** Subscribed to channels. */
  readonly sub: Redis;
  /** The URL without credentials. */
  readonly where: string;
  /** Called once each time the link goes down. */
  onDown: () => void = () => {};
  /** Called once each time both connections are ready again. */
  onUp: () => void = () => {};
  readonly #log: Logger;
  readonly #shas = new Map<Script, string>();
  #started = false;
  #closing = false;
  #up = false;
  #lastError = "";
  #pinger: ReturnType<typeof setInterval> | undefined;
  #lastPing = performance.now();
  readonly #answered = new Map<Redis, number>();
  readonly #unroute: () => void;

  private constructor(url: string, log: Logger) {
    this.where = redactUrl(url);
    this.#log = log;
    this.#unroute = routeClientWarnings((line) => log(`redis ${this.where}: ${line}`));
    const options: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      connectTimeout: CONNECT_TIMEOUT_MS,
      keepAlive: 5000,
      retryStrategy: (times) =>
        this.#started && !this.#closing ? Math.min(100 * 2 ** times, MAX_BACKOFF_MS) : null,
    };
    this.cmd = new Redis(url, options);
    this.sub = new Redis(url, options);
    for (const client of [this.cmd, this.sub]) {
      client.on("error", (error: unknown) => {
        const message = describe(error);
        if (message !== this.#lastError && this.#started && !this.#closing) {
          log(`redis ${this.where}: ${message}`);
        }
        this.#lastError = message;
      });
      client.on("close", () => this.#down());
      client.on("ready", () => this.#ready());
    }
  }

  /**
   * Connects both connections, or throws an `Error` that says, in one line,
   * why Redis could not be reached.
   */
  static async connect(options: RedisLinkOptions): Promise<RedisLink> {
    const link = new RedisLink(options.url, options.log);
    try {
      await Promise.all([link.cmd.connect(), link.sub.connect()]);
      await link.cmd.ping();
      await link.#loadScripts();
    } catch (error) {
      link.cmd.disconnect();
      link.sub.disconnect();
      link.#unroute();
      const why = link.#lastError || describe(error);
      throw new Error(`cannot reach Redis at ${link.where}: ${why}`);
    }
    if (link.#lastError !== "") {
      link.cmd.disconnect();
      link.sub.disconnect();
      link.#unroute();
      throw new Error(`cannot use Redis at ${link.where}: ${link.#lastError}`);
    }
    link.#started = true;
    link.#up = true;
    const now = performance.now();
    link.#answered.set(link.cmd, now);
    link.#answered.set(link.sub, now);
    link.#lastPing = now;
    link.#pinger = setInterval(() => link.#ping(), PING_EVERY_MS);
    return link;
  }

  /** Whether both connections are ready. */
  get up(): boolean {
    return this.#up;
  }

  /** Runs a script (loaded on connecting; sent whole if Redis forgot it). */
  async run(script: Script, args: readonly (string | number)[]): Promise<unknown> {
    const sha = this.#shas.get(script);
    if (sha !== undefined) {
      try {
        return await this.cmd.evalsha(sha, 0, ...args);
      } catch (error) {
        if (!describe(error).startsWith("NOSCRIPT")) throw error;
      }
    }
    return await this.cmd.eval(script.lua, 0, ...args);
  }

  /** Loads every script, so that none is sent whole later (or out of order). */
  async #loadScripts(): Promise<void> {
    for (const script of SCRIPTS) {
      this.#shas.set(script, String(await this.cmd.script("LOAD", script.lua)));
    }
  }

  #down(): void {
    if (!this.#up || this.#closing) return;
    this.#up = false;
    this.#log(`redis ${this.where}: link down; reconnecting`);
    this.onDown();
  }

  #ready(): void {
    if (!this.#started || this.#up || this.#closing) return;
    if (this.cmd.status !== "ready" || this.sub.status !== "ready") return;
    this.#loadScripts().then(() => {
      if (this.#up || this.#closing) return;
      if (this.cmd.status !== "ready" || this.sub.status !== "ready") return;
      const now = performance.now();
      this.#answered.set(this.cmd, now);
      this.#answered.set(this.sub, now);
      this.#up = true;
      this.#lastError = "";
      this.#log(`redis ${this.where}: link back`);
      this.onUp();
    }, (error) => {
      this.#log(`redis ${this.where}: ${describe(error)}; reconnecting`);
      this.cmd.disconnect(true);
    });
  }

  /** Pings each ready connection; one silent past the deadline is made again. */
  #ping(): void {
    const now = performance.now();
    // A timer this late means this process was not running (stopped, or
    // starved): the silence was ours, not Redis's.
    const late = now - this.#lastPing > PING_DEADLINE_MS;
    this.#lastPing = now;
    for (const client of [this.cmd, this.sub]) {
      if (late) this.#answered.set(client, now);
      if (client.status !== "ready") {
        this.#answered.set(client, now);
        continue;
      }
      if (now - (this.#answered.get(client) ?? now) > PING_DEADLINE_MS) {
        this.#log(`redis ${this.where}: no answer to PING; reconnecting`);
        this.#answered.set(client, now);
        client.disconnect(true);
        continue;
      }
      client.ping().then(
        () => this.#answered.set(client, performance.now()),
        () => {},
      );
    }
  }

  /** Closes both connections after what was sent has been answered. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#pinger);
    const quit = async (client: Redis) => {
      if (client.status !== "ready") {
        client.disconnect();
        return;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        client.quit().catch(() => {}),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000))),
      ]);
      clearTimeout(timer);
      client.disconnect();
    };
    await Promise.all([quit(this.cmd), quit(this.sub)]);
    this.#unroute();
  }
}
