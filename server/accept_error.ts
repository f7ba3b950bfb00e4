/**
 * What to do when `accept()` fails: take the next connection at once, or
 * wait a moment first.
 *
 * Some failures concern only the connection being taken: it was reset or
 * aborted while it waited in the queue, or (on Linux, which passes pending
 * network errors on from the new socket) its network or host went away.
 * Each such failure uses up that one connection, so retrying at once cannot
 * spin without new connections to fail, and it must never slow accepting
 * down. Everything else (out of file descriptors or memory, or an error
 * nobody foresaw) may fail again at once, forever: that is retried after a
 * pause, so it cannot become a busy loop.
 *
 * @module
 */

/** Pause before accepting again after a failure that is not one connection's. */
export const ACCEPT_BACKOFF_MS = 100;

/**
 * OS error numbers that concern one connection, on Linux, macOS and
 * Windows. The same number may mean different things on two systems; every
 * meaning it has here is one connection's.
 */
const CONNECTION_ERRNOS = new Set([
  // EPERM (Linux, macOS): a firewall rule refused this connection.
  1,
  // Linux: ECONNABORTED, EPROTO, ECONNRESET, ETIMEDOUT, and what accept(2)
  // says to retry like EAGAIN: ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET,
  // EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH.
  103,
  71,
  104,
  110,
  100,
  92,
  112,
  64,
  113,
  95,
  101,
  // macOS: ECONNABORTED, EPROTO (100, above), ECONNRESET, ETIMEDOUT,
  // ENETDOWN, ENETUNREACH, EHOSTUNREACH, ENOPROTOOPT, EOPNOTSUPP (102);
  // EHOSTDOWN is 64, above.
  53,
  54,
  60,
  50,
  51,
  65,
  42,
  102,
  // Windows: WSAECONNABORTED, WSAECONNRESET, WSAETIMEDOUT, WSAENETDOWN,
  // WSAENETUNREACH, WSAEHOSTUNREACH.
  10053,
  10054,
  10060,
  10050,
  10051,
  10065,
]);

/**
 * Whether a failed accept concerns only the connection that was being taken
 * (so the next one may be accepted at once) rather than the listener or the
 * process (so accepting again should wait {@linkcode ACCEPT_BACKOFF_MS}).
 * An error it does not recognise is not one connection's.
 *
 * @example Usage
 * ```ts
 * import { isConnectionError } from "./accept_error.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isConnectionError(new Deno.errors.ConnectionReset("reset")), true);
 * assert.equal(isConnectionError(new Error("Too many open files (os error 24)")), false);
 * ```
 */
export function isConnectionError(error: unknown): boolean {
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected
  ) return true;
  if (!(error instanceof Error)) return false;
  const errno = /\(os error (\d+)\)/.exec(error.message)?.[1];
  return errno !== undefined && CONNECTION_ERRNOS.has(Number(errno));
}
