/**
 * Overload over real sockets: when more is said than the writers can send
 * at once, the senders are slowed and no member that reads is dropped,
 * whatever its byte limit. A member that stops reading still is.
 */

import assert from "node:assert/strict";
import { closeAll, joinAll, live, startServer, TestClient, WAIT_MS } from "../_helpers.ts";

const encoder = new TextEncoder();

/** The smallest byte limit a server with 4,096-byte lines accepts: 2 x (3 x 4096 + 256). */
const MIN_OUTBOX = 25_088;

/** Numbered lines `tag N xxx…` of `bytes` bytes each, in one buffer. */
function paste(tag: string, count: number, bytes: number): Uint8Array {
  let text = "";
  for (let i = 0; i < count; i++) {
    const head = `${tag} ${i} `;
    text += head + "x".repeat(bytes - head.length) + "\n";
  }
  return encoder.encode(text);
}

/**
 * Reads `reader`'s lines until it has every line of every tag in `counts`,
 * checking each sender's order and that nothing else (a `left` notice, a
 * goodbye) comes between.
 */
async function expectAll(reader: TestClient, counts: Map<string, number>): Promise<void> {
  const next = new Map([...counts.keys()].map((tag) => [tag, 0]));
  let missing = [...counts.values()].reduce((a, b) => a + b, 0);
  while (missing > 0) {
    const line = await reader.lines.next(WAIT_MS * 4);
    assert.ok(line !== null, `the connection ended with ${missing} lines missing`);
    const m = /^\[\d\d:\d\d:\d\d\] (\w+): (\w+) (\d+) x+$/.exec(line);
    assert.ok(m !== null, `an unexpected line: ${line.slice(0, 120)}`);
    const tag = m[2]!;
    assert.equal(Number(m[3]), next.get(tag), `${tag}'s lines out of order`);
    next.set(tag, Number(m[3]) + 1);
    missing--;
  }
}

Deno.test("serve() delivers a 20-line paste of 4,000-byte lines to every reader at the smallest outboxBytes", async (t) => {
  // The whole paste is within what one sender may send at once, with the
  // default rate and burst, and with flood control off (read 64 KiB at a time).
  for (const rateLimit of [undefined, 0]) {
    await t.step(`rateLimit ${rateLimit ?? "default"}`, async () => {
      await using server = startServer({
        outboxBytes: MIN_OUTBOX,
        ...(rateLimit === undefined ? {} : { rateLimit }),
      });
      const aliases = ["alice", ...Array.from({ length: 10 }, (_, i) => `r${i}`)];
      const clients = await joinAll(server.addr.port, aliases);
      const [alice, ...readers] = clients as [TestClient, ...TestClient[]];
      try {
        await alice.write(paste("p", 20, 4000));
        await Promise.all(readers.map((reader) => expectAll(reader, new Map([["p", 20]]))));
        assert.equal(server.room.size, aliases.length, "someone was dropped");
        assert.ok(!server.log.some((line) => line.includes("too slow")), "someone was dropped");
        // And the room goes on.
        await alice.send("after");
        for (const reader of readers) {
          assert.match(await reader.expect(/alice: after$/), live("alice: after"));
        }
      } finally {
        await closeAll(clients);
      }
    });
  }
});

Deno.test("serve() slows senders that flood a room, without dropping any member that reads", async () => {
  // No flood control and the smallest byte limit: four senders write as
  // fast as TCP lets them, far faster than 20 readers can be sent it all.
  await using server = startServer({ rateLimit: 0, outboxBytes: MIN_OUTBOX });
  const senders = ["s0", "s1", "s2", "s3"];
  const readers = Array.from({ length: 20 }, (_, i) => `r${i}`);
  const clients = await joinAll(server.addr.port, [...senders, ...readers]);
  const lines = 300;
  try {
    const counts = new Map(senders.map((tag) => [tag, lines]));
    const reading = clients.slice(senders.length).map((reader) => expectAll(reader, counts));
    // Each sender also reads: its socket must not fill with the others' lines.
    const echoes = clients.slice(0, senders.length).map((sender, i) =>
      expectAll(sender, new Map(senders.filter((_, j) => j !== i).map((tag) => [tag, lines])))
    );
    await Promise.all([
      ...clients.slice(0, senders.length).map((sender, i) =>
        sender.write(paste(senders[i]!, lines, 500))
      ),
      ...reading,
      ...echoes,
    ]);
    assert.equal(server.room.size, senders.length + readers.length, "someone was dropped");
    assert.ok(!server.log.some((line) => line.includes("too slow")), "someone was dropped");
  } finally {
    await closeAll(clients);
  }
});
