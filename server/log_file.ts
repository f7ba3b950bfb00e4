/**
 * The server's log as an operator keeps it: one line per event, as text or
 * as JSON, appended to a file that can be reopened by path after logrotate
 * has moved it away.
 *
 * @module
 */

import { writeAllSync } from "../protocol/io_util.ts";

/** How each log line is written: `text` (time, then the line) or `json`. */
export type LogFormat = "text" | "json";

/** The formats {@linkcode formatLogLine} knows, for checking a flag's value. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

// Lines about one connection start with its address (`host:port`, an IPv6
// host in brackets), then its alias (`-` before it has one) and a colon.
const CONNECTION_LINE = /^((?:\[[0-9A-Fa-f:.%]+\]|[\w.-]+):\d+)(?: ([^\s:]+):)?:? /;

/**
 * One log line, newline included, as written to the log: in `text`, the
 * time (ISO 8601, UTC) and the line; in `json`, an object with `time` and
 * `msg`, plus `peer` and `alias` when the line is about one connection.
 *
 * @example Usage
 * ```ts
 * import { formatLogLine } from "./log_file.ts";
 * import assert from "node:assert/strict";
 *
 * const time = new Date("2026-12-01T10:00:00Z");
 * assert.equal(formatLogLine("stopped", "text", time), "2026-12-01T10:00:00.000Z stopped\n");
 * assert.deepEqual(JSON.parse(formatLogLine("127.0.0.1:4000 ann: joined (1 online)", "json", time)), {
 *   time: "2026-12-01T10:00:00.000Z",
 *   msg: "127.0.0.1:4000 ann: joined (1 online)",
 *   peer: "127.0.0.1:4000",
 *   alias: "ann",
 * });
 * ```
 */
export function formatLogLine(line: string, format: LogFormat, time: Date = new Date()): string {
  if (format === "text") return `${time.toISOString()} ${line}\n`;
  const entry: Record<string, string> = { time: time.toISOString(), msg: line };
  const about = CONNECTION_LINE.exec(line);
  if (about?.[1] !== undefined) entry.peer = about[1];
  if (about?.[2] !== undefined && about[2] !== "-") entry.alias = about[2];
  return JSON.stringify(entry) + "\n";
}

/**
 * Why {@linkcode LogFile.open} or {@linkcode LogFile.reopen} failed, in a few
 * words for people (the file itself is created if missing, so "not found"
 * means its directory).
 */
export function describeOpenError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (error instanceof Deno.errors.NotCapable) {
    // Writing needs --allow-write; some paths (/dev/...) need --allow-all.
    const flag = /(--allow-[a-z]+)/.exec(error.message)?.[1] ?? "--allow-write";
    return `not allowed (run with ${flag})`;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * A log file, always appended to and written one whole line at a time, so
 * that another writer, or a rotation, never splits a line.
 *
 * Writes are synchronous: a line is in the file (or lost to a failing disk)
 * before the next one is written, and {@linkcode LogFile.reopen} swaps the
 * file between two lines, never during one. A write that fails (a full disk)
 * drops that line and nothing else: logging never stops the server.
 *
 * @example Usage
 * ```ts
 * import { LogFile } from "./log_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = Deno.makeTempDirSync();
 * const log = LogFile.open(`${dir}/confab.log`);
 * log.write("one\n");
 * Deno.renameSync(`${dir}/confab.log`, `${dir}/confab.log.1`);
 * log.write("two\n"); // still the moved file, until reopened
 * log.reopen();
 * log.write("three\n");
 * log.close();
 * assert.equal(Deno.readTextFileSync(`${dir}/confab.log.1`), "one\ntwo\n");
 * assert.equal(Deno.readTextFileSync(`${dir}/confab.log`), "three\n");
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class LogFile {
  /** The path it is opened by, on every reopen. */
  readonly path: string;
  #file: Deno.FsFile;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** Opens (creating it if need be) `path` for appending; throws if it cannot. */
  static open(path: string): LogFile {
    return new LogFile(path, LogFile.#openPath(path));
  }

  static #openPath(path: string): Deno.FsFile {
    return Deno.openSync(path, { append: true, create: true });
  }

  /** Appends `text` (whole lines); a failed write is dropped. */
  write(text: string): void {
    try {
      writeAllSync(this.#file, text);
    } catch {
      // A full disk or a vanished device: the line is lost, the server goes on.
    }
  }

  /**
   * Opens the path again and writes there from now on, closing the old file.
   * If the path cannot be opened, throws and keeps writing to the old file.
   */
  reopen(): void {
    const next = LogFile.#openPath(this.path);
    const old = this.#file;
    this.#file = next;
    old.close();
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
