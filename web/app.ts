/// <reference lib="dom" />
/**
 * The browser page's script: one WebSocket to the server's `/ws`, one text
 * frame per line each way, every server line read with the same wire
 * parser as `confab join` (protocol/wire.ts). Bundled into
 * server/web/_app_bundle.ts by web/build.ts (`deno task bundle`).
 *
 * Everything from the network is put on the page as text (`textContent`),
 * never as HTML.
 *
 * @module
 */

import {
  crowdText,
  formatRoomsHeader,
  isCapacityRefusal,
  MAX_LINE_BYTES,
  parseJoiningRoom,
  parseLimits,
  parseMore,
  parseRoomListing,
  parseServerLine,
  parseTaken,
  parseWelcome,
  type ServerEvent,
  SHUTDOWN_TEXT,
  STALE_TEXT,
} from "../protocol/wire.ts";
import { aliasKey } from "../protocol/alias.ts";
import { aliasColor, eventDate } from "../client/render.ts";
import { complete, noteRoom, type RoomNames, trackRooms } from "../client/complete.ts";
import { Pacer } from "../client/pacer.ts";

/** Waits between reconnection attempts (ms), growing to the last one. */
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
/** Lines kept on the page; older ones are removed. */
const MAX_LINES = 2000;
/** Lines sent kept for Up and Down. */
const MAX_HISTORY = 100;
/** Messages remembered so that replayed history does not show them twice. */
const MAX_SEEN = 500;
/** After a lost connection, how long (ms) the same alias is asked for again while the server still holds it. */
const REJOIN_FOR_MS = 35_000;
/** Waits (ms) between asking again for an alias the server still holds. */
const REJOIN_BACKOFF_MS = [1000, 2000, 4000, 5000];
/** Links: http and https only. */
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]]/g;

type Phase = "connecting" | "password" | "alias" | "joined" | "closed";

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element as T;
}

const log = byId<HTMLDivElement>("log");
const input = byId<HTMLInputElement>("input");
const form = byId<HTMLFormElement>("form");
const label = byId<HTMLLabelElement>("prompt-label");
const statusLine = byId<HTMLSpanElement>("status");
const roomTitle = byId<HTMLSpanElement>("room");
const roomList = byId<HTMLUListElement>("room-list");
const alertBox = byId<HTMLDivElement>("alert");
const newBelow = byId<HTMLButtonElement>("new-below");
const hint = byId<HTMLDivElement>("hint");

let socket: WebSocket | undefined;
let phase: Phase = "connecting";
let me = "";
let room = "";
/** The alias to answer the prompt with on its own (after a reconnect). */
let autoAlias = "";
/** The password, kept in memory only, to answer again after a reconnect. */
let password = "";
/** The room to ask for at the alias prompt (after a reconnect), once. */
let rejoinRoom = "";
let attempt = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let countdown: ReturnType<typeof setInterval> | undefined;
/** The user left with /quit: no reconnecting. */
let quitting = false;
/** The last closing line, if the server said why it closed. */
let byeText: string | undefined;
const online = new Set<string>();
const rooms: RoomNames = new Map();
const roomCounts = new Map<string, number>();
/** `/rooms` asked for by the page itself: its reply is not shown. */
let quietRooms = 0;
let hidingRows = false;
/** After a lost connection: the alias and room to get back, until when, and the tries so far. */
let rejoin: { alias: string; room: string; until: number; tries: number } | undefined;
let rejoinTimer: ReturnType<typeof setTimeout> | undefined;
/** Lines typed while joined wait here for the server's rate limit (see `-- limits:`). */
const outgoing: string[] = [];
let pacing = false;
let pacer = new Pacer();
let maxLineBytes = MAX_LINE_BYTES;
/** Notices already shown (limits, message of the day), not repeated after a reconnect. */
const shownNotices = new Set<string>();
/** Between a welcome and the first live line: history is being replayed. */
let replaying = false;
let replayTimer: ReturnType<typeof setTimeout> | undefined;
/** Connections opened since the page loaded. */
let connections = 0;
const byteLength = (text: string) => new TextEncoder().encode(text).length;
const sent: string[] = [];
let historyIndex = 0;
let draft = "";
/**
 * Sender and text of the lines shown, with when they were said (ms) and
 * the connection whose replay last matched them.
 */
const seen = new Map<string, { at: number; replay: number }[]>();
const seenOrder: string[] = [];
let unseenBelow = 0;
/** Where the unread marker goes: set when the tab is hidden. */
let markNext = false;

// ---- Connection ----

function connect(): void {
  clearTimeout(retryTimer);
  clearTimeout(rejoinTimer);
  clearInterval(countdown);
  // A reply asked for on the last connection will not come on this one.
  quietRooms = 0;
  hidingRows = false;
  outgoing.length = 0;
  pacer = new Pacer();
  connections++;
  setPhase("connecting");
  setStatus(attempt === 0 ? "connecting…" : "reconnecting…", "connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  socket = ws;
  byeText = undefined;
  ws.addEventListener("open", () => {
    if (socket === ws) setStatus("connected", "connected");
  });
  ws.addEventListener("message", (event) => {
    if (socket === ws && typeof event.data === "string") onLine(event.data);
  });
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    socket = undefined;
    onClosed(event);
  });
}

function onClosed(event: CloseEvent): void {
  const wasJoined = phase === "joined";
  setPhase("closed");
  online.clear();
  if (quitting) {
    setStatus("left the room; reload the page to come back", "closed");
    return;
  }
  const why = byeText ?? (event.reason || "connection lost");
  // Only a lost connection, a server going down and a full server are
  // retried on their own; the server saying why it let us go (idle, too
  // slow, a refusal) is final until the user presses Enter.
  if (
    (byeText !== undefined && byeText !== SHUTDOWN_TEXT && !isCapacityRefusal(byeText)) ||
    (byeText === undefined && event.code >= 1002 && event.code <= 1011 && event.code !== 1006)
  ) {
    if (wasJoined) {
      autoAlias = me;
      rejoinRoom = room;
    }
    setStatus(`disconnected: ${why}`, "closed");
    showAlert(`Disconnected: ${why}`);
    offerReconnect();
    return;
  }
  if (wasJoined) {
    autoAlias = me;
    rejoinRoom = room;
    // The server may still hold the alias for a while after a lost connection.
    if (byeText === undefined) {
      rejoin = { alias: me, room, until: Date.now() + REJOIN_FOR_MS, tries: 0 };
    }
  }
  scheduleReconnect(why);
}

function scheduleReconnect(why: string): void {
  // Spread out, so that pages that lost the same server do not all come back at once.
  const wait = Math.round(
    BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]! * (0.75 + Math.random() / 2),
  );
  attempt++;
  const at = Date.now() + wait;
  const show = () => {
    const seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    setStatus(`${why}; reconnecting in ${seconds} s`, "reconnecting");
  };
  show();
  clearInterval(countdown);
  countdown = setInterval(show, 1000);
  retryTimer = setTimeout(connect, wait);
}

function offerReconnect(): void {
  setLabel("Press Enter to connect again");
  input.value = "";
}

function send(line: string): void {
  if (socket?.readyState === WebSocket.OPEN) socket.send(line);
}

/** Sends a line typed while joined, within the server's announced rate. */
function sendPaced(line: string): void {
  outgoing.push(line);
  if (pacing) return;
  pacing = true;
  (async () => {
    try {
      while (outgoing.length > 0) {
        const used = pacer;
        await used.wait();
        // A reconnect meanwhile dropped what was waiting.
        if (used !== pacer) continue;
        const next = outgoing.shift();
        if (next !== undefined) send(next);
      }
    } finally {
      pacing = false;
    }
  })();
}

// ---- Lines from the server ----

function onLine(line: string): void {
  const event = parseServerLine(line);
  trackRooms(event, rooms);
  if (hidingRows) {
    if (event.kind === "notice" && parseRoomListing(event.text) !== undefined) {
      noteListing(event.text);
      return;
    }
    // The rest of a hidden answer: rooms past what one reply lists, and a
    // list as last known (the room list shows what it has either way).
    if (
      event.kind === "notice" &&
      (parseMore(event.text) !== undefined || event.text === STALE_TEXT)
    ) {
      return;
    }
    hidingRows = false;
    renderRooms();
  }
  switch (event.kind) {
    case "prompt":
      return onPrompt(event.prompt, event.text);
    case "error":
      // A refused password is not given again on its own.
      if (phase === "password") password = "";
      if (rejoin !== undefined && phase === "alias" && parseTaken(event.text) === rejoin.alias) {
        // Our old connection, not yet noticed gone: ask again shortly.
        if (Date.now() < rejoin.until) return append(event, "error");
        rejoin = undefined;
      }
      showAlert(event.text);
      return append(event, "error");
    case "bye":
      byeText = event.text;
      return append(event, "bye");
    case "notice":
      return onNotice(event);
    case "join":
      online.add(event.alias);
      countHere();
      return append(event, "join");
    case "leave":
      online.delete(event.alias);
      countHere();
      return append(event, "leave");
    case "nick":
      online.delete(event.from);
      online.add(event.to);
      if (event.from === me) me = event.to;
      return append(event, "nick");
    case "crowd":
      // Named on both sides: left, then came back.
      for (const name of event.left) online.delete(name);
      for (const name of event.joined) online.add(name);
      countHere();
      return append(event, "join");
    case "message":
    case "action":
      if (event.history && seenBefore(event.from, event.text, event.time)) return;
      if (!event.history) online.add(event.from);
      remember(event.from, event.text, eventDate(event.time).getTime());
      return append(event, event.kind);
    case "private":
      return append(event, "private");
    case "unknown":
      return append(event, "unknown");
  }
}

function onPrompt(kind: "alias" | "password", text: string): void {
  if (kind === "password") {
    setPhase("password");
    if (password !== "") {
      send(password);
      return;
    }
    setLabel("Password");
    note(text);
    return;
  }
  setPhase("alias");
  if (rejoin !== undefined && Date.now() < rejoin.until) {
    const again = rejoin;
    if (again.room !== "" && parseJoiningRoom(text) !== again.room) {
      send(`/join ${again.room}`);
      return;
    }
    const wait = again.tries === 0
      ? 0
      : REJOIN_BACKOFF_MS[Math.min(again.tries - 1, REJOIN_BACKOFF_MS.length - 1)]!;
    again.tries++;
    autoAlias = "";
    rejoinRoom = "";
    setStatus(`waiting for the server to let go of ${again.alias}…`, "connecting");
    rejoinTimer = setTimeout(() => {
      if (phase === "alias") send(again.alias);
    }, wait);
    return;
  }
  rejoin = undefined;
  if (rejoinRoom !== "") {
    const wanted = rejoinRoom;
    rejoinRoom = "";
    send(`/join ${wanted}`);
    return;
  }
  if (autoAlias !== "") {
    const alias = autoAlias;
    autoAlias = "";
    send(alias);
    return;
  }
  setLabel("Choose an alias");
  note(text);
  if (input.value === "") input.value = storedAlias();
}

function onNotice(event: Extract<ServerEvent, { kind: "notice" }>): void {
  const welcome = parseWelcome(event.text);
  if (welcome !== undefined) {
    rejoin = undefined;
    startReplay();
    if (phase !== "joined") {
      attempt = 0;
      setStatus("connected", "connected");
      clearAlert();
      storeAlias(welcome.alias);
    }
    setPhase("joined");
    me = welcome.alias;
    online.clear();
    for (const name of welcome.names) online.add(name);
    if (welcome.room !== undefined) setRoom(welcome.room);
    roomCounts.clear();
    askRooms();
    setLabel(`Message as ${me}`);
  }
  const limits = parseLimits(event.text);
  if (limits !== undefined) {
    pacer.set(limits.rate, limits.burst);
    maxLineBytes = limits.maxLineBytes;
    input.maxLength = maxLineBytes;
  }
  if (quietRooms > 0 && event.text === formatRoomsHeader(Number.parseInt(event.text))) {
    quietRooms--;
    hidingRows = true;
    roomCounts.clear();
    return;
  }
  const listing = parseRoomListing(event.text);
  if (listing !== undefined) noteListing(event.text);
  // What the server says on every connection (limits, message of the day)
  // is shown once, not again after each reconnect.
  if (replaying && welcome === undefined && listing === undefined) {
    if (connections > 1 && shownNotices.has(event.text)) return;
    shownNotices.add(event.text);
  }
  append(event, "notice");
}

function noteListing(text: string): void {
  const listing = parseRoomListing(text)!;
  noteRoom(rooms, listing.name);
  roomCounts.set(listing.name, listing.members);
  if (listing.mine) setRoom(listing.name);
  renderRooms();
}

/**
 * Asks for `/rooms` quietly, on joining a room only: every line sent counts
 * as activity for the server's idle timeout, so the page sends none on its
 * own while the user is away.
 */
function askRooms(): void {
  if (phase !== "joined") return;
  quietRooms++;
  send("/rooms");
}

/** The current room's count, from who is online (other rooms' counts wait for the next /rooms). */
function countHere(): void {
  if (room === "" || !roomCounts.has(room)) return;
  roomCounts.set(room, online.size);
  renderRooms();
}

/** Marks the log busy while history is replayed, so it is not read out line by line. */
function startReplay(): void {
  replaying = true;
  log.setAttribute("aria-busy", "true");
  clearTimeout(replayTimer);
  replayTimer = setTimeout(endReplay, 1000);
}

function endReplay(): void {
  replaying = false;
  clearTimeout(replayTimer);
  log.removeAttribute("aria-busy");
}

// ---- The page ----

function setPhase(next: Phase): void {
  phase = next;
  document.body.dataset.phase = next;
  input.type = next === "password" ? "password" : "text";
  input.autocomplete = next === "alias" ? "username" : "off";
}

function setStatus(text: string, state: string): void {
  statusLine.textContent = text;
  statusLine.dataset.state = state;
}

function setLabel(text: string): void {
  label.textContent = text;
  input.placeholder = text;
}

function setRoom(name: string): void {
  if (name === room) return;
  room = name;
  roomTitle.textContent = `#${name}`;
  document.title = `#${name} · confab`;
  renderRooms();
}

function renderRooms(): void {
  const names = [...roomCounts.keys()];
  if (room !== "" && !roomCounts.has(room)) names.unshift(room);
  roomList.replaceChildren(...names.map((name) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "room";
    button.dataset.room = name;
    const count = roomCounts.get(name);
    const label = document.createElement("span");
    label.textContent = `#${name}`;
    const badge = document.createElement("span");
    badge.className = "count";
    badge.textContent = count === undefined ? "" : String(count);
    button.append(label, badge);
    button.setAttribute(
      "aria-label",
      `#${name}${count === undefined ? "" : `, ${count} here`}${
        name === room ? ", current room" : ""
      }`,
    );
    if (name === room) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => {
      switchRoom(name);
      input.focus();
    });
    item.append(button);
    return item;
  }));
}

function switchRoom(name: string): void {
  if (phase === "joined" && name !== room) send(`/join ${name}`);
}

/** The room `step` places away from the current one in the list. */
function neighbourRoom(step: number): string | undefined {
  const names = [...roomList.querySelectorAll<HTMLButtonElement>("button.room")]
    .map((b) => b.dataset.room!);
  if (names.length < 2) return undefined;
  const here = Math.max(0, names.indexOf(room));
  return names[(here + step + names.length) % names.length];
}

function showAlert(text: string): void {
  alertBox.textContent = text;
  alertBox.hidden = false;
}

function clearAlert(): void {
  alertBox.textContent = "";
  alertBox.hidden = true;
}

function note(text: string): void {
  append({ kind: "unknown", text }, "prompt");
}

function key(from: string, text: string): string {
  return `${aliasKey(from)}\u0000${text}`;
}

/** Within this many ms of a line seen live, a replayed one like it is the same line. */
const SAME_LINE_MS = 2000;

/**
 * Whether a replayed line was already shown: same sender, text and (near)
 * time, and not already matched by another line of this replay (a line
 * said twice is replayed twice).
 */
function seenBefore(from: string, text: string, time: string): boolean {
  const at = eventDate(time).getTime();
  const match = (seen.get(key(from, text)) ?? []).find((entry) =>
    entry.replay !== connections && Math.abs(entry.at - at) <= SAME_LINE_MS
  );
  if (match === undefined) return false;
  match.replay = connections;
  return true;
}

function remember(from: string, text: string, at: number): void {
  const k = key(from, text);
  const entry = { at, replay: connections };
  const entries = seen.get(k);
  if (entries === undefined) seen.set(k, [entry]);
  else entries.push(entry);
  seenOrder.push(k);
  if (seenOrder.length > MAX_SEEN) {
    const old = seenOrder.shift()!;
    const list = seen.get(old);
    list?.shift();
    if (list?.length === 0) seen.delete(old);
  }
}

function atBottom(): boolean {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 8;
}

function scrollToBottom(): void {
  log.scrollTop = log.scrollHeight;
  unseenBelow = 0;
  newBelow.hidden = true;
}

/** The text of an event, with links made clickable, into `parent`. */
function addText(parent: HTMLElement, text: string): void {
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const at = match.index!;
    if (at > last) parent.append(text.slice(last, at));
    const a = document.createElement("a");
    a.href = match[0];
    a.textContent = match[0];
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    parent.append(a);
    last = at + match[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

function aliasSpan(alias: string): HTMLSpanElement {
  const span = document.createElement("span");
  span.className = alias === me ? "alias me" : `alias c${aliasColor(alias)}`;
  span.textContent = alias;
  return span;
}

function timeOf(event: ServerEvent): { time: HTMLTimeElement; history: boolean } | undefined {
  if (!("time" in event)) return undefined;
  const date = eventDate(event.time);
  const history = "history" in event && event.history;
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  const two = (n: number) => String(n).padStart(2, "0");
  const clock = `${two(date.getHours())}:${two(date.getMinutes())}`;
  time.textContent = history
    ? `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${clock}`
    : clock;
  time.title = date.toLocaleString();
  return { time, history };
}

function append(event: ServerEvent, kind: string): void {
  if (replaying && "history" in event && !event.history && kind !== "notice") endReplay();
  const stick = atBottom();
  const row = document.createElement("div");
  row.className = `line ${kind}`;
  const stamp = timeOf(event);
  if (stamp !== undefined) {
    if (stamp.history) row.classList.add("history");
    row.append(stamp.time, " ");
  }
  const body = document.createElement("span");
  body.className = "text";
  switch (event.kind) {
    case "message":
      body.append(aliasSpan(event.from), ": ");
      addText(body, event.text);
      if (me !== "" && event.from !== me && mentions(event.text)) row.classList.add("mention");
      break;
    case "action":
      body.append("* ", aliasSpan(event.from), " ");
      addText(body, event.text);
      break;
    case "private":
      if (event.from === "you") body.append(`(private to `, aliasSpan(event.to), ") ");
      else body.append("(private) ", aliasSpan(event.from), ": ");
      addText(body, event.text);
      break;
    case "join":
      body.append("→ ", aliasSpan(event.alias), " joined");
      break;
    case "leave":
      body.append("← ", aliasSpan(event.alias), " left");
      if (event.to !== undefined) body.append(` for #${event.to}`);
      if (event.reason) body.append(` (${event.reason})`);
      break;
    case "nick":
      body.append(aliasSpan(event.from), " is now known as ", aliasSpan(event.to));
      break;
    case "crowd":
      body.append(crowdText(event));
      break;
    case "error":
      body.append("! ");
      addText(body, event.text);
      break;
    case "bye":
      body.append("!! ");
      addText(body, event.text);
      break;
    default:
      addText(body, event.text);
  }
  row.append(body);
  if (markNext) {
    markNext = false;
    log.querySelector(".unread")?.remove();
    const marker = document.createElement("div");
    marker.className = "unread";
    marker.setAttribute("role", "separator");
    marker.textContent = "new since you left";
    log.append(marker);
  }
  log.append(row);
  while (log.childElementCount > MAX_LINES) log.firstElementChild!.remove();
  if (stick) {
    scrollToBottom();
  } else {
    unseenBelow++;
    newBelow.textContent = `${unseenBelow} new`;
    newBelow.hidden = false;
  }
}

function mentions(text: string): boolean {
  const escaped = me.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, "iu").test(text);
}

// ---- Input ----

function submit(): void {
  const line = input.value;
  if (phase === "closed") {
    attempt = 0;
    quitting = false;
    connect();
    return;
  }
  if (phase === "connecting" || socket?.readyState !== WebSocket.OPEN) {
    showAlert("Not connected yet; your line is still in the box");
    return;
  }
  if (line.trim() === "" && phase === "joined") return;
  const size = byteLength(line);
  if (size > maxLineBytes) {
    showAlert(`Line too long: ${size} bytes, at most ${maxLineBytes}; it was not sent`);
    return;
  }
  input.value = "";
  hint.textContent = "";
  clearAlert();
  if (phase === "password") {
    password = line;
    send(line);
    return;
  }
  if (phase === "alias") {
    clearAlert();
    send(line);
    return;
  }
  if (sent[sent.length - 1] !== line) sent.push(line);
  if (sent.length > MAX_HISTORY) sent.shift();
  historyIndex = sent.length;
  draft = "";
  if (/^\/quit(\s|$)/i.test(line)) quitting = true;
  sendPaced(line);
  // The server does not send our own lines back: they are shown here.
  const now = Date.now();
  const time = new Date(now).toISOString().slice(11, 19);
  if (/^\/me\s/i.test(line)) {
    const text = line.replace(/^\/me\s+/i, "");
    remember(me, text, now);
    append({ kind: "action", time, history: false, from: me, text }, "action");
  } else if (!line.startsWith("/") || line.startsWith("//")) {
    const text = line.startsWith("//") ? line.slice(1) : line;
    remember(me, text, now);
    append({ kind: "message", time, history: false, from: me, text }, "message");
  }
  scrollToBottom();
}

function onTab(event: KeyboardEvent): void {
  const before = input.value.slice(0, input.selectionStart ?? input.value.length);
  // An empty line lets Tab move on, so the page stays usable from the keyboard.
  if (phase !== "joined" || before === "") return;
  const [hits, word] = complete(before, online, rooms);
  event.preventDefault();
  if (hits.length === 0) {
    hint.textContent = "no completion";
    return;
  }
  const common = hits.reduce((a, b) => {
    let i = 0;
    while (i < a.length && i < b.length && a[i]!.toLowerCase() === b[i]!.toLowerCase()) i++;
    return a.slice(0, i);
  });
  const replacement = hits.length === 1 ? hits[0]! : common;
  if (replacement.length >= word.length) {
    const after = input.value.slice(before.length);
    const start = before.slice(0, before.length - word.length) + replacement;
    input.value = start + after;
    input.setSelectionRange(start.length, start.length);
  }
  hint.textContent = hits.length > 1 ? hits.map((h) => h.trim()).join("  ") : "";
}

input.addEventListener("keydown", (event) => {
  if (event.key === "Tab" && !event.shiftKey) return onTab(event);
  if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
    event.preventDefault();
    const next = neighbourRoom(event.key === "ArrowUp" ? -1 : 1);
    if (next !== undefined) switchRoom(next);
    return;
  }
  if (event.key === "ArrowUp" && phase === "joined" && sent.length > 0) {
    event.preventDefault();
    if (historyIndex === sent.length) draft = input.value;
    historyIndex = Math.max(0, historyIndex - 1);
    input.value = sent[historyIndex]!;
    return;
  }
  if (event.key === "ArrowDown" && phase === "joined" && historyIndex < sent.length) {
    event.preventDefault();
    historyIndex++;
    input.value = historyIndex === sent.length ? draft : sent[historyIndex]!;
    return;
  }
  if (event.key === "Escape") {
    hint.textContent = "";
  }
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
  input.focus();
});

newBelow.addEventListener("click", () => {
  scrollToBottom();
  input.focus();
});

log.addEventListener("scroll", () => {
  if (atBottom()) {
    unseenBelow = 0;
    newBelow.hidden = true;
  }
});

document.addEventListener("visibilitychange", () => {
  // The marker goes before the first line that comes while the tab is hidden.
  markNext = document.visibilityState === "hidden";
});

// A key typed anywhere on the page goes to the input.
document.addEventListener("keydown", (event) => {
  if (document.activeElement === input || event.ctrlKey || event.metaKey || event.altKey) return;
  if (
    event.key.length === 1 &&
    !(document.activeElement instanceof HTMLButtonElement && event.key === " ")
  ) {
    input.focus();
  }
});

function storedAlias(): string {
  try {
    return localStorage.getItem("confab.alias") ?? "";
  } catch {
    return "";
  }
}

function storeAlias(alias: string): void {
  try {
    localStorage.setItem("confab.alias", alias);
  } catch {
    // Storage may be off; the alias is only a convenience.
  }
}

clearAlert();
renderRooms();
connect();
input.focus();
