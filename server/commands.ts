/**
 * The slash commands a joined client can use, one table entry each.
 *
 * A line starting with `/` is a command; `//text` sends `/text` as an
 * ordinary line. Replies go to the sender only, as notices (`-- ...`) or
 * errors (`! ...`), so commands never reach the room unless that is their
 * job (`/me`, `/nick`).
 *
 * @module
 */

import { checkAlias } from "../protocol/alias.ts";
import type { Member, Room } from "./room.ts";
import type { Registry } from "./registry.ts";
import { checkRoomName, roomKey } from "../protocol/room_name.ts";
import { sanitize } from "../protocol/sanitize.ts";
import {
  formatAlreadyIn,
  formatMore,
  formatRoomListing,
  formatRoomsHeader,
  formatTaken,
  formatTopicOf,
  STALE_TEXT,
} from "../protocol/wire.ts";

/** `/who` lists at most this many members by name... */
const WHO_LIMIT = 200;
/**
 * ...and at most this many bytes of them, or a quarter of the asker's queue
 * if that is less (see {@linkcode CommandContext.replyBytes}), so asking
 * never gets the asker dropped as too slow.
 */
export const WHO_BYTES = 16 * 1024;
/**
 * Away and quit reasons are cut to this many characters: they are repeated
 * in every `/who` and `left` line, so a long one would cost everyone.
 */
export const MAX_REASON = 200;

/**
 * A user-given reason, sanitised, then cut to
 * {@linkcode MAX_REASON} characters as others will see it (escapes
 * included, never split), with "..." when something was cut.
 */
export function userReason(text: string): string {
  const shown = sanitize(text.trim());
  const chars = [...shown];
  if (chars.length <= MAX_REASON) return shown;
  // Escaping is per character: cut the original on a character boundary
  // so that no escape is split, and keep what fits.
  let kept = "";
  let length = 0;
  for (const ch of text.trim()) {
    const escaped = sanitize(ch);
    const n = [...escaped].length;
    if (length + n > MAX_REASON) break;
    kept += escaped;
    length += n;
  }
  return kept + "...";
}

/** What a command can see and do. */
export interface CommandContext {
  /** The room the sender is in. */
  readonly room: Room;
  /** Every alias and room on the server. */
  readonly registry: Registry;
  /**
   * Moves the sender to room `name` (checked, and not the one it is in);
   * resolves to why not, or `undefined` once it is there.
   */
  move(name: string): Promise<string | undefined>;
  /** The member who sent the command. */
  readonly member: Member;
  /** Sends a notice to the sender. */
  reply(text: string): void;
  /** Sends an error to the sender. */
  fail(text: string): void;
  /** Leaves the room and closes the connection, with an optional reason. */
  quit(reason: string): void;
  /** Current time, ms since the epoch. */
  readonly now: number;
  /**
   * Most bytes a listing reply (`/who`, `/rooms`) may take in the sender's
   * queue: it must never be what gets the sender dropped as too slow.
   *
   * @default {16384}
   */
  readonly replyBytes?: number;
}

interface Command {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly usage: string;
  readonly summary: string;
  readonly details?: string;
  /** Runs it; a promise holds the sender's next line until it settles. */
  run(ctx: CommandContext, args: string): void | Promise<void>;
}

const encoder = new TextEncoder();

function splitFirst(args: string): [string, string] {
  const match = /^(\S+)\s*(.*)$/s.exec(args);
  return match ? [match[1]!, match[2]!] : ["", ""];
}

/** How long ago, in a compact human form: `45s`, `12m`, `3h05m`, `2d04h`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, "0")}h`;
}

/** Lines of a reply listing many things stop at {@linkcode WHO_BYTES}. */
function lineCost(line: string): number {
  return encoder.encode(line).length + 16;
}

async function sendPrivate(ctx: CommandContext, to: Member | string, text: string): Promise<void> {
  const sent = await ctx.registry.whisper(ctx.member, to, sanitize(text));
  if (sent.ok) {
    if (sent.to.away !== "") ctx.reply(`${sent.to.alias} is away: ${sent.to.away}`);
  } else if (sent.why === "self") {
    ctx.fail("that is you; private messages go to someone else");
  } else {
    const name = typeof to === "string" ? sanitize(to) : to.alias;
    ctx.fail(`no one called ${name} is here; /who lists who is`);
  }
}

const COMMANDS: readonly Command[] = [
  {
    name: "help",
    usage: "/help [COMMAND]",
    summary: "list the commands, or explain one",
    run(ctx, args) {
      const name = args.trim().replace(/^\//, "");
      if (name === "") {
        ctx.reply("commands (//text sends a line that starts with /):");
        for (const c of COMMANDS) ctx.reply(`  ${c.usage.padEnd(22)} ${c.summary}`);
        return;
      }
      const command = findCommand(name);
      if (command === undefined) {
        ctx.fail(`no command /${sanitize(name)}; /help lists them`);
        return;
      }
      const also = command.aliases?.length ? ` (also /${command.aliases.join(", /")})` : "";
      ctx.reply(`${command.usage}${also}: ${command.summary}`);
      if (command.details) ctx.reply(command.details);
    },
  },
  {
    name: "who",
    aliases: ["names"],
    usage: "/who",
    summary: "who is in this room, for how long, and who is away",
    async run(ctx) {
      const { room, now } = ctx;
      const { members, stale } = room.roster === undefined
        ? { members: [...room.members()], stale: false }
        : await room.roster();
      ctx.reply(`${members.length} online:`);
      let shown = 0;
      let bytes = 0;
      for (const m of members) {
        const away = m.away === "" ? "" : ` (away: ${m.away})`;
        const line = `  ${m.alias}, here ${formatDuration(now - m.joinedAt)}${away}`;
        bytes += lineCost(line);
        if (shown === WHO_LIMIT || bytes > (ctx.replyBytes ?? WHO_BYTES)) break;
        ctx.reply(line);
        shown++;
      }
      if (members.length > shown) ctx.reply(formatMore(members.length - shown));
      if (stale) ctx.reply(STALE_TEXT);
    },
  },
  {
    name: "nick",
    usage: "/nick NEW",
    summary: "change your alias",
    details: "the same rules as when joining; your room sees the change",
    async run(ctx, args) {
      const wanted = args.trim();
      if (wanted === "") {
        ctx.fail("usage: /nick NEW");
        return;
      }
      const check = checkAlias(wanted);
      if (!check.ok) {
        ctx.fail(check.reason);
        return;
      }
      if (check.alias === ctx.member.alias) {
        ctx.fail(`you are already ${check.alias}`);
        return;
      }
      if (!(await ctx.registry.rename(ctx.member, check.alias))) {
        ctx.fail(formatTaken(check.alias));
      }
    },
  },
  {
    name: "msg",
    usage: "/msg ALIAS TEXT",
    summary: "a private message to one person",
    details: "only you and ALIAS see it, whatever room ALIAS is in; it is never kept in history",
    run(ctx, args) {
      const [to, text] = splitFirst(args);
      if (to === "" || text.trim() === "") {
        ctx.fail("usage: /msg ALIAS TEXT");
        return;
      }
      return sendPrivate(ctx, sanitize(to), text);
    },
  },
  {
    name: "reply",
    usage: "/reply TEXT",
    summary: "answer the last person who messaged you privately",
    run(ctx, args) {
      if (args.trim() === "") {
        ctx.fail("usage: /reply TEXT");
        return;
      }
      const to = ctx.member.replyTo;
      if (to === undefined) {
        ctx.fail("no one has messaged you privately yet");
        return;
      }
      return sendPrivate(ctx, to, args);
    },
  },
  {
    name: "me",
    usage: "/me TEXT",
    summary: "an action, shown as * alias TEXT",
    run(ctx, args) {
      if (args.trim() === "") {
        ctx.fail("usage: /me TEXT");
        return;
      }
      ctx.room.act(ctx.member, sanitize(args));
    },
  },
  {
    name: "join",
    usage: "/join ROOM",
    summary: "move to room ROOM, making it if there is none",
    details: "the room you leave sees where you went; you get ROOM's history and welcome",
    async run(ctx, args) {
      if (args.trim() === "") {
        ctx.fail("usage: /join ROOM");
        return;
      }
      const check = checkRoomName(args);
      if (!check.ok) {
        ctx.fail(check.reason);
        return;
      }
      if (roomKey(check.name) === roomKey(ctx.room.name)) {
        ctx.fail(formatAlreadyIn(ctx.room.name));
        return;
      }
      const refused = await ctx.move(check.name);
      if (refused !== undefined) ctx.fail(refused);
    },
  },
  {
    name: "rooms",
    usage: "/rooms",
    summary: "the rooms, how many are in each, and their topics",
    async run(ctx) {
      const { registry } = ctx;
      const { rooms, stale } = registry.survey === undefined
        ? { rooms: registry.list(), stale: false }
        : await registry.survey();
      const mine = roomKey(ctx.room.name);
      ctx.reply(formatRoomsHeader(rooms.length));
      let shown = 0;
      let bytes = 0;
      for (const room of rooms) {
        const line = formatRoomListing({ ...room, mine: roomKey(room.name) === mine });
        bytes += lineCost(line);
        if (shown === WHO_LIMIT || bytes > (ctx.replyBytes ?? WHO_BYTES)) break;
        ctx.reply(line);
        shown++;
      }
      if (rooms.length > shown) ctx.reply(formatMore(rooms.length - shown));
      if (stale) ctx.reply(STALE_TEXT);
    },
  },
  {
    name: "topic",
    usage: "/topic [TEXT]",
    summary: "show this room's topic, or set it",
    details: "shown in the room's welcome; /topic - clears it. The default room's " +
      "topic stays as the server has it (its message of the day speaks for it)",
    run(ctx, args) {
      const text = args.trim();
      if (text === "") {
        ctx.reply(formatTopicOf(ctx.room.name, ctx.room.topic));
      } else if (ctx.room === ctx.registry.defaultRoom) {
        // Everyone arrives there: a topic anyone could set would be a line
        // anyone could pin in front of every newcomer.
        ctx.fail(`the topic of #${ctx.room.name} cannot be changed; /join a room of your own`);
      } else {
        ctx.room.setTopic(ctx.member, text === "-" ? "" : userReason(text));
      }
    },
  },
  {
    name: "away",
    usage: "/away [REASON]",
    summary: "mark yourself away",
    details: "shown in /who and told to whoever messages you privately; /back ends it",
    run(ctx, args) {
      const why = userReason(args);
      ctx.member.away = why || "away";
      ctx.reply(why ? `you are marked as away: ${why}` : "you are marked as away");
    },
  },
  {
    name: "back",
    usage: "/back",
    summary: "you are no longer away",
    run(ctx) {
      if (ctx.member.away === "") {
        ctx.fail("you are not marked as away");
        return;
      }
      ctx.member.away = "";
      ctx.reply("welcome back; you are no longer marked as away");
    },
  },
  {
    name: "quit",
    usage: "/quit [REASON]",
    summary: "leave the server; the reason is shown to your room",
    run(ctx, args) {
      ctx.quit(userReason(args));
    },
  },
];

function findCommand(name: string): Command | undefined {
  const key = name.toLowerCase();
  return COMMANDS.find((c) => c.name === key || c.aliases?.includes(key));
}

/** The server's commands, as the shared vocabulary names them. */
export const SERVER_COMMAND_NAMES: readonly string[] = COMMANDS.flatMap((c) => [
  `/${c.name}`,
  ...(c.aliases ?? []).map((a) => `/${a}`),
]);

/**
 * Runs one command line (`/name args`, without the leading slash handling of
 * `//`). An unknown command gets an error reply and is not broadcast. A
 * command that waits on the registry returns a promise: the sender's next
 * line waits for it.
 */
export function runCommand(ctx: CommandContext, line: string): void | Promise<void> {
  const [word, args] = splitFirst(line.slice(1));
  const command = findCommand(word);
  if (command === undefined) {
    ctx.fail(`unknown command /${sanitize(word)}; /help lists the commands`);
    return;
  }
  return command.run(ctx, args);
}
