/**
 * Every slash command over real sockets, and the history replay newcomers get.
 */

import assert from "node:assert/strict";
import {
  assertNothingBefore,
  closeAll,
  joinAll,
  live,
  nextLine,
  startServer,
  T,
  TestClient,
} from "../_helpers.ts";
import { isClean } from "../../protocol/sanitize.ts";

const HISTORY_LINE = /^\[history \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /;

Deno.test("/help lists every command and /help CMD explains one", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await alice.send("/help");
  assert.match(
    await nextLine(alice),
    live("-- commands (//text sends a line that starts with /):"),
  );
  const listed: string[] = [];
  for (let i = 0; i < 12; i++) {
    const line = await nextLine(alice);
    const m = new RegExp(`^${T}--   (/\\w+)`).exec(line);
    assert.ok(m, `not a command line: ${line}`);
    listed.push(m[1]!);
  }
  assert.deepEqual(listed, [
    "/help",
    "/who",
    "/nick",
    "/msg",
    "/reply",
    "/me",
    "/join",
    "/rooms",
    "/topic",
    "/away",
    "/back",
    "/quit",
  ]);
  await alice.send("/help msg");
  assert.match(await nextLine(alice), live("-- /msg ALIAS TEXT: a private message to one person"));
  assert.match(
    await nextLine(alice),
    live(
      "-- only you and ALIAS see it, whatever room ALIAS is in; it is never kept in history",
    ),
  );
  await alice.send("/help /names");
  assert.match(
    await nextLine(alice),
    live("-- /who (also /names): who is in this room, for how long, and who is away"),
  );
  await alice.send("/HELP ME");
  assert.match(await nextLine(alice), live("-- /me TEXT: an action, shown as * alias TEXT"));
  await alice.send("/help dance");
  assert.equal(await nextLine(alice), "! no command /dance; /help lists them");
});

Deno.test("/who and /names list who is online, for how long, and who is away", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob] = clients as [TestClient, TestClient, TestClient];
  try {
    await bob.send("/away at lunch");
    assert.match(await nextLine(bob), live("-- you are marked as away: at lunch"));
    for (const command of ["/who", "/names", "/WHO"]) {
      await alice.send(command);
      assert.match(await nextLine(alice), live("-- 3 online:"), command);
      assert.match(await nextLine(alice), new RegExp(`^${T}--   alice, here \\d+s$`));
      assert.match(
        await nextLine(alice),
        new RegExp(`^${T}--   bob, here \\d+s \\(away: at lunch\\)$`),
      );
      assert.match(await nextLine(alice), new RegExp(`^${T}--   carol, here \\d+s$`));
    }
    // /who is a reply to the sender only.
    await assertNothingBefore(bob, alice, "alice", "marker");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/nick renames in front of everyone and refuses taken or invalid names", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    await alice.send("/nick alicia");
    for (const client of clients) {
      assert.match(await nextLine(client), live("--- alice is now known as alicia"));
    }
    await alice.send("as alicia");
    assert.match(await nextLine(bob), live("alicia: as alicia"));
    assert.match(await nextLine(carol), live("alicia: as alicia"));

    await alice.send("/nick BOB");
    assert.equal(await nextLine(alice), "! BOB is taken; choose another");
    await alice.send("/nick server");
    assert.equal(await nextLine(alice), '! "server" is reserved');
    await alice.send("/nick no way");
    assert.match(await nextLine(alice), /^! an alias is 1 to 32 /);
    await alice.send(`/nick ${"n".repeat(33)}`);
    assert.equal(await nextLine(alice), "! an alias is at most 32 characters, got 33");
    await alice.send("/nick");
    assert.equal(await nextLine(alice), "! usage: /nick NEW");
    await alice.send("/nick alicia");
    assert.equal(await nextLine(alice), "! you are already alicia");
    // Only the case changes: allowed, and announced.
    await alice.send("/nick Alicia");
    for (const client of clients) {
      assert.match(await nextLine(client), live("--- alicia is now known as Alicia"));
    }
    // None of the refusals reached the others.
    await assertNothingBefore(bob, carol, "carol", "marker");
    // The old name is free, the new one is taken.
    await using _another = await TestClient.join(server.addr.port, "alice");
    await using taken = await TestClient.connect(server.addr.port);
    await taken.expect(/^\? alias: /);
    await taken.send("alicia");
    assert.equal(await nextLine(taken), "! alicia is taken; choose another");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/msg reaches only its recipient, and is reported when no one or an away member gets it", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    await alice.send("/msg bob the secret word");
    assert.match(await nextLine(bob), live("(private) alice: the secret word"));
    assert.match(await nextLine(alice), live("(private to bob) the secret word"));
    // carol saw nothing of it.
    await assertNothingBefore(carol, bob, "bob", "marker");
    assert.match(await nextLine(alice), live("bob: marker"));

    // Recipients are found ignoring case; the line shows their real alias.
    await alice.send("/msg BOB again");
    assert.match(await nextLine(bob), live("(private) alice: again"));
    assert.match(await nextLine(alice), live("(private to bob) again"));

    await alice.send("/msg nobody hello?");
    assert.equal(await nextLine(alice), "! no one called nobody is here; /who lists who is");
    await alice.send("/msg alice myself");
    assert.equal(await nextLine(alice), "! that is you; private messages go to someone else");
    await alice.send("/msg bob");
    assert.equal(await nextLine(alice), "! usage: /msg ALIAS TEXT");

    await bob.send("/away in a meeting");
    assert.match(await nextLine(bob), live("-- you are marked as away: in a meeting"));
    await alice.send("/msg bob are you there?");
    assert.match(await nextLine(bob), live("(private) alice: are you there?"));
    assert.match(await nextLine(alice), live("(private to bob) are you there?"));
    assert.match(await nextLine(alice), live("-- bob is away: in a meeting"));
    await assertNothingBefore(carol, bob, "bob", "marker 2");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/reply answers the last member who sent a private message", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    await bob.send("/reply anyone?");
    assert.equal(await nextLine(bob), "! no one has messaged you privately yet");
    await alice.send("/msg bob ping");
    assert.match(await nextLine(bob), live("(private) alice: ping"));
    await carol.send("/msg bob ping too");
    assert.match(await nextLine(bob), live("(private) carol: ping too"));
    assert.match(await nextLine(carol), live("(private to bob) ping too"));
    await bob.send("/reply pong");
    assert.match(await nextLine(carol), live("(private) bob: pong"));
    assert.match(await nextLine(bob), live("(private to carol) pong"));
    await bob.send("/reply");
    assert.equal(await nextLine(bob), "! usage: /reply TEXT");
    // alice only has her own echo, not bob's reply.
    assert.match(await nextLine(alice), live("(private to bob) ping"));
    await assertNothingBefore(alice, carol, "carol", "marker");
    assert.match(await nextLine(bob), live("carol: marker"));
    // Once the last sender left, /reply says so.
    await carol.close();
    assert.match(await nextLine(bob), live("<-- carol left"));
    await bob.send("/reply still there?");
    assert.equal(await nextLine(bob), "! no one called carol is here; /who lists who is");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/me sends an action to the others", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await alice.send("/me waves at everyone");
    assert.match(await nextLine(bob), live("* alice waves at everyone"));
    await alice.send("/me");
    assert.equal(await nextLine(alice), "! usage: /me TEXT");
    await assertNothingBefore(alice, bob, "bob", "marker");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/away marks a member away until /back", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await alice.send("/back");
    assert.equal(await nextLine(alice), "! you are not marked as away");
    await alice.send("/away");
    assert.match(await nextLine(alice), live("-- you are marked as away"));
    await bob.send("/who");
    assert.match(await nextLine(bob), live("-- 2 online:"));
    assert.match(await nextLine(bob), new RegExp(`^${T}--   alice, here \\d+s \\(away: away\\)$`));
    assert.match(await nextLine(bob), new RegExp(`^${T}--   bob, here \\d+s$`));
    await alice.send("/away brb");
    assert.match(await nextLine(alice), live("-- you are marked as away: brb"));
    await alice.send("/back");
    assert.match(await nextLine(alice), live("-- welcome back; you are no longer marked as away"));
    await bob.send("/who");
    assert.match(await nextLine(bob), live("-- 2 online:"));
    assert.match(await nextLine(bob), new RegExp(`^${T}--   alice, here \\d+s$`));
    assert.match(await nextLine(bob), new RegExp(`^${T}--   bob, here \\d+s$`));
    await bob.send("/msg alice hi");
    assert.match(await nextLine(bob), live("(private to alice) hi"));
    await assertNothingBefore(bob, alice, "alice", "marker");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/quit REASON tells the others why and closes the quitter's connection", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    await alice.send("/quit gotta go");
    assert.deepEqual(await alice.closed(), ["!! bye: gotta go"]);
    assert.match(await nextLine(bob), live("<-- alice left (gotta go)"));
    assert.match(await nextLine(carol), live("<-- alice left (gotta go)"));
    await bob.send("/QUIT");
    assert.deepEqual(await bob.closed(), ["!! bye"]);
    assert.match(await nextLine(carol), live("<-- bob left"));
    assert.equal(server.room.size, 1);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("an unknown command gets an explanation and is not broadcast", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await alice.send("/dance wildly");
    assert.equal(await nextLine(alice), "! unknown command /dance; /help lists the commands");
    await alice.send("/");
    assert.equal(await nextLine(alice), "! unknown command /; /help lists the commands");
    await assertNothingBefore(bob, alice, "alice", "marker");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() only accepts /quit and /nohistory before an alias is chosen", async () => {
  await using server = startServer();
  await using client = await TestClient.connect(server.addr.port);
  await client.expect(/^\? alias: /);
  await client.send("/who");
  assert.equal(
    await nextLine(client),
    "! choose an alias first (/quit leaves, /nohistory skips history)",
  );
  assert.match(await nextLine(client), /^\? alias: choose an alias: /);
  await client.send("/quit");
  assert.deepEqual(await client.closed(), ["!! bye"]);
});

/** Connects, chooses `alias` and returns every line up to and including the welcome. */
async function joinAndCollect(
  port: number,
  alias: string,
  before: string[] = [],
): Promise<{ client: TestClient; lines: string[] }> {
  const client = await TestClient.connect(port);
  try {
    await client.expect(/^\? alias: /);
    for (const line of before) {
      await client.send(line);
      await client.expect(/^\? alias: /);
    }
    await client.send(alias);
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const line = await nextLine(client);
      lines.push(line);
      if (/^\[\d\d:\d\d:\d\d\] -- welcome, /.test(line)) break;
    }
    await client.expect(/ -- limits: /);
    return { client, lines };
  } catch (error) {
    await client.close();
    throw error;
  }
}

Deno.test("serve() replays the last historySize messages to a newcomer before the welcome, in order", async () => {
  await using server = startServer({ historySize: 3 });
  const port = server.addr.port;
  const clients = await joinAll(port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    for (let i = 1; i <= 4; i++) {
      await alice.send(`message ${i}`);
      assert.match(await nextLine(bob), live(`alice: message ${i}`));
    }
    await alice.send("/msg bob private, never replayed");
    assert.match(await nextLine(bob), live("(private) alice: private, never replayed"));
    await bob.send("/me nods");
    assert.match(await nextLine(alice), live("(private to bob) private, never replayed"));
    assert.match(await nextLine(alice), live("* bob nods"));
    await alice.send("/msg bob another private one");
    assert.match(await nextLine(bob), live("(private) alice: another private one"));

    const { client: carol, lines } = await joinAndCollect(port, "carol");
    await using _carol = carol;
    const history = lines.slice(0, -1);
    assert.equal(history.length, 3, JSON.stringify(lines));
    for (const line of history) assert.match(line, HISTORY_LINE);
    assert.deepEqual(history.map((line) => line.replace(HISTORY_LINE, "")), [
      "alice: message 3",
      "alice: message 4",
      "* bob nods",
    ]);
    assert.match(lines.at(-1)!, live("-- welcome, carol! 3 online: alice, bob, carol"));
    // The stamp is today's date in UTC (allowing for a midnight in between).
    const day = /^\[history (\d{4}-\d\d-\d\d) /.exec(history[0]!)![1]!;
    const now = Date.now();
    assert.ok(
      [now, now - 86_400_000].some((ms) => new Date(ms).toISOString().startsWith(day)),
      day,
    );
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() with the smallest outbox replays the newest history lines that fit in half of it, then welcomes, and keeps the newcomer", async () => {
  // 2 x (3 x 4096 + 256): the smallest outbox the default line limit allows.
  const outboxBytes = 25_088;
  await using server = startServer({ outboxBytes });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    const said = Array.from(
      { length: 20 },
      (_, i) => `${String(i).padStart(2, "0")} ${"x".repeat(4000)}`,
    );
    // One at a time: twenty at once would overflow bob's small outbox.
    for (const line of said) {
      await alice.send(line);
      assert.match(await nextLine(bob), live(`alice: ${line}`));
    }
    await using carol = await TestClient.connect(server.addr.port);
    clients.push(carol);
    await carol.expect(/^\? alias: /);
    await carol.send("carol");
    const replayed: string[] = [];
    let line = await nextLine(carol);
    while (HISTORY_LINE.test(line)) {
      replayed.push(line);
      line = await nextLine(carol);
    }
    assert.match(line, live("-- welcome, carol! 3 online: alice, bob, carol"));
    assert.match(
      await nextLine(carol),
      live("-- limits: 5 lines per second, bursts of 20; lines up to 4096 bytes"),
    );
    // The newest that fit, in order: each is about 4 KB, the budget half the outbox.
    const size = (l: string) => new TextEncoder().encode(l).length + 1;
    const bytes = replayed.reduce((sum, l) => sum + size(l), 0);
    assert.ok(replayed.length >= 1, "some history was replayed");
    assert.ok(bytes <= outboxBytes / 2, `replayed ${bytes} bytes`);
    assert.ok(bytes + size(replayed[0]!) > outboxBytes / 2, `one more line would have fit`);
    assert.deepEqual(
      replayed.map((l) => l.replace(HISTORY_LINE, "")),
      said.slice(-replayed.length).map((l) => `alice: ${l}`),
    );
    // And carol stays: the next thing she gets is a live line.
    await assertNothingBefore(carol, bob, "bob", "welcome, carol");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() with historySize 0 replays nothing", async () => {
  await using server = startServer({ historySize: 0 });
  const port = server.addr.port;
  const clients = await joinAll(port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await alice.send("not kept");
    assert.match(await nextLine(bob), live("alice: not kept"));
    const { client: carol, lines } = await joinAndCollect(port, "carol");
    await using _carol = carol;
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.match(lines[0]!, live("-- welcome, carol! 3 online: alice, bob, carol"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/nohistory at the alias prompt skips the history replay", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const clients = await joinAll(port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await alice.send("kept in history");
    assert.match(await nextLine(bob), live("alice: kept in history"));

    const quiet = await TestClient.connect(port);
    await using _quiet = quiet;
    await quiet.expect(/^\? alias: /);
    await quiet.send("/nohistory");
    assert.match(await nextLine(quiet), /^\? alias: history replay off; choose an alias: /);
    await quiet.send("carol");
    assert.match(await nextLine(quiet), live("-- welcome, carol! 3 online: alice, bob, carol"));

    // Without /nohistory the same line is replayed.
    const { client: dave, lines } = await joinAndCollect(port, "dave");
    await using _dave = dave;
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.match(lines[0]!, HISTORY_LINE);
    assert.equal(lines[0]!.replace(HISTORY_LINE, ""), "alice: kept in history");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/away and /quit cut a reason longer than 200 characters to 200 and '...'", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    // Counted in characters, not bytes or UTF-16 units: no emoji is split.
    const away = "🙂".repeat(150) + "é".repeat(150);
    const awayShown = "🙂".repeat(150) + "é".repeat(50) + "...";
    await alice.send(`/away ${away}`);
    assert.match(await nextLine(alice), live(`-- you are marked as away: ${awayShown}`));
    await bob.send("/who");
    assert.match(await nextLine(bob), live("-- 2 online:"));
    const who = await nextLine(bob);
    assert.match(who, new RegExp(`^${T}--   alice, here \\d+s \\(away: `));
    assert.ok(who.endsWith(` (away: ${awayShown})`), who);
    assert.match(await nextLine(bob), new RegExp(`^${T}--   bob, here \\d+s$`));

    // Exactly 200 characters are kept whole.
    const exact = "x".repeat(200);
    await alice.send(`/away ${exact}`);
    assert.match(await nextLine(alice), live(`-- you are marked as away: ${exact}`));

    const quit = Array.from({ length: 40 }, (_, i) => `word${String(i).padStart(2, "0")}`)
      .join(" ");
    assert.equal(quit.length, 279);
    const quitShown = quit.slice(0, 200) + "...";
    await alice.send(`/quit ${quit}`);
    assert.deepEqual(await alice.closed(), [`!! bye: ${quitShown}`]);
    assert.match(await nextLine(bob), live(`<-- alice left (${quitShown})`));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/away and /quit cut a reason after escaping it, never inside an escape", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    // 250 ESC bytes are 500 characters once shown as ^[: 100 of them fit.
    const shown = "^[".repeat(100) + "...";
    await alice.send(`/away ${"\x1b".repeat(250)}`);
    assert.match(await nextLine(alice), live(`-- you are marked as away: ${shown}`));
    await bob.send("/who");
    assert.match(await nextLine(bob), live("-- 3 online:"));
    assert.ok((await nextLine(bob)).endsWith(` (away: ${shown})`));
    // An odd budget: 199 x and one ESC would need 201 characters.
    const tail = "x".repeat(199) + "\x1b";
    await carol.send(`/quit ${tail}`);
    assert.match(await nextLine(alice), live(`<-- carol left (${"x".repeat(199)}...)`));
  } finally {
    await closeAll(clients);
  }
});

/** Every character sanitize() must escape, in one string. */
const HOSTILE = "\x1b[31m\x1b]0;owned\x07\r\u202e\x9b2J\u2028\x00\x7f";
const HOSTILE_SHOWN = "^[[31m^[]0;owned^G^M\\u202E\\x9B2J\\u2028^@^?";

Deno.test("every user string that reaches another member arrives escaped, on every path", async () => {
  await using server = startServer();
  const clients = await joinAll(server.addr.port, ["alice", "bob", "carol"]);
  const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
  try {
    await alice.send(`chat ${HOSTILE}`);
    assert.match(await nextLine(bob), live(`alice: chat ${HOSTILE_SHOWN}`));
    await alice.send(`/me acts ${HOSTILE}`);
    assert.match(await nextLine(bob), live(`* alice acts ${HOSTILE_SHOWN}`));
    await alice.send(`/msg bob dm ${HOSTILE}`);
    assert.match(await nextLine(bob), live(`(private) alice: dm ${HOSTILE_SHOWN}`));
    assert.match(await nextLine(alice), live(`(private to bob) dm ${HOSTILE_SHOWN}`));
    // An away reason, through /who and through the reply to /msg.
    await alice.send(`/away ${HOSTILE}`);
    assert.match(await nextLine(alice), live(`-- you are marked as away: ${HOSTILE_SHOWN}`));
    await bob.send("/who");
    assert.match(await nextLine(bob), live("-- 3 online:"));
    assert.ok((await nextLine(bob)).endsWith(`(away: ${HOSTILE_SHOWN})`));
    await bob.expect(/-- {3}carol, here \d+s$/);
    await bob.send("/msg alice are you there?");
    assert.match(await nextLine(bob), live("(private to alice) are you there?"));
    assert.match(await nextLine(bob), live(`-- alice is away: ${HOSTILE_SHOWN}`));
    // A recipient that does not exist, named back to the sender.
    await bob.send("/msg x\x1b[2J\x9b\x00 hi");
    assert.equal(await nextLine(bob), "! no one called x^[[2J\\x9B^@ is here; /who lists who is");
    // A nick with control characters is refused, and the refusal is clean.
    await carol.send(`/nick c${HOSTILE}`);
    await carol.expect(/^! an alias is /);
    // A quit reason, in everyone's left notice.
    await alice.send(`/quit ${HOSTILE}`);
    assert.match(await nextLine(bob), live(`<-- alice left (${HOSTILE_SHOWN})`));
    assert.match(await nextLine(carol), live(`<-- alice left (${HOSTILE_SHOWN})`));
    // Nothing anyone received held a raw control character.
    for (const client of clients) {
      for (const line of client.lines.seen) assert.ok(isClean(line), JSON.stringify(line));
    }
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/who stops at 16 KB or a quarter of the outbox, whichever is less, with '  and N more', and the asker keeps its connection", async (t) => {
  // The default outbox, then the smallest the default line limit allows:
  // 2 x (3 x 4096 + 256), a quarter of which is 6,272 bytes.
  for (const [outboxBytes, cap] of [[1_048_576, 16 * 1024], [25_088, 6_272]] as const) {
    await t.step(`outboxBytes ${outboxBytes}`, () => whoStopsAt(outboxBytes, cap));
  }
});

async function whoStopsAt(outboxBytes: number, cap: number): Promise<void> {
  await using server = startServer({ outboxBytes, maxPerAddress: 100 });
  const members = 60;
  const clients: TestClient[] = [];
  try {
    const asker = await TestClient.join(server.addr.port, "asker");
    clients.push(asker);
    // 250 three-byte characters, cut to 200 and "...": over 600 bytes a member.
    const reason = "漢".repeat(250);
    for (let i = 0; i < members; i++) {
      const member = await TestClient.join(server.addr.port, `member${i}`);
      clients.push(member);
      await member.send(`/away ${reason}`);
      await member.expect(live(`-- you are marked as away: ${"漢".repeat(200)}...`));
    }
    // Every join notice has reached the asker, so that none comes in between.
    await asker.expect(live(`--> member${members - 1} joined`));
    await asker.send("/who");
    assert.match(await nextLine(asker), live(`-- ${members + 1} online:`));
    const listed: string[] = [];
    let more = "";
    while (more === "") {
      const line = await nextLine(asker);
      const tail = new RegExp(`^${T}--   and (\\d+) more$`).exec(line);
      if (tail) more = tail[1]!;
      else listed.push(line);
    }
    for (const line of listed) {
      assert.match(line, new RegExp(`^${T}--   (asker|member\\d+), here \\d+s`), line);
    }
    assert.equal(listed.length + Number(more), members + 1, `listed ${listed.length}, +${more}`);
    // As sent: every listed line with its newline.
    const bytes = listed.reduce((sum, line) => sum + new TextEncoder().encode(line).length + 1, 0);
    assert.ok(bytes <= cap, `the listed members took ${bytes} bytes`);
    // Within one row (about 700 bytes) of the cap.
    assert.ok(bytes > cap - 1024, `only ${bytes} bytes were listed`);
    // Still connected: the next line for the asker is someone's message.
    await assertNothingBefore(asker, clients[1]!, "member0", "still with us?");
  } finally {
    await closeAll(clients);
  }
}
