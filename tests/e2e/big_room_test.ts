/**
 * Big rooms over real sockets: from `quietAbove` members on, joins and
 * leaves come as one summary every few seconds, while the welcome and
 * `/who` still count everyone; a room that shrinks announces each again.
 */

import assert from "node:assert/strict";
import { closeAll, joinAll, live, nextLine, startServer, TestClient } from "../_helpers.ts";

Deno.test("serve() sums up joins and leaves in a room of quietAbove or more, and announces each again below", async () => {
  await using server = startServer({ quietAbove: 3 });
  const port = server.addr.port;
  const [alice, bob] = await joinAll(port, ["alice", "bob"]) as [TestClient, TestClient];
  const clients = [alice, bob];
  try {
    // joinAll() saw alice told of bob one line at a time, the room being small.
    // From the third member on, the room is quiet.
    const carol = await TestClient.connect(port);
    clients.push(carol);
    await carol.expect(/^\? alias: /);
    await carol.send("carol");
    assert.match(await carol.expect(/-- welcome, /), /3 online/);
    const dave = await TestClient.join(port, "dave");
    clients.push(dave);
    await bob.send("/quit");
    await bob.closed();
    // What alice is told next is the summary, after nothing else: not a
    // line per join or leave.
    const started = performance.now();
    const summary = await nextLine(alice, 10_000);
    assert.match(summary, live("-- carol, dave joined; bob left (3 here)"));
    const waited = performance.now() - started;
    assert.ok(waited < 6000, `the summary took ${waited} ms`);
    // The truth is still there when asked.
    await alice.send("/who");
    assert.match(await nextLine(alice), live("-- 3 online:"));
    // Below the size, one line each again.
    await dave.send("/quit");
    await dave.closed();
    assert.match(await alice.expect(/dave left/), live("<-- dave left"));
  } finally {
    await closeAll(clients);
  }
});
