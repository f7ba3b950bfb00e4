import assert from "node:assert/strict";
import { live, spawnConfab, startServer, TestClient } from "../_helpers.ts";
import {
  rawStatus,
  readToClose,
  StalledWsClient,
  until,
  upgradeHeaders,
  WsClient,
} from "../_web.ts";
import { serveWeb } from "../../server/web/mod.ts";
import type { Transport } from "../../server/transport.ts";
import {
  CLOSE_WAIT_MS,
  WebSocketTransport,
  WRITE_CHUNK_BYTES,
} from "../../server/web/ws_transport.ts";

Deno.test("a WebSocket peer that never reads nor answers the close is cut off after the close wait", async () => {
  await using server = startServer({ webPort: 0, aliasTimeoutMs: 1000 });
  const stalled = await StalledWsClient.connect(server.webAddr!.port);
  try {
    await until(() => server.connections === 1, "the session");
    // It never answers the alias prompt: the session ends it, and the
    // connection must close even though the peer never answers the close.
    await until(() => server.connections === 0, "the alias timeout", 1000 + 5000);
    await until(() => server.webConnections === 0, "the socket to close", CLOSE_WAIT_MS + 2000);
    assert.ok((await readToClose(stalled.conn)) > 0);
  } finally {
    stalled.close();
  }
});

Deno.test("a WebSocket member dropped as too slow has its connection closed, though it never reads", async () => {
  await using server = startServer({
    webPort: 0,
    rateLimit: 0,
    maxLineBytes: 1024,
    outboxBytes: 8192,
    writeTimeoutMs: 500,
  });
  const stalled = await StalledWsClient.connect(server.webAddr!.port);
  try {
    await stalled.send("sleepy");
    await using writer = await TestClient.join(server.addr.port, "writer");
    const line = "x".repeat(1000);
    // Bounded: at most 20000 lines (20 MB), until the server gives up on it.
    for (let sent = 0; sent < 20_000 && server.connections === 2; sent++) {
      await writer.send(`${sent} ${line}`);
    }
    await until(() => server.connections === 1, "the slow member to be dropped");
    await until(() => server.webConnections === 0, "its socket to close", CLOSE_WAIT_MS + 2000);
    await readToClose(stalled.conn, 10_000);
  } finally {
    stalled.close();
  }
});

Deno.test("a message over the hard cap closes the socket with 1009; a long one is cut to a line", async () => {
  await using server = startServer({ webPort: 0, maxLineBytes: 100 });
  await using web = await WsClient.join(server.webAddr!.port, "ivy");
  web.send("z".repeat(60_000));
  await web.expect("! line too long: at most 100 bytes; it was not delivered");
  web.send("z".repeat(70_000));
  await web.closed();
  assert.equal(web.closeEvent?.code, 1009);
  assert.equal(web.closeEvent?.reason, "message too big (at most 65536 bytes)");
});

Deno.test("a message with a line break in it closes the socket and delivers nothing", async (t) => {
  for (const text of ["one\ntwo", "one\r\ntwo\r\nthree", "carriage\rreturn"]) {
    await t.step(JSON.stringify(text), async () => {
      await using server = startServer({ webPort: 0 });
      await using tcp = await TestClient.join(server.addr.port, "kim");
      await using web = await WsClient.join(server.webAddr!.port, "lou");
      await tcp.expect(live("--> lou joined"));
      web.send(text);
      await web.closed();
      assert.equal(web.closeEvent?.code, 1008);
      assert.equal(web.closeEvent?.reason, "a message must be one line (no CR or LF)");
      // The very next line kim gets is lou leaving: none of the text came.
      const next = await tcp.lines.next();
      assert.match(next ?? "", /<-- lou left/);
    });
  }
});

Deno.test("a malformed WebSocket upgrade is answered 400 and logged with the peer", async () => {
  await using server = startServer({ webPort: 0 });
  const port = server.webAddr!.port;
  const good = upgradeHeaders(`127.0.0.1:${port}`);
  const { "sec-websocket-key": _key, ...noKey } = good;
  assert.equal(await rawStatus(port, "/ws", noKey), 400);
  assert.equal(await rawStatus(port, "/ws", { ...good, "sec-websocket-version": "8" }), 400);
  assert.equal(await rawStatus(port, "/ws", { ...good, "sec-websocket-key": "short" }), 400);
  assert.ok(
    server.log.some((l) =>
      /^127\.0\.0\.1:\d+ -: web: bad upgrade \(no valid Sec-WebSocket-Key\)$/.test(l)
    ),
    server.log.join("\n"),
  );
  assert.ok(!server.log.some((l) => /request failed|internal/.test(l)), server.log.join("\n"));
  assert.equal(await rawStatus(port, "/ws", good), 101);
});

Deno.test("refused requests are logged a bounded number of times per address", async () => {
  await using server = startServer({ webPort: 0 });
  const port = server.webAddr!.port;
  // Bounded: 30 requests.
  for (let i = 0; i < 30; i++) {
    assert.equal(await rawStatus(port, "/", { host: `rebind.example:${port}` }), 403);
  }
  const refused = server.log.filter((l) => /rebind\.example/.test(l));
  assert.equal(refused.length, 10, server.log.join("\n"));
  assert.equal(server.log.filter((l) => /more refused requests; not logged/.test(l)).length, 1);
});

/** A web listener whose sockets are handed to the test as they come. */
function webOnly(requestTimeoutMs = 10_000, pingIntervalMs = 30_000) {
  const log: string[] = [];
  const admitted: Transport[] = [];
  const web = serveWeb({
    hostname: "127.0.0.1",
    port: 0,
    maxLineBytes: 4096,
    requestTimeoutMs,
    pingIntervalMs,
    log: (line) => log.push(line),
    admit: (transport) => admitted.push(transport),
  });
  return { web, log, admitted };
}

Deno.test("a connection that sends no request, or only part of one, is closed after the request timeout", async () => {
  const { web } = webOnly(300);
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: web.addr.port });
  const partial = await Deno.connect({ hostname: "127.0.0.1", port: web.addr.port });
  try {
    await partial.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    const started = Date.now();
    assert.equal(await readToClose(silent), 0);
    assert.equal(await readToClose(partial), 0);
    assert.ok(Date.now() - started < 3000);
    await until(() => web.connections === 0, "the connections to be forgotten");
  } finally {
    silent.close();
    partial.close();
    await web.shutdown();
  }
});

Deno.test("one address may hold only so many connections in their request", async () => {
  const { web } = webOnly();
  const conns: Deno.Conn[] = [];
  try {
    // Bounded: 16 held, then one more.
    for (let i = 0; i < 16; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: web.addr.port }));
    }
    await until(() => web.connections === 16, "16 pending connections");
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: web.addr.port });
    conns.push(extra);
    assert.equal(await readToClose(extra), 0);
    assert.equal(web.connections, 16);
  } finally {
    for (const conn of conns) conn.close();
    await web.shutdown();
  }
});

Deno.test("write() sends whole lines up to a chunk and reports the bytes they took", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const transport = new WebSocketTransport(server);
  try {
    const line = "w".repeat(999) + "\n";
    const text = line.repeat(100) + "half a line";
    const bytes = new TextEncoder().encode(text);
    const n = await transport.write(bytes);
    assert.ok(n < bytes.length, `wrote ${n} of ${bytes.length}`);
    assert.ok(n >= WRITE_CHUNK_BYTES, `wrote ${n}`);
    assert.equal(n % 1000, 0, "a whole number of lines");
    // The rest follows; what has no LF yet is kept for the line's end.
    let offset = n;
    for (let i = 0; i < 100 && offset < bytes.length; i++) {
      offset += await transport.write(bytes.subarray(offset));
    }
    assert.equal(offset, bytes.length);
  } finally {
    transport.close();
    client.close();
    await transport.finished;
  }
});

Deno.test("confab serve --web on a taken port says so before saying it listens", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using proc = spawnConfab(["serve", "--port", "0", "--web", String(taken.addr.port)]);
  assert.notEqual(await proc.exit(), 0);
  const said = [...await proc.stderr.rest(), ...await proc.stdout.rest()];
  assert.ok(said.some((l) => /cannot listen on .* for the web page/.test(l)), said.join("\n"));
  assert.ok(!said.some((l) => /listening on/.test(l)), said.join("\n"));
});

Deno.test("confab serve refuses a --web-host that is not a host name", async () => {
  await using bad = spawnConfab(["serve", "--port", "0", "--web", "0", "--web-host", "bad host!"]);
  assert.equal(await bad.exit(), 2);
  assert.match(
    (await bad.stderr.rest()).join("\n"),
    /--web-host: "bad host!" is not a host name like chat\.example\.com/,
  );
});

Deno.test("a WebSocket peer that answers no ping is cut off", async () => {
  const { web, log, admitted } = webOnly(10_000, 200);
  const silent = await StalledWsClient.connect(web.addr.port);
  try {
    await until(() => admitted.length === 1, "the socket to be admitted");
    // Its first ping goes unanswered: the next look finds it gone.
    await readToClose(silent.conn);
    await until(() => web.connections === 0, "the socket to be forgotten");
    assert.ok(log.some((l) => /closing the socket \(no answer to ping\)/.test(l)), log.join("\n"));
  } finally {
    silent.close();
    for (const transport of admitted) {
      try {
        transport.close();
      } catch { /* closed already */ }
    }
    await web.shutdown();
  }
});

Deno.test("a line that is not UTF-8 goes out repaired, so the browser keeps the socket", async () => {
  const { web, admitted } = webOnly();
  const client = await WsClient.connect(web.addr.port);
  try {
    await until(() => admitted.length === 1, "the socket to be admitted");
    await admitted[0]!.write(new Uint8Array([0x66, 0xff, 0x0a, 0x67, 0x0a]));
    assert.equal(await client.next(), "f\ufffd");
    assert.equal(await client.next(), "g");
  } finally {
    admitted[0]?.close();
    await client.close();
    await web.shutdown();
  }
});

Deno.test("over TLS the page, its script and styles arrive whole", async () => {
  const fixture = (name: string) =>
    Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));
  await using server = startServer({
    webPort: 0,
    cert: fixture("test_only_server_cert.pem"),
    key: fixture("test_only_server_key.pem"),
  });
  using client = Deno.createHttpClient({ caCerts: [fixture("test_only_ca.pem")] });
  for (const path of ["/", "/app.js", "/app.css"]) {
    const response = await fetch(`https://127.0.0.1:${server.webAddr!.port}${path}`, { client });
    const body = new Uint8Array(await response.arrayBuffer());
    assert.equal(response.status, 200);
    assert.equal(body.length, Number(response.headers.get("content-length")), path);
  }
});
