/**
 * The command line as a user meets it: `confab` run as a subprocess, its
 * exit code, and exactly what it prints for help, versions and mistakes.
 */

import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { MAIN, RUN_FLAGS, spawnConfab, TestClient } from "../_helpers.ts";

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();
const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;

/** `text` as a RegExp source that matches it literally. */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Runs `confab ARGS...` to completion (killed after `timeoutMs`), stdin empty. */
async function confab(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; allow?: string[] } = {},
): Promise<Outcome> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...RUN_FLAGS, ...options.allow ?? [], MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "", CONFAB_PASSWORD: "", ...options.env },
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Fails if any output looks like an uncaught exception rather than a message. */
function assertNoStackTrace(out: Outcome): void {
  for (const text of [out.stdout, out.stderr]) {
    assert.doesNotMatch(text, /^\s+at .*[:(]/m, `stack trace in output: ${text}`);
    assert.doesNotMatch(text, /Uncaught|error: Error|TypeError|RangeError/, text);
  }
}

/** Asserts the usage-error shape: exit 2, one message line plus a hint, nothing on stdout. */
function assertUsageError(out: Outcome, problem: RegExp, help: string): void {
  assertNoStackTrace(out);
  assert.equal(out.code, 2, `exit code; stderr: ${out.stderr}`);
  assert.equal(out.stdout, "", "nothing on stdout");
  const lines = out.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, `one problem line and one hint, got: ${out.stderr}`);
  assert.match(lines[0]!, /^confab: /);
  assert.match(lines[0]!, problem);
  assert.equal(lines[1], `Try '${help} --help' for more information.`);
}

/** Asserts a runtime failure: the given exit code and exactly one line on stderr. */
function assertOneLineFailure(out: Outcome, code: number, message: RegExp): void {
  assertNoStackTrace(out);
  assert.equal(out.code, code, `exit code; stderr: ${out.stderr}`);
  const lines = out.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `exactly one line on stderr, got: ${out.stderr}`);
  assert.match(lines[0]!, message);
}

/** A port on 127.0.0.1 with nothing listening on it (free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("confab --help exits 0 and shows the commands", async () => {
  for (const flag of ["--help", "-h"]) {
    const out = await confab([flag]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stderr, "");
    assert.match(out.stdout, /^Usage:$/m);
    assert.match(out.stdout, /confab serve \[options\]/);
    assert.match(out.stdout, /confab join \[options\]/);
  }
});

Deno.test("confab serve --help exits 0 and lists the server's options", async () => {
  const out = await confab(["serve", "--help"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, "");
  assert.match(out.stdout, /^Usage: confab serve \[options\]/);
  const flags = [
    "--port",
    "--tls-cert",
    "--password-file",
    "--history",
    "--rate",
    "--log",
    "--motd",
  ];
  for (const flag of [...flags, "--log-format"]) {
    assert.ok(out.stdout.includes(flag), `help mentions ${flag}`);
  }
});

Deno.test("confab join --help exits 0 and documents the options and exit codes", async () => {
  const out = await confab(["join", "-h"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stderr, "");
  assert.match(out.stdout, /^Usage: confab join \[options\]/);
  for (const flag of ["--alias", "--tls", "--ca", "--json", "--no-history", "--no-color"]) {
    assert.ok(out.stdout.includes(flag), `help mentions ${flag}`);
  }
  assert.match(out.stdout, /Exit status: 0 left/);
});

Deno.test("confab --version prints the version from deno.json", async () => {
  const out = await confab(["--version"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `confab ${denoJson.version}\n`);
  assert.equal(out.stderr, "");
});

Deno.test("confab with no command exits 2 with one line and a usage hint", async () => {
  assertUsageError(await confab([]), /no command given/, "confab");
});

Deno.test("confab with an unknown command exits 2 naming the command", async () => {
  assertUsageError(await confab(["chat"]), /unknown command 'chat'/, "confab");
});

Deno.test("confab serve with an unknown flag exits 2 naming the flag", async () => {
  assertUsageError(
    await confab(["serve", "--prot", "1"]),
    /unknown option --prot\b/,
    "confab serve",
  );
});

Deno.test("confab serve no longer knows --flood-lines, as the README says", async () => {
  assertUsageError(
    await confab(["serve", "--flood-lines", "100"]),
    /^confab: unknown option --flood-lines$/,
    "confab serve",
  );
});

Deno.test("confab join with an unknown flag exits 2 naming the flag", async () => {
  assertUsageError(await confab(["join", "--colour"]), /unknown option --colour\b/, "confab join");
});

Deno.test("confab serve with a flag missing its value exits 2 naming the flag", async () => {
  assertUsageError(
    await confab(["serve", "--port"]),
    /^confab: --port needs a value$/,
    "confab serve",
  );
});

Deno.test("confab join with a flag missing its value exits 2 naming the flag", async () => {
  assertUsageError(
    await confab(["join", "--alias"]),
    /^confab: --alias needs a value$/,
    "confab join",
  );
});

Deno.test("confab join with a value for a switch exits 2 saying it takes none", async () => {
  assertUsageError(
    await confab(["join", "--alias", "x", "--tls=yes"]),
    /^confab: --tls takes no value$/,
    "confab join",
  );
});

Deno.test("confab serve with a stray argument exits 2 naming it", async () => {
  assertUsageError(await confab(["serve", "stray"]), /unexpected argument .*stray/, "confab serve");
});

Deno.test("confab join --ca without --tls exits 2", async () => {
  assertUsageError(
    await confab(["join", "--alias", "x", "--ca", `${FIXTURES}test_only_ca.pem`]),
    /--ca needs --tls/,
    "confab join",
  );
});

Deno.test("confab serve --port 70000 exits 2 saying the port is out of range", async () => {
  assertUsageError(
    await confab(["serve", "--port", "70000"]),
    /--port must be between 0 and 65535, received 70000/,
    "confab serve",
  );
});

Deno.test("confab serve --port abc exits 2 saying the port is not a number", async () => {
  assertUsageError(
    await confab(["serve", "--port", "abc"]),
    /--port must be a whole number, received 'abc'/,
    "confab serve",
  );
});

Deno.test("confab join --port abc exits 2 saying the port is not a number", async () => {
  assertUsageError(
    await confab(["join", "--alias", "x", "--port", "abc"]),
    /--port must be a whole number/,
    "confab join",
  );
});

Deno.test("confab serve --tls-cert without --tls-key exits 2", async () => {
  assertUsageError(
    await confab(["serve", "--port", "0", "--tls-cert", `${FIXTURES}test_only_server_cert.pem`]),
    /--tls-cert and --tls-key go together/,
    "confab serve",
  );
});

Deno.test("confab join without --alias exits 2 when stdin is not a terminal", async () => {
  assertUsageError(
    await confab(["join", "--port", String(closedPort())]),
    /--alias is needed when stdin or stdout is not a terminal/,
    "confab join",
  );
});

Deno.test("confab serve exits 1 with one line when the port is already in use", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr as Deno.NetAddr;
  const out = await confab(["serve", "--port", String(port)]);
  assertOneLineFailure(
    out,
    1,
    new RegExp(`^confab: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use$`),
  );
  assert.equal(out.stdout, "", "no 'listening' line");
});

Deno.test("confab join exits 3 with one line when nothing listens on the port", async () => {
  const port = closedPort();
  const out = await confab(["join", "--alias", "ci", "--port", String(port)]);
  assertOneLineFailure(
    out,
    3,
    new RegExp(`^confab: cannot connect to 127\\.0\\.0\\.1:${port}: connection refused$`),
  );
  assert.equal(out.stdout, "");
});

Deno.test("confab serve exits 2 when --password-file does not exist", async () => {
  const missing = `${Deno.makeTempDirSync()}/nope.txt`;
  try {
    const out = await confab(["serve", "--port", "0", "--password-file", missing]);
    assertUsageError(
      out,
      new RegExp(`^confab: cannot read --password-file ${literal(missing)}: no such file$`),
      "confab serve",
    );
  } finally {
    Deno.removeSync(missing.replace(/\/nope\.txt$/, ""), { recursive: true });
  }
});

Deno.test("confab serve exits 2 when --motd cannot be read", async () => {
  const missing = `${FIXTURES}no_such_file`;
  assertUsageError(
    await confab(["serve", "--port", "0", "--motd", missing]),
    new RegExp(`^confab: cannot read --motd ${literal(missing)}: no such file$`),
    "confab serve",
  );
  assertUsageError(
    await confab(["serve", "--port", "0", "--motd", FIXTURES]),
    new RegExp(`^confab: cannot read --motd ${literal(FIXTURES)}: it is a directory$`),
    "confab serve",
  );
});

Deno.test("confab serve exits 2 when --log-format is neither text nor json", async () => {
  assertUsageError(
    await confab(["serve", "--port", "0", "--log-format", "xml"]),
    /^confab: --log-format must be text or json, received 'xml'$/,
    "confab serve",
  );
});

Deno.test("confab serve exits 1 with one line when --log cannot be opened", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const inMissingDir = `${dir}/no/such/dir/confab.log`;
    let out = await confab(["serve", "--port", "0", "--log", inMissingDir], {
      allow: ["--allow-write"],
    });
    assertOneLineFailure(
      out,
      1,
      new RegExp(`^confab: cannot open --log ${literal(inMissingDir)}: no such directory$`),
    );
    assert.equal(out.stdout, "", "no 'listening' line");
    out = await confab(["serve", "--port", "0", "--log", dir], { allow: ["--allow-write"] });
    assertOneLineFailure(
      out,
      1,
      new RegExp(`^confab: cannot open --log ${literal(dir)}: it is a directory$`),
    );
    // Without the permission to write, it says which one it needs.
    const file = `${dir}/confab.log`;
    out = await confab(["serve", "--port", "0", "--log", file]);
    const why = "not allowed (run with --allow-write)";
    assertOneLineFailure(
      out,
      1,
      new RegExp(`^confab: cannot open --log ${literal(file)}: ${literal(why)}$`),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("confab join exits 2 when --password-file or --ca does not exist", async () => {
  const missing = `${FIXTURES}no_such_file`;
  const port = String(closedPort());
  assertUsageError(
    await confab(["join", "--alias", "ci", "--port", port, "--password-file", missing]),
    new RegExp(`^confab: cannot read --password-file ${literal(missing)}: no such file$`),
    "confab join",
  );
  assertUsageError(
    await confab(["join", "--alias", "ci", "--port", port, "--tls", "--ca", missing]),
    new RegExp(`^confab: cannot read --ca ${literal(missing)}: no such file$`),
    "confab join",
  );
});

Deno.test("confab join exits 2 when --alias breaks the alias rules", async () => {
  const port = String(closedPort());
  assertUsageError(
    await confab(["join", "--alias", "not ok", "--port", port]),
    /^confab: --alias: an alias is 1 to 32 letters/,
    "confab join",
  );
  assertUsageError(
    await confab(["join", "--alias", "Server", "--port", port]),
    /^confab: --alias: "Server" is reserved$/,
    "confab join",
  );
});

Deno.test("confab serve names the flag when a value is out of range", async () => {
  assertUsageError(
    await confab(["serve", "--port", "0", "--outbox-bytes", "2000"]),
    /^confab: --outbox-bytes must hold at least two of the longest lines, 2 x \(3 x --max-line-bytes \+ 256\) = 25088 bytes, received 2000$/,
    "confab serve",
  );
  // In the unit the user typed: seconds.
  assertUsageError(
    await confab(["serve", "--port", "0", "--shutdown-grace", "99999999"]),
    /^confab: --shutdown-grace must be at most 604800 seconds \(7 days\), received 99999999$/,
    "confab serve",
  );
  assertUsageError(
    await confab(["serve", "--port", "0", "--alias-timeout", "999999999"]),
    /^confab: --alias-timeout must be at most 604800 seconds \(7 days\), received 999999999$/,
    "confab serve",
  );
});

Deno.test("confab serve reads a negative number as a bad value, not a missing one", async () => {
  assertUsageError(
    await confab(["serve", "--port", "0", "--history", "-1"]),
    /^confab: --history must be between 0 and 100000, received -1$/,
    "confab serve",
  );
  assertUsageError(
    await confab(["serve", "--port", "0", "--shutdown-grace", "-1"]),
    /^confab: --shutdown-grace must be a number of seconds 0 or more, received '-1'$/,
    "confab serve",
  );
  assertUsageError(
    await confab(["serve", "--port", "0", "--max-clients", "0"]),
    /^confab: --max-clients must be 1 or more, received 0$/,
    "confab serve",
  );
});

Deno.test("confab serve and join name a stray argument in one sentence", async () => {
  assertUsageError(
    await confab(["serve", "extra"]),
    /^confab: unexpected argument 'extra': serve takes only options$/,
    "confab serve",
  );
  assertUsageError(
    await confab(["join", "--alias", "ci", "extra"]),
    /^confab: unexpected argument 'extra': join takes only options$/,
    "confab join",
  );
});

Deno.test("confab join exits 2 when --password-file or CONFAB_PASSWORD holds a blank password", async () => {
  const port = String(closedPort());
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "\n");
    assertUsageError(
      await confab(["join", "--alias", "ci", "--port", port, "--password-file", file]),
      new RegExp(`^confab: --password-file ${literal(file)} holds no password$`),
      "confab join",
    );
  } finally {
    await Deno.remove(file);
  }
  assertUsageError(
    await confab(["join", "--alias", "ci", "--port", port], { env: { CONFAB_PASSWORD: " " } }),
    /^confab: CONFAB_PASSWORD is blank$/,
    "confab join",
  );
});

Deno.test("confab serve --max-line-bytes 200000 starts: the outbox grows with the line limit", async () => {
  await using proc = spawnConfab(["serve", "--port", "0", "--max-line-bytes", "200000"]);
  const first = await proc.stdout.next(15_000);
  const port = Number(/^confab \S+ listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "")?.[1]);
  if (!port) assert.fail(`first line ${first}; stderr: ${(await proc.stderr.rest()).join("\n")}`);
  // Served a connection: by then its signal handlers are in place (it prints
  // the line above just before it installs them).
  await using client = await TestClient.connect(port);
  await client.expect(/^\? alias: /);
  proc.child.kill("SIGTERM");
  assert.equal(await proc.exit(), 0);
});

Deno.test("the release workflow compiles with exactly the flags of deno task compile", async () => {
  const release = await Deno.readTextFile(
    new URL("../../.github/workflows/release.yml", import.meta.url),
  );
  const flags = (text: string) =>
    [...text.matchAll(/--(allow-[a-z]+|v8-flags=\S+)/g)].map((m) => m[0]).sort();
  const task = denoJson.tasks.compile.command;
  assert.ok(flags(task).length >= 4, task);
  assert.deepEqual(flags(release), flags(task));
});
