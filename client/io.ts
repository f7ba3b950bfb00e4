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
import { LineReader } from "../protocol/line_reader.ts";
import { writeAllSync } from "../protocol/io_util.ts";
import { charWidth, displayWidth } from "./width.ts";

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

  /** Ends the queue: the lines in it are still taken, unless `discard`. */
  end(discard = false): void {
    if (discard) this.#lines.length = 0;
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
    // Leaving (a signal, stdout gone): input read but not yet sent is dropped.
    this.#queue.end(true);
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
    const ch = String.fromCodePoint(text.codePointAt(i)!);
    const w = charWidth(ch);
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

/** Options for {@linkcode TerminalIO}. */
export interface TerminalOptions {
  /** readline's completer, for Tab. */
  completer: readline.Completer;
  /** Called once when the user closes input (Ctrl-D, Ctrl-C). */
  onClosed: () => void;
  /** Wrap long lines to the window (off for JSON output). */
  wrap: boolean;
}

const decoder = new TextDecoder();
/** How long to wait for the terminal to answer a cursor position request. */
const TYPE_AHEAD_MS = 1000;

/**
 * Reads a line from the terminal in raw mode without showing it: Enter ends
 * it, Backspace and Ctrl-U edit it, Ctrl-C or Ctrl-D (on an empty line) give
 * up with `null`. Nothing typed is ever echoed or kept.
 */
async function readHidden(question: string): Promise<string | null> {
  writeAllSync(Deno.stdout, question);
  const typed: number[] = [];
  const buffer = new Uint8Array(256);
  Deno.stdin.setRaw(true);
  try {
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) return null;
      for (let i = 0; i < n; i++) {
        const byte = buffer[i]!;
        if (byte === 0x0d || byte === 0x0a) return decoder.decode(new Uint8Array(typed));
        if (byte === 0x03 || (byte === 0x04 && typed.length === 0)) return null;
        if (byte === 0x7f || byte === 0x08) {
          // Drop one whole UTF-8 character: its continuation bytes, then its lead.
          while (typed.length > 0 && (typed.at(-1)! & 0xc0) === 0x80) typed.pop();
          typed.pop();
        } else if (byte === 0x15) {
          typed.length = 0;
        } else if (byte === 0x1b) {
          break; // an escape sequence (arrow keys...): ignore the rest of this read
        } else if (byte >= 0x20) {
          typed.push(byte);
        }
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    writeAllSync(Deno.stdout, "\r\n");
  }
}

/**
 * An interactive terminal through `node:readline`: an input line with
 * editing, history and tab completion, and incoming lines printed above it.
 * A submitted line is taken off the screen at once; the client prints it
 * back formatted, like everyone else's. readline starts only when first
 * needed, so a hidden password is read before it owns the terminal, and
 * lines typed before the chat starts are not sent.
 *
 * @example Usage
 * ```ts ignore
 * const io = new TerminalIO({ completer: (line) => [[], line], onClosed() {}, wrap: true });
 * io.setPrompt("alice> ");
 * io.print("bob: hi");
 * ```
 */
export class TerminalIO implements UserIO {
  readonly #options: TerminalOptions;
  #rl: Readline | undefined;
  readonly #queue = new LineQueue();
  #prompt = "";
  #asking = false;
  #chatting = false;
  #closed = false;
  /** Ends the wait for the terminal's answer (see `#dropTypedAhead`). */
  #stopDropping: (() => void) | undefined;

  /** Prepares the terminal; see {@linkcode TerminalOptions}. */
  constructor(options: TerminalOptions) {
    this.#options = options;
  }

  /** readline, started on first use. */
  #readline(): Readline {
    if (this.#rl !== undefined) return this.#rl;
    const rl = this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      completer: this.#options.completer,
      historySize: 1000,
      removeHistoryDuplicates: true,
      tabSize: 4,
    }) as Readline;
    rl.setPrompt(this.#prompt);
    rl.on("line", (line) => {
      if (this.#asking) return;
      this.#erase(line);
      // Typed before the chat started: it was meant for no one.
      if (this.#chatting) this.#queue.push(line);
      // Dropped at the start of the chat: the prompt, erased with it, comes back.
      else if (this.#stopDropping !== undefined) rl.prompt(true);
    });
    rl.on("close", () => {
      this.#closed = true;
      this.#stopDropping?.();
      this.#queue.end();
      // Leave the shell a clean line: the prompt and anything half typed go.
      const { rows } = rl.getCursorPos();
      readline.moveCursor(process.stdout, 0, -rows);
      readline.cursorTo(process.stdout, 0);
      readline.clearScreenDown(process.stdout);
      this.#options.onClosed();
    });
    // Ctrl-C leaves like Ctrl-D does.
    rl.on("SIGINT", () => this.close());
    return rl;
  }

  print(line: string): void {
    const out = process.stdout;
    // One column of slack: the terminal must never be the one to wrap.
    const text = this.#options.wrap ? wrap(line, (out.columns || 80) - 1) : line;
    const rl = this.#rl;
    if (rl === undefined || this.#closed || this.#asking) {
      out.write(text + "\n");
      return;
    }
    const { rows } = rl.getCursorPos();
    readline.moveCursor(out, 0, -rows);
    readline.cursorTo(out, 0);
    readline.clearScreenDown(out);
    out.write(text + "\n");
    rl.prompt(true);
  }

  async ask(question: string, hidden = false): Promise<string | null> {
    if (this.#closed) return null;
    if (hidden && this.#rl === undefined) return await readHidden(question);
    const rl = this.#readline();
    this.#asking = true;
    const write = rl._writeToOutput;
    if (hidden) {
      // readline is already running (the server asked late): show only the
      // question, whatever readline redraws.
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
    if (!this.#closed) {
      if (this.#rl === undefined) {
        this.#readline();
        this.#dropTypedAhead();
      } else {
        this.#chatting = true;
      }
      // While a question is asked, its answer ends it and the prompt comes back.
      if (!this.#asking) this.#rl!.prompt();
    }
    return this.#queue;
  }

  /**
   * Lines typed before readline started wait in the terminal and would be
   * read as the first lines of the chat. The terminal answers a cursor
   * position request after everything typed so far, so lines read before
   * that answer are dropped (or before a second, if the terminal never
   * answers).
   */
  #dropTypedAhead(): void {
    const input = process.stdin;
    const start = () => {
      clearTimeout(timer);
      input.off("keypress", onKey);
      this.#stopDropping = undefined;
      this.#chatting = true;
    };
    const onKey = (_text: unknown, key: { sequence?: string } | undefined) => {
      // deno-lint-ignore no-control-regex -- the terminal's answer is an escape sequence
      if (/^\x1b\[\d+;\d+R$/.test(key?.sequence ?? "")) start();
    };
    const timer = setTimeout(start, TYPE_AHEAD_MS);
    this.#stopDropping = start;
    input.on("keypress", onKey);
    writeAllSync(Deno.stdout, "\x1b[6n");
  }

  setPrompt(prompt: string): void {
    this.#prompt = prompt;
    const rl = this.#rl;
    if (rl === undefined) return;
    rl.setPrompt(prompt);
    if (!this.#asking && !this.#closed) rl.prompt(true);
  }

  close(): void {
    if (this.#closed) return;
    if (this.#rl === undefined) {
      this.#closed = true;
      this.#queue.end();
      return;
    }
    this.#rl.close();
  }

  /** Takes the just-submitted line (prompt and text, however many rows) off the screen. */
  #erase(line: string): void {
    const columns = process.stdout.columns || 80;
    // After Enter the cursor sits one row below the last row of the input,
    // and a line that exactly fills its last row has moved on to the next.
    const rows = Math.floor(displayWidth(this.#prompt + line) / columns) + 1;
    readline.moveCursor(process.stdout, 0, -rows);
    readline.cursorTo(process.stdout, 0);
    readline.clearScreenDown(process.stdout);
  }
}
