/**
 * Runs the browser scenarios (tests/web/_browser.ts) in a subprocess, with
 * the permissions playwright-core needs, and checks they all passed.
 */

import assert from "node:assert/strict";

const SCENARIOS = new URL("./_browser.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

Deno.test("the web page works in a real browser (chromium via playwright-core)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--config", CONFIG, SCENARIOS],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(240_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, text);
  const steps = [...text.matchAll(/^ {2}(.+) \.\.\. ok/gm)].map((m) => m[1]);
  assert.equal(steps.length, 9, text);
  assert.match(text, /^ok \| 1 passed \(9 steps\) \| 0 failed/m, text);
});
