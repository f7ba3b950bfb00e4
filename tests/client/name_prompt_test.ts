import assert from "node:assert/strict";
import { isNamePrompt, NAME_PROMPT_CHARS } from "../../client/name_prompt.ts";

Deno.test("isNamePrompt() knows the name prompts of line chat servers", () => {
  for (
    const line of [
      "alias?",
      "[ENTER YOUR NAME]:",
      "[ENTER YOUR NAME]: ",
      "Nickname:",
      "Please choose a nick:",
      "Welcome to the den!  Please choose a nick:",
      "Welcome...\t[ENTER YOUR NAME]: ",
      "What's your name?",
      "* Enter your name *:",
      "Username :",
    ]
  ) {
    assert.ok(isNamePrompt(line), JSON.stringify(line));
  }
});

Deno.test("isNamePrompt() takes no chat line for a prompt", () => {
  for (
    const line of [
      "bob: what is your name?",
      "names are hard:",
      "ci has joined the chat room",
      "my nick: bob",
      "",
    ]
  ) {
    assert.ok(!isNamePrompt(line), JSON.stringify(line));
  }
});

Deno.test("isNamePrompt() answers at once for long hostile lines, which are never prompts", () => {
  const tail = " alias?";
  for (
    const line of [
      "." + " ".repeat(256 * 1024) + "x",
      ". ".repeat(128 * 1024) + "alias?",
      "!".repeat(256 * 1024) + tail,
      // The longest line still looked at, built to make a backtracking regex work hardest.
      "." + " ".repeat(NAME_PROMPT_CHARS - 2) + "x",
      "a. ".repeat(Math.floor((NAME_PROMPT_CHARS - tail.length) / 3)) + "\t".repeat(2) + "nick!",
    ]
  ) {
    const started = performance.now();
    assert.equal(isNamePrompt(line), false, JSON.stringify(line.slice(0, 40)));
    const took = performance.now() - started;
    assert.ok(took < 50, `${took.toFixed(1)} ms for a line of ${line.length} characters`);
  }
  // Just under the limit a real prompt after a long welcome still counts.
  const welcome = "Welcome" + "!".repeat(NAME_PROMPT_CHARS - 7 - tail.length) + tail;
  assert.equal(welcome.length, NAME_PROMPT_CHARS);
  assert.ok(isNamePrompt(welcome));
});
