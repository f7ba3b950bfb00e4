import assert from "node:assert/strict";
import { live, spawnConfab, spawnServer, startServer, TestClient } from "../_helpers.ts";
import { rawStatus, StalledWsClient, upgradeHeaders, WsClient } from "../_web.ts";

Deno.test("a WebSocket member and a TCP member chat both ways", async () => {
  await using server = startServer({ webPort: 0 });
  const port = server.webAddr!.port;
  await using web = await WsClient.join(port, "alice");
  await using tcp = await TestClient.join(server.addr.port, "bob");
  await web.expect(live("--> bob joined"));
  web.send("hello from the browser");
  await tcp.expect(live("alice: hello from the browser"));
  await tcp.send("hello from the terminal");
  await web.expect(live("bob: hello from the terminal"));
  assert.equal(server.connections, 2);
});

Deno.test("a WebSocket member that stops reading is dropped while the others keep receiving", async () => {
  await using server = startServer({
    webPort: 0,
    rateLimit: 0,
    maxLineBytes: 1024,
    outboxBytes: 8192,
    writeTimeoutMs: 1000,
  });
  const port = server.webAddr!.port;
  const stalled = await StalledWsClient.connect(port);
  try {
    await stalled.send("sleepy");
    await using reader = await WsClient.join(port, "reader");
    await using writer = await TestClient.join(server.addr.port, "writer");
    await reader.expect(live("--> writer joined"));
    const line = "x".repeat(1000);
    const started = Date.now();
    let sent = 0;
    // Bounded: at most 20000 lines (20 MB) or 20 s, until the server gives up on it.
    while (!server.log.some((l) => /sleepy: left/.test(l)) && sent < 20_000) {
      if (Date.now() - started > 20_000) break;
      await writer.send(`${sent} ${line}`);
      await reader.expect(live(`writer: ${sent} ${line}`));
      sent++;
    }
    assert.ok(
      server.log.some((l) => /sleepy: left \((too slow|write timed out)/.test(l)),
      server.log.join("\n"),
    );
    await writer.send("still here");
    await reader.expect(live("writer: still here"));
    await stalled.drainToEnd();
  } finally {
    stalled.close();
  }
});

Deno.test("the WebSocket endpoint refuses a foreign Origin and a foreign Host with 403", async (t) => {
  await using server = startServer({ webPort: 0, webOrigins: ["https://chat.example.com"] });
  const port = server.webAddr!.port;
  const own = `127.0.0.1:${port}`;
  await t.step("an origin from the list is let in", async () => {
    const status = await rawStatus(port, "/ws", upgradeHeaders(own, "https://chat.example.com"));
    assert.equal(status, 101);
  });
  await t.step("another origin is refused and logged", async () => {
    const status = await rawStatus(port, "/ws", upgradeHeaders(own, "https://evil.example"));
    assert.equal(status, 403);
    assert.ok(
      server.log.some((l) => /refused \(Origin 'https:\/\/evil\.example' is not allowed/.test(l)),
      server.log.join("\n"),
    );
  });
  await t.step("a Host name that was not given is refused, for the page too", async () => {
    assert.equal(await rawStatus(port, "/ws", upgradeHeaders(`rebind.example:${port}`)), 403);
    assert.equal(await rawStatus(port, "/", { host: `rebind.example:${port}` }), 403);
    assert.ok(server.log.some((l) => /Host 'rebind\.example:\d+' is not allowed/.test(l)));
  });
  await t.step("the host of a listed origin, localhost and IP addresses are answered", async () => {
    assert.equal(await rawStatus(port, "/", { host: "chat.example.com" }), 200);
    assert.equal(await rawStatus(port, "/", { host: `localhost:${port}` }), 200);
    assert.equal(await rawStatus(port, "/", { host: `[::1]:${port}` }), 200);
    assert.equal(await rawStatus(port, "/", { host: own }), 200);
  });
});

Deno.test("by default only the page's own origin may open the WebSocket", async () => {
  await using server = startServer({ webPort: 0 });
  const port = server.webAddr!.port;
  const own = `localhost:${port}`;
  assert.equal(await rawStatus(port, "/ws", upgradeHeaders(own, `http://${own}`)), 101);
  assert.equal(await rawStatus(port, "/ws", upgradeHeaders(own, `http://127.0.0.1:${port}`)), 403);
  assert.equal(await rawStatus(port, "/ws", upgradeHeaders(own, `https://${own}`)), 403);
  assert.equal(await rawStatus(port, "/ws", upgradeHeaders(own, "null")), 403);
});

Deno.test("a WebSocket member is refused an alias with the server's reason and tries again", async () => {
  await using server = startServer({ webPort: 0 });
  const port = server.webAddr!.port;
  await using tcp = await TestClient.join(server.addr.port, "alice");
  await using web = await WsClient.connect(port);
  await web.expect(/^\? alias: /);
  web.send("alice");
  await web.expect("! alice is taken; choose another");
  await web.expect(/^\? alias: /);
  web.send("bad alias!");
  await web.expect(/^! /);
  await web.expect(/^\? alias: /);
  web.send("bob");
  await web.expect(live("-- welcome, bob! 2 online: alice, bob"));
  await tcp.expect(live("--> bob joined"));
});

Deno.test("a WebSocket member gives the room password first", async () => {
  await using server = startServer({ webPort: 0, password: "sesame" });
  await using web = await WsClient.connect(server.webAddr!.port);
  await web.expect("? password: this room needs a password");
  web.send("wrong");
  await web.expect("! wrong password");
  await web.expect(/^\? password: /);
  web.send("sesame");
  await web.expect(/^\? alias: /);
  web.send("carol");
  await web.expect(/-- welcome, carol!/);
});

Deno.test("the caps apply to WebSocket members like to TCP ones", async (t) => {
  await t.step("a full server says so and closes", async () => {
    await using server = startServer({ webPort: 0, maxClients: 1 });
    await using _tcp = await TestClient.join(server.addr.port, "alice");
    await using web = await WsClient.connect(server.webAddr!.port);
    assert.deepEqual(await web.closed(), ["!! server is full (1 connection)"]);
    assert.equal(server.connections, 1);
  });
  await t.step("behind a trusted proxy, the cap counts the forwarded address", async () => {
    await using server = startServer({
      webPort: 0,
      maxPerAddress: 1,
      trustProxy: ["127.0.0.1"],
      exemptAddresses: [],
    });
    const port = server.webAddr!.port;
    const first = await StalledWsClient.connect(port, {
      "x-forwarded-for": "10.9.9.9, 203.0.113.7",
    });
    const second = await StalledWsClient.connect(port, { "x-forwarded-for": "203.0.113.7" });
    const third = await StalledWsClient.connect(port, { "x-forwarded-for": "203.0.113.8" });
    try {
      const refused = await second.drainToEnd();
      assert.deepEqual(refused.slice(-1), ["!! too many connections from your address (1)"]);
      assert.ok(
        server.log.some((l) => /^203\.0\.113\.7 \(via 127\.0\.0\.1:\d+\) -: refused/.test(l)),
      );
      assert.equal(server.connections, 2);
    } finally {
      first.close();
      second.close();
      third.close();
    }
  });
  await t.step("without --trust-proxy, X-Forwarded-For is ignored", async () => {
    await using server = startServer({ webPort: 0, maxPerAddress: 1, exemptAddresses: [] });
    const port = server.webAddr!.port;
    const first = await StalledWsClient.connect(port, { "x-forwarded-for": "203.0.113.7" });
    const second = await StalledWsClient.connect(port, { "x-forwarded-for": "203.0.113.8" });
    try {
      const refused = await second.drainToEnd();
      assert.deepEqual(refused.slice(-1), ["!! too many connections from your address (1)"]);
      assert.ok(!server.log.some((l) => l.includes("203.0.113")), server.log.join("\n"));
    } finally {
      first.close();
      second.close();
    }
  });
});

Deno.test("a binary frame closes the WebSocket with a reason", async () => {
  await using server = startServer({ webPort: 0 });
  await using web = await WsClient.join(server.webAddr!.port, "dave");
  web.socket.send(new Uint8Array([1, 2, 3]));
  await web.closed();
  assert.equal(web.closeEvent?.code, 1003);
  assert.equal(web.closeEvent?.reason, "binary frames are not accepted; send text");
});

Deno.test("a frame longer than the line limit is refused as a too-long line", async () => {
  await using server = startServer({ webPort: 0, maxLineBytes: 100 });
  await using web = await WsClient.join(server.webAddr!.port, "erin");
  await using tcp = await TestClient.join(server.addr.port, "gus");
  await web.expect(live("--> gus joined"));
  web.send("y".repeat(5000));
  await web.expect("! line too long: at most 100 bytes; it was not delivered");
  web.send("short");
  await tcp.expect(live("erin: short"));
});

Deno.test("a WebSocket member gets the closing line when the server stops", async () => {
  const server = startServer({ webPort: 0 });
  await using web = await WsClient.join(server.webAddr!.port, "frank");
  await server.shutdown();
  assert.deepEqual(await web.closed(), ["!! server shutting down"]);
});

Deno.test("the web page is served from inside the program", async () => {
  await using server = startServer({ webPort: 0 });
  const base = `http://127.0.0.1:${server.webAddr!.port}`;
  for (
    const [path, type] of [["/", "text/html"], ["/app.js", "text/javascript"], [
      "/app.css",
      "text/css",
    ]]
  ) {
    const response = await fetch(base + path);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, new RegExp(`^${type}`));
    assert.match(response.headers.get("content-security-policy")!, /script-src 'self'/);
    await response.body?.cancel();
  }
  const missing = await fetch(base + "/nothing");
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("confab serve --web prints where the page is and serves it", async () => {
  await using proc = await spawnServer(["--web", "0"]);
  const line = await proc.stdout.next();
  const port = Number(/^web page at http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(line ?? "")?.[1]);
  assert.ok(port > 0, `second line: ${line}`);
  const response = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(response.status, 200);
  assert.match(await response.text(), /app\.js/);
});

Deno.test("confab serve refuses --web-origin without --web, and a bad origin", async () => {
  await using bare = spawnConfab(["serve", "--port", "0", "--web-origin", "https://a.example"]);
  assert.equal(await bare.exit(), 2);
  assert.match((await bare.stderr.rest()).join("\n"), /--web-origin needs --web/);
  await using bad = spawnConfab(["serve", "--port", "0", "--web", "0", "--web-origin", "ftp://x"]);
  assert.equal(await bad.exit(), 2);
  assert.match(
    (await bad.stderr.rest()).join("\n"),
    /--web-origin: "ftp:\/\/x" is not an http or https origin/,
  );
});

Deno.test("with --tls-cert the page is https and the socket wss", async () => {
  const fixture = (name: string) =>
    Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));
  const ca = fixture("test_only_ca.pem");
  await using server = startServer({
    webPort: 0,
    cert: fixture("test_only_server_cert.pem"),
    key: fixture("test_only_server_key.pem"),
  });
  const port = server.webAddr!.port;
  assert.ok(
    server.log.some((l) => l === `web page on https://127.0.0.1:${port}/`),
    server.log.join("\n"),
  );
  await assert.rejects(StalledWsClient.connect(port, { origin: `http://127.0.0.1:${port}` }, [ca]));
  const web = await StalledWsClient.connect(port, { origin: `https://127.0.0.1:${port}` }, [ca]);
  try {
    await web.readFrames(/^\? alias: /);
    await web.send("tess");
    await web.readFrames(/-- welcome, tess!/);
    await using tcp = await TestClient.connectTls(server.addr.port, [ca]);
    await tcp.answerAlias("uma");
    await web.readFrames(/--> uma joined/);
    await tcp.send("over TLS both ways");
    await web.readFrames(/uma: over TLS both ways$/);
  } finally {
    web.close();
  }
});

Deno.test("a WebSocket member sending a burst above --rate is delayed, and every line arrives", async () => {
  await using server = startServer({ webPort: 0, rateLimit: 100, rateBurst: 5 });
  await using web = await WsClient.join(server.webAddr!.port, "zed");
  await using tcp = await TestClient.join(server.addr.port, "yan");
  await web.expect(live("--> yan joined"));
  // Bounded: 300 frames, more than the 256 messages held unread (so TCP
  // holds the rest), sent at once: 3 s at 100 a second.
  for (let i = 0; i < 300; i++) web.send(`line ${i}`);
  await web.expect(/slow down: at most 100 lines per second/);
  for (let i = 0; i < 300; i++) await tcp.expect(live(`zed: line ${i}`), 10_000);
  assert.equal(web.socket.readyState, WebSocket.OPEN);
  assert.ok(!server.log.some((l) => /closing the socket/.test(l)), server.log.join("\n"));
});
