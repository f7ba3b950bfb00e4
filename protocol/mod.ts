/**
 * The wire format and the rules both ends of a confab connection share: the
 * server formats with it and the `join` client (and any other client) parses
 * with it, so no second copy of the format exists to drift. Nothing here
 * holds state between calls.
 *
 * - {@link ./wire.ts}: constants, every server line's formatter and the
 *   parser that reads them back, the limits and welcome notices
 * - {@link ./line_reader.ts}: splitting bytes into capped UTF-8 lines
 * - {@link ./sanitize.ts}: making untrusted text safe for a terminal
 * - {@link ./alias.ts}: what an alias may be
 * - {@link ./commands.ts}: the `/` command vocabulary
 * - {@link ./room_name.ts}: what a room may be called
 * - {@link ./io_util.ts}: small helpers for sockets and files
 *
 * @module
 */

export * from "./wire.ts";
export * from "./line_reader.ts";
export * from "./sanitize.ts";
export * from "./alias.ts";
export * from "./commands.ts";
export * from "./io_util.ts";
export * from "./room_name.ts";
