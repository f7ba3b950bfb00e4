/**
 * The telnet protocol's commands on input (RFC 854), taken out of the byte
 * stream before it is split into lines, so that a real `telnet` client can
 * chat: its negotiations and its Ctrl-] `send ...` commands never reach a
 * line or count toward its length.
 *
 * Nothing is negotiated: the server never asks for an option and ignores
 * every offer, which RFC 854 allows (both ends then stay in the default,
 * the network virtual terminal). A client that never sends the IAC byte
 * (0xFF, which is never valid UTF-8) costs one `indexOf` per read.
 *
 * @module
 */

/** "Interpret as command": every telnet command starts with this byte. */
const IAC = 0xff;
/** Begins a subnegotiation, `IAC SB option ... IAC SE`. */
const SB = 0xfa;
/** Ends a subnegotiation. */
const SE = 0xf0;
/** WILL, WONT, DO and DONT (0xfb to 0xfe) are followed by one option byte. */
const WILL = 0xfb;
const DONT = 0xfe;

/**
 * Longest subnegotiation skipped, in bytes. Since the server agrees to no
 * option, a client has nothing to subnegotiate; past this, the filter stops
 * skipping and what follows is data again, so input never vanishes for good.
 */
export const MAX_SUBNEGOTIATION_BYTES = 1024;

/** The commands the server acts on; every other one is dropped. */
export type TelnetCommand = "interrupt" | "break" | "are-you-there";

const COMMANDS = new Map<number, TelnetCommand>([
  [0xf4, "interrupt"], // IP, what telnet sends for Ctrl-C
  [0xf3, "break"], // BRK
  [0xf6, "are-you-there"], // AYT
]);

/** What one call of {@linkcode TelnetFilter.filter} found. */
export interface TelnetChunk {
  /** The data bytes, in order (a view of the start of the input). */
  data: Uint8Array;
  /** How many bytes of the input were used. */
  used: number;
  /** The command that stopped the filter right after `data`, if any. */
  command: TelnetCommand | undefined;
}

const DATA = 0;
const AFTER_IAC = 1;
const OPTION = 2;
const IN_SB = 3;
const SB_AFTER_IAC = 4;

/**
 * A stateful filter that removes telnet commands from a byte stream; a
 * command split across two reads is recognised all the same.
 *
 * @example Usage
 * ```ts
 * import { TelnetFilter } from "./telnet.ts";
 * import assert from "node:assert/strict";
 *
 * const filter = new TelnetFilter();
 * // "hi", IAC AYT, "\n": the filter stops at the command, after "hi".
 * const first = filter.filter(new Uint8Array([0x68, 0x69, 0xff, 0xf6, 0x0a]));
 * assert.deepEqual([...first.data], [0x68, 0x69]);
 * assert.equal(first.command, "are-you-there");
 * assert.equal(first.used, 4);
 * // IAC WILL ECHO split across two reads, then "\n".
 * assert.deepEqual([...filter.filter(new Uint8Array([0xff, 0xfb])).data], []);
 * assert.deepEqual([...filter.filter(new Uint8Array([0x01, 0x0a])).data], [0x0a]);
 * ```
 */
export class TelnetFilter {
  #state = DATA;
  #subnegotiated = 0;

  /**
   * Filters `input` in place, up to the end or to the first command the
   * server acts on, whichever comes first. The data bytes are moved to the
   * start of `input` (it is overwritten); the bytes after `used` are
   * untouched, for the next call. IAC IAC is the data byte 0xFF.
   */
  filter(input: Uint8Array): TelnetChunk {
    const end = input.length;
    let read = 0;
    let write = 0;
    while (read < end) {
      if (this.#state === DATA) {
        const iac = input.indexOf(IAC, read);
        const stop = iac < 0 ? end : iac;
        if (write !== read) input.copyWithin(write, read, stop);
        write += stop - read;
        read = stop;
        if (iac < 0) break;
        read++;
        this.#state = AFTER_IAC;
        continue;
      }
      const byte = input[read++]!;
      switch (this.#state) {
        case AFTER_IAC: {
          this.#state = DATA;
          if (byte === IAC) {
            input[write++] = IAC;
          } else if (byte >= WILL && byte <= DONT) {
            this.#state = OPTION;
          } else if (byte === SB) {
            this.#state = IN_SB;
            this.#subnegotiated = 0;
          } else {
            const command = COMMANDS.get(byte);
            if (command !== undefined) {
              return { data: input.subarray(0, write), used: read, command };
            }
          }
          break;
        }
        case OPTION:
          this.#state = DATA;
          break;
        case IN_SB:
        case SB_AFTER_IAC:
          if (this.#state === SB_AFTER_IAC && byte === SE) {
            this.#state = DATA;
          } else if (++this.#subnegotiated > MAX_SUBNEGOTIATION_BYTES) {
            this.#state = DATA;
          } else {
            // IAC IAC inside a subnegotiation is a data byte of it.
            this.#state = byte === IAC && this.#state === IN_SB ? SB_AFTER_IAC : IN_SB;
          }
          break;
      }
    }
    return { data: input.subarray(0, write), used: end, command: undefined };
  }
}
