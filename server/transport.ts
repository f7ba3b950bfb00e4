/**
 * What a {@linkcode Session} needs from a connection: read bytes, write
 * bytes, close. A `Deno.Conn` (TCP or TLS) is one as it is; a browser's
 * WebSocket is wrapped by `WebSocketTransport` (server/web/ws_transport.ts),
 * so the handshake, commands, limits and rooms are one code path for every
 * kind of member.
 *
 * @module
 */

import type { ByteSink } from "./outbox.ts";

/**
 * A connection as a session uses it, shaped like `Deno.Conn` so that one
 * is a transport without a wrapper.
 *
 * @example Usage
 * ```ts ignore
 * const transport: Transport = await listener.accept(); // a Deno.Conn
 * ```
 */
export interface Transport extends ByteSink {
  /**
   * Reads into `p`, resolving to how many bytes were read, or `null` at the
   * end of input. Rejects with `Deno.errors.BadResource` (or `Interrupted`)
   * once the transport was closed.
   */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Writes some prefix of `p` (at least one byte), resolving to how many
   * bytes were written once the peer has taken them or they are buffered
   * within a small bound; a peer that stops reading keeps it pending.
   */
  write(p: Uint8Array): Promise<number>;
  /** Closes the connection; throws `Deno.errors.BadResource` if it was already closed. */
  close(): void;
}
