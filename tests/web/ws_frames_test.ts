import assert from "node:assert/strict";
import { clientFrame, closePayload, echoServer, RawSocket } from "./_frames.ts";
import { CLOSE_WAIT_MS, closeAnswer, cutUtf8 } from "../../server/web/ws_transport.ts";

const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const encoder = new TextEncoder();
const bye = () => clientFrame(CLOSE, closePayload(1000));

/** What the server sends for these frames, up to its end of the connection. */
async function answers(frames: Uint8Array[]): Promise<{ got: string[]; log: string[] }> {
  const { web, log } = echoServer();
  const socket = await RawSocket.connect(web.addr.port);
  try {
    await socket.send(...frames);
    return { got: await socket.rest(), log };
  } finally {
    socket.close();
    await web.shutdown();
  }
}

Deno.test("WebSocketTransport answers each kind of frame as RFC 6455 says", async (t) => {
  const cases: [string, Uint8Array[], string[]][] = [
    ["a text message is echoed, a close answered", [clientFrame(TEXT, "hello"), bye()], [
      "text hello",
      "close 1000",
    ]],
    ["an unmasked frame", [clientFrame(TEXT, "hi", { masked: false })], [
      "close 1002 frames from a client must be masked",
    ]],
    ["a reserved bit", [clientFrame(TEXT, "hi", { rsv: 0x40 })], ["close 1002 reserved bits set"]],
    ["a reserved data opcode", [clientFrame(3, "hi")], ["close 1002 unexpected frame (opcode 3)"]],
    ["a reserved control opcode", [clientFrame(0xb, "")], [
      "close 1002 unknown control frame (opcode 11)",
    ]],
    ["a fragmented ping", [clientFrame(PING, "p", { fin: false })], [
      "close 1002 bad control frame",
    ]],
    ["a ping of 126 bytes", [clientFrame(PING, "x".repeat(126))], [
      "close 1002 bad control frame",
    ]],
    ["a continuation with no message", [clientFrame(0, "x")], [
      "close 1002 unexpected frame (opcode 0)",
    ]],
    ["a new message inside a fragmented one", [
      clientFrame(TEXT, "a", { fin: false }),
      clientFrame(TEXT, "b"),
    ], ["close 1002 a new message inside a fragmented one"]],
    ["a ping between fragments", [
      clientFrame(TEXT, "ab", { fin: false }),
      clientFrame(PING, "pp"),
      clientFrame(0, "cd"),
      bye(),
    ], ["pong pp", "text abcd", "close 1000"]],
    ["a character split across fragments", [
      clientFrame(TEXT, new Uint8Array([0xc3]), { fin: false }),
      clientFrame(0, new Uint8Array([0xa9])),
      bye(),
    ], ["text \u00e9", "close 1000"]],
    ["a short length given in 64 bits", [clientFrame(TEXT, "abc", { long: true }), bye()], [
      "text abc",
      "close 1000",
    ]],
    ["a 64-bit length with its top bit set", [
      new Uint8Array([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4]),
    ], ["close 1009 message too big"]],
    ["a length past the cap", [new Uint8Array([0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4])], [
      "close 1009 message too big (at most 65536 bytes)",
    ]],
    ["a binary message", [clientFrame(BINARY, "x")], [
      "close 1003 binary frames are not accepted; send text",
    ]],
    ["a message that is not UTF-8", [clientFrame(TEXT, new Uint8Array([0x61, 0xff]))], [
      "close 1007 a message must be UTF-8 text",
    ]],
    ["a long message not UTF-8 past the part kept", [
      clientFrame(TEXT, new Uint8Array([...encoder.encode("a".repeat(200)), 0xff])),
      bye(),
    ], ["close 1007 a message must be UTF-8 text"]],
    ["a message ending inside a character", [clientFrame(TEXT, new Uint8Array([0x61, 0xc3]))], [
      "close 1007 a message must be UTF-8 text",
    ]],
    ["a close without a payload", [clientFrame(CLOSE, new Uint8Array(0))], ["close 1000"]],
    ["a close with code 1001", [clientFrame(CLOSE, closePayload(1001))], ["close 1001"]],
    ["a close with code 4000 and a reason", [
      clientFrame(CLOSE, closePayload(4000, encoder.encode("done"))),
    ], ["close 4000"]],
    ["a close of 1 byte", [clientFrame(CLOSE, new Uint8Array([3]))], [
      "close 1002 a close frame's payload cannot be 1 byte",
    ]],
    ["a close with code 1004", [clientFrame(CLOSE, closePayload(1004))], [
      "close 1002 close code 1004 may not be sent",
    ]],
    ["a close with code 1006", [clientFrame(CLOSE, closePayload(1006))], [
      "close 1002 close code 1006 may not be sent",
    ]],
    ["a close with code 2999", [clientFrame(CLOSE, closePayload(2999))], [
      "close 1002 close code 2999 may not be sent",
    ]],
    ["a close whose reason is not UTF-8", [
      clientFrame(CLOSE, closePayload(1000, new Uint8Array([0xff, 0xfe]))),
    ], ["close 1007 a close reason must be UTF-8 text"]],
    ["frames after the close", [bye(), clientFrame(TEXT, "after"), clientFrame(BINARY, "x")], [
      "close 1000",
    ]],
  ];
  for (const [name, frames, expected] of cases) {
    await t.step(name, async () => {
      const { got, log } = await answers(frames);
      assert.deepEqual(got, expected);
      // Only the server's own refusals are logged, each once.
      const refusals = log.filter((l) => /closing the socket/.test(l));
      const refused = /^close \d+ ./.test(expected.at(-1) ?? "");
      assert.equal(refusals.length, refused ? 1 : 0, log.join("\n"));
    });
  }
});

Deno.test("after a refusal, the peer's close ends the connection without the close wait", async () => {
  const { web, log } = echoServer();
  const socket = await RawSocket.connect(web.addr.port);
  try {
    await socket.send(clientFrame(BINARY, "x"));
    const refusal = await socket.next();
    assert.equal(refusal?.opcode, CLOSE);
    const answered = Date.now();
    // What a browser may still have sent, then its answer to the close.
    await socket.send(clientFrame(TEXT, "late"), clientFrame(BINARY, "y"), bye());
    assert.deepEqual(await socket.rest(), []);
    const took = Date.now() - answered;
    assert.ok(took < CLOSE_WAIT_MS / 2, `closed ${took} ms after the answer`);
    assert.equal(log.filter((l) => /closing the socket/.test(l)).length, 1, log.join("\n"));
  } finally {
    socket.close();
    await web.shutdown();
  }
});

Deno.test("a peer that pings and never reads has at most one pong waiting", async () => {
  const { web } = echoServer();
  const socket = await RawSocket.connect(web.addr.port);
  try {
    // 300k pings (about 40 MB): far more than the kernel's buffers hold, so
    // without a bound most of their pongs would wait in the server.
    const pings = 300_000;
    const batch = 1000;
    const one = clientFrame(PING, "x".repeat(119) + "000000").length;
    for (let sent = 0; sent < pings; sent += batch) {
      const bytes = new Uint8Array(one * batch);
      for (let i = 0; i < batch; i++) {
        const tag = String(sent + i).padStart(6, "0");
        bytes.set(clientFrame(PING, "x".repeat(119) + tag), i * one);
      }
      await socket.send(bytes);
    }
    await socket.send(bye());
    let pongs = 0;
    let last = "";
    // Bounded: one frame per ping sent, and the close.
    for (let i = 0; i <= pings; i++) {
      const frame = await socket.next();
      if (frame === null || frame.opcode === CLOSE) break;
      pongs++;
      last = new TextDecoder().decode(frame.payload).slice(119);
    }
    assert.ok(pongs < pings / 2, `${pongs} pongs for ${pings} pings`);
    // The one that waited carries the last ping's payload.
    assert.equal(last, String(pings - 1));
  } finally {
    socket.close();
    await web.shutdown();
  }
});

Deno.test("closeAnswer() echoes a code that may be sent and refuses the others", () => {
  assert.deepEqual(closeAnswer(new Uint8Array(0)), [1000, ""]);
  for (const code of [1000, 1001, 1002, 1003, 1007, 1014, 3000, 4999]) {
    assert.equal(closeAnswer(closePayload(code))[0], code, String(code));
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000, 65535]) {
    assert.equal(closeAnswer(closePayload(code))[0], 1002, String(code));
  }
  assert.equal(closeAnswer(closePayload(1000, new Uint8Array([0xc3])))[0], 1007);
});

Deno.test("cutUtf8() cuts a close reason on a character boundary", () => {
  const reason = encoder.encode("a".repeat(122) + "\u00e9\u00e9");
  const cut = cutUtf8(reason, 123);
  assert.equal(cut.length, 122);
  assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(cut), "a".repeat(122));
  assert.equal(cutUtf8(reason, 124).length, 124);
  const euro = encoder.encode("\u20ac".repeat(50));
  assert.equal(cutUtf8(euro, 123).length, 123);
  assert.equal(cutUtf8(euro, 122).length, 120);
  assert.equal(cutUtf8(encoder.encode("short"), 123).length, 5);
});
