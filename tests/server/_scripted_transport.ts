/**
 * A transport for session tests without a socket: its reads hand out a
 * script, one step each, and what is written to it is kept.
 *
 * @module
 */

import type { Transport } from "../../server/transport.ts";

/** A read that rejects with `fail`. */
export interface Failure {
  readonly fail: unknown;
}

/**
 * Reads hand out `steps` one at a time: bytes, or a {@linkcode Failure};
 * after the last step, the end of input.
 */
export class ScriptedTransport implements Transport {
  readonly written: string[] = [];
  #steps: (Uint8Array | Failure)[];
  closed = false;
  constructor(...steps: (Uint8Array | Failure)[]) {
    this.#steps = steps;
  }
  read(p: Uint8Array): Promise<number | null> {
    const step = this.#steps.shift();
    if (step === undefined || this.closed) return Promise.resolve(null);
    if (!(step instanceof Uint8Array)) return Promise.reject(step.fail);
    p.set(step);
    return Promise.resolve(step.length);
  }
  write(p: Uint8Array): Promise<number> {
    this.written.push(new TextDecoder().decode(p));
    return Promise.resolve(p.length);
  }
  close(): void {
    this.closed = true;
  }
}
