import assert from "node:assert/strict";
import { ReadBuffers } from "../../server/read_buffers.ts";
import { LocalRegistry } from "../../server/registry.ts";
import { resolveServeOptions } from "../../server/options.ts";
import { Session } from "../../server/session.ts";
import type { Transport } from "../../server/transport.ts";
import { ScriptedTransport } from "./_scripted_transport.ts";
import { withTimeout } from "../_helpers.ts";

Deno.test("ReadBuffers hands out slices that never overlap, and hands back ones given back", () => {
  const pool = new ReadBuffers(256);
  const taken = Array.from({ length: 600 }, () => pool.take());
  // Each slice writes only its own bytes, across blocks too.
  taken.forEach((buffer, i) => buffer.fill(i % 251));
  taken.forEach((buffer, i) => {
    assert.equal(buffer.length, 256);
    assert.ok(buffer.every((byte) => byte === i % 251), `slice ${i} was written by another`);
  });
  pool.give(taken[7]!);
  assert.equal(pool.take(), taken[7]);
  // A buffer of another size (a grown one), or of the size but not from the
  // pool, is not the pool's.
  pool.give(new Uint8Array(1024));
  pool.give(new Uint8Array(256));
  const fresh = pool.take();
  assert.ok(!taken.includes(fresh));
  // One given back comes back zeroed.
  pool.give(taken[9]!);
  assert.ok(pool.take().every((byte) => byte === 0));
});

Deno.test("a session's first read of one 0x16 byte is no TLS handshake, whatever its buffer held before", async () => {
  const log: string[] = [];
  const registry = new LocalRegistry();
  const options = resolveServeOptions({ port: 0, log: () => {} });
  /** Serves `transport` to its end. */
  const serve = (transport: Transport, peer: string) => {
    const ended = Promise.withResolvers<void>();
    const ctx = {
      registry,
      options,
      log: (line: string) => log.push(line),
      ended: () => ended.resolve(),
    };
    new Session(transport, peer, ctx).run();
    return withTimeout(ended.promise, 2000, `the ${peer} session`);
  };
  // A ClientHello read into a pooled buffer, which goes back to the pool...
  const hello = new ScriptedTransport(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x40]));
  await serve(hello, "first");
  assert.equal(log.filter((line) => line.includes("sent a TLS handshake")).length, 1);
  // ...and the next session's first read is one byte: Ctrl-V from a raw terminal.
  const ctrlV = new ScriptedTransport(new Uint8Array([0x16]), new TextEncoder().encode("bob\n"));
  await serve(ctrlV, "second");
  assert.equal(
    log.filter((line) => line.includes("sent a TLS handshake")).length,
    1,
    log.join("\n"),
  );
  registry.close();
});
