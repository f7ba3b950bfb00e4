import assert from "node:assert/strict";
import { aliasColor, eventDate, Renderer, type RenderOptions } from "../../client/render.ts";
import { parseServerLine, type ServerEvent } from "../../protocol/wire.ts";
import { isClean } from "../../protocol/sanitize.ts";

/** 2026-11-26 12:00:00 UTC, the "now" of every rendering here. */
const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const LIVE = "11:59:30";
const PAST = "2026-11-25 08:07:09";

const ESC = "\x1b";
const MENTION = "\x1b[1;30;43m";
const BOLD = "\x1b[1m";
const RESET = "\x1b[0m";

/** One event of every kind (and both variants where there are two). */
function everyEvent(text: string, alias = "alice"): ServerEvent[] {
  return [
    { kind: "prompt", prompt: "alias", text },
    { kind: "prompt", prompt: "password", text },
    { kind: "error", text },
    { kind: "bye", text },
    { kind: "message", time: LIVE, history: false, from: alias, text },
    { kind: "message", time: PAST, history: true, from: alias, text },
    { kind: "action", time: LIVE, history: false, from: alias, text },
    { kind: "action", time: PAST, history: true, from: alias, text },
    { kind: "private", time: LIVE, from: alias, to: "you", text },
    { kind: "private", time: LIVE, from: "you", to: alias, text },
    { kind: "join", time: LIVE, alias },
    { kind: "leave", time: LIVE, alias, reason: "" },
    { kind: "leave", time: LIVE, alias, reason: text },
    { kind: "nick", time: LIVE, from: alias, to: `${alias}2` },
    { kind: "notice", time: LIVE, text },
    { kind: "unknown", text },
  ];
}

function renderer(options: Partial<RenderOptions> = {}, me = "bob"): Renderer {
  const r = new Renderer({ json: false, color: false, timestamps: true, bell: false, ...options });
  r.me = me;
  return r;
}

const two = (n: number) => String(n).padStart(2, "0");
/** Local `HH:MM` of a date, as the renderer shows times. */
const localClock = (d: Date) => `${two(d.getHours())}:${two(d.getMinutes())}`;
/** Local `YYYY-MM-DD` of a date. */
const localDay = (d: Date) => `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;

Deno.test("eventDate() reads a history time as a full UTC date and time", () => {
  assert.equal(eventDate(PAST, NOW).getTime(), Date.UTC(2026, 10, 25, 8, 7, 9));
  // `now` plays no part for a full date.
  assert.equal(eventDate(PAST, 0).getTime(), Date.UTC(2026, 10, 25, 8, 7, 9));
});

Deno.test("eventDate() places a live HH:MM:SS on the day nearest to now", async (t) => {
  await t.step("same day, earlier", () => {
    assert.equal(eventDate("09:05:07", NOW).getTime(), Date.UTC(2026, 10, 26, 9, 5, 7));
  });
  await t.step("same day, a little later (clock skew)", () => {
    assert.equal(eventDate("12:00:05", NOW).getTime(), Date.UTC(2026, 10, 26, 12, 0, 5));
  });
  await t.step("just before midnight, seen just after it", () => {
    const now = Date.UTC(2026, 10, 27, 0, 0, 30);
    assert.equal(eventDate("23:59:59", now).getTime(), Date.UTC(2026, 10, 26, 23, 59, 59));
  });
  await t.step("just after midnight, seen just before it", () => {
    const now = Date.UTC(2026, 10, 26, 23, 59, 50);
    assert.equal(eventDate("00:00:10", now).getTime(), Date.UTC(2026, 10, 27, 0, 0, 10));
  });
  await t.step("across a year boundary", () => {
    const now = Date.UTC(2027, 0, 1, 0, 1, 0);
    assert.equal(eventDate("23:58:00", now).getTime(), Date.UTC(2026, 11, 31, 23, 58, 0));
  });
});

Deno.test("aliasColor() is stable, ignores case and picks from the palette", () => {
  const aliases = ["alice", "bob", "carol", "dave", "erin", "frank", "Zoë", "日本"];
  for (const alias of aliases) {
    const color = aliasColor(alias);
    assert.equal(aliasColor(alias), color);
    assert.equal(aliasColor(alias.toUpperCase()), color);
    assert.ok((color >= 31 && color <= 36) || (color >= 91 && color <= 96), `${alias}: ${color}`);
  }
  assert.ok(new Set(aliases.map(aliasColor)).size > 1, "not every alias gets the same colour");
});

Deno.test("Renderer.render() in text mode without colour outputs no ESC at all", () => {
  const hostile = "hi bob \x1b[2J\x1b]0;title\x07\u009b31m\u202eevil\r[12:00:00] server: x";
  const r = renderer({ color: false, timestamps: true, bell: false });
  for (const alias of ["alice", "bob", "ev\x1bil"]) {
    for (const event of everyEvent(hostile, alias)) {
      const out = r.render(event, NOW);
      assert.ok(!out.includes(ESC), `${event.kind}: ${JSON.stringify(out)}`);
      assert.ok(isClean(out), `${event.kind}: ${JSON.stringify(out)}`);
    }
  }
  assert.ok(!r.renderOwn("message", hostile, NOW).includes(ESC));
  assert.ok(!r.renderOwn("action", hostile, NOW).includes(ESC));
});

Deno.test("Renderer.render() in text mode shows each kind in its wire shape", () => {
  const r = renderer({ timestamps: false }, "me");
  const shown = everyEvent("t\x1bx", "al").map((e) => r.render(e, NOW));
  const past = eventDate(PAST, NOW);
  const mark = `[history ${localDay(past)} ${localClock(past)}] `;
  assert.deepEqual(shown, [
    "t^[x",
    "t^[x",
    "! t^[x",
    "!! t^[x",
    "al: t^[x",
    `${mark}al: t^[x`,
    "* al t^[x",
    `${mark}* al t^[x`,
    "(private) al: t^[x",
    "(private to al) t^[x",
    "--> al joined",
    "<-- al left",
    "<-- al left (t^[x)",
    "--- al is now known as al2",
    "-- t^[x",
    "t^[x",
  ]);
});

Deno.test("Renderer.render() shows local HH:MM times unless timestamps are off", () => {
  const event: ServerEvent = {
    kind: "message",
    time: LIVE,
    history: false,
    from: "al",
    text: "hi",
  };
  const clock = localClock(eventDate(LIVE, NOW));
  assert.equal(renderer({ timestamps: true }).render(event, NOW), `${clock} al: hi`);
  assert.equal(renderer({ timestamps: false }).render(event, NOW), "al: hi");
  const join: ServerEvent = { kind: "join", time: LIVE, alias: "al" };
  assert.equal(renderer({ timestamps: true }).render(join, NOW), `${clock} --> al joined`);
  assert.equal(renderer({ timestamps: false }).render(join, NOW), "--> al joined");
});

Deno.test("Renderer.render() marks history lines, even with timestamps off", () => {
  const past = eventDate(PAST, NOW);
  const mark = `[history ${localDay(past)} ${localClock(past)}] `;
  for (const timestamps of [true, false]) {
    const r = renderer({ timestamps });
    const old = r.render(
      { kind: "message", time: PAST, history: true, from: "al", text: "x" },
      NOW,
    );
    assert.equal(old, `${mark}al: x`);
    const live = r.render(
      { kind: "message", time: LIVE, history: false, from: "al", text: "x" },
      NOW,
    );
    assert.ok(!live.includes("[history"), live);
  }
});

Deno.test("Renderer.render() with colour gives each alias its own stable colour", () => {
  const r = renderer({ color: true, timestamps: false }, "me");
  const line = (from: string) =>
    r.render({ kind: "message", time: LIVE, history: false, from, text: "x" }, NOW);
  for (const alias of ["alice", "bob", "carol"]) {
    const painted = `\x1b[${aliasColor(alias)}m${alias}${RESET}`;
    assert.ok(line(alias).startsWith(painted), JSON.stringify(line(alias)));
    assert.equal(line(alias), line(alias));
  }
  // The same colour follows the alias into actions and private lines.
  const action = r.render(
    { kind: "action", time: LIVE, history: false, from: "bob", text: "x" },
    NOW,
  );
  assert.ok(action.includes(`\x1b[${aliasColor("bob")}mbob`), JSON.stringify(action));
  const priv = r.render({ kind: "private", time: LIVE, from: "bob", to: "you", text: "x" }, NOW);
  assert.ok(priv.includes(`\x1b[${aliasColor("bob")}mbob`), JSON.stringify(priv));
});

Deno.test("Renderer.render() with colour shows your own alias in bold", () => {
  const r = renderer({ color: true, timestamps: false }, "alice");
  const out = r.render(
    { kind: "message", time: LIVE, history: false, from: "alice", text: "x" },
    NOW,
  );
  assert.ok(out.startsWith(`${BOLD}alice${RESET}`), JSON.stringify(out));
  assert.ok(r.renderOwn("message", "x", NOW).includes(`${BOLD}alice${RESET}: x`));
});

Deno.test("Renderer.mentions() matches your alias as a whole word, ignoring case", () => {
  const r = renderer({}, "bob");
  for (const text of ["bob", "hi bob", "Bob: look", "hey BOB!", "@bob", "bob's turn", "ask bob."]) {
    assert.equal(r.mentions(text), true, text);
  }
  for (const text of ["bobby", "jimbob", "bob_2", "bob-ish", "x.bob", "b o b", ""]) {
    assert.equal(r.mentions(text), false, text);
  }
  r.me = "";
  assert.equal(r.mentions("anything"), false);
});

Deno.test("Renderer.render() highlights lines that mention you", async (t) => {
  const said = (text: string): ServerEvent => ({
    kind: "message",
    time: LIVE,
    history: false,
    from: "al",
    text,
  });

  await t.step("with colour", () => {
    const r = renderer({ color: true, timestamps: false }, "bob");
    const out = r.render(said("hi bob"), NOW);
    assert.ok(out.endsWith(`${MENTION}hi bob${RESET}`), JSON.stringify(out));
    assert.ok(!r.render(said("hi bobby"), NOW).includes(MENTION));
    const action = r.render({
      kind: "action",
      time: LIVE,
      history: false,
      from: "al",
      text: "pokes bob",
    }, NOW);
    assert.ok(action.includes(MENTION), JSON.stringify(action));
    const priv = r.render(
      { kind: "private", time: LIVE, from: "al", to: "you", text: "bob?" },
      NOW,
    );
    assert.ok(priv.includes(MENTION), JSON.stringify(priv));
  });

  await t.step("the bell rings only when enabled and mentioned", () => {
    const ringing = renderer({ bell: true, timestamps: false }, "bob");
    assert.equal(ringing.render(said("hi bob"), NOW), "al: \x07hi bob");
    assert.equal(ringing.render(said("hi all"), NOW), "al: hi all");
    const quiet = renderer({ bell: false, timestamps: false }, "bob");
    assert.equal(quiet.render(said("hi bob"), NOW), "al: hi bob");
  });

  await t.step("hostile text in a mention is still escaped", () => {
    const r = renderer({ color: true, timestamps: false }, "bob");
    const out = r.render(said("bob \x1b[2J"), NOW);
    assert.ok(out.includes(`${MENTION}bob ^[[2J${RESET}`), JSON.stringify(out));
  });
});

Deno.test("Renderer.render() in JSON mode emits one JSON object per event of every kind", () => {
  const r = renderer({ json: true, color: true, bell: true }, "bob");
  const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
  for (const event of everyEvent("hello bob (see: x)")) {
    const out = r.render(event, NOW);
    assert.ok(!out.includes("\n"), out);
    assert.ok(!out.includes(ESC), out);
    const parsed = JSON.parse(out) as Record<string, unknown>;
    assert.equal(typeof parsed, "object");
    const expected: Record<string, unknown> = { type: event.kind };
    for (const [key, value] of Object.entries(event)) {
      if (key === "kind") continue;
      expected[key] = key === "time" ? eventDate(String(value), NOW).toISOString() : value;
    }
    assert.deepEqual(parsed, expected);
    if ("time" in event) assert.match(String(parsed.time), iso);
  }
});

Deno.test("Renderer.render() in JSON mode gives ISO times on the right day", () => {
  const r = renderer({ json: true });
  const live = JSON.parse(r.render({ kind: "join", time: LIVE, alias: "al" }, NOW));
  assert.equal(live.time, new Date(Date.UTC(2026, 10, 26, 11, 59, 30)).toISOString());
  const old = JSON.parse(
    r.render({ kind: "message", time: PAST, history: true, from: "al", text: "x" }, NOW),
  );
  assert.equal(old.time, new Date(Date.UTC(2026, 10, 25, 8, 7, 9)).toISOString());
  assert.equal(old.history, true);
});

Deno.test("Renderer.render() in JSON mode escapes control, C1 and bidi characters", () => {
  const r = renderer({ json: true });
  const text = "a\x1b[2J\x07\x7f\u0085\u009b\u061c\u200e\u202e\u2066\u2028\u2029\ufeffz";
  for (const event of everyEvent(text, "al")) {
    const out = r.render(event, NOW);
    assert.ok(isClean(out), `${event.kind}: ${JSON.stringify(out)}`);
    // The raw text survives the round trip through JSON.
    const parsed = JSON.parse(out);
    if ("text" in event) assert.equal(parsed.text, event.text);
    if (event.kind === "leave") assert.equal(parsed.reason, event.reason);
  }
  const out = r.render({ kind: "unknown", text: "\u202e" }, NOW);
  assert.equal(out, '{"type":"unknown","text":"\\u202e"}');
});

Deno.test("Renderer.render() in JSON mode adds the room once it is known, and only in JSON", () => {
  const event: ServerEvent = { kind: "message", time: LIVE, history: false, from: "al", text: "x" };
  const json = renderer({ json: true });
  assert.equal(JSON.parse(json.render(event, NOW)).room, undefined);
  json.room = "dev";
  assert.equal(JSON.parse(json.render(event, NOW)).room, "dev");
  const private_ = JSON.parse(
    json.render({ kind: "private", time: LIVE, from: "al", to: "you", text: "psst" }, NOW),
  );
  assert.equal(private_.room, "dev");
  const text = renderer({ timestamps: false });
  text.room = "dev";
  assert.equal(text.render(event, NOW), "al: x");
});

Deno.test("Renderer.render() shows a crowd summary as the server worded it, and as data in JSON", () => {
  const line = "[10:00:00] -- alice, bob joined; carol left (2,408 here)";
  const event = parseServerLine(line);
  assert.equal(
    renderer({ timestamps: false }).render(event, NOW),
    "-- alice, bob joined; carol left (2,408 here)",
  );
  const json = JSON.parse(renderer({ json: true }).render(event, NOW));
  assert.equal(json.type, "crowd");
  assert.deepEqual([json.joined, json.left, json.joinedCount, json.leftCount, json.here], [
    ["alice", "bob"],
    ["carol"],
    2,
    1,
    2408,
  ]);
});
