import assert from "node:assert/strict";
import {
  hostName,
  malformedHost,
  parseHostName,
  parseOrigin,
  WebGuard,
} from "../../server/web/guard.ts";

Deno.test("hostName() drops the port and keeps an IPv6 address's brackets", () => {
  assert.equal(hostName("Chat.Example.com:8080"), "chat.example.com");
  assert.equal(hostName("[::1]:8080"), "[::1]");
  assert.equal(hostName("127.0.0.1"), "127.0.0.1");
});

Deno.test("parseOrigin() takes scheme, host and port only", () => {
  assert.equal(parseOrigin("HTTPS://Chat.Example.com/"), "https://chat.example.com");
  assert.equal(parseOrigin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  assert.throws(() => parseOrigin("ftp://x"), /not an http or https origin/);
  assert.throws(
    () => parseOrigin("https://x/chat"),
    /more than an origin; give it as https:\/\/HOST/,
  );
  assert.throws(() => parseOrigin("chat.example.com"), /not an origin/);
});

Deno.test("WebGuard.checkHost() accepts addresses and given names only", async (t) => {
  const guard = new WebGuard({
    hostname: "0.0.0.0",
    tls: false,
    hosts: ["chat.lan"],
    origins: ["https://chat.example.com"],
  });
  await t.step("IP addresses, localhost, --web-host and origin hosts", () => {
    for (const host of ["192.0.2.1:80", "[2001:db8::1]:8080", "localhost", "chat.lan:8080"]) {
      assert.equal(guard.checkHost(host), undefined, host);
    }
    assert.equal(guard.checkHost("chat.example.com"), undefined);
  });
  await t.step("anything else, an empty name, or no Host", () => {
    assert.match(guard.checkHost("evil.example")!, /Host 'evil\.example' is not allowed/);
    assert.match(guard.checkHost("localhost.evil.example")!, /not allowed/);
    assert.match(guard.checkHost(":8080")!, /not allowed/);
    assert.equal(guard.checkHost(null), "no Host header");
  });
  await t.step("a hostile Host is logged as printable text, cut short", () => {
    const reason = guard.checkHost(`a\x1b[31m${"b".repeat(300)}`)!;
    assert.ok(!reason.includes("\x1b"), reason);
    assert.ok(reason.length < 200, reason);
  });
});

Deno.test("WebGuard.checkOrigin() wants the page's own origin unless given a list", () => {
  const own = new WebGuard({ hostname: "127.0.0.1", tls: true });
  assert.equal(own.checkOrigin("https://localhost:8443", "localhost:8443"), undefined);
  assert.match(own.checkOrigin("http://localhost:8443", "localhost:8443")!, /not allowed/);
  assert.match(own.checkOrigin("https://localhost:8443", null)!, /not allowed/);
  assert.equal(own.checkOrigin(null, "localhost:8443"), undefined);
  const listed = new WebGuard({
    hostname: "127.0.0.1",
    tls: false,
    origins: ["https://a.example"],
  });
  assert.equal(listed.checkOrigin("https://A.example", "127.0.0.1:8080"), undefined);
  assert.match(listed.checkOrigin("http://127.0.0.1:8080", "127.0.0.1:8080")!, /not allowed/);
});

Deno.test("WebGuard.clientAddress() believes X-Forwarded-For only from a trusted proxy", () => {
  const guard = new WebGuard({ hostname: "127.0.0.1", tls: false, trustProxy: ["10.0.0.0/8"] });
  assert.deepEqual(guard.clientAddress("10.1.2.3", "198.51.100.1, 203.0.113.9"), {
    address: "203.0.113.9",
    via: "10.1.2.3",
  });
  assert.deepEqual(guard.clientAddress("10.1.2.3", "[2001:db8::5]"), {
    address: "2001:db8::5",
    via: "10.1.2.3",
  });
  assert.deepEqual(guard.clientAddress("10.1.2.3", "not-an-address"), { address: "10.1.2.3" });
  assert.deepEqual(guard.clientAddress("192.0.2.7", "203.0.113.9"), { address: "192.0.2.7" });
  assert.deepEqual(guard.clientAddress("10.1.2.3", null), { address: "10.1.2.3" });
});

Deno.test("parseHostName accepts host names and addresses, with a port or not, and nothing else", () => {
  assert.equal(parseHostName("Chat.Example.com"), "chat.example.com");
  assert.equal(parseHostName("chat.example.com:8443"), "chat.example.com");
  assert.equal(parseHostName("[::1]:80"), "[::1]");
  assert.equal(parseHostName("10.0.0.1"), "10.0.0.1");
  for (const bad of ["bad host!", "", "a..b", "-a.example", "x.example:port", "a/b", "é.example"]) {
    assert.throws(() => parseHostName(bad), TypeError, bad);
  }
});

Deno.test("malformedHost() refuses a missing Host, a list of hosts and a port that is not a number", () => {
  for (const host of ["127.0.0.1:8080", "localhost", "[::1]:80", "Chat.Example.com:443"]) {
    assert.equal(malformedHost(host), undefined, host);
  }
  assert.equal(malformedHost(null), "no Host header");
  assert.equal(malformedHost("  "), "no Host header");
  for (const host of ["127.0.0.1:8080, 127.0.0.1:8080", "127.0.0.1:80x", "a:123456", "[::1]x"]) {
    assert.equal(malformedHost(host), "malformed Host header", host);
  }
});
