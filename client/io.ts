/**
 * The user's side of `confab join`: lines in, lines out.
 *
 * {@linkcode TerminalIO} uses `node:readline` so incoming lines print above
 * an input line that stays intact while you type, with history and tab
 * completion. {@linkcode PipeIO} is for pipes and files: plain lines in,
 * plain lines out, nothing else on stdout.
 *
 * @module
 */

import * as readline from "node:readline";
import process from "node:process";
import { LineReader } from "../server/line_reader.ts";
import { writeAllSync } from "../server/io_util.ts";

/** What the join client needs from wherever the user is. */
export interface UserIO {
  /** Shows one line (above the input line on a terminal). */
  print(line: string): void;
  /** Asks a question; `null` if input ended. `hidden` turns echo off. */
  ask(question: string, hidden?: boolean): Promise<string | null>;
  /** The user's lines, until input ends or {@linkcode UserIO.close}. */
  lines(): AsyncIterableIterator<string>;
  /** Sets the text before the input line. */
  setPrompt(prompt: string): void;
  /** Stops reading input; pending and later `lines()` reads end. */
  close(): void;
}

/** Largest line read from stdin; the server has its own, smaller limit. */
const STDIN_LINE_BYTES = 1 << 20;

/** A queue of lines that ends once closed. */
class LineQueue implements AsyncIterableIterator<string> {
  #lines: string[] = [];
  #waiter: ((r: IteratorResult<string>) => void) | undefined;
  #ended = false;

  push(line: string): void {
    if (this.#ended) return;
    if (this.#waiter) {
      const wake = this.#waiter;
      this.#waiter = undefined;
      wake({ value: line, done: false });
    } else {
      this.#lines.push(line);
    }
  }

  end(): void {
    this.#ended = true;
    this.#waiter?.({ value: undefined, done: true });
    this.#waiter = undefined;
  }

  next(): Promise<IteratorResult<string>> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve({ value: line, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<string> {
    return this;
  }
}

/**
 * Plain lines from stdin and to stdout, for pipes, files and scripts.
 *
 * @example Usage
 * ```ts ignore
 * const io = new PipeIO(() => {});
 * for await (const line of io.lines()) io.print(`you said: ${line}`);
 * ```
 */
export class PipeIO implements UserIO {
  readonly #queue = new LineQueue();
  readonly #onOutputClosed: () => void;
  #outputClosed = false;
  #reading = false;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  /** `onOutputClosed` is called once if stdout goes away (`... | head`). */
  constructor(onOutputClosed: () => void) {
    this.#onOutputClosed = onOutputClosed;
  }

  print(line: string): void {
    if (this.#outputClosed) return;
    try {
      writeAllSync(Deno.stdout, line + "\n");
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      this.#outputClosed = true;
      this.#onOutputClosed();
    }
  }

  ask(): Promise<string | null> {
    return Promise.resolve(null);
  }

  lines(): AsyncIterableIterator<string> {
    if (!this.#reading) {
      this.#reading = true;
      this.#pump().catch(() => this.#queue.end());
    }
    return this.#queue;
  }

  setPrompt(): void {}

  close(): void {
    this.#queue.end();
    this.#reader?.cancel().catch(() => {});
  }

  async #pump(): Promise<void> {
    const splitter = new LineReader({
      maxLineBytes: STDIN_LINE_BYTES,
      onLine: (line) => this.#queue.push(line),
    });
    this.#reader = Deno.stdin.readable.getReader();
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        splitter.push(value);
      }
      splitter.end();
    } finally {
      this.#queue.end();
    }
  }
}

/** Columns a character takes on a terminal: two for East Asian wide ones. */
function charWidth(code: number): number {
  return (code >= 0x1100 && code <= 0x115f) || (code >= 0x2e80 && code <= 0xa4cf) ||
      (code >= 0xac00 && code <= 0xd7a3) || (code >= 0xf900 && code <= 0xfaff) ||
      (code >= 0xfe30 && code <= 0xfe4f) || (code >= 0xff00 && code <= 0xff60) ||
      (code >= 0xffe0 && code <= 0xffe6) || (code >= 0x1f300 && code <= 0x1faff) ||
      (code >= 0x20000 && code <= 0x3fffd)
    ? 2
    : 1;
}

/** The parts of readline's interface used here beyond its typed API. */
type Readline = readline.Interface & {
  /** Submitted lines, newest first. */
  history: string[];
  /** Where readline writes everything it echoes. */
  _writeToOutput(s: string): void;
};

/** Indent of the rows a long line wraps onto. */
const HANGING_INDENT = "  ";

/**
 * Wraps a display line to `columns`, indenting the rows after the first, so
 * that no wrapped row starts at the left edge: text padded to wrap at just
 * the right place cannot pass for a line of its own. Colour codes (which
 * take no room) are kept whole.
 *
 * @example Usage
 * ```ts
 * import { wrap } from "./io.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(wrap("abcdefgh", 5), "abcde\n  fgh");
 * ```
 */
export function wrap(text: string, columns: number): string {
  if (columns <= HANGING_INDENT.length + 1) return text;
  let out = "";
  let column = 0;
  for (let i = 0; i < text.length;) {
    if (text.charCodeAt(i) === 0x1b) {
      const end = text.indexOf("m", i);
      const stop = end < 0 ? text.length : end + 1;
      out += text.slice(i, stop);
      i = stop;
      continue;
    }
    const code = text.codePointAt(i)!;
    const ch = String.fromCodePoint(code);
    const w = charWidth(code);
    if (column + w > columns) {
      out += "\n" + HANGING_INDENT;
      column = HANGING_INDENT.length;
    }
    out += ch;
    column += w;
    i += ch.length;
  }
  return out;
}

/** Display width of plain text. */
function width(text: string): number {
  let w = 0;
  for (const ch of text) w += charWidth(ch.codePointAt(0)!);
  return w;
}

/**
 * An interactive terminal through `node:readline`: an input line with
 * editing, history and tab completion, and incoming lines printed above it.
 * A submitted line is taken off the screen at once; the client prints it
 * back formatted, like everyone else's.
 *
 * @example Usage
 * ```ts ignore
 * const io = new TerminalIO((line) => [[], line]);
 * io.setPrompt("alice> ");
 * io.print("bob: hi");
 * ```
 */
export class TerminalIO implements UserIO {
  readonly #rl: Readline;
  readonly #queue = new LineQueue();
  #prompt = "";
  #asking = false;
  #closed = false;

  /** Starts reading the terminal; `completer` is readline's completer. */
  constructor(completer: readline.Completer) {
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      completer,
      historySize: 1000,
      removeHistoryDuplicates: true,
      tabSize: 4,
    }) as Readline;
    this.#rl.setPrompt("");
    this.#rl.on("line", (line) => {
      if (this.#asking) return;
      this.#erase(line);
      this.#queue.push(line);
    });
    this.#rl.on("close", () => {
      this.#closed = true;
      this.#queue.end();
      // Leave the shell a clean line: the prompt and anything half typed go.
      const { rows } = this.#rl.getCursorPos();
      readline.moveCursor(process.stdout, 0, -rows);
      readline.cursorTo(process.stdout, 0);
      readline.clearScreenDown(process.stdout);
    });
    // Ctrl-C leaves like Ctrl-D does.
    this.#rl.on("SIGINT", () => this.close());
  }

  print(line: string): void {
    const out = process.stdout;
    const text = wrap(line, out.columns || 80);
    if (this.#closed || this.#asking) {
      out.write(text + "\n");
      return;
    }
    const { rows } = this.#rl.getCursorPos();
    readline.moveCursor(out, 0, -rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
    out.write(text + "\n");
    this.#rl.prompt(true);
  }

  async ask(question: string, hidden = false): Promise<string | null> {
    if (this.#closed) return null;
    this.#asking = true;
    const rl = this.#rl;
    const write = rl._writeToOutput;
    if (hidden) {
      // The question is shown and nothing typed, not even when readline
      // redraws the line: a redraw writes the question and the text at once.
      rl._writeToOutput = (s: string) => {
        if (s.startsWith(question)) write.call(rl, question);
        else if (s === "\r\n" || s === "\n") write.call(rl, s);
      };
    }
    try {
      const answer = await new Promise<string | null>((resolve) => {
        const onClose = () => resolve(null);
        rl.once("close", onClose);
        rl.question(question, (text) => {
          rl.off("close", onClose);
          resolve(text);
        });
      });
      // Answers are not input history: Up must never bring back a password.
      if (answer !== null && rl.history[0] === answer) rl.history.shift();
      return answer;
    } finally {
      if (hidden) rl._writeToOutput = write;
      this.#asking = false;
    }
  }

  lines(): AsyncIterableIterator<string> {
    this.#rl.prompt();
    return this.#queue;
  }

  setPrompt(prompt: string): void {
    this.#prompt = prompt;
    this.#rl.setPrompt(prompt);
    if (!this.#asking && !this.#closed) this.#rl.prompt(true);
  }

  close(): void {
    if (this.#closed) return;
    this.#rl.close();
  }

  /** Takes the just-submitted line (prompt and text, however many rows) off the screen. */
  #erase(line: string): void {
    const columns = process.stdout.columns || 80;
    const rows = Math.max(1, Math.ceil(width(this.#prompt + line) / columns));
    readline.moveCursor(process.stdout, 0, -rows);
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
  }
}
