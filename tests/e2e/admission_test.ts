/**
 * Who gets in: the per-address cap and the addresses exempt from it, and
 * accepting that no storm of reset connections can stall.
 */

import assert from "node:assert/strict";
import { AddressSet, LOOPBACK_RANGES } from "../../server/address.ts";
import { serve } from "../../server/mod.ts";
import {
  closeAll,
  LineSource,
  readToEnd,
  spawnConfab,
  startServer,
  TestClient,
  WAIT_MS,
} from "../_helpers.ts";

Deno.test("AddressSet.has() matches addresses and CIDR ranges of both families", async (t) => {
  await t.step("loopback, the default exemption", () => {
    const loopback = new AddressSet(LOOPBACK_RANGES);
    for (const address of ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1", "[::1]"]) {
      assert.ok(loopback.has(address), address);
    }
    for (const address of ["128.0.0.1", "10.0.0.1", "::2", "::", "fe80::1", "not an address"]) {
      assert.ok(!loopback.has(address), address);
    }
  });
  await t.step("prefixes that do not end on a byte", () => {
    const set = new AddressSet(["192.0.2.64/26", "2001:db8:abcd:12::/60"]);
    assert.ok(set.has("192.0.2.64"));
    assert.ok(set.has("192.0.2.127"));
    assert.ok(!set.has("192.0.2.63"));
    assert.ok(!set.has("192.0.2.128"));
    assert.ok(set.has("2001:db8:abcd:1f::1"));
    assert.ok(set.has("2001:DB8:ABCD:0010:0:0:0:0"));
    assert.ok(!set.has("2001:db8:abcd:20::1"));
    // One family's range never matches the other's addresses.
    assert.ok(!set.has("::c000:240"));
  });
  await t.step("a single address, /0 and an empty set", () => {
    assert.ok(new AddressSet(["10.1.2.3"]).has("10.1.2.3"));
    assert.ok(!new AddressSet(["10.1.2.3"]).has("10.1.2.4"));
    assert.ok(new AddressSet(["0.0.0.0/0"]).has("203.0.113.9"));
    assert.ok(!new AddressSet([]).has("127.0.0.1"));
  });
  await t.step("IPv4 written inside IPv6", () => {
    assert.ok(new AddressSet(["10.0.0.0/8"]).has("::ffff:10.9.8.7"));
    assert.ok(new AddressSet(["64:ff9b::192.0.2.1"]).has("64:ff9b::c000:201"));
    assert.ok(new AddressSet(["::ffff:10.0.0.0/8"]).has("10.9.8.7"));
  });
  await t.step("says how to write an IPv6 prefix length on IPv4 inside IPv6", () => {
    assert.throws(
      () => new AddressSet(["::ffff:10.0.0.0/104"]),
      new TypeError(
        '"::ffff:10.0.0.0/104" is IPv4 written inside IPv6, which is matched as IPv4: write it as 10.0.0.0/8',
      ),
    );
    assert.throws(() => new AddressSet(["::ffff:10.0.0.0/40"]), /write it as 10\.0\.0\.0\/0 to /);
  });
  await t.step("refuses what is not an address or range, saying which", () => {
    for (
      const bad of [
        "10.0.0.256",
        "10.0.0",
        "10.0.0.0/33",
        "::1/129",
        "1:2:3:4:5:6:7:8:9",
        "a::b::c",
      ]
    ) {
      assert.throws(() => new AddressSet([bad]), (e: Error) => {
        assert.ok(e instanceof TypeError);
        assert.ok(e.message.includes(`"${bad}"`), e.message);
        return true;
      });
    }
  });
});

Deno.test("serve() exempts loopback from maxPerAddress by default; maxClients still applies", async () => {
  await using server = startServer({ maxPerAddress: 2, maxClients: 6 });
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      const client = await TestClient.connect(server.addr.port);
      clients.push(client);
      await client.expect(/^\? alias: /);
    }
    await using extra = await TestClient.connect(server.addr.port);
    assert.deepEqual(await readToEnd(extra), ["!! server is full (6 connections)"]);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() applies maxPerAddress to an address outside exemptAddresses", async () => {
  // 127.0.0.1 is not in the list, so it is capped like any remote address.
  await using server = startServer({ maxPerAddress: 2, exemptAddresses: ["127.0.0.2", "::1"] });
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const client = await TestClient.connect(server.addr.port);
      clients.push(client);
      await client.expect(/^\? alias: /);
    }
    await using extra = await TestClient.connect(server.addr.port);
    assert.deepEqual(await readToEnd(extra), ["!! too many connections from your address (2)"]);
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() exempts a CIDR range given in exemptAddresses", async () => {
  await using server = startServer({ maxPerAddress: 1, exemptAddresses: ["127.0.0.0/30"] });
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const client = await TestClient.connect(server.addr.port);
      clients.push(client);
      await client.expect(/^\? alias: /);
    }
  } finally {
    await closeAll(clients);
  }
});

Deno.test("serve() refuses a bad exemptAddresses entry with a TypeError naming it", () => {
  assert.throws(
    () => serve({ port: 0, exemptAddresses: ["10.0.0.0/40"], log: () => {} }),
    (e: Error) => e instanceof TypeError && e.message.includes('"10.0.0.0/40"'),
  );
});

Deno.test("confab serve --exempt refuses a value that is not an address or range", async () => {
  await using proc = spawnConfab(["serve", "--port", "0", "--exempt", "10.0.0.0/8,office"]);
  assert.equal(await proc.exit(), 2);
  const stderr = await proc.stderr.rest();
  assert.equal(
    stderr[0],
    'confab: --exempt: "office" is not an IP address or CIDR range (like 10.0.0.0/8 or ::1)',
  );
});

/** A python3 loop that connects and resets (SO_LINGER 0) until `seconds` pass. */
const RESET_STORM = `
import socket, struct, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + seconds
n = 0
while time.time() < end and n < 100000:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        pass
    s.close()
    n += 1
    if n == 50:
        print("storming", flush=True)
print(n, flush=True)
`;

Deno.test("serve() answers a new client within 200 ms during a storm of connections reset before they are accepted", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const storms = [0, 1].map(() =>
    new Deno.Command("python3", {
      args: ["-c", RESET_STORM, String(port), "4"],
      stdout: "piped",
      stderr: "null",
    }).spawn()
  );
  const outputs = storms.map((storm) => new LineSource(storm.stdout));
  const clients: TestClient[] = [];
  try {
    for (const output of outputs) assert.equal(await output.next(WAIT_MS), "storming");
    const stormStarted = performance.now();
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const started = performance.now();
      const client = await TestClient.connect(port);
      clients.push(client);
      await client.expect(/^\? alias: /, WAIT_MS);
      waits.push(Math.round(performance.now() - started));
    }
    // The storm (4 s) was still on when the last client was answered.
    const during = performance.now() - stormStarted;
    assert.ok(during < 3000, `the clients took ${during} ms, so the storm may have ended`);
    assert.ok(Math.max(...waits) < 200, `waited ${waits.join(", ")} ms for the prompt`);
    // The server stayed quiet about connections that were gone before it saw them.
    assert.ok(!server.log.some((line) => line.includes("accept")), server.log.join("\n"));
    await clients[0]!.send("alice");
    await clients[0]!.expect(/ -- limits: /);
  } finally {
    await closeAll(clients);
    for (const [i, storm] of storms.entries()) {
      const count = Number((await outputs[i]!.rest(WAIT_MS)).at(-1));
      assert.ok(count > 50, `the storm made ${count} connections`);
      await storm.status;
    }
  }
});
