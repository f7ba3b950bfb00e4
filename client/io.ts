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
  /** Removes the line just submitted from the screen (to reprint it formatted). */
  eraseSubmitted(line: string): void;
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

const encoder = new TextEncoder();

/** Writes all of `text` to stdout; false if stdout is gone. */
function writeStdout(text: string): boolean {
  const bytes = encoder.encode(text);
  try {
    let offset = 0;
    while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return false;
    throw error;
  }
}

/**
 * Plain lines from stdin and to stdout, for pipes, files and scripts.
 *
 * @example Usage
 * ```ts ignore
 * const io = new PipeIO();
 * for await (const line of io.lines()) io.print(`you said: ${line}`);
 * ```
 */
export class PipeIO implements UserIO {
  readonly #queue = new LineQueue();
  #reading = false;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  print(line: string): void {
    writeStdout(line + "\n");
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

  eraseSubmitted(): void {}

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

/** Display width of a string, counting East Asian wide characters as two. */
function width(text: string): number {
  let w = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    w += (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
        (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) ||
        (c >= 0x20000 && c <= 0x3fffd)
      ? 2
      : 1;
  }
  return w;
}

/**
 * An interactive terminal through `node:readline`: an input line with
 * editing, history and tab completion, and incoming lines printed above it.
 *
 * @example Usage
 * ```ts ignore
 * const io = new TerminalIO((line) => [[], line]);
 * io.setPrompt("alice> ");
 * io.print("bob: hi");
 * ```
 */
export class TerminalIO implements UserIO {
  readonly #rl: readline.Interface;
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
    });
    this.#rl.setPrompt("");
    this.#rl.on("line", (line) => {
      if (!this.#asking) this.#queue.push(line);
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
    if (this.#closed || this.#asking) {
      process.stdout.write(line + "\n");
      return;
    }
    const out = process.stdout;
    const { rows } = this.#rl.getCursorPos();
    readline.moveCursor(out, 0, -rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
    out.write(line + "\n");
    this.#rl.prompt(true);
  }

  async ask(question: string, hidden = false): Promise<string | null> {
    if (this.#closed) return null;
    this.#asking = true;
    const rl = this.#rl as readline.Interface & { _writeToOutput?: (s: string) => void };
    const original = rl._writeToOutput;
    if (hidden && original) {
      // Echo the question, but nothing that is typed.
      rl._writeToOutput = (s: string) => {
        if (s.startsWith(question) || s === "\r\n" || s === "\n") original.call(rl, s);
      };
    }
    try {
      return await new Promise<string | null>((resolve) => {
        const onClose = () => resolve(null);
        this.#rl.once("close", onClose);
        this.#rl.question(question, (answer) => {
          this.#rl.off("close", onClose);
          resolve(answer);
        });
      });
    } finally {
      if (hidden && original) rl._writeToOutput = original;
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

  eraseSubmitted(line: string): void {
    const columns = process.stdout.columns || 80;
    const rows = Math.max(1, Math.ceil(width(this.#prompt + line) / columns));
    readline.moveCursor(process.stdout, 0, -rows);
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
  }

  close(): void {
    if (this.#closed) return;
    this.#rl.close();
  }
}
