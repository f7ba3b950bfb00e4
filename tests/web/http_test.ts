import assert from "node:assert/strict";
import { WAIT_MS, withTimeout } from "../_helpers.ts";
import { until } from "../_web.ts";
import { echoServer, writeAll } from "./_frames.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Sends `request` as it is (then ends the sending side and waits for
 * `endAfter()`, if given), reads the
 * answer to the end of the connection, bounded in time; returns its status
 * line, or what went wrong.
 */
async function ask(
  port: number,
  request: string,
  endAfter?: () => Promise<void>,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, encoder.encode(request));
    if (endAfter !== undefined) {
      await conn.closeWrite();
      // The answer is read only after the server is done with the connection.
      await endAfter();
    }
    const buffer = new Uint8Array(64 * 1024);
    let got = "";
    const deadline = Date.now() + WAIT_MS;
    // Bounded: by the deadline, and 4 MB.
    while (got.length < 4_000_000) {
      const left = deadline - Date.now();
      if (left <= 0) return "timed out";
      const n = await withTimeout(conn.read(buffer), left, "an answer").catch((error) => {
        if (error instanceof Deno.errors.ConnectionReset) return -1;
        throw error;
      });
      if (n === null) break;
      if (n === -1) return `reset after ${JSON.stringify(got.split("\r\n")[0])}`;
      got += decoder.decode(buffer.subarray(0, n));
      if (got.startsWith("HTTP/1.1 101") && got.includes("\r\n\r\n")) break;
    }
    return got.split("\r\n")[0]!;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    conn.close();
  }
}

const UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

Deno.test("the web port answers malformed or unusual requests as HTTP/1.1 says", async (t) => {
  const { web, log } = echoServer();
  const port = web.addr.port;
  const host = `Host: 127.0.0.1:${port}\r\n`;
  const cases: [string, string, string][] = [
    ["a page", `GET / HTTP/1.1\r\n${host}\r\n`, "HTTP/1.1 200 OK"],
    ["a page over HTTP/1.0", `GET / HTTP/1.0\r\n${host}\r\n`, "HTTP/1.1 200 OK"],
    ["an upgrade", `GET /ws HTTP/1.1\r\n${host}${UPGRADE}\r\n`, "HTTP/1.1 101 Switching Protocols"],
    [
      "an upgrade whose Upgrade lists more than websocket",
      `GET /ws HTTP/1.1\r\n${host}${UPGRADE.replace("websocket", "websocket, h2c")}\r\n`,
      "HTTP/1.1 101 Switching Protocols",
    ],
    [
      "an upgrade over HTTP/1.0",
      `GET /ws HTTP/1.0\r\n${host}${UPGRADE}\r\n`,
      "HTTP/1.1 400 Bad Request",
    ],
    ["two Host headers", `GET / HTTP/1.1\r\n${host}${host}\r\n`, "HTTP/1.1 400 Bad Request"],
    [
      "a foreign Host, then an allowed one",
      `GET / HTTP/1.1\r\nHost: evil.example\r\n${host}\r\n`,
      "HTTP/1.1 400 Bad Request",
    ],
    [
      "two hosts in one Host",
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}, 127.0.0.1:${port}\r\n\r\n`,
      "HTTP/1.1 400 Bad Request",
    ],
    [
      "a port that is not a number",
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:8o\r\n\r\n`,
      "HTTP/1.1 400 Bad Request",
    ],
    ["no Host", `GET / HTTP/1.1\r\n\r\n`, "HTTP/1.1 400 Bad Request"],
    ["a foreign Host", `GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n`, "HTTP/1.1 403 Forbidden"],
    [
      "lines ending in a bare LF",
      `GET / HTTP/1.1\n${host.replace("\r", "")}\n`,
      "HTTP/1.1 400 Bad Request",
    ],
    [
      "an absolute target",
      `GET http://127.0.0.1:${port}/ HTTP/1.1\r\n${host}\r\n`,
      "HTTP/1.1 400 Bad Request",
    ],
  ];
  try {
    for (const [name, request, status] of cases) {
      await t.step(name, async () => {
        assert.equal(await ask(port, request), status);
      });
    }
    assert.ok(!log.some((l) => /internal|failed/.test(l)), log.join("\n"));
  } finally {
    await web.shutdown();
  }
});

Deno.test("an answer reaches the peer though it sent more than was read", async (t) => {
  const { web } = echoServer();
  const port = web.addr.port;
  const host = `Host: 127.0.0.1:${port}\r\n`;
  const more = "a".repeat(200_000);
  try {
    const cases: [string, string, string][] = [
      [
        "a POST with a body",
        `POST / HTTP/1.1\r\n${host}Content-Length: ${more.length}\r\n\r\n${more}`,
        "HTTP/1.1 405 Method Not Allowed",
      ],
      ["a GET and more after it", `GET / HTTP/1.1\r\n${host}\r\n${more}`, "HTTP/1.1 200 OK"],
      ["a malformed head and more", `GET / HTTP/1.1\n${more}`, "HTTP/1.1 400 Bad Request"],
    ];
    for (const [name, request, status] of cases) {
      await t.step(name, async () => {
        // Bounded: 5 tries, each must get the whole answer, not a reset.
        for (let i = 0; i < 5; i++) {
          const done = () => until(() => web.connections === 0, "the server to close");
          assert.equal(await ask(port, request, done), status);
        }
      });
    }
  } finally {
    await web.shutdown();
  }
});
