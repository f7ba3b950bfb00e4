/**
 * Several `confab serve --redis` instances as one server, against a real
 * redis-server: what people on different instances see of each other, an
 * alias claimed on two at once, an instance killed with SIGKILL, Redis
 * restarted mid-chat, and Redis never there at all.
 */

import assert from "node:assert/strict";
import {
  type ConfabProcess,
  live,
  nextLine,
  readToEnd,
  SERVE_WRITE_COMMAND,
  spawnConfab,
  spawnServer,
  T,
  TestClient,
} from "../_helpers.ts";
import { freePort, startProxy, startRedis, TEST_CA } from "../_redis.ts";

/** How long a dead instance may take to be noticed, as the README promises. */
const DEAD_WITHIN_MS = 8000;

type Server = ConfabProcess & { port: number };

/** Starts `n` instances on one Redis. */
async function cluster(url: string, n: number, args: string[] = []): Promise<Server[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await spawnServer(["--redis", url, ...args]));
  } catch (error) {
    await stopAll(servers);
    throw error;
  }
  return servers;
}

async function stopAll(servers: Server[]): Promise<void> {
  await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
}

async function closeAll(clients: TestClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

/**
 * Proves each of `clients` received nothing since its last read: `from`
 * says `marker`, and that must be the very next line each one gets.
 */
async function nothingBefore(
  clients: TestClient[],
  from: TestClient,
  alias: string,
  marker: string,
): Promise<void> {
  await from.send(marker);
  for (const client of clients) assert.match(await nextLine(client), live(`${alias}: ${marker}`));
}

const H = String.raw`\[history \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] `;

function history(body: string): RegExp {
  return new RegExp(`^${H}${body.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

Deno.test("two instances on one Redis are one server", async (t) => {
  await using redis = await startRedis();
  const [a, b] = await cluster(redis.url, 2);
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.connect(b!.port);
    clients.push(bob);
    await bob.expect(/^\? alias: /);
    await bob.send("bob");
    await bob.expect(live("-- welcome, bob! 2 online: alice, bob"));
    await bob.expect(/ -- limits: /);
    await alice.expect(live("--> bob joined"));
    const carol = await TestClient.join(a!.port, "carol");
    clients.push(carol);
    await alice.expect(live("--> carol joined"));
    await bob.expect(live("--> carol joined"));

    await t.step("messages and actions reach every instance, not the sender", async () => {
      await alice.send("hello from a");
      await bob.expect(live("alice: hello from a"));
      await carol.expect(live("alice: hello from a"));
      await bob.send("/me waves");
      await alice.expect(live("* bob waves"));
      await carol.expect(live("* bob waves"));
      // The senders got nothing of their own back.
      await nothingBefore([alice, bob], carol, "carol", "m1");
    });

    await t.step("/who and /rooms list everyone, wherever they are", async () => {
      await bob.send("/who");
      await bob.expect(live("-- 3 online:"));
      assert.match(await nextLine(bob), new RegExp(`^${T}--   alice, here \\d+s$`));
      assert.match(await nextLine(bob), new RegExp(`^${T}--   bob, here \\d+s$`));
      assert.match(await nextLine(bob), new RegExp(`^${T}--   carol, here \\d+s$`));
      await carol.send("/rooms");
      await carol.expect(live("-- 1 room:"));
      assert.match(await nextLine(carol), /#lobby, 3 here \(you are here\)/);
      // Read afresh, neither says it is as last known: the next line is the
      // answer to the next command.
      for (const client of [bob, carol]) {
        await client.send("/back");
        assert.equal(await nextLine(client), "! you are not marked as away");
      }
    });

    await t.step("an alias held on one instance is taken on the other", async () => {
      const again = await TestClient.connect(b!.port);
      clients.push(again);
      await again.expect(/^\? alias: /);
      await again.send("ALICE");
      await again.expect(/^! ALICE is taken; choose another$/);
      await again.close();
    });

    await t.step("rooms, moves and topics are shared", async () => {
      await alice.send("/join dev");
      await alice.expect(/-- welcome to #dev, alice! you are the only one here/);
      await bob.expect(live("<-- alice left for #dev"));
      await carol.expect(live("<-- alice left for #dev"));
      await alice.send("/topic ship it");
      await alice.expect(live("-- alice set the topic: ship it"));
      await bob.send("/join DEV");
      await bob.expect(live("-- welcome to #dev, bob! 2 online: alice, bob"));
      await bob.expect(live("-- topic: ship it"));
      await alice.expect(live("--> bob joined"));
      await carol.expect(live("<-- bob left for #DEV"));
      await carol.send("/rooms");
      await carol.expect(live("-- 2 rooms:"));
      assert.match(await nextLine(carol), /#lobby, 1 here \(you are here\)/);
      assert.match(await nextLine(carol), /#dev, 2 here: ship it/);
    });

    await t.step("private messages cross instances and rooms, and /reply answers", async () => {
      await carol.send("/msg bob psst");
      await carol.expect(live("(private to bob) psst"));
      await bob.expect(live("(private) carol: psst"));
      await bob.send("/reply got it");
      await bob.expect(live("(private to carol) got it"));
      await carol.expect(live("(private) bob: got it"));
      await carol.send("/msg nobody hello?");
      await carol.expect(/^! no one called nobody is here; \/who lists who is$/);
    });

    await t.step("a nick change is seen across instances and frees the old alias", async () => {
      await bob.send("/nick robert");
      await bob.expect(live("--- bob is now known as robert"));
      await alice.expect(live("--- bob is now known as robert"));
      await alice.send("/msg robert hi robert");
      await bob.expect(live("(private) alice: hi robert"));
      const newBob = await TestClient.join(a!.port, "bob");
      clients.push(newBob);
      await carol.expect(live("--> bob joined"));
    });

    await t.step("history is shared: a newcomer on the other instance gets it", async () => {
      await alice.send("for the record");
      await bob.expect(live("alice: for the record"));
      const dave = await TestClient.connect(b!.port);
      clients.push(dave);
      await dave.expect(/^\? alias: /);
      await dave.send("/join dev");
      await dave.expect(/^\? alias: joining #dev; /);
      await dave.send("dave");
      await dave.expect(history("alice: for the record"));
      await dave.expect(/-- welcome to #dev, dave! 3 online: alice, robert, dave/);
    });

    await t.step("leaving is seen on every instance", async () => {
      await carol.send("/quit gone fishing");
      await carol.closed();
      const newBob = clients.at(-2)!;
      await newBob.expect(live("<-- carol left (gone fishing)"));
    });
  } finally {
    await closeAll(clients);
    await stopAll([a!, b!]);
  }
});

Deno.test("three instances: each sender's order holds, nothing comes twice, late joiners get history", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 3, ["--rate", "0", "--history", "20"]);
  const [a, b, c] = servers;
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(b!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    const carol = await TestClient.join(c!.port, "carol");
    clients.push(carol);
    await alice.expect(live("--> carol joined"));
    await bob.expect(live("--> carol joined"));
    const count = 50;
    // Two senders at once, on different instances.
    await Promise.all([
      alice.write(new TextEncoder().encode(
        Array.from({ length: count }, (_, i) => `a${i}\n`).join(""),
      )),
      bob.write(new TextEncoder().encode(
        Array.from({ length: count }, (_, i) => `b${i}\n`).join(""),
      )),
    ]);
    const read = async (client: TestClient, want: string[]) => {
      const got: Record<string, number[]> = {};
      for (let n = 0; n < count * want.length; n++) {
        const line = await nextLine(client);
        const m = new RegExp(`^${T}(\\w+): ([ab])(\\d+)$`).exec(line);
        assert.ok(m, `unexpected line ${line}`);
        (got[m[2]!] ??= []).push(Number(m[3]));
      }
      for (const sender of want) {
        assert.deepEqual(got[sender], Array.from({ length: count }, (_, i) => i), sender);
      }
    };
    await Promise.all([read(carol, ["a", "b"]), read(alice, ["b"]), read(bob, ["a"])]);
    // Nothing more came: each one's next line is a marker said after.
    await nothingBefore([carol, bob], alice, "alice", "end-a");
    await nothingBefore([carol, alice], bob, "bob", "end-b");

    // A latecomer on the third instance gets the last 20 said, in order.
    const dave = await TestClient.connect(c!.port);
    clients.push(dave);
    await dave.expect(/^\? alias: /);
    await dave.send("dave");
    const replay: string[] = [];
    for (let n = 0; n < 20; n++) replay.push(await nextLine(dave));
    assert.ok(replay.every((l) => new RegExp(`^${H}`).test(l)), replay.join("\n"));
    assert.match(replay.at(-1)!, history("bob: end-b"));
    assert.match(replay.at(-2)!, history("alice: end-a"));
    assert.match(await nextLine(dave), /-- welcome, dave! 4 online: alice, bob, carol, dave/);
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("an alias asked for on two instances at the same moment goes to one", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2);
  const clients: TestClient[] = [];
  try {
    for (let round = 0; round < 5; round++) {
      const pair = await Promise.all(servers.map((s) => TestClient.connect(s.port)));
      clients.push(...pair);
      await Promise.all(pair.map((c) => c.expect(/^\? alias: /)));
      await Promise.all(pair.map((c) => c.send(`same${round}`)));
      const answers = await Promise.all(pair.map((c) => c.expect(/ -- welcome, |^! /)));
      const won = answers.filter((l) => l.includes("welcome")).length;
      assert.equal(won, 1, answers.join("\n"));
      assert.equal(
        answers.filter((l) => l === `! same${round} is taken; choose another`).length,
        1,
      );
    }
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("an instance killed with SIGKILL: one survivor announces its members, once", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 3);
  const [a, b, c] = servers;
  const clients: TestClient[] = [];
  try {
    const eve = await TestClient.join(a!.port, "eve");
    clients.push(eve);
    const bob = await TestClient.join(b!.port, "bob");
    clients.push(bob);
    const carol = await TestClient.join(c!.port, "carol");
    clients.push(carol);
    await bob.expect(live("--> carol joined"));
    const started = Date.now();
    a!.child.kill("SIGKILL");
    await a!.child.status;
    await bob.expect(live("<-- eve left (server connection lost)"), DEAD_WITHIN_MS);
    await carol.expect(live("<-- eve left (server connection lost)"), DEAD_WITHIN_MS);
    assert.ok(Date.now() - started < DEAD_WITHIN_MS);
    // Once: after a whole heartbeat more, the next thing each sees is a marker.
    const later = await TestClient.join(b!.port, "eve");
    clients.push(later);
    await bob.expect(live("--> eve joined"));
    await carol.expect(live("--> eve joined"));
    await nothingBefore([bob, carol], later, "eve", "still one");
    await bob.send("/who");
    await bob.expect(live("-- 3 online:"));
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("Redis restarted mid-chat: members are told, chat goes on locally, nothing after is lost", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2);
  const [a, b] = servers;
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a!.port, "alice");
    clients.push(alice);
    const carol = await TestClient.join(a!.port, "carol");
    clients.push(carol);
    const bob = await TestClient.join(b!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    await carol.expect(live("--> bob joined"));
    await alice.send("before");
    await bob.expect(live("alice: before"));
    await carol.expect(live("alice: before"));

    await redis.kill();
    const down = /-- the link to the other servers is down: /;
    await Promise.all([alice, carol, bob].map((c) => c.expect(down)));
    // Those on one instance still hear each other.
    await alice.send("while down");
    await carol.expect(live("alice: while down"));
    // A newcomer cannot be placed anywhere: told why, and let go.
    const late = await TestClient.connect(a!.port);
    clients.push(late);
    await late.expect(/^\? alias: /);
    await late.send("dave");
    assert.deepEqual(await late.closed(), [
      "!! disconnected: the link to the other servers is down; try again in a moment",
    ]);

    await redis.restart();
    const back = live("-- the link to the other servers is back");
    await Promise.all([alice, carol, bob].map((c) => c.expect(back, 15_000)));
    const forgotten = live("-- Redis lost its data: the history from before is gone");
    await Promise.all([alice, carol, bob].map((c) => c.expect(forgotten)));
    await bob.send("after the restart");
    await alice.expect(live("bob: after the restart"));
    await carol.expect(live("bob: after the restart"));
    await alice.send("and back");
    await bob.expect(live("alice: and back"));
    await carol.expect(live("alice: and back"));
    await nothingBefore([alice, carol], bob, "bob", "one each");
    // Redis forgot everything; /who is whole again once the heartbeats ran.
    await bob.send("/who");
    await bob.expect(live("-- 3 online:"));
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("serve --redis with no Redis there says so in one line and exits 1", async () => {
  const port = freePort();
  await using proc = spawnConfab(["serve", "--port", "0", "--redis", `redis://127.0.0.1:${port}`]);
  assert.equal(await proc.exit(), 1);
  const stderr = await proc.stderr.rest();
  assert.equal(stderr.length, 1, stderr.join("\n"));
  assert.match(
    stderr[0]!,
    /^confab: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
  );
  assert.deepEqual(await proc.stdout.rest(), []);
});

Deno.test("--cluster keeps confab servers on one Redis apart", async () => {
  await using redis = await startRedis();
  const [a] = await cluster(redis.url, 1, ["--cluster", "one"]);
  const [b] = await cluster(redis.url, 1, ["--cluster", "two"]);
  const clients: TestClient[] = [];
  try {
    clients.push(await TestClient.join(a!.port, "alice"));
    const other = await TestClient.connect(b!.port);
    clients.push(other);
    await other.expect(/^\? alias: /);
    await other.send("alice");
    await other.expect(live("-- welcome, alice! you are the only one here"));
  } finally {
    await closeAll(clients);
    await stopAll([a!, b!]);
  }
});

Deno.test("an instance that is stopped says goodbye for its members on the others", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2);
  const [a, b] = servers;
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(b!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    a!.child.kill("SIGTERM");
    await alice.expect(/^!! server shutting down/);
    await bob.expect(live("<-- alice left (server shutting down)"));
    assert.equal(await a!.exit(), 0);
    // Its alias is free at once.
    clients.push(await TestClient.join(b!.port, "alice"));
    await bob.expect(live("--> alice joined"));
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("a password and a database number in the --redis URL are used", async () => {
  await using redis = await startRedis({ args: ["--requirepass", "s3cret"] });
  const url = `redis://:s3cret@127.0.0.1:${redis.port}/3`;
  const servers = await cluster(url, 2);
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(servers[0]!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(servers[1]!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    await bob.send("hi");
    await alice.expect(live("bob: hi"));
    // The state is in database 3, not 0.
    const count = async (db: string) => {
      const { stdout } = await new Deno.Command("redis-cli", {
        args: ["-p", String(redis.port), "--no-auth-warning", "-a", "s3cret", "-n", db, "DBSIZE"],
        stdout: "piped",
        stderr: "null",
      }).output();
      return Number(new TextDecoder().decode(stdout).trim());
    };
    assert.ok((await count("3")) > 0);
    assert.equal(await count("0"), 0);
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
  await using wrong = spawnConfab([
    "serve",
    "--port",
    "0",
    "--redis",
    `redis://:nope@127.0.0.1:${redis.port}`,
  ]);
  assert.equal(await wrong.exit(), 1);
  const stderr = await wrong.stderr.rest();
  assert.equal(stderr.length, 1, stderr.join("\n"));
  assert.match(stderr[0]!, /^confab: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: WRONGPASS/);
});

Deno.test("serve refuses a --redis that is not a Redis URL, and --cluster without --redis", async () => {
  for (
    const args of [
      ["--redis", "http://127.0.0.1:6379"],
      ["--redis", "not a url"],
      ["--cluster", "x"],
    ]
  ) {
    await using proc = spawnConfab(["serve", "--port", "0", ...args]);
    assert.equal(await proc.exit(), 2, args.join(" "));
    const stderr = await proc.stderr.rest();
    assert.match(stderr[0]!, /^confab: --(redis|cluster) /, stderr.join("\n"));
  }
});

Deno.test("an instance stopped past its heartbeat: the others see its users go and come back, its own see nothing", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2);
  const [a, b] = servers;
  const clients: TestClient[] = [];
  try {
    const eve = await TestClient.join(a!.port, "eve");
    clients.push(eve);
    const bob = await TestClient.join(b!.port, "bob");
    clients.push(bob);
    await eve.expect(live("--> bob joined"));
    a!.child.kill("SIGSTOP");
    try {
      await bob.expect(live("<-- eve left (server connection lost)"), DEAD_WITHIN_MS);
    } finally {
      a!.child.kill("SIGCONT");
    }
    await bob.expect(live("--> eve joined"), DEAD_WITHIN_MS);
    await nothingBefore([bob], eve, "eve", "still here");
    await nothingBefore([eve], bob, "bob", "welcome back");
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("an instance cut off from Redis catches up when it is back", async (t) => {
  await using redis = await startRedis();
  await using proxy = startProxy(redis.port);
  const a = await spawnServer(["--redis", `redis://127.0.0.1:${proxy.port}`, "--history", "3"]);
  const b = await spawnServer(["--redis", redis.url, "--history", "3", "--rate", "0"]);
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a.port, "alice");
    clients.push(alice);
    const carol = await TestClient.join(a.port, "carol");
    clients.push(carol);
    const bob = await TestClient.join(b.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    await bob.send("first");
    await alice.expect(live("bob: first"));
    await carol.expect(live("bob: first"));
    const down = /-- the link to the other servers is down: /;
    const back = live("-- the link to the other servers is back");

    await t.step("what was said meanwhile is replayed, once, in order", async () => {
      proxy.cut();
      await alice.expect(down);
      await carol.expect(down);
      await bob.send("missed 1");
      await bob.send("missed 2");
      // carol leaves while cut off: the others hear of it once the link is back.
      await carol.send("/quit");
      await carol.closed();
      await alice.expect(live("<-- carol left"));
      proxy.restore();
      await alice.expect(back, 10_000);
      assert.match(await nextLine(alice), live("bob: missed 1"));
      assert.match(await nextLine(alice), live("bob: missed 2"));
      await bob.expect(live("<-- carol left (left while their server was cut off)"));
      await nothingBefore([alice], bob, "bob", "after");
    });

    await t.step("more than the log holds: members are told lines were lost", async () => {
      proxy.cut();
      await alice.expect(down);
      await bob.write(new TextEncoder().encode(
        Array.from({ length: 300 }, (_, i) => `burst ${i}\n`).join(""),
      ));
      await bob.send("/who");
      await bob.expect(live("-- 2 online:"));
      proxy.restore();
      await alice.expect(back, 10_000);
      await alice.expect(
        live("-- some lines said while the link was down were lost: history kept fewer"),
      );
      await alice.expect(live("bob: burst 299"));
      await nothingBefore([alice], bob, "bob", "after the burst");
    });
  } finally {
    await closeAll(clients);
    await stopAll([a, b]);
  }
});

Deno.test("rediss:// speaks TLS to Redis, and an untrusted certificate is one line, exit 1", async () => {
  await using redis = await startRedis({ tls: true });
  const env = { DENO_CERT: TEST_CA };
  const spawn = () =>
    spawnConfab(["serve", "--port", "0", "--redis", redis.url], {
      env,
      command: SERVE_WRITE_COMMAND,
    });
  const servers = [spawn(), spawn()];
  const clients: TestClient[] = [];
  try {
    const ports: number[] = [];
    for (const server of servers) {
      const first = await server.stdout.next(15_000);
      ports.push(Number(/listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "")?.[1]));
    }
    const alice = await TestClient.join(ports[0]!, "alice");
    clients.push(alice);
    const bob = await TestClient.join(ports[1]!, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    await bob.send("over tls");
    await alice.expect(live("bob: over tls"));
  } finally {
    await closeAll(clients);
    await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
  }
  await using untrusted = spawnConfab(["serve", "--port", "0", "--redis", redis.url]);
  assert.equal(await untrusted.exit(), 1);
  const stderr = await untrusted.stderr.rest();
  assert.equal(stderr.length, 1, stderr.join("\n"));
  assert.match(
    stderr[0]!,
    /^confab: cannot reach Redis at rediss:\/\/127\.0\.0\.1:\d+: .*certificate/,
  );
});

Deno.test("a member too slow for lines from another instance is dropped, and the others keep receiving", async () => {
  await using redis = await startRedis();
  const limits = ["--rate", "0", "--max-line-bytes", "16384"];
  const a = await spawnServer(["--redis", redis.url, ...limits]);
  const b = await spawnServer(["--redis", redis.url, ...limits, "--outbox-bytes", "131072"]);
  const clients: TestClient[] = [];
  try {
    const slow = await TestClient.join(b.port, "slow");
    clients.push(slow);
    const bob = await TestClient.join(b.port, "bob");
    clients.push(bob);
    const alice = await TestClient.join(a.port, "alice");
    clients.push(alice);
    await bob.expect(live("--> alice joined"));
    // From here on, slow never reads: its kernel buffers fill, then its queue.
    const filler = "x".repeat(16_000);
    const started = Date.now();
    let dropped = false;
    for (let i = 0; i < 3000 && !dropped && Date.now() - started < 20_000; i++) {
      await alice.send(`${i} ${filler}`);
      for (let n = 0; n < 10; n++) {
        const line = await nextLine(bob);
        if (line.startsWith("[") && line.includes(`alice: ${i} `)) break;
        assert.match(line, live("<-- slow left (too slow: could not keep up with the room)"));
        dropped = true;
      }
    }
    assert.ok(dropped, "slow was never dropped");
    await alice.send("after");
    await bob.expect(live("alice: after"));
    const rest = await readToEnd(slow, 10_000);
    assert.equal(rest.at(-1), "!! disconnected: too slow: could not keep up with the room");
  } finally {
    await closeAll(clients);
    await stopAll([a, b]);
  }
});

/** Runs `redis-cli` against the test's Redis; its reply, one line per element. */
async function cli(port: number, ...args: string[]): Promise<string[]> {
  const { code, stdout } = await new Deno.Command("redis-cli", {
    args: ["-p", String(port), ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 0, `redis-cli ${args.join(" ")}`);
  return new TextDecoder().decode(stdout).split("\n").filter((l) => l !== "");
}

/** Asks Redis until `check` holds of the reply, at most `tries` times, 100 ms apart. */
async function until(
  port: number,
  args: string[],
  check: (reply: string[]) => boolean,
  tries = 80,
): Promise<string[]> {
  let reply: string[] = [];
  for (let i = 0; i < tries; i++) {
    reply = await cli(port, ...args);
    if (check(reply)) return reply;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`redis-cli ${args.join(" ")}: still ${JSON.stringify(reply)}`);
}

Deno.test("hostile messages and records in Redis crash no instance and silence no room", async (t) => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2);
  const [a, b] = servers;
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(b!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    const ids = await cli(redis.port, "ZRANGE", "confab:main:instances", "0", "-1");
    assert.equal(ids.length, 2);

    await t.step("a private message that is not an object is dropped", async () => {
      for (const id of ids) {
        const owners = await cli(redis.port, "SMEMBERS", `confab:main:of:${id}`);
        for (const owner of owners) {
          for (const body of ["null", "[1]", '"x"', "7", '{"o":"x:1","from":null}']) {
            await cli(redis.port, "PUBLISH", `confab:main:inbox:${id}`, `${owner} ${body}`);
          }
        }
      }
      await nothingBefore([bob], alice, "alice", "still here");
      await nothingBefore([alice], bob, "bob", "me too");
    });

    await t.step("a stream id that is malformed or from the future is refused", async () => {
      for (
        const id of ["99999999999999-0/1", "abc-x/1", "1-1/x", "-1-0/1", "1e3-0/1", "9-9"]
      ) {
        await cli(
          redis.port,
          "PUBLISH",
          "confab:main:room:lobby",
          `${id} {"k":"notice","text":"bogus","ms":1}`,
        );
      }
      // Refused, each of them, and the lines after are delivered.
      await nothingBefore([bob], alice, "alice", "after the bogus ids");
      await nothingBefore([alice], bob, "bob", "and again");
    });

    await t.step("events with an alias no one could have are dropped", async () => {
      for (
        const event of [
          '{"k":"say","o":"x:1","from":"a\\u001bb","text":"hi","ms":1}',
          '{"k":"say","o":"x:1","from":"","text":"hi","ms":1}',
          '{"k":"join","o":"x:1","alias":"server","ms":1}',
          '{"k":"nick","o":"x:1","old":null,"alias":"zed","ms":1}',
        ]
      ) {
        await cli(redis.port, "PUBLISH", "confab:main:room:lobby", `- ${event}`);
      }
      await nothingBefore([bob], alice, "alice", "no ghosts");
    });

    await t.step("a text longer than a line is cut to one", async () => {
      const long = "y".repeat(10_000);
      await cli(
        redis.port,
        "PUBLISH",
        "confab:main:room:lobby",
        `- {"k":"say","o":"x:1","from":"mallory","text":"${long}","ms":1}`,
      );
      const line = await alice.expect(/ mallory: y+$/);
      const text = line.slice(line.indexOf("mallory: ") + 9);
      assert.ok(text.length <= 4096, `${text.length} bytes`);
      await bob.expect(/ mallory: y+$/);
    });

    await t.step(
      "a member record that is not an object neither freezes the room nor the heartbeat",
      async () => {
        await cli(redis.port, "HSET", "confab:main:members", "ghost:1", "null");
        await cli(redis.port, "ZADD", "confab:main:room:lobby:who", "99999999999999", "ghost:1");
        // A live member's record, spoiled: its heartbeat writes it whole again.
        const owners = await cli(redis.port, "SMEMBERS", `confab:main:of:${ids[0]}`);
        assert.equal(owners.length, 1);
        await cli(redis.port, "HSET", "confab:main:members", owners[0]!, "null");
        const carol = await TestClient.join(b!.port, "carol");
        clients.push(carol);
        await alice.expect(live("--> carol joined"));
        await bob.expect(live("--> carol joined"));
        await nothingBefore([bob, carol], alice, "alice", "the room goes on");
        await nothingBefore([alice, bob], carol, "carol", "and I hear it");
        await until(
          redis.port,
          ["HGET", "confab:main:members", owners[0]!],
          (reply) => reply[0]?.startsWith("{") === true,
        );
        const dave = await TestClient.join(a!.port, "dave");
        clients.push(dave);
        for (const client of [alice, bob, carol]) await client.expect(live("--> dave joined"));
        await nothingBefore([alice, bob, carol], dave, "dave", "late but in");
      },
    );
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("a --redis URL with a password is never echoed", async () => {
  for (
    const url of [
      "redis://:s3cret@127.0.0.1:99999",
      "redis://user:s3cret@[nope",
      "http://user:s3cret@127.0.0.1:6379",
    ]
  ) {
    await using proc = spawnConfab(["serve", "--port", "0", "--redis", url]);
    assert.equal(await proc.exit(), 2, url);
    const stderr = (await proc.stderr.rest()).join("\n");
    assert.match(stderr, /^confab: --redis /, url);
    assert.doesNotMatch(stderr, /s3cret/, url);
  }
});

Deno.test("Redis frozen, then cut off: /who answers from what it knew, errors are the link's", async () => {
  await using redis = await startRedis();
  await using proxy = startProxy(redis.port);
  const a = await spawnServer(["--redis", `redis://127.0.0.1:${proxy.port}`]);
  const b = await spawnServer(["--redis", redis.url]);
  const servers = [a, b];
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(b.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    await cli(redis.port, "CLIENT", "PAUSE", "2500", "ALL");
    let started = Date.now();
    const stale = live("--   (as last known: the other servers could not be asked just now)");
    await alice.send("/who");
    await alice.expect(live("-- 2 online:"));
    await alice.expect(stale);
    assert.ok(Date.now() - started < 1500, `/who took ${Date.now() - started} ms`);
    await alice.send("lost in the freeze");
    started = Date.now();
    await alice.send("/rooms");
    await alice.expect(live("-- 1 room:"));
    await alice.expect(stale);
    assert.ok(Date.now() - started < 1500, `/rooms took ${Date.now() - started} ms`);
    proxy.cut();
    const down = "the link to the other servers is down; try again in a moment";
    await alice.expect(new RegExp(`^! not sent: ${down}$`));
    await alice.send("/msg bob are you there");
    await alice.expect(new RegExp(`^! private message not sent: ${down}$`));
    proxy.restore();
    await alice.expect(live("-- the link to the other servers is back"), 15_000);
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("/reply reaches a member of another instance who changed alias since", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2);
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(servers[0]!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(servers[1]!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    await bob.send("/msg alice psst");
    await alice.expect(live("(private) bob: psst"));
    await bob.send("/nick robert");
    await alice.expect(live("--- bob is now known as robert"));
    await alice.send("/reply who is this");
    await alice.expect(live("(private to robert) who is this"));
    await bob.expect(live("(private) alice: who is this"));
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("--quiet-above sums up joins and leaves in a shared room, counting every instance", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2, ["--quiet-above", "3"]);
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(servers[0]!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(servers[1]!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    // Three in the room, on two servers: from now on, summed up.
    const carol = await TestClient.join(servers[0]!.port, "carol");
    clients.push(carol);
    const summary = live("-- carol joined (3 here)");
    assert.match(await nextLine(bob, 8000), summary);
    assert.match(await nextLine(alice, 8000), summary);
    // As in a room of one server, the newcomer is in the summary it gets.
    assert.match(await nextLine(carol, 8000), summary);
    const dave = await TestClient.join(servers[1]!.port, "dave");
    clients.push(dave);
    const more = live("-- dave joined (4 here)");
    for (const client of [alice, bob, carol]) assert.match(await nextLine(client, 8000), more);
    await dave.close();
    const gone = live("-- dave left (3 here)");
    for (const client of [alice, bob, carol]) assert.match(await nextLine(client, 8000), gone);
    // Below the size again: one by one.
    await carol.close();
    await alice.expect(live("<-- carol left"));
    await bob.expect(live("<-- carol left"));
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("the Redis client's own warnings go to the log as one line, without the password", async () => {
  await using redis = await startRedis();
  await using server = await spawnServer(["--redis", `redis://:s3cret@127.0.0.1:${redis.port}`]);
  server.child.kill("SIGTERM");
  assert.equal(await server.exit(), 0);
  const stderr = await server.stderr.rest();
  assert.ok(
    stderr.some((l) =>
      /^\S+ redis redis:\/\/127\.0\.0\.1:\d+: .*does not require a password/.test(l)
    ),
    stderr.join("\n"),
  );
  assert.ok(!stderr.some((l) => l.startsWith("[WARN]") || l.includes("s3cret")), stderr.join("\n"));
});

Deno.test("a topic set while an instance was cut off is known there once it is back", async () => {
  await using redis = await startRedis();
  await using proxy = startProxy(redis.port);
  const a = await spawnServer(["--redis", `redis://127.0.0.1:${proxy.port}`]);
  const b = await spawnServer(["--redis", redis.url]);
  const servers = [a, b];
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(a.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(b.port, "bob");
    clients.push(bob);
    await alice.send("/join dev");
    await alice.expect(/-- welcome to #dev, alice!/);
    await bob.send("/join dev");
    await bob.expect(/-- welcome to #dev, bob!/);
    await alice.expect(live("--> bob joined"));
    proxy.cut();
    await alice.expect(
      live(
        `-- ${"the link to the other servers is down"}: people on this server still hear you, the others do not`,
      ),
    );
    await bob.send("/topic set meanwhile");
    await bob.expect(live("-- bob set the topic: set meanwhile"));
    proxy.restore();
    await alice.expect(live("-- the link to the other servers is back"), 15_000);
    await alice.expect(live("-- topic: set meanwhile"));
    await alice.send("/topic");
    await alice.expect(/set meanwhile/);
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});

Deno.test("a heartbeat while a change of alias is under way does not claim the old alias again", async () => {
  await using redis = await startRedis();
  const servers = await cluster(redis.url, 2);
  const clients: TestClient[] = [];
  try {
    const alice = await TestClient.join(servers[0]!.port, "alice");
    clients.push(alice);
    const bob = await TestClient.join(servers[1]!.port, "bob");
    clients.push(bob);
    await alice.expect(live("--> bob joined"));
    // Longer than a heartbeat, shorter than the link's PING deadline: a
    // heartbeat is sent while the change waits for its answer.
    await cli(redis.port, "CLIENT", "PAUSE", "1800", "ALL");
    await alice.send("/nick alicia");
    await bob.expect(live("--- alice is now known as alicia"));
    assert.deepEqual(await cli(redis.port, "GET", "confab:main:alias:alice"), []);
    const again = await TestClient.join(servers[1]!.port, "alice");
    clients.push(again);
    await bob.expect(live("--> alice joined"));
  } finally {
    await closeAll(clients);
    await stopAll(servers);
  }
});
