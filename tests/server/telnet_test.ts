/**
 * Telnet commands on input: the filter on its own, byte by byte, then the
 * server with raw sockets and with Debian's real `telnet` on a terminal.
 */

import assert from "node:assert/strict";
import { MAX_SUBNEGOTIATION_BYTES, type TelnetCommand, TelnetFilter } from "../../server/telnet.ts";
import { assertSameWhereverSplit } from "../_split.ts";
import {
  closeAll,
  joinAll,
  live,
  nextLine,
  readToEnd,
  startServer,
  TestClient,
  Tmux,
} from "../_helpers.ts";

const encoder = new TextEncoder();

const IAC = 0xff;
const WILL = 0xfb;
const WONT = 0xfc;
const DO = 0xfd;
const DONT = 0xfe;
const SB = 0xfa;
const SE = 0xf0;
const IP = 0xf4;
const BRK = 0xf3;
const AYT = 0xf6;
const NOP = 0xf1;
const DM = 0xf2;
const GA = 0xf9;
const EL = 0xf8;
const EC = 0xf7;
const AO = 0xf5;
/** Options a telnet client offers: ECHO, SUPPRESS-GO-AHEAD, TERMINAL-TYPE, NAWS. */
const ECHO = 1;
const SGA = 3;
const TTYPE = 24;
const NAWS = 31;

/** What a filter made of a stream: its data and its commands, in order. */
type Out = (string | TelnetCommand)[];

/** Runs `chunks` through one filter, as a session does. */
function run(chunks: Uint8Array[]): Out {
  const filter = new TelnetFilter();
  const out: Out = [];
  let data: number[] = [];
  for (const chunk of chunks) {
    // The filter works in place: give it a copy, as a read buffer would be.
    let rest = chunk.slice();
    for (let i = 0; i <= chunk.length && rest.length > 0; i++) {
      const result = filter.filter(rest);
      assert.ok(result.used > 0 && result.used <= rest.length);
      assert.ok(result.data.length <= result.used, "more data than input");
      data.push(...result.data);
      if (result.command !== undefined) {
        if (data.length > 0) out.push(String.fromCharCode(...data));
        data = [];
        out.push(result.command);
      }
      rest = rest.subarray(result.used);
    }
    assert.equal(rest.length, 0, "the filter did not use all its input");
  }
  if (data.length > 0) out.push(String.fromCharCode(...data));
  return out;
}

/** Bytes from strings (as Latin-1, one byte per character) and numbers. */
function bytes(...parts: (string | number)[]): Uint8Array {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === "number") out.push(part);
    else for (const ch of part) out.push(ch.charCodeAt(0));
  }
  return new Uint8Array(out);
}

Deno.test("TelnetFilter takes every kind of command out, wherever the reads are split", async (t) => {
  const stream = bytes(
    IAC,
    DO,
    ECHO,
    "he",
    IAC,
    WILL,
    SGA,
    "llo",
    IAC,
    SB,
    TTYPE,
    0,
    "xterm",
    IAC,
    IAC, // an escaped 0xFF inside the subnegotiation
    IAC,
    SE,
    IAC,
    NOP,
    IAC,
    GA,
    IAC,
    DM,
    IAC,
    EL,
    IAC,
    EC,
    IAC,
    AO,
    IAC,
    WONT,
    NAWS,
    IAC,
    DONT,
    IAC, // DONT with the option 0xFF
    " x",
    IAC,
    IAC,
    "y\r\n",
    IAC,
    AYT,
    "after ayt\r\n",
    IAC,
    BRK,
    IAC,
    IP,
    IAC,
    DO,
    6, // TIMING-MARK, which telnet sends after IP for Ctrl-C
    "end",
  );
  const expected: Out = [
    "hello x\xffy\r\n",
    "are-you-there",
    "after ayt\r\n",
    "break",
    "interrupt",
    "end",
  ];
  assert.deepEqual(run([stream]), expected);

  await assertSameWhereverSplit(t, stream, run, expected);
});

Deno.test("TelnetFilter leaves input without IAC as it is, in the same buffer", () => {
  const input = encoder.encode("plain text, héllo\n");
  const copy = input.slice();
  const result = new TelnetFilter().filter(input);
  assert.equal(result.data.buffer, input.buffer);
  assert.equal(result.data.byteOffset, input.byteOffset);
  assert.deepEqual(result.data, copy);
  assert.equal(result.used, input.length);
  assert.equal(result.command, undefined);
});

Deno.test("TelnetFilter gives up a subnegotiation that never ends after MAX_SUBNEGOTIATION_BYTES", () => {
  const filter = new TelnetFilter();
  // A subnegotiation of 100 KB, 4 KB at a time: all swallowed up to the cap,
  // then data again.
  const start = filter.filter(bytes(IAC, SB, NAWS));
  assert.equal(start.data.length, 0);
  const chunk = new Uint8Array(4096).fill(0x61);
  let data = 0;
  for (let i = 0; i < 25; i++) data += filter.filter(chunk.slice()).data.length;
  assert.equal(data, 25 * 4096 - MAX_SUBNEGOTIATION_BYTES);
  // And a command is recognised again after it.
  assert.equal(filter.filter(bytes(IAC, AYT)).command, "are-you-there");
});

Deno.test("serve() drops telnet commands from lines, answers AYT, and ends the session on IP and BRK", async (t) => {
  await using server = startServer({ maxLineBytes: 16 });
  const clients = await joinAll(server.addr.port, ["alice", "bob"]);
  const [alice, bob] = clients as [TestClient, TestClient];
  try {
    await t.step("negotiations never reach a line or count toward its length", async () => {
      // 16 bytes of text (the limit) with 15 bytes of commands among them.
      await alice.write(bytes(
        IAC,
        WILL,
        TTYPE,
        "sixteen ",
        IAC,
        SB,
        NAWS,
        0,
        80,
        0,
        24,
        IAC,
        SE,
        "bytes ok",
        IAC,
        NOP,
        "\r\n",
      ));
      assert.match(await nextLine(bob), live("alice: sixteen bytes ok"));
    });

    await t.step("IAC IAC is the byte 0xFF, shown as U+FFFD", async () => {
      await alice.write(bytes("a", IAC, IAC, "b\r\n"));
      assert.match(await nextLine(bob), live("alice: a\uFFFDb"));
    });

    await t.step("AYT gets a notice back, and the next line is clean", async () => {
      await alice.write(bytes(IAC, AYT));
      assert.match(await nextLine(alice), live("-- [yes]"));
      await alice.send("after ayt");
      assert.match(await nextLine(bob), live("alice: after ayt"));
    });

    await t.step("IP ends the session like /quit, after the lines before it", async () => {
      await alice.write(bytes("last words\r\n", IAC, IP, "never said\r\n"));
      assert.match(await nextLine(bob), live("alice: last words"));
      assert.match(await nextLine(bob), live("<-- alice left"));
      assert.deepEqual(await readToEnd(alice), ["!! bye"]);
      assert.ok(server.log.some((line) => line.endsWith("alice: left (telnet interrupt)")));
    });

    await t.step("BRK too, even before an alias", async () => {
      await using carol = await TestClient.connect(server.addr.port);
      await carol.expect(/^\? alias: /);
      await carol.write(bytes(IAC, BRK));
      assert.deepEqual(await readToEnd(carol), ["!! bye"]);
    });
    assert.equal(server.room.size, 1);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() chats with Debian's telnet on a terminal: Ctrl-] send ayt, then Ctrl-C", async () => {
  await using server = startServer();
  await using bob = await TestClient.join(server.addr.port, "bob");
  await using tmux = new Tmux();
  await tmux.startCommand("alice", ["telnet", "127.0.0.1", String(server.addr.port)]);
  const screen = (what: string, check: (text: string) => boolean) =>
    tmux.waitFor("alice", what, (rows) => check(rows.join("\n")));
  await screen("the alias prompt", (text) => text.includes("? alias: choose an alias"));
  await tmux.type("alice", "alice");
  await tmux.press("alice", "Enter");
  await bob.expect(live("--> alice joined"));
  await screen("the limits", (text) => text.includes("-- limits: "));

  await tmux.type("alice", "hello from telnet");
  await tmux.press("alice", "Enter");
  assert.match(await nextLine(bob), live("alice: hello from telnet"));

  // Ctrl-] opens telnet's command prompt; "send ayt" sends IAC AYT.
  await tmux.press("alice", "C-]");
  await screen("telnet's prompt", (text) => /^telnet>\s*$/m.test(text));
  await tmux.type("alice", "send ayt");
  await tmux.press("alice", "Enter");
  await screen("the answer to AYT", (text) => /^\[\d\d:\d\d:\d\d\] -- \[yes\]$/m.test(text));
  await tmux.type("alice", "after ayt");
  await tmux.press("alice", "Enter");
  assert.match(await nextLine(bob), live("alice: after ayt"));

  // Ctrl-C: telnet sends IAC IP, and IAC DO TIMING-MARK, and throws away
  // what comes until an answer to that, which the server never sends: it
  // does not see the "!! bye", only the close.
  await tmux.press("alice", "C-c");
  assert.match(await nextLine(bob), live("<-- alice left"));
  await screen("telnet to exit", (text) => text.includes("Connection closed by foreign host."));
  assert.ok(server.log.some((line) => line.endsWith("alice: left (telnet interrupt)")));
  assert.equal(server.room.size, 1);
});
