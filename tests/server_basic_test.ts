import assert from "node:assert/strict";
import { live, startServer, TestClient } from "./_helpers.ts";

Deno.test("serve() welcomes, announces joins and broadcasts to others only", async () => {
  await using server = startServer();
  await using alice = await TestClient.join(server.addr.port, "alice");
  await using bob = await TestClient.join(server.addr.port, "bob");
  await alice.expect(live("--> bob joined"));
  await alice.send("hello bob");
  await bob.expect(live("alice: hello bob"));
  await bob.send("marker");
  const next = await alice.lines.next();
  assert.match(next!, live("bob: marker"));
});
