/**
 * Who may use the web page and its WebSocket: the `Host` a request names
 * (against DNS rebinding), the `Origin` of an upgrade (against other sites'
 * pages opening a socket with the visitor's network position), and the
 * client's address behind a trusted proxy.
 *
 * @module
 */

import { AddressSet, isIpAddress } from "../address.ts";

/** Options for {@linkcode WebGuard}. */
export interface WebGuardOptions {
  /** The address the page listens on (allowed as a `Host` name). */
  hostname: string;
  /** Whether the page is served over TLS (so its own origin is https). */
  tls: boolean;
  /**
   * Origins (`https://chat.example.com`) whose pages may open the
   * WebSocket. Empty: only the page's own origin, the one its `Host` names.
   *
   * @default {[]}
   */
  origins?: readonly string[];
  /**
   * Host names accepted in the `Host` header besides IP addresses,
   * `localhost`, the listening address and the hosts of `origins`.
   *
   * @default {[]}
   */
  hosts?: readonly string[];
  /**
   * Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed:
   * from them, the client is the header's last hop. From anyone else, and
   * when empty, the header is ignored.
   *
   * @default {[]}
   */
  trustProxy?: readonly string[];
}

/** A `Host` header's name, lower case, without its port (an IPv6 one keeps its brackets). */
export function hostName(host: string): string {
  const lower = host.trim().toLowerCase();
  if (lower.startsWith("[")) {
    const end = lower.indexOf("]");
    return end < 0 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(":");
  return colon < 0 ? lower : lower.slice(0, colon);
}

/**
 * Why `host` (a request's `Host` header) is malformed, or `undefined`:
 * missing or empty, or a port that is not a number.
 *
 * @example Usage
 * ```ts
 * import { malformedHost } from "./guard.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(malformedHost("127.0.0.1:8080"), undefined);
 * assert.equal(malformedHost("127.0.0.1:8080, 127.0.0.1:8080"), "malformed Host header");
 * ```
 */
export function malformedHost(host: string | null): string | undefined {
  if (host === null || host.trim() === "") return "no Host header";
  const lower = host.trim().toLowerCase();
  const port = lower.slice(hostName(lower).length);
  return /^(:\d{1,5})?$/.test(port) ? undefined : "malformed Host header";
}

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const HOST_NAME_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*\\.?$`, "i");

/**
 * Checks a host name given to `--web-host` (`chat.example.com`, with or
 * without `:PORT`): returns it lower case without the port; throws a
 * `TypeError` saying what is wrong.
 *
 * @example Usage
 * ```ts
 * import { parseHostName } from "./guard.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseHostName("Chat.Example.com:8080"), "chat.example.com");
 * assert.throws(() => parseHostName("bad host!"), TypeError);
 * ```
 */
export function parseHostName(text: string): string {
  const name = hostName(text);
  const port = text.trim().slice(text.trim().toLowerCase().indexOf(name) + name.length);
  if (
    (isIpAddress(name.replace(/^\[|\]$/g, "")) || HOST_NAME_RE.test(name)) &&
    /^(:\d{1,5})?$/.test(port)
  ) {
    return name;
  }
  throw new TypeError(`"${text}" is not a host name like chat.example.com`);
}

/**
 * Checks an origin given to `--web-origin`: `scheme://host[:port]`, http or
 * https, nothing after. Returns it normalised (lower case, no trailing
 * slash); throws a `TypeError` saying what is wrong.
 */
export function parseOrigin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`"${text}" is not an origin like https://chat.example.com`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`"${text}" is not an http or https origin`);
  }
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "") {
    throw new TypeError(
      `"${text}" has more than an origin; give it as https://HOST or https://HOST:PORT`,
    );
  }
  return url.origin;
}

/**
 * The checks, built once from the options.
 *
 * @example Usage
 * ```ts
 * import { WebGuard } from "./guard.ts";
 * import assert from "node:assert/strict";
 *
 * const guard = new WebGuard({ hostname: "0.0.0.0", tls: false });
 * assert.equal(guard.checkHost("localhost:8080"), undefined);
 * assert.match(guard.checkHost("evil.example:8080")!, /not allowed/);
 * assert.equal(guard.checkOrigin("http://localhost:8080", "localhost:8080"), undefined);
 * assert.match(guard.checkOrigin("http://evil.example", "localhost:8080")!, /not allowed/);
 * ```
 */
export class WebGuard {
  readonly #hosts: Set<string>;
  readonly #origins: Set<string>;
  readonly #tls: boolean;
  readonly #proxies: AddressSet;

  /** Parses the options; throws a `TypeError` naming a bad origin or range. */
  constructor(options: WebGuardOptions) {
    this.#tls = options.tls;
    this.#origins = new Set((options.origins ?? []).map(parseOrigin));
    this.#hosts = new Set(["localhost"]);
    if (!isIpAddress(options.hostname)) this.#hosts.add(hostName(options.hostname));
    for (const origin of this.#origins) this.#hosts.add(hostName(new URL(origin).host));
    for (const host of options.hosts ?? []) this.#hosts.add(parseHostName(host));
    this.#proxies = new AddressSet(options.trustProxy ?? []);
  }

  /**
   * Why a request naming `host` is refused, or `undefined` if it is not.
   * IP addresses are always accepted (no DNS answer can make one point
   * elsewhere); names only if they were given.
   */
  checkHost(host: string | null): string | undefined {
    if (host === null || host.trim() === "") return "no Host header";
    const name = hostName(host);
    if (name !== "" && (isIpAddress(name) || this.#hosts.has(name))) return undefined;
    return `Host '${printable(host)}' is not allowed (see --web-host)`;
  }

  /**
   * Why a WebSocket upgrade from `origin` is refused, or `undefined`. With
   * no origins configured, only the page's own origin, the one the `Host`
   * names, is accepted. A request without an `Origin` does not come from a
   * browser's page (every browser sends one on a WebSocket upgrade) and is
   * let through, as a TCP client would be.
   */
  checkOrigin(origin: string | null, host: string | null): string | undefined {
    if (origin === null) return undefined;
    const given = origin.trim().toLowerCase();
    const allowed = this.#origins.size > 0
      ? this.#origins.has(given)
      : host !== null && given === `${this.#tls ? "https" : "http"}://${host.trim().toLowerCase()}`;
    return allowed ? undefined : `Origin '${printable(origin)}' is not allowed (see --web-origin)`;
  }

  /**
   * The client's address: `peer` itself, or, when `peer` is a trusted
   * proxy, the last hop of its `X-Forwarded-For` (if that is an address).
   */
  clientAddress(peer: string, forwardedFor: string | null): { address: string; via?: string } {
    if (forwardedFor === null || !this.#proxies.has(peer)) return { address: peer };
    const last = forwardedFor.split(",").pop()!.trim().replace(/^\[|\]$/g, "");
    return isIpAddress(last) ? { address: last, via: peer } : { address: peer };
  }
}

/** A header value for the log: visible ASCII only, at most 100 characters. */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean;
}
