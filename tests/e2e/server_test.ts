/**
 * Server integration tests over real TCP sockets on 127.0.0.1: joining,
 * alias rules, broadcast, leaving, and what the server does with odd input.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { ALIAS_RULE } from "../../protocol/alias.ts";
import { type ChatServer, serve, type ServeOptions } from "../../server/mod.ts";
import {
  assertNothingBefore,
  live,
  nextLine,
  startServer,
  T,
  TestClient,
  WAIT_MS,
  withTimeout,
} from "../_helpers.ts";

const encoder = new TextEncoder();

const PROMPT = `? alias: choose an alias: ${ALIAS_RULE}`;

Deno.test("serve() prompts a new connection for an alias before anything else", async () => {
  await using server = startServer();
  await using client = await TestClient.connect(server.addr.port);
  assert.equal(await nextLine(client), PROMPT);
});

Deno.test("serve() answers each invalid alias with one reason and the prompt again on the same connection", async () => {
  await using server = startServer();
  await using client = await TestClient.connect(server.addr.port);
  assert.equal(await nextLine(client), PROMPT);
  const cases: [string, string][] = [
    ["a".repeat(33), "! an alias is at most 32 characters, got 33"],
    ["bob!", `! an alias is ${ALIAS_RULE}`],
    ["two words", `! an alias is ${ALIAS_RULE}`],
    ["a:b", `! an alias is ${ALIAS_RULE}`],
    ["esc\x1bape", `! an alias is ${ALIAS_RULE}`],
    ["server", '! "server" is reserved'],
    ["SeRvEr", '! "SeRvEr" is reserved'],
    ["SERVER", '! "SERVER" is reserved'],
  ];
  for (const [alias, reason] of cases) {
    await client.send(alias);
    assert.equal(await nextLine(client), reason, `for alias ${JSON.stringify(alias)}`);
    assert.equal(await nextLine(client), PROMPT, `prompt again after ${JSON.stringify(alias)}`);
  }
  // A blank answer gets a reply too, so someone at the prompt sees the
  // server is there.
  for (const blank of ["", "   ", "\t\r"]) {
    await client.send(blank);
    assert.equal(await nextLine(client), "! an alias cannot be empty");
    assert.equal(await nextLine(client), PROMPT);
  }
  // 32 characters is the longest allowed, and the same connection can still join.
  const longest = "b".repeat(32);
  await client.send(longest);
  assert.match(await nextLine(client), live(`-- welcome, ${longest}! you are the only one here`));
  assert.equal(server.room.size, 1);
});

Deno.test("serve() answers a blank line at the prompts with the reason and the prompt again", async (t) => {
  await t.step("at the alias prompt, as someone with nc presses Enter", async () => {
    await using server = startServer();
    await using client = await TestClient.connect(server.addr.port);
    assert.equal(await nextLine(client), PROMPT);
    // A person takes longer than half a second to read the prompt and press
    // Enter; a blank line sooner is a client's TLS probe (next step).
    await new Promise((resolve) => setTimeout(resolve, 600));
    await client.send("");
    assert.equal(await nextLine(client), "! an alias cannot be empty");
    assert.equal(await nextLine(client), PROMPT);
    await client.send("alice");
    assert.match(await nextLine(client), live("-- welcome, alice! you are the only one here"));
    // Once joined, a blank line is ignored: the next line is bob's.
    await using bob = await TestClient.join(server.addr.port, "bob");
    await client.expect(live("--> bob joined"));
    await client.send("");
    await assertNothingBefore(client, bob, "bob", "after the blank");
  });

  await t.step(
    "except for a blank first line sent at once, as older confab clients do",
    async () => {
      await using server = startServer();
      await using client = await TestClient.connect(server.addr.port);
      await client.send("");
      assert.equal(await nextLine(client), PROMPT);
      await client.send("x y");
      assert.equal(await nextLine(client), `! an alias is ${ALIAS_RULE}`);
    },
  );

  await t.step("and for up to five of them, a TLS probe of five LFs", async () => {
    await using server = startServer();
    await using client = await TestClient.connect(server.addr.port);
    assert.equal(await nextLine(client), PROMPT);
    await client.write(new TextEncoder().encode("\n\n\n\n\n"));
    await client.send("x y");
    assert.equal(await nextLine(client), `! an alias is ${ALIAS_RULE}`);
  });

  await t.step("but a sixth blank line, or one after an answer, is answered", async () => {
    await using server = startServer();
    await using client = await TestClient.connect(server.addr.port);
    assert.equal(await nextLine(client), PROMPT);
    await client.write(new TextEncoder().encode("\n\n\n\n\n\n"));
    assert.equal(await nextLine(client), "! an alias cannot be empty");
    assert.equal(await nextLine(client), PROMPT);
    await using other = await TestClient.connect(server.addr.port);
    assert.equal(await nextLine(other), PROMPT);
    await other.write(new TextEncoder().encode("x y\n\n"));
    assert.equal(await nextLine(other), `! an alias is ${ALIAS_RULE}`);
    assert.equal(await nextLine(other), PROMPT);
    assert.equal(await nextLine(other), "! an alias cannot be empty");
  });

  await t.step("at the password prompt, without counting as a wrong password", async () => {
    await using server = startServer({ password: "sesame" });
    await using client = await TestClient.connect(server.addr.port);
    const prompt = "? password: this room needs a password";
    assert.equal(await nextLine(client), prompt);
    await new Promise((resolve) => setTimeout(resolve, 600));
    for (const answer of ["", "wrong", " ", "wrong"]) {
      await client.send(answer);
      const reason = answer.trim() === "" ? "! the password cannot be empty" : "! wrong password";
      assert.equal(await nextLine(client), reason);
      assert.equal(await nextLine(client), prompt);
    }
    await client.send("sesame");
    assert.equal(await nextLine(client), PROMPT);
  });
});

Deno.test("serve() refuses an alias taken in any case and lets the same connection retry", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "Alice");
  await using other = await TestClient.connect(server.addr.port);
  assert.equal(await nextLine(other), PROMPT);
  for (const taken of ["alice", "ALICE", "Alice"]) {
    await other.send(taken);
    assert.equal(await nextLine(other), `! ${taken} is taken; choose another`);
    assert.equal(await nextLine(other), PROMPT);
  }
  await other.send("alice2");
  assert.match(await nextLine(other), live("-- welcome, alice2! 2 online: Alice, alice2"));
  await alice.expect(live("--> alice2 joined"));
  assert.equal(server.room.size, 2);
});

Deno.test("serve() welcomes a newcomer with who is online", async () => {
  await using server = startServer();
  const port = server.addr.port;
  await using alice = await TestClient.connect(port);
  await alice.expect(/^\? alias: /);
  await alice.send("alice");
  assert.match(await nextLine(alice), live("-- welcome, alice! you are the only one here"));
  assert.match(await nextLine(alice), new RegExp(`^${T}-- limits: `));
  await using bob = await TestClient.join(port, "bob");
  await using carol = await TestClient.connect(port);
  await carol.expect(/^\? alias: /);
  await carol.send("carol");
  assert.match(await nextLine(carol), live("-- welcome, carol! 3 online: alice, bob, carol"));
  assert.match(
    await nextLine(carol),
    live("-- limits: 5 lines per second, bursts of 20; lines up to 4096 bytes"),
  );
  await alice.expect(live("--> carol joined"));
  await bob.expect(live("--> carol joined"));
});

Deno.test("serve() announces a join to the others but not to the newcomer", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  assert.match(await nextLine(alice), live("--> bob joined"));
  // bob's next line after his welcome is alice's marker, not his own join.
  await assertNothingBefore(bob, alice, "alice", "marker");
});

Deno.test("serve() broadcasts a line to every other member and not back to the sender", async () => {
  await using server = startServer();
  const port = server.addr.port;
  await using alice = await TestClient.join(port, "alice");
  await using bob = await TestClient.join(port, "bob");
  await using carol = await TestClient.join(port, "carol");
  await alice.expect(live("--> carol joined"));
  await bob.expect(live("--> carol joined"));
  await alice.send("hello, room");
  assert.match(await nextLine(bob), live("alice: hello, room"));
  assert.match(await nextLine(carol), live("alice: hello, room"));
  await bob.send("marker from bob");
  assert.match(await nextLine(alice), live("bob: marker from bob"));
  assert.match(await nextLine(carol), live("bob: marker from bob"));
});

Deno.test("serve() keeps one sender's 200 lines in order at two receivers", async () => {
  await using server = startServer({ rateLimit: 0 });
  const port = server.addr.port;
  await using alice = await TestClient.join(port, "alice");
  await using bob = await TestClient.join(port, "bob");
  await using carol = await TestClient.join(port, "carol");
  await alice.expect(live("--> carol joined"));
  await bob.expect(live("--> carol joined"));
  const count = 200;
  const text = Array.from({ length: count }, (_, i) => `line ${i} ${"z".repeat(i % 37)}\n`).join(
    "",
  );
  // Arbitrary chunk boundaries, so lines are split across writes.
  const bytes = encoder.encode(text);
  for (let offset = 0; offset < bytes.length; offset += 997) {
    await alice.write(bytes.subarray(offset, offset + 997));
  }
  for (const receiver of [bob, carol]) {
    for (let i = 0; i < count; i++) {
      assert.match(await nextLine(receiver), live(`alice: line ${i} ${"z".repeat(i % 37)}`));
    }
  }
});

Deno.test("serve() ignores blank lines from a member", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  await alice.write(encoder.encode("\n\r\n   \n\t\n"));
  await alice.send("after the blanks");
  assert.match(await nextLine(bob), live("alice: after the blanks"));
  // alice got no error for them either.
  await bob.send("marker");
  assert.match(await nextLine(alice), live("bob: marker"));
});

Deno.test("serve() sends //text as an ordinary line starting with /text", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  await alice.send("//help is not a command");
  await alice.send("//");
  assert.match(await nextLine(bob), live("alice: /help is not a command"));
  assert.match(await nextLine(bob), live("alice: /"));
  await bob.send("marker");
  assert.match(await nextLine(alice), live("bob: marker"));
});

Deno.test("serve() announces a member who closes the connection cleanly", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  const bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  await bob.close();
  assert.match(await nextLine(alice), live("<-- bob left"));
  assert.equal(server.room.size, 1);
  // The alias is free again.
  await using _again = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
});

/** Joins with node:net, so that the test can reset the connection. */
function nodeJoin(port: number, alias: string): Promise<net.Socket> {
  const socket = net.connect({ host: "127.0.0.1", port });
  const joined = new Promise<net.Socket>((resolve, reject) => {
    let text = "";
    let sent = false;
    socket.setEncoding("utf8");
    const onData = (chunk: string) => {
      text += chunk;
      if (!sent && text.includes("? alias: ")) {
        sent = true;
        socket.write(alias + "\n");
      }
      if (sent && text.includes("-- limits: ")) {
        socket.off("data", onData);
        socket.pause();
        resolve(socket);
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
  return withTimeout(joined, WAIT_MS, `${alias} to join with node:net`).catch((error) => {
    socket.destroy();
    throw error;
  });
}

/** Resets a node:net socket (RST, not FIN) and waits until it is closed. */
async function reset(socket: net.Socket): Promise<void> {
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => {});
  socket.resetAndDestroy();
  await withTimeout(closed, WAIT_MS, "the reset socket to close");
}

Deno.test("serve() announces a member whose connection is reset", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  const mallory = await nodeJoin(server.addr.port, "mallory");
  await alice.expect(live("--> mallory joined"));
  await reset(mallory);
  assert.match(await nextLine(alice), live("<-- mallory left (connection reset)"));
  assert.equal(server.room.size, 1);
  assert.ok(server.log.some((line) => line.includes("mallory: left")), server.log.join("\n"));
});

Deno.test("serve() lets others join and chat while a connection never sends an alias", async () => {
  await using server = startServer();
  await using silent = await TestClient.connect(server.addr.port);
  assert.equal(await nextLine(silent), PROMPT);
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  await alice.send("hi bob");
  assert.match(await nextLine(bob), live("alice: hi bob"));
  await bob.send("hi alice");
  assert.match(await nextLine(alice), live("bob: hi alice"));
  assert.equal(server.connections, 3);
  assert.equal(server.room.size, 2);
});

Deno.test("serve() accepts CRLF line endings for the alias and for chat", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.connect(server.addr.port);
  await bob.expect(/^\? alias: /);
  await bob.write(encoder.encode("bob\r\n"));
  assert.match(await nextLine(bob), live("-- welcome, bob! 2 online: alice, bob"));
  assert.match(await nextLine(alice), live("--> bob joined"));
  await bob.write(encoder.encode("hello\r\nsecond\r\n"));
  assert.equal((await nextLine(alice)).replace(new RegExp(`^${T}`), ""), "bob: hello");
  assert.equal((await nextLine(alice)).replace(new RegExp(`^${T}`), ""), "bob: second");
});

Deno.test("serve() replaces invalid UTF-8 and keeps the connection", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  const bad = new Uint8Array([
    ...encoder.encode("bad "),
    0xff, // IAC IAC, the telnet way of sending the byte 0xFF
    0xff,
    0xfe,
    0xc3, // a truncated two-byte sequence
    ...encoder.encode(" end\n"),
  ]);
  await alice.write(bad);
  assert.match(await nextLine(bob), live("alice: bad \uFFFD\uFFFD\uFFFD end"));
  await alice.send("still here");
  assert.match(await nextLine(bob), live("alice: still here"));
  assert.equal(server.room.size, 2);
});

/** Asserts that `line` holds no character a terminal would act on. */
function assertNoRawControls(line: string): void {
  for (const ch of line) {
    const code = ch.codePointAt(0)!;
    const unsafe = code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x202e;
    assert.ok(!unsafe, `raw U+${code.toString(16).padStart(4, "0")} in ${JSON.stringify(line)}`);
  }
}

Deno.test("serve() escapes control characters and escape sequences before others see them", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  const nasty = "a\x1b[2J\x1b]0;title\x07b\rbob: fake\u009b31mc\u202ed\x00e";
  await alice.send(nasty);
  const said = await nextLine(bob);
  assertNoRawControls(said);
  assert.match(said, live("alice: a^[[2J^[]0;title^Gb^Mbob: fake\\x9B31mc\\u202Ed^@e"));
  await alice.send(`/me ${nasty}`);
  const acted = await nextLine(bob);
  assertNoRawControls(acted);
  assert.match(acted, live("* alice a^[[2J^[]0;title^Gb^Mbob: fake\\x9B31mc\\u202Ed^@e"));
  await alice.send(`/msg bob ${nasty}`);
  const whispered = await nextLine(bob);
  assertNoRawControls(whispered);
  assert.match(
    whispered,
    live("(private) alice: a^[[2J^[]0;title^Gb^Mbob: fake\\x9B31mc\\u202Ed^@e"),
  );
  const echoed = await nextLine(alice);
  assertNoRawControls(echoed);
  await alice.send(`/quit ${nasty}`);
  const left = await nextLine(bob);
  assertNoRawControls(left);
  assert.match(
    left,
    live("<-- alice left (a^[[2J^[]0;title^Gb^Mbob: fake\\x9B31mc\\u202Ed^@e)"),
  );
  const bye = await alice.closed();
  assert.equal(bye.length, 1);
  assertNoRawControls(bye[0]!);
});

Deno.test("serve() refuses an over-long line without delivering it and keeps the connection", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  const tooLong = "! line too long: at most 4096 bytes; it was not delivered";
  await alice.send("x".repeat(4097));
  assert.equal(await nextLine(alice), tooLong);
  await alice.send("y".repeat(100_000));
  assert.equal(await nextLine(alice), tooLong);
  // Exactly the limit passes, with or without a CR before the LF.
  await alice.send("z".repeat(4096));
  await alice.write(encoder.encode("w".repeat(4096) + "\r\n"));
  await alice.send("after");
  assert.match(await nextLine(bob), live(`alice: ${"z".repeat(4096)}`));
  assert.match(await nextLine(bob), live(`alice: ${"w".repeat(4096)}`));
  assert.match(await nextLine(bob), live("alice: after"));
  await bob.send("marker");
  assert.match(await nextLine(alice), live("bob: marker"));
});

Deno.test("serve() keeps serving clients when its log function throws", async () => {
  for (const from of ["the first line", "the first connection"]) {
    let calls = 0;
    const log = () => {
      // "the first connection": listening is logged, then the log breaks.
      if (++calls > 1 || from === "the first line") throw new Error("log is gone");
    };
    await using server = startServer({ log });
    const port = server.addr.port;
    await using alice = await TestClient.join(port, "alice");
    await using bob = await TestClient.join(port, "bob");
    await alice.expect(live("--> bob joined"));
    await alice.send("can you hear me?");
    assert.match(await nextLine(bob), live("alice: can you hear me?"), from);
    await alice.send("/quit");
    assert.deepEqual(await alice.closed(), ["!! bye"], from);
    assert.match(await nextLine(bob), live("<-- alice left"), from);
    // A connection that leaves before joining, then one that joins: both still work.
    await using early = await TestClient.connect(port);
    await early.expect(/^\? alias: /);
    await early.send("/quit");
    assert.deepEqual(await early.closed(), ["!! bye"], from);
    await using carol = await TestClient.join(port, "carol");
    assert.match(await nextLine(bob), live("--> carol joined"), from);
    await carol.send("still up");
    assert.match(await nextLine(bob), live("carol: still up"), from);
    assert.equal(server.room.size, 2, from);
    await server.shutdown();
    assert.deepEqual(await bob.closed(), ["!! server shutting down"], from);
    assert.ok(calls >= 6, `the log was called ${calls} times (${from})`);
  }
});

Deno.test("serve() logs a /quit as 'left (quit)', never the reason the user wrote", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  await alice.send("/quit meeting my secret contact at noon");
  assert.deepEqual(await alice.closed(), ["!! bye: meeting my secret contact at noon"]);
  assert.match(await nextLine(bob), live("<-- alice left (meeting my secret contact at noon)"));
  assert.ok(
    server.log.some((line) => /^127\.0\.0\.1:\d+ alice: left \(quit\)$/.test(line)),
    server.log.join("\n"),
  );
  assert.ok(!server.log.some((line) => line.includes("secret")), server.log.join("\n"));
  // A plain /quit is logged the same way.
  await bob.send("/quit");
  assert.deepEqual(await bob.closed(), ["!! bye"]);
  assert.ok(
    server.log.some((line) => /^127\.0\.0\.1:\d+ bob: left \(quit\)$/.test(line)),
    server.log.join("\n"),
  );
});

Deno.test("serve() refuses a rateLimit or rateBurst that is not a whole number with a RangeError", async () => {
  const cases: [ServeOptions, RegExp][] = [
    [{ rateLimit: 0.2 }, /^Cannot start server: rateLimit must be a whole number, received 0\.2$/],
    [{ rateLimit: 2.5 }, /^Cannot start server: rateLimit must be a whole number, received 2\.5$/],
    [{ rateBurst: 1.5 }, /^Cannot start server: rateBurst must be a whole number, received 1\.5$/],
  ];
  for (const [options, message] of cases) {
    let started: ChatServer | undefined;
    try {
      assert.throws(
        () => (started = serve({ hostname: "127.0.0.1", port: 0, log: () => {}, ...options })),
        (error: unknown) => {
          assert.ok(error instanceof RangeError, `not a RangeError: ${error}`);
          assert.match(error.message, message);
          return true;
        },
      );
    } finally {
      await started?.shutdown();
    }
  }
});

Deno.test("serve() refuses an outbox too small for maxLineBytes with a RangeError naming both options", async () => {
  let started: ChatServer | undefined;
  try {
    assert.throws(
      () => {
        started = serve({
          hostname: "127.0.0.1",
          port: 0,
          log: () => {},
          maxLineBytes: 200_000,
          outboxBytes: 1_048_576,
        });
      },
      (error: unknown) => {
        assert.ok(error instanceof RangeError, `not a RangeError: ${error}`);
        assert.match(error.message, /\boutboxBytes\b/);
        assert.match(error.message, /\bmaxLineBytes\b/);
        assert.match(error.message, /\b1200512 bytes\b/);
        return true;
      },
    );
  } finally {
    await started?.shutdown();
  }
});

Deno.test("serve() with a large maxLineBytes and no outboxBytes grows the outbox to fit", async () => {
  await using server = startServer({ maxLineBytes: 200_000 });
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  const long = "y".repeat(150_000);
  await bob.send(long);
  const line = await nextLine(alice);
  assert.ok(new RegExp(`^${T}bob: y+$`).test(line), line.slice(0, 80));
  assert.equal(line.length, "[00:00:00] bob: ".length + long.length);
});
