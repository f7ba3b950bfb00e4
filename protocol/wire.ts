/**
 * The confab wire format: every line the server sends, how it is written and
 * how a client reads it back. This is the only module that knows what a line
 * looks like; the server formats with it and the `join` client parses with it.
 *
 * A connection carries UTF-8 text lines ending in LF (a CR before the LF is
 * accepted from clients). Server lines come in three families, told apart by
 * their first characters:
 *
 * - `? alias: Choose an alias ...` is a prompt: the server waits for one line.
 * - `! text` is an error about your last line; `!! text` is the last line you
 *   get before the server closes your connection.
 * - `[HH:MM:SS] ...` is something that happened in the room, stamped with the
 *   server's clock in UTC; replayed history is stamped
 *   `[history YYYY-MM-DD HH:MM:SS]` instead.
 *
 * @example Usage
 * ```ts
 * import { formatMessage, parseServerLine } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const line = formatMessage(Date.UTC(2026, 10, 26, 9, 5, 7), "alice", "hello");
 * assert.equal(line, "[09:05:07] alice: hello");
 * assert.deepEqual(parseServerLine(line), {
 *   kind: "message",
 *   time: "09:05:07",
 *   history: false,
 *   from: "alice",
 *   text: "hello",
 * });
 * ```
 *
 * @module
 */

/** Port a server listens on when none is given. */
export const DEFAULT_PORT = 55555;

/** Address a server listens on, and a client connects to, when none is given. */
export const DEFAULT_HOST = "127.0.0.1";

/**
 * Longest line, in bytes without its line ending, that a server accepts from a
 * client. Longer than IRC's 512 so a pasted paragraph fits, small enough that
 * a peer's partial line never costs much memory.
 */
export const MAX_LINE_BYTES = 4096;

/** Lines per second a server reads from each client unless told otherwise. */
export const DEFAULT_RATE = 5;

/** Lines a client may send at once, after a quiet spell, unless told otherwise. */
export const DEFAULT_BURST = 20;

/** Longest alias, in characters. */
export const MAX_ALIAS_LENGTH = 32;

/** The two things a server can prompt for. */
export type PromptKind = "alias" | "password";

/** Words no one may take as an alias (compared ignoring case). */
export const RESERVED_ALIASES: ReadonlySet<string> = new Set([
  "server",
  "confab",
  "system",
  "admin",
  "you",
  "me",
  "history",
  "private",
]);

/**
 * How a server's answer starts when a command other than `/quit`,
 * `/nohistory` or `/join` comes before an alias; a server older than rooms
 * answers `/join` with it too, which is how a client tells one.
 */
export const ALIAS_FIRST = "choose an alias first";

/** The text of the closing line every client gets when the server stops. */
export const SHUTDOWN_TEXT = "server shutting down";

/**
 * The last line of a `/who` or `/rooms` answered from what the server last
 * knew, because the servers it shares rooms with could not be asked.
 */
export const STALE_TEXT = "  (as last known: the other servers could not be asked just now)";

/** The line after a `/who` or `/rooms` list cut short: `  and N more`. */
export function formatMore(n: number): string {
  return `  and ${n} more`;
}

/** How many more a {@linkcode formatMore} line counts; undefined for any other text. */
export function parseMore(text: string): number | undefined {
  const found = /^ {2}and (\d+) more$/.exec(text);
  return found ? Number(found[1]) : undefined;
}

/** How a refusal starts when the server holds as many connections as it may. */
export const FULL_TEXT = "server is full";
/** How a refusal starts when the client's address holds as many as it may. */
export const PER_ADDRESS_TEXT = "too many connections from your address";

/**
 * Whether a closing line turned the connection away for want of room
 * ({@linkcode FULL_TEXT}, {@linkcode PER_ADDRESS_TEXT}): worth trying
 * again later, unlike being let go for something the client did.
 *
 * @example Usage
 * ```ts
 * import { isCapacityRefusal } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isCapacityRefusal("server is full (500 connections)"));
 * assert.ok(!isCapacityRefusal("idle for too long"));
 * ```
 */
export function isCapacityRefusal(text: string): boolean {
  return text.startsWith(FULL_TEXT) || text.startsWith(PER_ADDRESS_TEXT);
}

const TAKEN = " is taken; choose another";

/** The error for an alias someone else holds: `NAME is taken; choose another`. */
export function formatTaken(alias: string): string {
  return alias + TAKEN;
}

/**
 * The alias an "is taken" error names, or `undefined` if `text` is not one.
 *
 * @example Usage
 * ```ts
 * import { formatTaken, parseTaken } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseTaken(formatTaken("dora")), "dora");
 * assert.equal(parseTaken("you are already dora"), undefined);
 * ```
 */
export function parseTaken(text: string): string | undefined {
  return text.length > TAKEN.length && text.endsWith(TAKEN)
    ? text.slice(0, -TAKEN.length)
    : undefined;
}

/** One line from the server, as the client understands it. */
export type ServerEvent =
  | { kind: "prompt"; prompt: PromptKind; text: string }
  | { kind: "error"; text: string }
  | { kind: "bye"; text: string }
  | { kind: "message"; time: string; history: boolean; from: string; text: string }
  | { kind: "action"; time: string; history: boolean; from: string; text: string }
  | { kind: "private"; time: string; from: string; to: string; text: string }
  | { kind: "join"; time: string; alias: string }
  | { kind: "leave"; time: string; alias: string; reason: string; to?: string }
  | { kind: "nick"; time: string; from: string; to: string }
  | ({ kind: "crowd"; time: string } & Crowd)
  | { kind: "notice"; time: string; text: string }
  | { kind: "unknown"; text: string };

const PAD = (n: number): string => (n < 10 ? "0" + n : String(n));

/** `HH:MM:SS` of a time in UTC, as stamped on live lines. */
export function clockUtc(ms: number): string {
  const d = new Date(ms);
  return `${PAD(d.getUTCHours())}:${PAD(d.getUTCMinutes())}:${PAD(d.getUTCSeconds())}`;
}

/** `YYYY-MM-DD HH:MM:SS` of a time in UTC, as stamped on history lines. */
export function dateTimeUtc(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${PAD(d.getUTCMonth() + 1)}-${PAD(d.getUTCDate())} ${clockUtc(ms)}`;
}

// Live lines are stamped to the second; a busy room formats the same stamp
// thousands of times a second, so the last one is kept.
let stampSecond = -1;
let stampText = "";

function stamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== stampSecond) {
    stampSecond = second;
    stampText = `[${clockUtc(ms)}] `;
  }
  return stampText;
}

/**
 * `n` and the noun, plural unless `n` is 1: `plural(1, "line")` is
 * `"1 line"`, `plural(2, "line")` is `"2 lines"`; an irregular plural may be
 * given.
 *
 * @example Usage
 * ```ts
 * import { plural } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(plural(1, "connection"), "1 connection");
 * assert.equal(plural(64, "connection"), "64 connections");
 * ```
 */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}

/** `? alias: text` or `? password: text`. */
export function formatPrompt(prompt: PromptKind, text: string): string {
  return `? ${prompt}: ${text}`;
}

/** `! text`: your last line was refused; the connection stays open. */
export function formatError(text: string): string {
  return `! ${text}`;
}

/** `!! text`: the server is closing this connection, and says why. */
export function formatBye(text: string): string {
  return `!! ${text}`;
}

/** `[T] alias: text`: a chat line. */
export function formatMessage(ms: number, from: string, text: string): string {
  return `${stamp(ms)}${from}: ${text}`;
}

/** `[T] * alias text`: an action (`/me`). */
export function formatAction(ms: number, from: string, text: string): string {
  return `${stamp(ms)}* ${from} ${text}`;
}

/** `[history D T] alias: text` or `[history D T] * alias text`: a replayed line. */
export function formatHistory(
  ms: number,
  kind: "message" | "action",
  from: string,
  text: string,
): string {
  const body = kind === "message" ? `${from}: ${text}` : `* ${from} ${text}`;
  return `[history ${dateTimeUtc(ms)}] ${body}`;
}

/** `[T] (private) from: text`, as the recipient sees it. */
export function formatPrivateIn(ms: number, from: string, text: string): string {
  return `${stamp(ms)}(private) ${from}: ${text}`;
}

/** `[T] (private to alias) text`, as the sender sees it. */
export function formatPrivateOut(ms: number, to: string, text: string): string {
  return `${stamp(ms)}(private to ${to}) ${text}`;
}

/** `[T] --> alias joined`. */
export function formatJoin(ms: number, alias: string): string {
  return `${stamp(ms)}--> ${alias} joined`;
}

/**
 * `[T] <-- alias left`, `[T] <-- alias left (reason)`, or, for a member who
 * moved to another room, `[T] <-- alias left for #room`.
 */
export function formatLeave(ms: number, alias: string, reason = "", to = ""): string {
  const where = to ? ` for #${to}` : "";
  return `${stamp(ms)}<-- ${alias} left${where}${reason ? ` (${reason})` : ""}`;
}

/** `[T] --- old is now known as new`. */
export function formatNick(ms: number, from: string, to: string): string {
  return `${stamp(ms)}--- ${from} is now known as ${to}`;
}

/**
 * Who came and went in a big room since its last summary: the server names
 * them when they are at most {@linkcode CROWD_NAMES}, and counts them when
 * they are more. Someone who came and went within one summary is in
 * neither list; someone named in both left and came back.
 */
export interface Crowd {
  /** How many joined. */
  joinedCount: number;
  /** How many left. */
  leftCount: number;
  /** Who joined, oldest first, when they are named; otherwise empty. */
  joined: string[];
  /** Who left, when they are named; otherwise empty. */
  left: string[];
  /** How many are in the room now. */
  here: number;
}

/** A summary names those who came and went when they are at most this many. */
export const CROWD_NAMES = 5;

const GROUPED = new Intl.NumberFormat("en-US");

/**
 * `[T] -- 12 people joined; 3 people left (2,408 here)`, or with names,
 * `[T] -- alice, bob joined; carol left (2,408 here)`: the joins and leaves of a big room,
 * gathered. One side is left out when nobody came, or nobody went.
 */
export function formatCrowd(ms: number, crowd: CrowdCounts): string {
  return formatNotice(ms, crowdText(crowd));
}

/** Who came and went, as {@linkcode formatCrowd} words it, without the stamp. */
export function crowdText(crowd: CrowdCounts): string {
  const named = crowd.joinedCount + crowd.leftCount <= CROWD_NAMES &&
    crowd.joined.length === crowd.joinedCount && crowd.left.length === crowd.leftCount;
  const part = (names: readonly string[], count: number, verb: string) =>
    count === 0 ? [] : [
      named
        ? `${names.join(", ")} ${verb}`
        : `${GROUPED.format(count)} ${count === 1 ? "person" : "people"} ${verb}`,
    ];
  const parts = [
    ...part(crowd.joined, crowd.joinedCount, "joined"),
    ...part(crowd.left, crowd.leftCount, "left"),
  ];
  return `${parts.join("; ")} (${GROUPED.format(crowd.here)} here)`;
}

/** A {@linkcode Crowd} whose name lists may be read-only. */
export type CrowdCounts = Omit<Crowd, "joined" | "left"> & {
  readonly joined: readonly string[];
  readonly left: readonly string[];
};

/** `[T] -- text`: anything else the server tells you (welcome, command replies). */
export function formatNotice(ms: number, text: string): string {
  return `${stamp(ms)}-- ${text}`;
}

// An alias on the wire: anything up to the next space or colon. The server
// only ever sends valid aliases, so this stays strict enough to parse by.
const ALIAS = String.raw`[^\s:()\[\]*]+`;
const PROMPT_RE = /^\? (alias|password): ?(.*)$/;
const STAMP_RE = /^\[(?:history (\d{4}-\d\d-\d\d) )?(\d\d:\d\d:\d\d)\] (.*)$/;
const MESSAGE_RE = new RegExp(`^(${ALIAS}): (.*)$`);
const ACTION_RE = new RegExp(`^\\* (${ALIAS}) (.*)$`);
const PRIVATE_IN_RE = new RegExp(`^\\(private\\) (${ALIAS}): (.*)$`);
const PRIVATE_OUT_RE = new RegExp(`^\\(private to (${ALIAS})\\) (.*)$`);
const JOIN_RE = new RegExp(`^--> (${ALIAS}) joined$`);
// A room name on the wire: stopped by every character a room line puts
// after one, so one pattern reads them all; clients check names themselves.
const ROOM = String.raw`[^\s:()\[\]*#,;!]+`;
const LEAVE_RE = new RegExp(`^<-- (${ALIAS}) left(?: for #(${ROOM}))?(?: \\((.*)\\))?$`);
const NICK_RE = new RegExp(`^--- (${ALIAS}) is now known as (${ALIAS})$`);
const JOINING_RE = new RegExp(`(?:^|; )joining #(${ROOM});`);
const NAMES = `${ALIAS}(?:, ${ALIAS})*`;
const COUNT = String.raw`\d{1,3}(?:,\d{3})*`;
const CROWD_RE = new RegExp(
  `^(?:(${NAMES}) joined)?(?:(?:^|; )(${NAMES}) left)? \\((${COUNT}) here\\)$`,
);
const COUNTED_RE = new RegExp(
  `^(?:(${COUNT}) (?:people|person) joined)?(?:(?:^|; )(${COUNT}) (?:people|person) left)? \\((${COUNT}) here\\)$`,
);
const LISTING_RE = new RegExp(`^ {2}#(${ROOM}), (\\d+) here( \\(you are here\\))?(?:: (.*))?$`);

/**
 * Reads one server line (without its line ending) into a {@linkcode ServerEvent}.
 *
 * History lines carry `history: true` and a `time` of `YYYY-MM-DD HH:MM:SS`;
 * live lines a `time` of `HH:MM:SS`. Private lines name `"you"` on your side.
 * A line that fits no known shape comes back as `unknown`, never an exception.
 *
 * @example Usage
 * ```ts
 * import { parseServerLine } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseServerLine("[10:00:00] <-- bob left (quit: bye)"), {
 *   kind: "leave",
 *   time: "10:00:00",
 *   alias: "bob",
 *   reason: "quit: bye",
 * });
 * ```
 */
export function parseServerLine(line: string): ServerEvent {
  if (line.startsWith("!! ")) return { kind: "bye", text: line.slice(3) };
  if (line.startsWith("! ")) return { kind: "error", text: line.slice(2) };
  const prompt = PROMPT_RE.exec(line);
  if (prompt) {
    return { kind: "prompt", prompt: prompt[1] as PromptKind, text: prompt[2] ?? "" };
  }
  const stamped = STAMP_RE.exec(line);
  if (!stamped) return { kind: "unknown", text: line };
  const date = stamped[1];
  const history = date !== undefined;
  const time = history ? `${date} ${stamped[2]}` : stamped[2]!;
  const body = stamped[3]!;
  let m: RegExpExecArray | null;
  if ((m = PRIVATE_IN_RE.exec(body))) {
    return { kind: "private", time, from: m[1]!, to: "you", text: m[2]! };
  }
  if ((m = PRIVATE_OUT_RE.exec(body))) {
    return { kind: "private", time, from: "you", to: m[1]!, text: m[2]! };
  }
  if ((m = ACTION_RE.exec(body))) {
    return { kind: "action", time, history, from: m[1]!, text: m[2]! };
  }
  if (body.startsWith("-- ")) {
    const text = body.slice(3);
    return (history ? undefined : parseCrowd(text, time)) ?? { kind: "notice", time, text };
  }
  if ((m = JOIN_RE.exec(body))) return { kind: "join", time, alias: m[1]! };
  if ((m = LEAVE_RE.exec(body))) {
    const leave = { kind: "leave", time, alias: m[1]!, reason: m[3] ?? "" } as const;
    return m[2] === undefined ? leave : { ...leave, to: m[2] };
  }
  if ((m = NICK_RE.exec(body))) return { kind: "nick", time, from: m[1]!, to: m[2]! };
  if ((m = MESSAGE_RE.exec(body))) {
    return { kind: "message", time, history, from: m[1]!, text: m[2]! };
  }
  return { kind: "unknown", text: line };
}

/** A crowd summary's notice text, or `undefined` if it is some other notice. */
function parseCrowd(text: string, time: string): ServerEvent | undefined {
  const number = (s: string | undefined) => (s === undefined ? 0 : Number(s.replaceAll(",", "")));
  let m = COUNTED_RE.exec(text);
  if (m !== null && (m[1] !== undefined || m[2] !== undefined)) {
    const [joinedCount, leftCount, here] = [number(m[1]), number(m[2]), number(m[3])];
    return { kind: "crowd", time, joinedCount, leftCount, joined: [], left: [], here };
  }
  m = CROWD_RE.exec(text);
  if (m === null || (m[1] === undefined && m[2] === undefined)) return undefined;
  const joined = m[1]?.split(", ") ?? [];
  const left = m[2]?.split(", ") ?? [];
  const crowd = { joinedCount: joined.length, leftCount: left.length, joined, left };
  return { kind: "crowd", time, ...crowd, here: number(m[3]) };
}

/** What a server allows each client, as its `limits:` notice says. */
export interface Limits {
  /** Lines per second, sustained; 0 means no limit. */
  rate: number;
  /** Lines at once after a quiet spell (0 when there is no limit). */
  burst: number;
  /** Longest line accepted, in bytes. */
  maxLineBytes: number;
}

/**
 * The text of the notice that tells a newcomer its limits, which the `join`
 * client reads back with {@linkcode parseLimits} to pace itself.
 *
 * @example Usage
 * ```ts
 * import { formatLimits, parseLimits } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const text = formatLimits({ rate: 1, burst: 20, maxLineBytes: 4096 });
 * assert.equal(text, "limits: 1 line per second, bursts of 20; lines up to 4096 bytes");
 * assert.deepEqual(parseLimits(text), { rate: 1, burst: 20, maxLineBytes: 4096 });
 * ```
 */
export function formatLimits(limits: Limits): string {
  const rate = limits.rate > 0
    ? `${plural(limits.rate, "line")} per second, bursts of ${limits.burst}`
    : "no rate limit";
  return `limits: ${rate}; lines up to ${limits.maxLineBytes} bytes`;
}

const LIMITS_RE =
  /^limits: (?:(\d+) lines? per second, bursts? of (\d+)|no rate limit)(?:; lines up to (\d+) bytes)?/;

/** Reads a notice written by {@linkcode formatLimits}; undefined for any other text. */
export function parseLimits(text: string): Limits | undefined {
  const found = LIMITS_RE.exec(text);
  if (!found) return undefined;
  return {
    rate: Number(found[1] ?? 0),
    burst: Number(found[2] ?? 0),
    maxLineBytes: Number(found[3] ?? MAX_LINE_BYTES),
  };
}

/**
 * The welcome for `alias`: `online` people counted, you included, and
 * `names` (at most a screenful of them) in the order they came.
 *
 * @example Usage
 * ```ts
 * import { formatWelcome, parseWelcome } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const text = formatWelcome("bob", 3, ["alice", "bob"]);
 * assert.equal(text, "welcome, bob! 3 online: alice, bob and 1 more");
 * assert.deepEqual(parseWelcome(text), { alias: "bob", online: 3, names: ["alice", "bob"] });
 * ```
 */
export function formatWelcome(
  alias: string,
  online: number,
  names: readonly string[],
  room?: string,
): string {
  const greeting = room === undefined ? `welcome, ${alias}!` : `welcome to #${room}, ${alias}!`;
  if (online <= 1) return `${greeting} you are the only one here`;
  const more = online > names.length ? ` and ${online - names.length} more` : "";
  return `${greeting} ${online} online: ${names.join(", ")}${more}`;
}

const WELCOME_RE = new RegExp(
  `^welcome(?: to #(${ROOM}))?, ([^!]+)! (?:(\\d+) online: (.*?)(?: and \\d+ more)?|you are the only one here)$`,
);

/** A welcome notice, read back: who, how many, whom it named, and the room if it said. */
export interface Welcome {
  /** The newcomer. */
  alias: string;
  /** Everyone online there, the newcomer included. */
  online: number;
  /** Those it named, in the order they came. */
  names: string[];
  /** The room, when the welcome names it (every welcome but the first into the default room). */
  room?: string;
}

/** Reads a notice written by {@linkcode formatWelcome}; undefined for any other text. */
export function parseWelcome(text: string): Welcome | undefined {
  const found = WELCOME_RE.exec(text);
  if (!found) return undefined;
  const alias = found[2]!;
  const welcome: Welcome = found[3] === undefined
    ? { alias, online: 1, names: [alias] }
    : { alias, online: Number(found[3]), names: found[4]!.split(", ") };
  if (found[1] !== undefined) welcome.room = found[1];
  return welcome;
}

/**
 * The part of an alias prompt that says which room the newcomer will join,
 * once it asked for one with `/join NAME` at the prompt (or `/join` alone,
 * to learn the default room's name).
 *
 * @example Usage
 * ```ts
 * import { formatJoiningPrefix, parseJoiningRoom } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const text = `${formatJoiningPrefix("dev")}choose an alias: ...`;
 * assert.equal(text, "joining #dev; choose an alias: ...");
 * assert.equal(parseJoiningRoom(text), "dev");
 * ```
 */
export function formatJoiningPrefix(room: string): string {
  return `joining #${room}; `;
}

/** The room an alias prompt says the newcomer will join, if it says. */
export function parseJoiningRoom(promptText: string): string | undefined {
  return JOINING_RE.exec(promptText)?.[1];
}

/** One room in the reply to `/rooms`. */
export interface RoomListing {
  /** Its name, without the `#`. */
  name: string;
  /** How many are in it. */
  members: number;
  /** Whether the member who asked is in it. */
  mine: boolean;
  /** Its topic, or "". */
  topic: string;
}

/**
 * A row of the reply to `/rooms` (a notice): `  #dev, 3 here (you are
 * here): topic`.
 *
 * @example Usage
 * ```ts
 * import { formatRoomListing, parseRoomListing } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * const row = { name: "dev", members: 1, mine: true, topic: "ship it" };
 * assert.equal(formatRoomListing(row), "  #dev, 1 here (you are here): ship it");
 * assert.deepEqual(parseRoomListing(formatRoomListing(row)), row);
 * ```
 */
export function formatRoomListing(room: RoomListing): string {
  const mine = room.mine ? " (you are here)" : "";
  const topic = room.topic ? `: ${room.topic}` : "";
  return `  #${room.name}, ${room.members} here${mine}${topic}`;
}

/** Reads a row written by {@linkcode formatRoomListing}; undefined for any other text. */
export function parseRoomListing(text: string): RoomListing | undefined {
  const found = LISTING_RE.exec(text);
  if (!found) return undefined;
  return {
    name: found[1]!,
    members: Number(found[2]),
    mine: found[3] !== undefined,
    topic: found[4] ?? "",
  };
}

/**
 * The notice right after a room's welcome when the room has a topic.
 *
 * @example Usage
 * ```ts
 * import { formatTopic } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatTopic("ship it"), "topic: ship it");
 * ```
 */
export function formatTopic(topic: string): string {
  return `topic: ${topic}`;
}

/**
 * The reply to `/topic` with nothing after it: the room's topic, or that it
 * has none.
 *
 * @example Usage
 * ```ts
 * import { formatTopicOf } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatTopicOf("dev", "ship it"), "topic of #dev: ship it");
 * assert.equal(formatTopicOf("dev", ""), "#dev has no topic");
 * ```
 */
export function formatTopicOf(room: string, topic: string): string {
  return topic ? `topic of #${room}: ${topic}` : `#${room} has no topic`;
}

/**
 * The notice a room gets when someone sets its topic (or clears it, with "").
 *
 * @example Usage
 * ```ts
 * import { formatTopicSet } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatTopicSet("alice", "ship it"), "alice set the topic: ship it");
 * assert.equal(formatTopicSet("alice", ""), "alice cleared the topic");
 * ```
 */
export function formatTopicSet(alias: string, topic: string): string {
  return topic ? `${alias} set the topic: ${topic}` : `${alias} cleared the topic`;
}

/**
 * The first line of the reply to `/rooms`, before one
 * {@linkcode formatRoomListing} row per room.
 *
 * @example Usage
 * ```ts
 * import { formatRoomsHeader } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatRoomsHeader(1), "1 room:");
 * assert.equal(formatRoomsHeader(3), "3 rooms:");
 * ```
 */
export function formatRoomsHeader(rooms: number): string {
  return `${plural(rooms, "room")}:`;
}

/**
 * Why a room cannot be created: the server already has its most rooms.
 *
 * @example Usage
 * ```ts
 * import { formatRoomCap } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   formatRoomCap(2),
 *   "there are already 2 rooms; join one of them (/rooms lists them)",
 * );
 * ```
 */
export function formatRoomCap(maxRooms: number): string {
  return `there are already ${plural(maxRooms, "room")}; join one of them (/rooms lists them)`;
}

/**
 * Why `/join` to the room one is in does nothing.
 *
 * @example Usage
 * ```ts
 * import { formatAlreadyIn } from "./wire.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAlreadyIn("dev"), "you are already in #dev");
 * ```
 */
export function formatAlreadyIn(room: string): string {
  return `you are already in #${room}`;
}
