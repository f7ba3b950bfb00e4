import assert from "node:assert/strict";
import { LocalRegistry } from "../../server/registry.ts";
import { resolveServeOptions } from "../../server/options.ts";
import { Session } from "../../server/session.ts";
import { FakeMember, settle } from "./_fake_member.ts";
import { type Failure, ScriptedTransport } from "./_scripted_transport.ts";
import { withTimeout } from "../_helpers.ts";

const encode = (text: string) => new TextEncoder().encode(text);

/**
 * Serves `transport` until the session says it is over; returns the log
 * and how many times `ended` was called (after one more turn, so a second
 * call would be seen).
 */
async function serveToEnd(
  registry: LocalRegistry,
  transport: ScriptedTransport,
): Promise<{ log: string[]; ends: number }> {
  const log: string[] = [];
  const options = resolveServeOptions({ port: 0, log: () => {} });
  const ended = Promise.withResolvers<void>();
  let ends = 0;
  const ctx = {
    registry,
    options,
    log: (line: string) => log.push(line),
    ended: () => {
      ends++;
      ended.resolve();
    },
  };
  new Session(transport, "peer", ctx).run();
  await withTimeout(ended.promise, 2000, "the session to end");
  await new Promise((resolve) => setTimeout(resolve, 0));
  return { log, ends };
}

Deno.test("how a session's input ends decides what becomes of a line cut short", async (t) => {
  const cases: { name: string; last?: Failure; said: boolean; reason: RegExp }[] = [
    { name: "the end of input: the last line counts", said: true, reason: /left$/ },
    {
      name: "a failed read: it does not",
      last: { fail: new Deno.errors.ConnectionReset("reset") },
      said: false,
      reason: /left \(connection reset\)$/,
    },
    {
      name: "a read rejected with undefined is a failure too",
      last: { fail: undefined },
      said: false,
      reason: /left \(undefined\)$/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const registry = new LocalRegistry();
      const listener = new FakeMember("listener");
      const entered = await registry.enter(listener, registry.defaultRoom.name, {
        history: false,
        nameRoom: false,
      });
      assert.ok(entered);
      const steps = [encode("bob\n"), encode("cut short")];
      const transport = new ScriptedTransport(...steps, ...(c.last ? [c.last] : []));
      const { log, ends } = await serveToEnd(registry, transport);
      assert.equal(ends, 1, "ended is told once");
      // Whatever bob said is in the log before his leaving; it reaches the
      // listener with the round after.
      await settle(registry.defaultRoom, listener);
      assert.ok(listener.lines.some((line) => line.includes("bob")), "bob was seen");
      assert.equal(
        listener.lines.some((line) => line.includes("cut short")),
        c.said,
        listener.lines.join("\n"),
      );
      assert.match(log.find((line) => line.startsWith("peer bob: left")) ?? "", c.reason);
      assert.ok(transport.closed, "the transport is closed");
      registry.close();
    });
  }
});
