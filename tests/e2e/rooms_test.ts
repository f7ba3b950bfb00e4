/**
 * Named rooms over real sockets: starting in one, moving between them, what
 * each room sees, /rooms, /who, /topic, private messages across rooms, the
 * cap, and that someone who never leaves the default room sees nothing new.
 */

import assert from "node:assert/strict";
import {
  assertNothingBefore,
  closeAll,
  joinAll,
  live,
  MAIN,
  nextLine,
  readToEnd,
  RUN_FLAGS,
  spawnServer,
  startServer,
  T,
  TestClient,
} from "../_helpers.ts";

const H = String.raw`\[history \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] `;

/** A RegExp for a replayed history line with the given body (a literal). */
function history(body: string): RegExp {
  return new RegExp(`^${H}${body.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

/**
 * Connects, asks for `room` at the alias prompt, answers it with `alias`
 * and waits for the welcome (naming the room) and the limits.
 */
async function joinRoom(port: number, alias: string, room: string): Promise<TestClient> {
  const client = await TestClient.connect(port);
  try {
    await client.expect(/^\? alias: /);
    await client.send(`/join ${room}`);
    assert.match(
      await nextLine(client),
      new RegExp(`^\\? alias: joining #${room}; choose an alias: `),
    );
    await client.send(alias);
    await client.expect(new RegExp(`^${T}-- welcome to #${room}, ${alias}! `));
    await client.expect(new RegExp(`^${T}-- limits: `));
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}

Deno.test("two rooms chat side by side and nothing crosses between them", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const [alice, bob] = await joinAll(port, ["alice", "bob"]);
  const carol = await joinRoom(port, "carol", "dev");
  const dave = await joinRoom(port, "dave", "dev");
  const everyone = [alice!, bob!, carol, dave];
  try {
    await carol.expect(live("--> dave joined"));
    await alice!.send("hello lobby");
    await carol.send("hello dev");
    assert.match(await nextLine(bob!), live("alice: hello lobby"));
    assert.match(await nextLine(dave), live("carol: hello dev"));
    await alice!.send("/me waves");
    assert.match(await nextLine(bob!), live("* alice waves"));
    // Neither room saw the other's lines, nor dave's arrival in #dev.
    await assertNothingBefore(carol, dave, "dave", "dev marker");
    await assertNothingBefore(alice!, bob!, "bob", "lobby marker");
    assert.equal(server.registry.rooms, 2);
    assert.equal(server.room.size, 2);
  } finally {
    await closeAll(everyone);
  }
});

Deno.test("/join moves: the old room sees where, the new one sees the arrival, the mover gets its history, welcome and topic", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const [alice, bob] = await joinAll(port, ["alice", "bob"]);
  const carol = await joinRoom(port, "carol", "dev");
  const clients = [alice!, bob!, carol];
  try {
    await carol.send("said before alice came");
    await carol.send("/me thinks");
    await carol.send("/topic ship it");
    assert.match(await nextLine(carol), live("-- carol set the topic: ship it"));

    await alice!.send("/join #dev");
    assert.match(await nextLine(bob!), live("<-- alice left for #dev"));
    assert.match(await nextLine(alice!), history("carol: said before alice came"));
    assert.match(await nextLine(alice!), history("* carol thinks"));
    assert.match(await nextLine(alice!), live("-- welcome to #dev, alice! 2 online: carol, alice"));
    assert.match(await nextLine(alice!), live("-- topic: ship it"));
    assert.match(await nextLine(carol), live("--> alice joined"));

    await alice!.send("in dev now");
    assert.match(await nextLine(carol), live("alice: in dev now"));

    // Back to the default room: its welcome names it too.
    await alice!.send("/join lobby");
    assert.match(await nextLine(carol), live("<-- alice left for #lobby"));
    assert.match(await nextLine(alice!), live("-- welcome to #lobby, alice! 2 online: bob, alice"));
    assert.match(await nextLine(bob!), live("--> alice joined"));
    await alice!.send("/join LOBBY");
    assert.equal(await nextLine(alice!), "! you are already in #lobby");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/join refuses what is not a room name, and says how to use it", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await alice.send("/join");
  assert.equal(await nextLine(alice), "! usage: /join ROOM");
  await alice.send("/join two words");
  assert.equal(
    await nextLine(alice),
    "! a room name is 1 to 32 letters (any script), digits, '_', '-' or '.'",
  );
  await alice.send(`/join ${"x".repeat(33)}`);
  assert.equal(await nextLine(alice), "! a room name is at most 32 characters, got 33");
  await alice.send("/join #");
  assert.equal(await nextLine(alice), "! a room name cannot be empty");
  await alice.send("/join \x1b[2J");
  assert.match(await nextLine(alice), /^! a room name is /);
  assert.equal(server.registry.rooms, 1);
});

Deno.test("/rooms lists every room with its count, topic and yours; /who lists your room only", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const [alice, bob] = await joinAll(port, ["alice", "bob"]);
  const carol = await joinRoom(port, "carol", "zeta");
  const dave = await joinRoom(port, "dave", "Alpha");
  const clients = [alice!, bob!, carol, dave];
  try {
    await carol.send("/topic the last letter");
    await carol.expect(live("-- carol set the topic: the last letter"));
    await alice!.send("/rooms");
    assert.match(await nextLine(alice!), live("-- 3 rooms:"));
    assert.match(await nextLine(alice!), live("--   #lobby, 2 here (you are here)"));
    assert.match(await nextLine(alice!), live("--   #Alpha, 1 here"));
    assert.match(await nextLine(alice!), live("--   #zeta, 1 here: the last letter"));
    await dave.send("/who");
    assert.match(await nextLine(dave), live("-- 1 online:"));
    assert.match(await nextLine(dave), new RegExp(`^${T}--   dave, here \\d+s$`));
    await alice!.send("/who");
    assert.match(await nextLine(alice!), live("-- 2 online:"));
    assert.match(await nextLine(alice!), new RegExp(`^${T}--   alice, here \\d+s$`));
    assert.match(await nextLine(alice!), new RegExp(`^${T}--   bob, here \\d+s$`));
    await alice!.send("/msg dave you are in #Alpha");
    await nextLine(alice!);
    assert.match(await nextLine(dave), live("(private) alice: you are in #Alpha"));
    await dave.send("/rooms");
    assert.match(await nextLine(dave), live("-- 3 rooms:"));
    assert.match(await nextLine(dave), live("--   #lobby, 2 here"));
    assert.match(await nextLine(dave), live("--   #Alpha, 1 here (you are here)"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/rooms stops at a screenful of bytes and says how many more", async () => {
  await using server = startServer({ maxRooms: 2000 });
  const port = server.addr.port;
  // Long names, so a few hundred rooms pass the cap on the reply's size.
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 600; i++) {
      const client = await TestClient.join(port, `u${i}`);
      clients.push(client);
      await client.send(`/join ${"r".repeat(28)}${String(i).padStart(4, "0")}`);
      await client.expect(/-- welcome to #r+\d{4}, /);
    }
    const [first] = clients;
    await first!.send("/rooms");
    assert.match(await nextLine(first!), live("-- 601 rooms:"));
    let rows = 0;
    let last = "";
    for (let i = 0; i < 700; i++) {
      last = await nextLine(first!);
      if (!/ {2}#/.test(last)) break;
      rows++;
    }
    assert.ok(rows > 100 && rows < 601, `${rows} rows`);
    assert.match(last, live(`--   and ${601 - rows} more`));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/topic shows, sets (escaped and cut) and clears the topic, and the welcome shows it", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const alice = await joinRoom(port, "alice", "dev");
  const clients = [alice];
  try {
    await alice.send("/topic");
    assert.equal((await nextLine(alice)).replace(/^\[[\d:]+\] /, ""), "-- #dev has no topic");
    await alice.send("/topic \x1b[31mred\x07 alert");
    const set = await nextLine(alice);
    assert.match(set, live("-- alice set the topic: ^[[31mred^G alert"));
    await alice.send("/topic");
    assert.match(await nextLine(alice), live("-- topic of #dev: ^[[31mred^G alert"));

    const bob = await TestClient.connect(port);
    clients.push(bob);
    await bob.expect(/^\? alias: /);
    await bob.send("/join dev");
    await bob.expect(/^\? alias: joining #dev; /);
    await bob.send("bob");
    assert.match(await nextLine(bob), live("-- welcome to #dev, bob! 2 online: alice, bob"));
    assert.match(await nextLine(bob), live("-- topic: ^[[31mred^G alert"));
    assert.match(await nextLine(bob), new RegExp(`^${T}-- limits: `));

    await bob.send(`/topic ${"y".repeat(300)}`);
    assert.match(await nextLine(alice), live("--> bob joined"));
    assert.match(await nextLine(alice), live(`-- bob set the topic: ${"y".repeat(200)}...`));
    await bob.send("/topic -");
    assert.match(await nextLine(alice), live("-- bob cleared the topic"));
    await alice.send("/topic");
    assert.match(await nextLine(alice), live("-- #dev has no topic"));
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/msg and /reply reach someone in another room, and nobody else", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const [alice, bob] = await joinAll(port, ["alice", "bob"]);
  const carol = await joinRoom(port, "carol", "dev");
  const clients = [alice!, bob!, carol];
  try {
    await alice!.send("/msg CAROL hi from the lobby");
    assert.match(await nextLine(alice!), live("(private to carol) hi from the lobby"));
    assert.match(await nextLine(carol), live("(private) alice: hi from the lobby"));
    await carol.send("/away lunch");
    await nextLine(carol);
    await carol.send("/reply hi back");
    assert.match(await nextLine(carol), live("(private to alice) hi back"));
    assert.match(await nextLine(alice!), live("(private) carol: hi back"));
    await alice!.send("/msg carol again");
    assert.match(await nextLine(alice!), live("(private to carol) again"));
    assert.match(await nextLine(alice!), live("-- carol is away: lunch"));
    await assertNothingBefore(bob!, alice!, "alice", "public");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/join at the alias prompt: the prompt says where, with /nohistory too, and the newcomer starts there", async (t) => {
  await using server = startServer({ defaultRoom: "hall" });
  const port = server.addr.port;

  await t.step(
    "/join alone names the default room, and its first welcome stays as it was",
    async () => {
      await using alice = await TestClient.connect(port);
      await alice.expect(/^\? alias: /);
      await alice.send("/join");
      assert.match(await nextLine(alice), /^\? alias: joining #hall; choose an alias: /);
      await alice.send("alice");
      assert.match(await nextLine(alice), live("-- welcome, alice! you are the only one here"));
    },
  );

  await t.step("/nohistory and /join together, in either order", async () => {
    await using bob = await TestClient.connect(port);
    await bob.expect(/^\? alias: /);
    await bob.send("/nohistory");
    assert.match(await nextLine(bob), /^\? alias: history replay off; choose an alias: /);
    await bob.send("/join #Dev");
    assert.match(
      await nextLine(bob),
      /^\? alias: history replay off; joining #Dev; choose an alias: /,
    );
    await bob.send("bob");
    assert.match(await nextLine(bob), live("-- welcome to #Dev, bob! you are the only one here"));
    await bob.expect(/-- limits: /);
    await bob.send("kept in #Dev");
    await bob.send("/rooms");
    assert.match(await nextLine(bob), live("-- 2 rooms:"));
    assert.match(await nextLine(bob), live("--   #hall, 0 here"));
    assert.match(await nextLine(bob), live("--   #Dev, 1 here (you are here)"));

    await using carol = await TestClient.connect(port);
    await carol.expect(/^\? alias: /);
    await carol.send("/join dev");
    assert.match(await nextLine(carol), /^\? alias: joining #Dev; choose an alias: /);
    await carol.send("/nohistory");
    assert.match(
      await nextLine(carol),
      /^\? alias: history replay off; joining #Dev; choose an alias: /,
    );
    await carol.send("carol");
    assert.match(await nextLine(carol), live("-- welcome to #Dev, carol! 2 online: bob, carol"));
    assert.match(await nextLine(bob), live("--> carol joined"));
  });

  await t.step("a bad name gets its reason, then the prompt again", async () => {
    await using dave = await TestClient.connect(port);
    await dave.expect(/^\? alias: /);
    await dave.send("/join a:b");
    assert.match(await nextLine(dave), /^! a room name is 1 to 32 letters/);
    assert.match(await nextLine(dave), /^\? alias: choose an alias: /);
    await dave.send("dave");
    assert.match(await nextLine(dave), live("-- welcome, dave! you are the only one here"));
  });
});

Deno.test("--max-rooms: one room too many is refused, with /join and at the prompt", async () => {
  await using server = startServer({ maxRooms: 2 });
  const port = server.addr.port;
  const refusal = "! there are already 2 rooms; join one of them (/rooms lists them)";
  const alice = await joinRoom(port, "alice", "dev");
  const clients = [alice];
  try {
    const bob = await TestClient.join(port, "bob");
    clients.push(bob);
    await bob.send("/join ops");
    assert.equal(await nextLine(bob), refusal);
    await bob.send("/join DEV");
    assert.match(await nextLine(bob), live("-- welcome to #dev, bob! 2 online: alice, bob"));

    const carol = await TestClient.connect(port);
    clients.push(carol);
    await carol.expect(/^\? alias: /);
    await carol.send("/join ops");
    assert.equal(await nextLine(carol), refusal);
    assert.match(await nextLine(carol), /^\? alias: choose an alias: /);
    await carol.send("/join dev");
    assert.match(await nextLine(carol), /^\? alias: joining #dev; /);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("a room disappears with its history and topic when its last member leaves; the default room stays", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const alice = await joinRoom(port, "alice", "dev");
  await alice.send("remember me");
  await alice.send("/topic old");
  await alice.expect(live("-- alice set the topic: old"));
  await alice.send("/join lobby");
  await alice.expect(live("-- welcome to #lobby, alice! you are the only one here"));
  await alice.send("/rooms");
  assert.match(await nextLine(alice), live("-- 1 room:"));
  assert.match(await nextLine(alice), live("--   #lobby, 1 here (you are here)"));
  await alice.send("/quit");
  await readToEnd(alice);
  await alice.close();
  assert.equal(server.registry.rooms, 1);
  assert.equal(server.room.size, 0);

  await using bob = await joinRoom(port, "bob", "dev");
  await bob.send("/topic");
  assert.match(await nextLine(bob), live("-- #dev has no topic"));
  assert.ok(
    !bob.lines.seen.some((line) => line.includes("remember me")),
    bob.lines.seen.join("\n"),
  );
});

Deno.test("aliases are unique across rooms, at the prompt and with /nick", async () => {
  await using server = startServer();
  const port = server.addr.port;
  await using alice = await joinRoom(port, "alice", "dev");
  await using bob = await TestClient.join(port, "bob");
  await using other = await TestClient.connect(port);
  await other.expect(/^\? alias: /);
  await other.send("ALICE");
  assert.equal(await nextLine(other), "! ALICE is taken; choose another");
  assert.match(await nextLine(other), /^\? alias: /);
  await bob.send("/nick Alice");
  assert.equal(await nextLine(bob), "! Alice is taken; choose another");
  await alice.send("/nick alicia");
  assert.match(await nextLine(alice), live("--- alice is now known as alicia"));
  await bob.send("/nick alice");
  assert.match(await nextLine(bob), live("--- bob is now known as alice"));
});

Deno.test("an nc user who never leaves the default room sees exactly the lines it always did", async () => {
  await using server = startServer();
  const port = server.addr.port;
  // Activity in another room, before and during: none of it may show.
  await using dev = await joinRoom(port, "dev1", "dev");
  await dev.send("elsewhere");

  await using nc = await TestClient.connect(port);
  await nc.expect(/^\? alias: /);
  await nc.send("ann");
  await nc.expect(/-- limits: /);
  await using ben = await TestClient.join(port, "ben");
  await ben.send("hi ann");
  await dev.send("still elsewhere");
  await nc.send("/me waves");
  await nc.send("/who");
  await ben.send("/quit gone");
  await nc.expect(live("<-- ben left (gone)"));
  await nc.send("/quit");
  await readToEnd(nc);
  const expected = [
    /^\? alias: choose an alias: 1 to 32 letters/,
    live("-- welcome, ann! you are the only one here"),
    live("-- limits: 5 lines per second, bursts of 20; lines up to 4096 bytes"),
    live("--> ben joined"),
    live("ben: hi ann"),
    live("-- 2 online:"),
    new RegExp(`^${T}--   ann, here \\d+s$`),
    new RegExp(`^${T}--   ben, here \\d+s$`),
    live("<-- ben left (gone)"),
    /^!! bye$/,
  ];
  const seen = nc.lines.seen;
  assert.equal(seen.length, expected.length, seen.join("\n"));
  expected.forEach((pattern, i) =>
    assert.match(seen[i]!, pattern, `line ${i}: ${seen.join("\n")}`)
  );
});

/** Runs `confab serve ARGS...` to completion, stdin empty. */
async function serveCommand(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_FLAGS, MAIN, "serve", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("confab serve --room and --max-rooms: in the help, bad values exit 2 naming the flag", async () => {
  const help = await serveCommand(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--room NAME +the room everyone starts in \(default lobby\)/);
  assert.match(
    help.stdout,
    /--max-rooms N +most rooms at once, the first one included \(default 1000\)/,
  );
  for (
    const [args, problem] of [
      [
        ["--room", "two words"],
        /^confab: --room: a room name is 1 to 32 letters.*, received 'two words'$/,
      ],
      [
        ["--room", "lobby\u3164"],
        /^confab: --room: a room name cannot hold invisible characters, received 'lobby\u3164'$/,
      ],
      [["--max-rooms", "0"], /^confab: --max-rooms must be /],
    ] as const
  ) {
    // A port of its own, should a value be taken after all.
    const out = await serveCommand(["--port", "0", ...args]);
    assert.equal(out.code, 2, out.stderr);
    assert.equal(out.stdout, "");
    const first = out.stderr.split("\n")[0]!;
    assert.match(first, problem);
    assert.ok(!out.stderr.includes("    at "), "no stack trace");
  }
});

Deno.test("confab serve --room NAME --max-rooms N: everyone starts there, and the cap holds", async () => {
  await using server = await spawnServer(["--room", "hall", "--max-rooms", "2"]);
  await using alice = await TestClient.connect(server.port);
  await alice.expect(/^\? alias: /);
  await alice.send("/join");
  assert.match(await nextLine(alice), /^\? alias: joining #hall; /);
  await alice.send("alice");
  assert.match(await nextLine(alice), live("-- welcome, alice! you are the only one here"));
  await alice.expect(/-- limits: /);
  await alice.send("/join dev");
  assert.match(await nextLine(alice), live("-- welcome to #dev, alice! you are the only one here"));
  // Alone in #dev, alice frees it as she goes: the count does not change.
  await alice.send("/join ops");
  assert.match(await nextLine(alice), live("-- welcome to #ops, alice! you are the only one here"));
  await using bob = await TestClient.join(server.port, "bob");
  await bob.send("/join ops");
  await bob.expect(/-- welcome to #ops, bob! /);
  await alice.expect(live("--> bob joined"));
  // Now #ops stays behind her: a third room would be one too many.
  await alice.send("/join dev");
  assert.equal(
    await nextLine(alice),
    "! there are already 2 rooms; join one of them (/rooms lists them)",
  );
  await alice.send("/rooms");
  assert.match(await nextLine(alice), live("-- 2 rooms:"));
  assert.match(await nextLine(alice), live("--   #hall, 0 here"));
  assert.match(await nextLine(alice), live("--   #ops, 2 here (you are here)"));
});

Deno.test("a member too slow for its room is dropped from it, and another room chats on meanwhile", async () => {
  const lineBytes = 16_000;
  await using server = startServer({ rateLimit: 0, maxLineBytes: 16_384, outboxBytes: 131_072 });
  const port = server.addr.port;
  const slow = await joinRoom(port, "slow", "dev");
  const alice = await joinRoom(port, "alice", "dev");
  const bob = await joinRoom(port, "bob", "dev");
  const [carol, dave] = await joinAll(port, ["carol", "dave"]);
  const clients = [slow, alice, bob, carol!, dave!];
  try {
    await alice.expect(live("--> bob joined"));
    // From here on, slow never reads its socket.
    const line = "x".repeat(lineBytes);
    let dropped = false;
    const started = Date.now();
    for (let i = 0; i < 3000 && !dropped && Date.now() - started < 15_000; i++) {
      await alice.send(`${i} ${line}`);
      for (let j = 0; j < 4; j++) {
        const got = await nextLine(bob, 2000);
        if (got.includes(`alice: ${i} `)) break;
        assert.match(got, live("<-- slow left (too slow: could not keep up with the room)"));
        dropped = true;
      }
      if (i % 100 === 0) {
        // The lobby is not held up by #dev's slow member.
        await carol!.send(`ping ${i}`);
        assert.match(await nextLine(dave!, 1000), live(`carol: ping ${i}`));
      }
    }
    assert.ok(dropped, "slow was dropped");
    assert.equal(server.room.size, 2);
    assert.deepEqual(
      server.registry.list().map((r) => [r.name, r.members]),
      [["lobby", 2], ["dev", 2]],
    );
    await assertNothingBefore(dave!, carol!, "carol", "after");
    const rest = await readToEnd(slow);
    assert.equal(rest.at(-1), "!! disconnected: too slow: could not keep up with the room");
  } finally {
    await closeAll(clients);
  }
});

Deno.test("/topic cannot change the default room's topic, so no one can pin a line in front of every newcomer", async () => {
  await using server = startServer();
  await using vandal = await TestClient.join(server.addr.port, "vandal");
  await vandal.send("/topic server moved: use evil.example:55555");
  assert.equal(
    await nextLine(vandal),
    "! the topic of #lobby cannot be changed; /join a room of your own",
  );
  await vandal.send("/topic");
  assert.match(await nextLine(vandal), live("-- #lobby has no topic"));
  await vandal.send("/quit");
  await readToEnd(vandal);
  // The next newcomer gets the welcome and the limits, and no topic.
  await using newcomer = await TestClient.connect(server.addr.port);
  await newcomer.expect(/^\? alias: /);
  await newcomer.send("ann");
  assert.match(await nextLine(newcomer), live("-- welcome, ann! you are the only one here"));
  assert.match(
    await nextLine(newcomer),
    live("-- limits: 5 lines per second, bursts of 20; lines up to 4096 bytes"),
  );
  await using _ben = await TestClient.join(server.addr.port, "ben");
  assert.match(await nextLine(newcomer), live("--> ben joined"));
});

Deno.test("the alias prompt keeps saying where the newcomer is going after a taken alias", async () => {
  await using server = startServer();
  await using _bob = await TestClient.join(server.addr.port, "bob");
  await using newcomer = await TestClient.connect(server.addr.port);
  await newcomer.expect(/^\? alias: /);
  await newcomer.send("/join dev");
  assert.match(await nextLine(newcomer), /^\? alias: joining #dev; choose an alias: /);
  await newcomer.send("bob");
  assert.equal(await nextLine(newcomer), "! bob is taken; choose another");
  assert.match(await nextLine(newcomer), /^\? alias: joining #dev; choose an alias: /);
  await newcomer.send("carol");
  await newcomer.expect(live("-- welcome to #dev, carol! you are the only one here"));
  // Carol went to #dev: the default room never saw her come.
  await newcomer.send("/rooms");
  await newcomer.expect(live("--   #lobby, 1 here"));
});

Deno.test("/join at the alias prompt names an existing room as it was made, whatever case was typed", async () => {
  await using server = startServer();
  await using newcomer = await TestClient.connect(server.addr.port);
  await newcomer.expect(/^\? alias: /);
  await newcomer.send("/join LOBBY");
  assert.match(await nextLine(newcomer), /^\? alias: joining #lobby; choose an alias: /);
  await newcomer.send("ann");
  await newcomer.expect(live("-- welcome, ann! you are the only one here"));
});
