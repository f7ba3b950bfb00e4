/**
 * The command vocabulary both sides share: which `/` words a server
 * understands (the server's table in `server/commands.ts` gives each its
 * behaviour), and how a line is recognised as a command.
 *
 * @module
 */

/** Every command a confab server understands, each with its other names. */
export const COMMAND_WORDS: readonly { name: string; aliases?: readonly string[] }[] = [
  { name: "help" },
  { name: "who", aliases: ["names"] },
  { name: "nick" },
  { name: "msg" },
  { name: "reply" },
  { name: "me" },
  { name: "join" },
  { name: "rooms" },
  { name: "topic" },
  { name: "away" },
  { name: "back" },
  { name: "quit" },
];

/** Every command name and alias, with its slash, for completion. */
export const COMMAND_NAMES: readonly string[] = COMMAND_WORDS.flatMap((c) => [
  `/${c.name}`,
  ...(c.aliases ?? []).map((a) => `/${a}`),
]);

/**
 * Whether `line` is a command rather than chat: it starts with one `/`
 * (`//text` is chat that starts with `/text`).
 *
 * @example Usage
 * ```ts
 * import { isCommand } from "./commands.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isCommand("/who"));
 * assert.ok(!isCommand("//who"));
 * assert.ok(!isCommand("who"));
 * ```
 */
export function isCommand(line: string): boolean {
  return line.startsWith("/") && !line.startsWith("//");
}

/**
 * Whether `line` is `/quit`, with or without a reason, in any case.
 *
 * @example Usage
 * ```ts
 * import { isQuit } from "./commands.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isQuit("/quit"));
 * assert.ok(isQuit("/QUIT lunch"));
 * assert.ok(!isQuit("/quitter"));
 * ```
 */
export function isQuit(line: string): boolean {
  return /^\/quit(\s|$)/i.test(line);
}
