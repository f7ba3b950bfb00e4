import assert from "node:assert/strict";
import {
  clockUtc,
  dateTimeUtc,
  formatAction,
  formatBye,
  formatCrowd,
  formatError,
  formatHistory,
  formatJoin,
  formatLeave,
  formatLimits,
  formatMessage,
  formatMore,
  formatNick,
  formatNotice,
  formatPrivateIn,
  formatPrivateOut,
  formatPrompt,
  formatTaken,
  formatWelcome,
  FULL_TEXT,
  isCapacityRefusal,
  parseLimits,
  parseMore,
  parseRoomListing,
  parseServerLine,
  parseTaken,
  parseWelcome,
  PER_ADDRESS_TEXT,
  type ServerEvent,
  SHUTDOWN_TEXT,
  STALE_TEXT,
} from "../../protocol/wire.ts";
import { COMMAND_NAMES } from "../../protocol/commands.ts";
import { SERVER_COMMAND_NAMES } from "../../server/commands.ts";

/** 2026-11-26 09:05:07 UTC. */
const MS = Date.UTC(2026, 10, 26, 9, 5, 7);
const TIME = "09:05:07";
const DATE_TIME = "2026-11-26 09:05:07";

Deno.test("clockUtc() and dateTimeUtc() print zero-padded UTC fields", () => {
  const ms = Date.UTC(2026, 0, 2, 3, 4, 5, 999);
  assert.equal(clockUtc(ms), "03:04:05");
  assert.equal(dateTimeUtc(ms), "2026-01-02 03:04:05");
  assert.equal(clockUtc(Date.UTC(2026, 11, 31, 23, 59, 59)), "23:59:59");
  assert.equal(dateTimeUtc(Date.UTC(2026, 11, 31, 23, 59, 59)), "2026-12-31 23:59:59");
});

Deno.test("format*() stamp each line with its own time", () => {
  // Calls for different seconds, and back again, each carry their own stamp.
  const times = [MS, MS + 1000, MS + 1999, MS, MS + 86_400_000 + 61_000, MS - 1];
  for (const ms of times) {
    assert.equal(formatMessage(ms, "a", "x"), `[${clockUtc(ms)}] a: x`);
    assert.equal(formatNotice(ms, "x"), `[${clockUtc(ms)}] -- x`);
  }
  assert.equal(formatJoin(MS + 1000, "a"), "[09:05:08] --> a joined");
  assert.equal(formatJoin(MS - 1, "a"), "[09:05:06] --> a joined");
});

/** Cases: a name, the formatted line, the exact wire text and the parsed event. */
const ROUND_TRIPS: [string, string, string, ServerEvent][] = [
  [
    "formatPrompt() alias",
    formatPrompt("alias", "choose an alias"),
    "? alias: choose an alias",
    { kind: "prompt", prompt: "alias", text: "choose an alias" },
  ],
  [
    "formatPrompt() password",
    formatPrompt("password", "this room needs a password"),
    "? password: this room needs a password",
    { kind: "prompt", prompt: "password", text: "this room needs a password" },
  ],
  [
    "formatPrompt() with empty text",
    formatPrompt("alias", ""),
    "? alias: ",
    { kind: "prompt", prompt: "alias", text: "" },
  ],
  [
    "formatError()",
    formatError("wrong password"),
    "! wrong password",
    { kind: "error", text: "wrong password" },
  ],
  [
    "formatError() with text starting with '!'",
    formatError("! odd"),
    "! ! odd",
    { kind: "error", text: "! odd" },
  ],
  [
    "formatBye()",
    formatBye("server shutting down"),
    "!! server shutting down",
    { kind: "bye", text: "server shutting down" },
  ],
  [
    "formatMessage()",
    formatMessage(MS, "alice", "hello: world"),
    `[${TIME}] alice: hello: world`,
    { kind: "message", time: TIME, history: false, from: "alice", text: "hello: world" },
  ],
  [
    "formatMessage() with empty text",
    formatMessage(MS, "alice", ""),
    `[${TIME}] alice: `,
    { kind: "message", time: TIME, history: false, from: "alice", text: "" },
  ],
  [
    "formatAction()",
    formatAction(MS, "alice", "waves (happily)"),
    `[${TIME}] * alice waves (happily)`,
    { kind: "action", time: TIME, history: false, from: "alice", text: "waves (happily)" },
  ],
  [
    "formatHistory() message",
    formatHistory(MS, "message", "bob", "earlier"),
    `[history ${DATE_TIME}] bob: earlier`,
    { kind: "message", time: DATE_TIME, history: true, from: "bob", text: "earlier" },
  ],
  [
    "formatHistory() action",
    formatHistory(MS, "action", "bob", "shrugs"),
    `[history ${DATE_TIME}] * bob shrugs`,
    { kind: "action", time: DATE_TIME, history: true, from: "bob", text: "shrugs" },
  ],
  [
    "formatPrivateIn()",
    formatPrivateIn(MS, "bob", "psst: hi"),
    `[${TIME}] (private) bob: psst: hi`,
    { kind: "private", time: TIME, from: "bob", to: "you", text: "psst: hi" },
  ],
  [
    "formatPrivateOut()",
    formatPrivateOut(MS, "bob", "psst (quietly)"),
    `[${TIME}] (private to bob) psst (quietly)`,
    { kind: "private", time: TIME, from: "you", to: "bob", text: "psst (quietly)" },
  ],
  [
    "formatJoin()",
    formatJoin(MS, "carol"),
    `[${TIME}] --> carol joined`,
    { kind: "join", time: TIME, alias: "carol" },
  ],
  [
    "formatLeave() without a reason",
    formatLeave(MS, "carol"),
    `[${TIME}] <-- carol left`,
    { kind: "leave", time: TIME, alias: "carol", reason: "" },
  ],
  [
    "formatLeave() with a reason",
    formatLeave(MS, "carol", "quit: bye"),
    `[${TIME}] <-- carol left (quit: bye)`,
    { kind: "leave", time: TIME, alias: "carol", reason: "quit: bye" },
  ],
  [
    "formatLeave() with parentheses in the reason",
    formatLeave(MS, "carol", "kicked (by admin) (twice)"),
    `[${TIME}] <-- carol left (kicked (by admin) (twice))`,
    { kind: "leave", time: TIME, alias: "carol", reason: "kicked (by admin) (twice)" },
  ],
  [
    "formatLeave() with an unbalanced parenthesis in the reason",
    formatLeave(MS, "carol", "oops) ("),
    `[${TIME}] <-- carol left (oops) ()`,
    { kind: "leave", time: TIME, alias: "carol", reason: "oops) (" },
  ],
  [
    "formatNick()",
    formatNick(MS, "alice", "alicia"),
    `[${TIME}] --- alice is now known as alicia`,
    { kind: "nick", time: TIME, from: "alice", to: "alicia" },
  ],
  [
    "formatNotice()",
    formatNotice(MS, "welcome, alice! 2 online: bob, carol"),
    `[${TIME}] -- welcome, alice! 2 online: bob, carol`,
    { kind: "notice", time: TIME, text: "welcome, alice! 2 online: bob, carol" },
  ],
];

Deno.test("parseServerLine() reads back every kind of line format*() writes", async (t) => {
  for (const [name, line, wire, event] of ROUND_TRIPS) {
    await t.step(name, () => {
      assert.equal(line, wire);
      assert.deepEqual(parseServerLine(line), event);
    });
  }
});

Deno.test("parseServerLine() round-trips aliases made of '.', '-', '_' and non-ASCII letters", () => {
  for (const alias of ["--", "---", "-", ".", "a.b", "_-_", "Zoë", "日本語", "q\u0303"]) {
    assert.deepEqual(parseServerLine(formatMessage(MS, alias, "hi")), {
      kind: "message",
      time: TIME,
      history: false,
      from: alias,
      text: "hi",
    }, alias);
    assert.deepEqual(parseServerLine(formatAction(MS, alias, "hi")), {
      kind: "action",
      time: TIME,
      history: false,
      from: alias,
      text: "hi",
    }, alias);
    assert.deepEqual(parseServerLine(formatJoin(MS, alias)), {
      kind: "join",
      time: TIME,
      alias,
    }, alias);
    assert.deepEqual(parseServerLine(formatLeave(MS, alias, "x")), {
      kind: "leave",
      time: TIME,
      alias,
      reason: "x",
    }, alias);
    assert.deepEqual(parseServerLine(formatNick(MS, alias, "z")), {
      kind: "nick",
      time: TIME,
      from: alias,
      to: "z",
    }, alias);
    assert.deepEqual(parseServerLine(formatPrivateIn(MS, alias, "x")), {
      kind: "private",
      time: TIME,
      from: alias,
      to: "you",
      text: "x",
    }, alias);
  }
});

Deno.test("parseServerLine() reads a message whose text looks like another kind as a message", () => {
  const lookalikes = [
    "--> bob joined",
    "<-- bob left",
    "<-- bob left (kicked)",
    "--- bob is now known as eve",
    "-- welcome, everyone",
    "* bob waves",
    "(private) bob: secret",
    "(private to bob) secret",
    "[12:00:00] server: shutting down",
    "[history 2026-01-01 00:00:00] bob: old",
    "! error",
    "!! bye",
    "? password: again",
  ];
  for (const text of lookalikes) {
    assert.deepEqual(parseServerLine(formatMessage(MS, "alice", text)), {
      kind: "message",
      time: TIME,
      history: false,
      from: "alice",
      text,
    }, text);
    assert.deepEqual(parseServerLine(formatHistory(MS, "message", "alice", text)), {
      kind: "message",
      time: DATE_TIME,
      history: true,
      from: "alice",
      text,
    }, text);
    assert.deepEqual(parseServerLine(formatAction(MS, "alice", text)), {
      kind: "action",
      time: TIME,
      history: false,
      from: "alice",
      text,
    }, text);
    assert.deepEqual(parseServerLine(formatPrivateIn(MS, "alice", text)), {
      kind: "private",
      time: TIME,
      from: "alice",
      to: "you",
      text,
    }, text);
    assert.deepEqual(parseServerLine(formatPrivateOut(MS, "alice", text)), {
      kind: "private",
      time: TIME,
      from: "you",
      to: "alice",
      text,
    }, text);
    assert.deepEqual(parseServerLine(formatNotice(MS, text)), {
      kind: "notice",
      time: TIME,
      text,
    }, text);
  }
});

Deno.test("parseServerLine() returns unknown, with the whole line, for anything else", () => {
  const odd = [
    "",
    "hello",
    "?alias: no space",
    "? nickname: unknown prompt",
    "!!no space",
    "[12:00] short stamp",
    "[1:00:00] one-digit hour",
    "[12:00:00]no space",
    "[12:00:00] ",
    "[12:00:00] has spaces: before the colon",
    "[history 2026-11-26] date only",
    "[12:00:00] <-- bob left early",
    "[12:00:00] --> bob joins",
  ];
  for (const line of odd) {
    assert.deepEqual(parseServerLine(line), { kind: "unknown", text: line }, line);
  }
});

Deno.test("formatLimits() and parseLimits() agree, singular and plural, with and without a limit", () => {
  for (
    const limits of [
      { rate: 5, burst: 20, maxLineBytes: 4096 },
      { rate: 1, burst: 1, maxLineBytes: 16 },
      { rate: 0, burst: 0, maxLineBytes: 65536 },
    ]
  ) {
    assert.deepEqual(parseLimits(formatLimits(limits)), limits);
  }
  assert.equal(
    formatLimits({ rate: 1, burst: 1, maxLineBytes: 16 }),
    "limits: 1 line per second, bursts of 1; lines up to 16 bytes",
  );
  assert.equal(parseLimits("welcome, bob! you are the only one here"), undefined);
});

Deno.test("formatWelcome() and parseWelcome() agree on the count and the names", () => {
  assert.deepEqual(parseWelcome(formatWelcome("bob", 1, ["bob"])), {
    alias: "bob",
    online: 1,
    names: ["bob"],
  });
  assert.equal(formatWelcome("bob", 1, ["bob"]), "welcome, bob! you are the only one here");
  assert.deepEqual(parseWelcome(formatWelcome("bob", 30, ["alice", "carol", "bob"])), {
    alias: "bob",
    online: 30,
    names: ["alice", "carol", "bob"],
  });
  assert.equal(parseWelcome("limits: no rate limit; lines up to 4096 bytes"), undefined);
});

Deno.test("COMMAND_NAMES, shared with clients, are exactly the server's commands", () => {
  assert.deepEqual([...COMMAND_NAMES].sort(), [...SERVER_COMMAND_NAMES].sort());
});

Deno.test("formatCrowd() names up to five who came and went, counts more, and parseServerLine() reads both back", async (t) => {
  const ms = Date.UTC(2026, 0, 1, 10, 0, 0);
  const cases: [Parameters<typeof formatCrowd>[1], string][] = [
    [
      { joinedCount: 2, leftCount: 1, joined: ["alice", "bob"], left: ["carol"], here: 2408 },
      "[10:00:00] -- alice, bob joined; carol left (2,408 here)",
    ],
    [
      { joinedCount: 12, leftCount: 3, joined: [], left: [], here: 2408 },
      "[10:00:00] -- 12 people joined; 3 people left (2,408 here)",
    ],
    [
      { joinedCount: 0, leftCount: 1234, joined: [], left: [], here: 300 },
      "[10:00:00] -- 1,234 people left (300 here)",
    ],
    [
      { joinedCount: 6, leftCount: 1, joined: [], left: [], here: 300 },
      "[10:00:00] -- 6 people joined; 1 person left (300 here)",
    ],
    // An alias may be all digits: named, it is not mistaken for a count.
    [
      { joinedCount: 1, leftCount: 0, joined: ["12"], left: [], here: 7 },
      "[10:00:00] -- 12 joined (7 here)",
    ],
    [
      { joinedCount: 0, leftCount: 2, joined: [], left: ["d.e", "f-g"], here: 1 },
      "[10:00:00] -- d.e, f-g left (1 here)",
    ],
  ];
  for (const [crowd, line] of cases) {
    await t.step(line, () => {
      assert.equal(formatCrowd(ms, crowd), line);
      assert.deepEqual(parseServerLine(line), { kind: "crowd", time: "10:00:00", ...crowd });
    });
  }
  await t.step("other notices that end in a count stay notices", () => {
    for (const text of ["welcome, alice (3 here)", "a, b, (3 here)", "joined (3 here)"]) {
      assert.equal(parseServerLine(`[10:00:00] -- ${text}`).kind, "notice", text);
    }
  });
});

Deno.test("formatTaken() and parseTaken() agree, and nothing else reads as a taken alias", () => {
  for (const alias of ["dora", "ZOË", "a-b_c.d", "x is taken; choose another"]) {
    assert.equal(parseTaken(formatTaken(alias)), alias);
  }
  for (const text of ["you are already dora", " is taken; choose another", "dora is taken"]) {
    assert.equal(parseTaken(text), undefined, text);
  }
});

Deno.test("isCapacityRefusal() tells a full server from being let go", () => {
  assert.ok(isCapacityRefusal(`${FULL_TEXT} (500 connections)`));
  assert.ok(isCapacityRefusal(`${PER_ADDRESS_TEXT} (8)`));
  for (const text of [SHUTDOWN_TEXT, "idle for too long", "disconnected: too slow", "bye"]) {
    assert.ok(!isCapacityRefusal(text), text);
  }
});

Deno.test("the lines after a list, 'and N more' and 'as last known', are no rows of it", () => {
  assert.equal(parseMore(formatMore(12)), 12);
  assert.equal(parseMore("  and many more"), undefined);
  for (const text of [formatMore(3), STALE_TEXT]) {
    assert.equal(parseRoomListing(text), undefined, text);
    assert.equal(parseServerLine(formatNotice(0, text)).kind, "notice");
  }
});
