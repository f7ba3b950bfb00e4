/**
 * A plain netcat process is a first-class client: it answers the alias
 * prompt by hand and chats with a `confab join` client in both directions.
 */

import assert from "node:assert/strict";
import { LineSource, live, spawnConfab, startServer, WAIT_MS } from "../_helpers.ts";

const encoder = new TextEncoder();

/** Starts `nc 127.0.0.1 PORT` with piped stdio; fails clearly if nc is not installed. */
function spawnNetcat(port: number): Deno.ChildProcess {
  try {
    return new Deno.Command("nc", {
      args: ["127.0.0.1", String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "netcat_test needs the 'nc' command (netcat-openbsd), which is not installed; " +
          "install it (e.g. apt-get install netcat-openbsd) to run this test",
      );
    }
    throw error;
  }
}

Deno.test("netcat joins by answering the alias prompt and chats with confab join both ways", async () => {
  await using server = startServer();
  const port = server.addr.port;
  const nc = spawnNetcat(port);
  const ncOut = new LineSource(nc.stdout);
  const ncErr = new LineSource(nc.stderr);
  const ncIn = nc.stdin.getWriter();
  const say = (line: string) => ncIn.write(encoder.encode(line + "\n"));
  try {
    await ncOut.expect(/^\? alias: choose an alias/);
    await say("natty");
    await ncOut.expect(live("-- welcome, natty! you are the only one here"));
    await ncOut.expect(/-- limits: /);

    await using ci = spawnConfab(["join", "--alias", "ci", "--port", String(port)]);
    await ci.stdout.expect(/-- welcome, ci! 2 online: natty, ci$/);
    await ncOut.expect(live("--> ci joined"));

    await say("hello from netcat");
    assert.match(await ci.stdout.expect("natty:"), /^\d\d:\d\d natty: hello from netcat$/);
    await ci.write("hello from confab\n");
    await ncOut.expect(live("ci: hello from confab"));
    await say("/me waves");
    assert.match(await ci.stdout.expect("natty"), /^\d\d:\d\d \* natty waves$/);

    await ci.closeStdin();
    await ncOut.expect(live("<-- ci left"));
    assert.equal(await ci.exit(), 0);

    // netcat leaves the way a person at a keyboard would: /quit, then the
    // end of its input; the server has closed its side, so nc exits.
    await say("/quit");
    await ncOut.expect(/^!! bye$/);
    await ncIn.close();
    assert.deepEqual(await ncOut.rest(), []);
    const status = await nc.status;
    assert.equal(status.code, 0, `nc stderr: ${JSON.stringify(await ncErr.rest())}`);
  } finally {
    await ncIn.close().catch(() => {});
    try {
      nc.kill("SIGKILL");
    } catch { /* already exited */ }
    await nc.status;
    await Promise.all([ncOut.rest(WAIT_MS).catch(() => {}), ncErr.rest(WAIT_MS).catch(() => {})]);
  }
});
