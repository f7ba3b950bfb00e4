import assert from "node:assert/strict";
import { isConnectionError } from "../../server/accept_error.ts";

Deno.test("isConnectionError() retries at once what concerns one connection", async (t) => {
  await t.step("Deno's own classes for a reset, aborted or gone connection", () => {
    assert.equal(isConnectionError(new Deno.errors.ConnectionReset("reset")), true);
    assert.equal(isConnectionError(new Deno.errors.ConnectionAborted("aborted")), true);
    assert.equal(isConnectionError(new Deno.errors.NotConnected("gone")), true);
  });
  const oneConnection: [string, number][] = [
    ["Software caused connection abort", 103],
    ["Protocol error", 71],
    ["Operation not permitted", 1],
    ["Connection timed out", 110],
    ["Network is down", 100],
    ["No route to host", 113],
    ["Software caused connection abort", 53],
    ["Operation timed out", 60],
    ["Protocol error", 100],
    ["An established connection was aborted by the software in your host machine.", 10053],
    ["An existing connection was forcibly closed by the remote host.", 10054],
  ];
  await t.step("an OS error number for one connection (Linux, macOS, Windows)", () => {
    for (const [text, errno] of oneConnection) {
      assert.equal(isConnectionError(new Error(`${text} (os error ${errno})`)), true, text);
    }
  });
});

Deno.test("isConnectionError() backs off on exhaustion and on anything it does not know", () => {
  const others: unknown[] = [
    new Error("Too many open files (os error 24)"),
    new Error("Too many open files in system (os error 23)"),
    new Error("No buffer space available (os error 105)"),
    new Error("No buffer space available (os error 55)"),
    new Error("Cannot allocate memory (os error 12)"),
    // Windows: WSAEMFILE, WSAENOBUFS.
    new Error("Too many open sockets. (os error 10024)"),
    new Error("An operation on a socket could not be performed (os error 10055)"),
    new Error("something nobody foresaw"),
    new TypeError("not an OS error at all"),
    "a thrown string",
    undefined,
  ];
  for (const error of others) assert.equal(isConnectionError(error), false, String(error));
});
