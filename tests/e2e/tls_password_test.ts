/**
 * TLS (with the test-only certificate in tests/fixtures) and the room
 * password, over real sockets.
 */

import assert from "node:assert/strict";
import {
  live,
  nextLine,
  readToEnd,
  startServer,
  TestClient,
  WAIT_MS,
  withTimeout,
} from "../_helpers.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));
const CERT = fixture("test_only_server_cert.pem");
const KEY = fixture("test_only_server_key.pem");
const CA = fixture("test_only_ca.pem");

Deno.test("serve() with a certificate lets TLS clients join and chat", async () => {
  await using server = startServer({ cert: CERT, key: KEY });
  assert.equal(server.tls, true);
  assert.ok(server.log.some((line) => line.endsWith("(TLS)")), server.log.join("\n"));
  const port = server.addr.port;
  await using alice = await TestClient.connectTls(port, [CA]);
  await alice.answerAlias("alice");
  await using bob = await TestClient.connectTls(port, [CA]);
  await bob.answerAlias("bob");
  await alice.expect(live("--> bob joined"));
  await alice.send("hello over TLS");
  assert.match(await nextLine(bob), live("alice: hello over TLS"));
  await bob.send("/msg alice private over TLS");
  assert.match(await nextLine(alice), live("(private) bob: private over TLS"));
  assert.match(await nextLine(bob), live("(private to alice) private over TLS"));
  await bob.send("/quit done");
  assert.deepEqual(await readToEnd(bob), ["!! bye: done"]);
  assert.match(await nextLine(alice), live("<-- bob left (done)"));
});

Deno.test("a TLS client refuses a certificate it was not told to trust", async () => {
  await using server = startServer({ cert: CERT, key: KEY });
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await assert.rejects(withTimeout(conn.handshake(), WAIT_MS, "the handshake"), /certificate/i);
  } finally {
    conn.close();
  }
  // The failed handshake did not disturb the server.
  await using alice = await TestClient.connectTls(server.addr.port, [CA]);
  await alice.answerAlias("alice");
});

Deno.test("serve() with TLS drops a plaintext client, logs it, and keeps serving", async () => {
  await using server = startServer({ cert: CERT, key: KEY });
  const port = server.addr.port;
  // One plaintext client that says nothing, one that types its alias.
  await using silent = await TestClient.connect(port);
  await using typing = await TestClient.connect(port);
  await typing.send("alice");
  // The server does not wait on either of them to serve a TLS client.
  await using bob = await TestClient.connectTls(port, [CA]);
  await bob.answerAlias("bob");
  // The one that typed is closed; it never gets a protocol line.
  const lines = await readToEnd(typing);
  for (const line of lines) assert.doesNotMatch(line, /^(\? alias|\[)/);
  assert.ok(
    server.log.some((line) => /^127\.0\.0\.1:\d+ -: closed before joining \(bad data: /.test(line)),
    server.log.join("\n"),
  );
  assert.equal(server.room.size, 1);
  await bob.send("/who");
  assert.match(await nextLine(bob), live("-- 1 online:"));
  // The silent one is still waiting on its handshake; closing it is enough.
  await silent.close();
});

Deno.test("serve() without TLS closes a connection that opens with a TLS ClientHello", async () => {
  await using server = startServer();
  const port = server.addr.port;
  // A real TLS client: its handshake fails promptly instead of hanging.
  const tls = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [CA] });
  try {
    await assert.rejects(withTimeout(tls.handshake(), 2000, "the handshake to fail"));
  } finally {
    tls.close();
  }
  // The start of a ClientHello, by hand: the server reads it, logs it, closes.
  await using raw = await TestClient.connect(port);
  const started = Date.now();
  await raw.write(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03]));
  const lines = await readToEnd(raw, 2000);
  assert.ok(Date.now() - started < 2000);
  for (const line of lines) assert.match(line, /^\? alias: /);
  const probes = () =>
    server.log.filter((line) => line.includes("sent a TLS handshake to a plaintext port; closing"));
  assert.ok(probes().length > 0, server.log.join("\n"));
  const before = probes().length;
  // The next connection may read into the buffer the ClientHello was read
  // into: a first read of one 0x16 byte is not a handshake for that.
  await using ctrlV = await TestClient.connect(port);
  assert.match(await nextLine(ctrlV), /^\? alias: /);
  await ctrlV.write(new Uint8Array([0x16]));
  await ctrlV.write(new TextEncoder().encode("\n"));
  assert.match(await nextLine(ctrlV), /^! /, "answered as an alias, not closed");
  assert.equal(probes().length, before);
  await using _alice = await TestClient.join(port, "alice");
  assert.equal(server.room.size, 1);
});

const PASSWORD = "correct horse battery staple";
const PASSWORD_PROMPT = "? password: this room needs a password";

Deno.test("serve() with a password asks for it before the alias", async () => {
  await using server = startServer({ password: PASSWORD });
  await using alice = await TestClient.connect(server.addr.port);
  assert.equal(await nextLine(alice), PASSWORD_PROMPT);
  // An alias or a command in place of the password is just a wrong password.
  await alice.send("alice");
  assert.equal(await nextLine(alice), "! wrong password");
  assert.equal(await nextLine(alice), PASSWORD_PROMPT);
  await alice.send(PASSWORD);
  assert.match(await nextLine(alice), /^\? alias: choose an alias: /);
  await alice.send("alice");
  assert.match(await nextLine(alice), live("-- welcome, alice! you are the only one here"));
  await using bob = await TestClient.connect(server.addr.port);
  assert.equal(await nextLine(bob), PASSWORD_PROMPT);
  await bob.write(new TextEncoder().encode(PASSWORD + "\r\n"));
  await bob.answerAlias("bob");
  await alice.expect(live("--> bob joined"));
});

Deno.test("serve() closes a connection after three wrong passwords", async () => {
  await using server = startServer({ password: PASSWORD });
  await using guesser = await TestClient.connect(server.addr.port);
  assert.equal(await nextLine(guesser), PASSWORD_PROMPT);
  await guesser.send("guess one");
  await guesser.send("guess two");
  await guesser.send("guess three");
  await guesser.send(PASSWORD); // too late
  assert.deepEqual(await readToEnd(guesser), [
    "! wrong password",
    PASSWORD_PROMPT,
    "! wrong password",
    PASSWORD_PROMPT,
    "!! wrong password; closing",
  ]);
  assert.equal(server.room.size, 0);
  for (let i = 1; i <= 3; i++) {
    assert.ok(server.log.some((line) => line.endsWith(`wrong password (${i} of 3)`)), `try ${i}`);
  }
  assert.ok(server.log.some((line) => line.endsWith("closed before joining (wrong password)")));
});

Deno.test("serve() never writes the room password or a guess to its log", async () => {
  const secret = "s3cret-Pa55word";
  {
    await using server = startServer({ password: secret });
    const port = server.addr.port;
    await using wrong = await TestClient.connect(port);
    await wrong.expect(PASSWORD_PROMPT);
    await wrong.send("not-the-s3cret");
    await wrong.expect("! wrong password");
    await using alice = await TestClient.connect(port);
    await alice.expect(PASSWORD_PROMPT);
    await alice.send(secret);
    await alice.answerAlias("alice");
    await alice.send("hello");
    await alice.send("/quit");
    await readToEnd(alice);
    await wrong.close();
    await server.shutdown();
    const log = server.log.join("\n");
    assert.ok(server.log.length >= 4, log);
    assert.ok(log.includes("alice: joined"), log);
    assert.ok(!log.includes(secret), log);
    assert.ok(!log.includes("not-the-s3cret"), log);
  }
});
