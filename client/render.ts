/**
 * Turns server events into what the user sees: text lines with local times
 * and optional colours, or one JSON object per event for scripts.
 *
 * Everything that came from the network passes through `sanitize` here, so a
 * hostile server cannot drive the user's terminal either.
 *
 * @module
 */

import { aliasKey } from "../protocol/alias.ts";
import { crowdText, type ServerEvent } from "../protocol/wire.ts";
import { sanitize, UNSAFE_CHAR } from "../protocol/sanitize.ts";

/** Options for {@linkcode Renderer}. */
export interface RenderOptions {
  /** One JSON object per event instead of text. */
  json: boolean;
  /** ANSI colours. */
  color: boolean;
  /** Show `HH:MM` times. */
  timestamps: boolean;
  /** Ring the bell when a line mentions you. */
  bell: boolean;
}

const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const BOLD = "\x1b[1m";
const RED = "\x1b[31m";
const MENTION = "\x1b[1;30;43m";
/** Readable on dark and light backgrounds: the six hues, normal and bright. */
const PALETTE = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/** A stable colour for an alias: the same alias always gets the same one. */
export function aliasColor(alias: string): number {
  let hash = 0x811c9dc5;
  for (const ch of aliasKey(alias)) {
    hash ^= ch.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193);
  }
  return PALETTE[(hash >>> 0) % PALETTE.length]!;
}

/**
 * When an event happened, as a `Date`: history lines carry their date; live
 * lines only `HH:MM:SS` (UTC), which is placed on the day nearest to `now`.
 */
export function eventDate(time: string, now: number = Date.now()): Date {
  const full = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(time);
  if (full) {
    const [, y, mo, d, h, mi, s] = full.map(Number) as number[];
    return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
  }
  const [h = 0, m = 0, s = 0] = time.split(":").map(Number);
  const today = new Date(now);
  let ms = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), h, m, s);
  const day = 86_400_000;
  if (ms - now > day / 2) ms -= day;
  else if (now - ms > day / 2) ms += day;
  return new Date(ms);
}

const UNSAFE_IN_JSON = new RegExp(UNSAFE_CHAR, "g");

const two = (n: number) => String(n).padStart(2, "0");

/** Formats server events for display; see {@linkcode RenderOptions}. */
export class Renderer {
  readonly #o: RenderOptions;
  /** Your current alias, to tell your lines and mentions of you. */
  me = "";
  /** The room you are in, once known: every JSON event carries it as `room`. */
  room: string | undefined;

  /** Makes a renderer. */
  constructor(options: RenderOptions) {
    this.#o = options;
  }

  /** Whether a line of text mentions `me` as a whole word. */
  mentions(text: string): boolean {
    if (this.me === "") return false;
    const lower = text.toLowerCase();
    const me = aliasKey(this.me);
    let at = lower.indexOf(me);
    while (at >= 0) {
      const before = at === 0 ? "" : lower[at - 1]!;
      const after = lower[at + me.length] ?? "";
      if (!/[\p{L}\p{N}_.-]/u.test(before) && !/[\p{L}\p{N}_-]/u.test(after)) return true;
      at = lower.indexOf(me, at + 1);
    }
    return false;
  }

  /** The display text of an event (without a line ending), or JSON. */
  render(event: ServerEvent, now: number = Date.now()): string {
    return this.#o.json ? this.#json(event, now) : this.#text(event, now);
  }

  /** Your own line, shown locally since the server does not echo it. */
  renderOwn(kind: "message" | "action", text: string, now: number = Date.now()): string {
    const time = this.#time(new Date(now));
    const who = this.#paint(BOLD, this.me);
    const body = kind === "message" ? `${who}: ${sanitize(text)}` : `* ${who} ${sanitize(text)}`;
    return time + body;
  }

  /** A note from confab itself (not from the server), dimmed like a notice. */
  renderLocal(text: string): string {
    return this.#paint(DIM, `-- ${sanitize(text)}`);
  }

  #paint(code: string, text: string): string {
    return this.#o.color ? `${code}${text}${RESET}` : text;
  }

  #alias(alias: string): string {
    const safe = sanitize(alias);
    if (alias === this.me) return this.#paint(BOLD, safe);
    return this.#paint(`\x1b[${aliasColor(alias)}m`, safe);
  }

  #time(date: Date, history = false): string {
    if (!this.#o.timestamps && !history) return "";
    const clock = `${two(date.getHours())}:${two(date.getMinutes())}`;
    if (history) {
      const day = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
      return this.#paint(DIM, `[history ${day} ${clock}]`) + " ";
    }
    return this.#paint(DIM, clock) + " ";
  }

  #said(text: string): string {
    const safe = sanitize(text);
    if (!this.mentions(text)) return safe;
    return (this.#o.bell ? "\x07" : "") + this.#paint(MENTION, safe);
  }

  #text(e: ServerEvent, now: number): string {
    switch (e.kind) {
      case "prompt":
        return sanitize(e.text);
      case "error":
        return this.#paint(RED, `! ${sanitize(e.text)}`);
      case "bye":
        return this.#paint(RED, `!! ${sanitize(e.text)}`);
      case "unknown":
        return sanitize(e.text);
    }
    const history = "history" in e && e.history;
    const time = this.#time(eventDate(e.time, now), history);
    switch (e.kind) {
      case "message":
        return `${time}${this.#alias(e.from)}: ${this.#said(e.text)}`;
      case "action":
        return `${time}* ${this.#alias(e.from)} ${this.#said(e.text)}`;
      case "private":
        return e.from === "you"
          ? `${time}(private to ${this.#alias(e.to)}) ${sanitize(e.text)}`
          : `${time}(private) ${this.#alias(e.from)}: ${this.#said(e.text)}`;
      case "join":
        return time + this.#paint(DIM, `--> ${sanitize(e.alias)} joined`);
      case "leave":
        return time + this.#paint(
          DIM,
          `<-- ${sanitize(e.alias)} left${e.reason ? ` (${sanitize(e.reason)})` : ""}`,
        );
      case "nick":
        return time +
          this.#paint(DIM, `--- ${sanitize(e.from)} is now known as ${sanitize(e.to)}`);
      case "crowd":
        return time + this.#paint(DIM, `-- ${sanitize(crowdText(e))}`);
      case "notice":
        return time + this.#paint(DIM, `-- ${sanitize(e.text)}`);
    }
  }

  #json(e: ServerEvent, now: number): string {
    const out: Record<string, unknown> = { type: e.kind };
    for (const [key, value] of Object.entries(e)) {
      if (key === "kind") continue;
      out[key] = key === "time" ? eventDate(String(value), now).toISOString() : value;
    }
    if (this.room !== undefined) out.room = this.room;
    // JSON.stringify escapes C0 controls; escape the rest of what sanitize
    // would, so the raw text is preserved and still cannot act on a terminal.
    return JSON.stringify(out).replace(
      UNSAFE_IN_JSON,
      (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
}
