import assert from "node:assert/strict";
import { WAIT_MS, withTimeout } from "../_helpers.ts";
import { readToClose, until } from "../_web.ts";
import { MAX_PENDING, serveWeb } from "../../server/web/mod.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));

/** Sockets this process holds open (Linux: the links in /proc/PID/fd, listed by find). */
async function openSockets(): Promise<number> {
  const { stdout } = await new Deno.Command("find", {
    args: [`/proc/${Deno.pid}/fd`, "-lname", "socket:*"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout).split("\n").filter((l) => l !== "").length;
}

/** Waits until this process holds `expected` sockets (bounded: 100 looks, 20 ms apart). */
async function socketsBecome(expected: number): Promise<void> {
  let now = await openSockets();
  for (let i = 0; i < 100 && now !== expected; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    now = await openSockets();
  }
  assert.equal(now, expected, "sockets open in this process");
}

Deno.test({
  name: "over TLS a connection that never starts its handshake stays counted until it goes",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const log: string[] = [];
    const web = serveWeb({
      hostname: "127.0.0.1",
      port: 0,
      maxLineBytes: 4096,
      requestTimeoutMs: 300,
      cert: fixture("test_only_server_cert.pem"),
      key: fixture("test_only_server_key.pem"),
      log: (line) => log.push(line),
      admit: (transport) => transport.close(),
    });
    const port = web.addr.port;
    const before = await openSockets();
    const silent: Deno.Conn[] = [];
    try {
      // Bounded: 15 connections that never send a byte, then one real TLS client.
      for (let i = 0; i < 15; i++) silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      await until(() => web.connections === 15, "15 pending connections");
      const tls = await Deno.connectTls({
        hostname: "127.0.0.1",
        port,
        caCerts: [fixture("test_only_ca.pem")],
      });
      try {
        await tls.handshake();
        // Its handshake is over: it is closed at the request timeout, later
        // than the silent ones' (theirs started first).
        assert.equal(await readToClose(tls), 0);
      } finally {
        tls.close();
      }
      // The silent ones are still there, so still counted.
      await until(() => web.connections === 15, "the TLS client to be forgotten");
      // Past the per-address cap too: refused, but counted until it goes.
      for (let i = 0; i < 2; i++) silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      await until(() => web.connections === 17, "17 pending connections");
      // Each is two sockets here (the client's and the server's): the count is the truth.
      await socketsBecome(before + 2 * 17);
      for (const conn of silent.splice(0)) conn.close();
      // Once they leave, their sockets are freed and no longer counted.
      await until(() => web.connections === 0, "the connections to be forgotten");
      await socketsBecome(before);
    } finally {
      for (const conn of silent) conn.close();
      await web.shutdown();
    }
  },
});

Deno.test("over TLS the listener takes no connection past the pending cap until one goes", async () => {
  const web = serveWeb({
    hostname: "127.0.0.1",
    port: 0,
    maxLineBytes: 4096,
    cert: fixture("test_only_server_cert.pem"),
    key: fixture("test_only_server_key.pem"),
    // Not held to the per-address cap, so one address can reach the cap of all.
    exemptAddresses: ["127.0.0.1"],
    log: () => {},
    admit: (transport) => transport.close(),
  });
  const port = web.addr.port;
  const silent: Deno.Conn[] = [];
  try {
    // Bounded: MAX_PENDING connections, then one more that waits in the backlog.
    for (let i = 0; i < MAX_PENDING; i++) {
      silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    await until(() => web.connections === MAX_PENDING, "the cap to be reached");
    const extra = await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [fixture("test_only_ca.pem")],
    });
    try {
      // One leaves: its place goes to the one that waited, which is served.
      silent.shift()!.close();
      await extra.handshake();
      const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
      await extra.write(new TextEncoder().encode(request));
      const buffer = new Uint8Array(1024);
      const n = await withTimeout(extra.read(buffer), WAIT_MS, "the answer");
      assert.match(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 /);
    } finally {
      extra.close();
    }
    for (const conn of silent.splice(0)) conn.close();
    await until(() => web.connections === 0, "all to be forgotten");
  } finally {
    for (const conn of silent) conn.close();
    await web.shutdown();
  }
});
