import assert from "node:assert/strict";
import { IoTurn } from "../../server/io_turn.ts";
import { withTimeout } from "../_helpers.ts";

/**
 * Keeps the runtime busy with a chain of writes that each complete at
 * once (as a long write round does), `turn` between links, and says after
 * how many links a line a peer sent before the chain began was read.
 */
async function linksUntilRead(turn: (() => Promise<void>) | undefined): Promise<number> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  // busy: written to, never read (the kernel buffers what the chain writes).
  const [busy, busyPeer] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port }),
    listener.accept(),
  ]);
  const [peer, input] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port }),
    listener.accept(),
  ]);
  try {
    let links = 0;
    let readAt = -1;
    const read = input.read(new Uint8Array(64)).then(() => (readAt = links));
    await peer.write(new TextEncoder().encode("hi\n"));
    const bytes = new Uint8Array(64);
    // Bounded: 2,000 writes of 64 bytes fit in the kernel's buffers.
    while (readAt < 0 && links < 2000) {
      await busy.write(bytes);
      links++;
      if (turn !== undefined) await turn();
    }
    await withTimeout(read, 2000, "the peer's line to be read");
    return readAt;
  } finally {
    for (const conn of [busy, busyPeer, peer, input]) conn.close();
  }
}

Deno.test("IoTurn.next() lets input in while writes keep the runtime busy", async () => {
  const turn = new IoTurn();
  try {
    const withTurns = await linksUntilRead(() => turn.next());
    assert.ok(withTurns <= 3, `read after ${withTurns} links with a turn between each`);
    // Over the loopback connection, not the timer that stands in for it.
    assert.equal(turn.loopback, true);
  } finally {
    await turn.close();
  }
});

Deno.test("IoTurn: callers at the same time share one turn; after close() a timer stands in", async () => {
  const turn = new IoTurn();
  const a = turn.next();
  const b = turn.next();
  assert.equal(a, b);
  await withTimeout(Promise.all([a, b]), 2000, "the shared turn");
  const c = turn.next();
  assert.notEqual(c, a);
  await withTimeout(c, 2000, "the next turn");
  assert.equal(turn.loopback, true);
  await turn.close();
  assert.equal(turn.loopback, false);
  await withTimeout(turn.next(), 2000, "a turn after close()");
  await turn.close();
});

Deno.test("IoTurn: a turn held up by a blocked event loop ends, and the next still goes over loopback", async () => {
  const fallbacks: string[] = [];
  const turn = new IoTurn((why) => fallbacks.push(why));
  try {
    await withTimeout(turn.next(), 2000, "the first turn");
    const held = turn.next();
    // Block the loop longer than a turn may take (bounded: 400 ms).
    const until = performance.now() + 400;
    while (performance.now() < until) { /* busy */ }
    await withTimeout(held, 2000, "the held-up turn");
    for (let i = 0; i < 20; i++) await withTimeout(turn.next(), 2000, `turn ${i}`);
    assert.equal(turn.loopback, true);
    assert.deepEqual(fallbacks, []);
  } finally {
    await turn.close();
  }
});

Deno.test("IoTurn.close() before the first turn opens nothing that outlives it", async () => {
  const turn = new IoTurn();
  const pending = turn.next();
  await turn.close();
  await withTimeout(pending, 2000, "the turn that was asked for before close()");
});

Deno.test("IoTurn gives the loopback connection up for a timer when its byte stops coming back", async () => {
  // A connection whose writes, after the first, go nowhere: the byte is lost.
  const connect = Deno.connect;
  let writes = 0;
  const lossy = async (options: Deno.ConnectOptions) => {
    const conn = await connect(options);
    const write = conn.write.bind(conn);
    conn.write = (p: Uint8Array) => ++writes === 1 ? write(p) : Promise.resolve(p.length);
    return conn;
  };
  const fallbacks: string[] = [];
  const turn = new IoTurn((why) => fallbacks.push(why));
  Object.assign(Deno, { connect: lossy });
  try {
    await withTimeout(turn.next(), 2000, "the first turn");
  } finally {
    Object.assign(Deno, { connect });
  }
  try {
    assert.equal(turn.loopback, true);
    // Each turn now ends late; a few in a row, and the timer takes over.
    for (let i = 0; i < 4; i++) await withTimeout(turn.next(), 2000, `turn ${i}`);
    assert.equal(turn.loopback, false);
    assert.equal(fallbacks.length, 1);
    assert.match(fallbacks[0]!, /no byte came back/);
    await withTimeout(turn.next(), 2000, "a turn on the timer");
  } finally {
    await turn.close();
  }
});
