/**
 * `deno compile` makes one self-contained confab executable. It is compiled
 * once, when this module loads; the test then checks that the executable
 * serves a room and joins it.
 *
 * `deno compile` downloads its runtime base binary the first time. Without
 * network access that download fails: the test is then registered as ignored
 * and the reason is printed, so the skip shows in the output. Any other
 * compile failure fails the test.
 */

import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { LineSource, live, MAIN, spawnConfab, TestClient, WAIT_MS } from "../_helpers.ts";
import { WsClient } from "../_web.ts";

const COMPILE_TIMEOUT_MS = 60_000;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

type Compiled =
  | { kind: "ok"; binary: string }
  | { kind: "offline"; reason: string }
  | { kind: "failed"; reason: string };

// deno-lint-ignore no-control-regex -- removing colour codes is the point
const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

/** Errors that mean the base binary could not be fetched, not that the code is wrong. */
const NETWORK_ERROR =
  /error sending request|dns error|failed to lookup address|client error \(Connect\)|connection refused|connection reset|network is unreachable|timed out|tls handshake|certificate/i;
const BASE_BINARY = /denort|dl\.deno\.land|base binary/i;

async function compileOnce(dir: string): Promise<Compiled> {
  const binary = `${dir}/confab${Deno.build.os === "windows" ? ".exe" : ""}`;
  const signal = AbortSignal.timeout(COMPILE_TIMEOUT_MS);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        "--allow-net",
        "--allow-read",
        "--allow-env",
        "--output",
        binary,
        MAIN,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal,
    }).output();
  } catch (error) {
    return { kind: "failed", reason: `could not run deno compile: ${error}` };
  }
  const stderr = stripAnsi(decoder.decode(output.stderr));
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  if (output.success) {
    try {
      await Deno.stat(binary);
      return { kind: "ok", binary };
    } catch {
      return { kind: "failed", reason: `deno compile succeeded but wrote no ${binary}` };
    }
  }
  const firstError = lines.find((l) => /^error\b/i.test(l)) ?? lines.at(-1) ?? "(no output)";
  if (signal.aborted) {
    // Killed while still fetching the base binary: the download hung.
    const downloading = lines.at(-1)?.startsWith("Download") && BASE_BINARY.test(lines.at(-1)!);
    const why = `timed out after ${COMPILE_TIMEOUT_MS / 1000} s; last output: ${lines.at(-1)}`;
    return downloading ? { kind: "offline", reason: why } : { kind: "failed", reason: why };
  }
  if (NETWORK_ERROR.test(stderr) && BASE_BINARY.test(stderr)) {
    const cause = lines.find((l) => NETWORK_ERROR.test(l) && l !== firstError);
    return { kind: "offline", reason: cause ? `${firstError} (${cause})` : firstError };
  }
  return { kind: "failed", reason: stderr.trim() || `exit code ${output.code}` };
}

const dir = await Deno.makeTempDir({ prefix: "confab-compile-" });
const removeDir = () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
};
// Removed after the test; this covers runs where the test is filtered out.
globalThis.addEventListener("unload", removeDir);
const compiled = await compileOnce(dir);
if (compiled.kind !== "ok") removeDir();
if (compiled.kind === "offline") {
  Deno.stderr.writeSync(encoder.encode(
    `compile_test: skipped: deno compile could not download its base binary: ${compiled.reason}\n`,
  ));
}

/**
 * Runs `command serve --web 0` from an empty working directory (so nothing
 * can come from the source tree) and checks the page, its script and the
 * WebSocket are served from inside the executable.
 */
export async function checkWebServed(command: string[]): Promise<void> {
  const cwd = await Deno.makeTempDir({ prefix: "confab-web-cwd-" });
  const [cmd, ...pre] = command;
  const child = new Deno.Command(cmd!, {
    args: [...pre, "serve", "--port", "0", "--web", "0"],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new LineSource(child.stdout);
  const stderr = new LineSource(child.stderr);
  try {
    const line = await stdout.expect(/^web page at http:\/\/127\.0\.0\.1:\d+\/$/);
    const port = Number(/:(\d+)\/$/.exec(line)![1]);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /app\.js/);
    const script = await fetch(`http://127.0.0.1:${port}/app.js`);
    assert.equal(script.status, 200);
    assert.ok((await script.text()).length > 1000);
    await using web = await WsClient.join(port, "webby");
    web.send("/who");
    await web.expect(/webby/);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Promise.all([stdout.rest(WAIT_MS).catch(() => {}), stderr.rest(WAIT_MS).catch(() => {})]);
    await Deno.remove(cwd, { recursive: true });
  }
}

/** Runs the compiled executable to completion and returns its code and output. */
async function runBinary(binary: string, args: string[]) {
  const output = await new Deno.Command(binary, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test({
  name: "deno compile builds one confab executable that serves a room and joins it",
  ignore: compiled.kind === "offline",
  async fn() {
    try {
      if (compiled.kind === "failed") assert.fail(`deno compile failed:\n${compiled.reason}`);
      if (compiled.kind !== "ok") return;
      const { binary } = compiled;

      const version = await runBinary(binary, ["--version"]);
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout, `confab ${denoJson.version}\n`);

      // The executable serves; its join client and a test client talk there.
      await using serve = spawnConfab(["serve", "--port", "0"], { command: [binary] });
      const listening = await serve.stdout.expect(/listening on 127\.0\.0\.1:\d+$/);
      const port = /:(\d+)$/.exec(listening)![1]!;
      await using bob = await TestClient.join(Number(port), "bob");
      await using ci = spawnConfab(["join", "--alias", "ci", "--port", port], {
        command: [binary],
      });
      await ci.stdout.expect(/-- welcome, ci! 2 online: bob, ci$/);
      await ci.write("built and running\n");
      await bob.expect(live("ci: built and running"));
      await bob.send("nice");
      assert.match(await ci.stdout.expect("bob:"), /^\d\d:\d\d bob: nice$/);
      await ci.closeStdin();
      await bob.expect(live("<-- ci left"));
      assert.equal(await ci.exit(), 0);

      // SIGTERM stops the server cleanly, telling whoever is left.
      serve.child.kill("SIGTERM");
      await bob.expect(/^!! server shutting down$/);
      assert.equal(await serve.exit(), 0);

      // The web page, its script and the WebSocket come from inside it.
      await checkWebServed([binary]);
    } finally {
      removeDir();
    }
  },
});
