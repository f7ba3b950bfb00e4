/**
 * Shared pieces of the benchmark scripts: subprocess control, /proc readings,
 * the payload format, a latency histogram and a load-generating client.
 *
 * Everything here talks to 127.0.0.1 only, and every wait has a bound.
 *
 * Payload line (64 bytes, then LF), found in a received line by its `|`:
 *
 * ```
 * offset 0   '|'            marker (no alias, stamp or notice contains '|')
 *        1   'b'            kind: bench payload ('p' is a barrier probe)
 *        2   2 digits       step number
 *        4   4 digits       sender id
 *        8   10 digits      sequence number, per sender and step
 *        18  12 digits      send time, microseconds of performance.now()
 *        30  34 x 'x'       filler up to 64 bytes
 * ```
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import os from "node:os";
import process from "node:process";

/** The only address the benchmarks use. */
export const HOST = "127.0.0.1";

const LF = 0x0a;
const BANG = 0x21;
const MARK = 0x7c; // '|'
const KIND_DATA = 0x62; // 'b'
const KIND_PROBE = 0x70; // 'p'
const DIGIT_0 = 0x30;

/** Bytes of one payload, not counting its LF. */
export const PAYLOAD_BYTES = 64;
/** Bytes of one payload line on the wire, LF included. */
export const LINE_BYTES = PAYLOAD_BYTES + 1;

const encoder = new TextEncoder();

/** The line a barrier probe sends. */
export const PROBE_LINE: Uint8Array = encoder.encode("|p probe\n");
/** Bytes of the probe line before its LF. */
const PROBE_BYTES = PROBE_LINE.length - 1;

const TEMPLATE: Uint8Array = (() => {
  const t = new Uint8Array(LINE_BYTES).fill(0x78); // 'x'
  t[0] = MARK;
  t[1] = KIND_DATA;
  t[PAYLOAD_BYTES] = LF;
  return t;
})();

function putDigits(a: Uint8Array, at: number, width: number, value: number): void {
  let v = value;
  for (let i = at + width - 1; i >= at; i--) {
    a[i] = DIGIT_0 + (v % 10);
    v = Math.floor(v / 10);
  }
}

function getDigits(a: Uint8Array, at: number, width: number): number {
  let v = 0;
  for (let i = at; i < at + width; i++) v = v * 10 + (a[i]! - DIGIT_0);
  return v;
}

/** `count` payload lines from one sender, with consecutive sequence numbers. */
export function encodeBatch(
  step: number,
  sender: number,
  firstSeq: number,
  count: number,
  sentUs: number,
): Uint8Array {
  const out = new Uint8Array(count * LINE_BYTES);
  for (let k = 0; k < count; k++) {
    const o = k * LINE_BYTES;
    out.set(TEMPLATE, o);
    putDigits(out, o + 2, 2, step);
    putDigits(out, o + 4, 4, sender);
    putDigits(out, o + 8, 10, firstSeq + k);
    putDigits(out, o + 18, 12, sentUs);
  }
  return out;
}

/** Now, in whole microseconds of `performance.now()`. */
export function nowUs(): number {
  return Math.round(performance.now() * 1000);
}

// ---------------------------------------------------------------- waiting

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Polls `condition` every `pollMs` until it holds (true), `timeoutMs` passes
 * or `signal` aborts (false).
 */
export async function until(
  condition: () => boolean,
  timeoutMs: number,
  signal?: AbortSignal,
  pollMs = 20,
): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (signal?.aborted || performance.now() >= end) return false;
    await sleep(Math.min(pollMs, Math.max(1, end - performance.now())), signal);
  }
}

/**
 * `promise`, or a rejection naming `what` after `ms`. A value that arrives
 * too late is handed to `onLate` (to close it).
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  onLate?: (value: T) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (late) onLate?.(value);
        else resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        if (!late) reject(error);
      },
    );
  });
}

/** Whether `promise` settles within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `task(i)` for i in [0, count) with at most `concurrency` at once;
 * stops starting new ones once `signal` aborts. Errors are returned, not thrown.
 */
export async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<unknown[]> {
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count && !signal?.aborted) {
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return errors;
}

/** A short description of an error. */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

// ------------------------------------------------------------ /proc readings
//
// Deno asks for --allow-all to open anything under /proc, so another
// process's figures are read by `cat` (covered by --allow-run), and this
// process's own CPU time comes from node:process.

/** Text of files under /proc via `cat`; "" when it cannot run. */
async function catProc(paths: string[]): Promise<string> {
  try {
    const out = await withTimeout(
      new Deno.Command("cat", { args: paths, stdin: "null", stdout: "piped", stderr: "null" })
        .output(),
      5000,
      "cat",
    );
    return new TextDecoder().decode(out.stdout);
  } catch {
    return "";
  }
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
export const TICKS_PER_SECOND = 100;

/** Memory (KiB) and CPU time (ms, all threads) of a process; -1 when unknown. */
export interface ProcSample {
  rssKb: number;
  hwmKb: number;
  cpuMs: number;
}

/** Reads /proc/PID/status and /proc/PID/stat of another process. */
export async function sampleProc(pid: number): Promise<ProcSample> {
  const text = await catProc([`/proc/${pid}/status`, `/proc/${pid}/stat`]);
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text);
    return m ? Number(m[1]) : -1;
  };
  // The stat line is "PID (command) state ...": fields after the command
  // start at field 3; utime is field 14 and stime 15, in clock ticks.
  let cpuMs = -1;
  const stat = new RegExp(`^${pid} \\(.*\\) (.*)$`, "m").exec(text);
  if (stat) {
    const rest = stat[1]!.split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    if (Number.isFinite(ticks)) cpuMs = (ticks * 1000) / TICKS_PER_SECOND;
  }
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM"), cpuMs };
}

/** CPU time of this process, all threads, in ms. */
export function selfCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** CPU use between two readings (ms) over `wallMs`, in % of one core. */
export function cpuPercent(cpuBefore: number, cpuAfter: number, wallMs: number): number {
  if (cpuBefore < 0 || cpuAfter < 0 || wallMs <= 0) return NaN;
  return ((cpuAfter - cpuBefore) / wallMs) * 100;
}

/**
 * Waits until process `pid` uses at most ~8% of a core over half a second,
 * or `maxMs` passes. Returns whether it went quiet.
 */
export async function waitQuiet(
  pid: number,
  maxMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const end = performance.now() + maxMs;
  let before = (await sampleProc(pid)).cpuMs;
  while (performance.now() < end && !signal?.aborted) {
    await sleep(500, signal);
    const after = (await sampleProc(pid)).cpuMs;
    if (after < 0 || before < 0) return false;
    if (after - before <= 40) return true;
    before = after;
  }
  return false;
}

/** The soft limit on open files of this process (children inherit it). */
export async function openFileLimit(): Promise<number> {
  const text = await catProc([`/proc/${Deno.pid}/limits`]);
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
  if (m?.[1] === "unlimited") return 1 << 20;
  return m ? Number(m[1]) : 1024;
}

/** What the figures were measured on. */
export interface MachineInfo {
  cpu: string;
  nproc: number;
  memTotalMb: number;
  kernel: string;
  deno: string;
  v8: string;
  date: string;
  loadavg: number[];
}

/** Reads the CPU model, core count, memory, kernel and Deno version (needs --allow-sys). */
export function machineInfo(): MachineInfo {
  let cpu = "unknown";
  let nproc = navigator.hardwareConcurrency;
  let memTotalMb = 0;
  let kernel = "";
  let loadavg: number[] = [];
  try {
    const cpus = os.cpus();
    cpu = cpus[0]?.model.trim() || cpu;
    nproc = cpus.length || nproc;
    memTotalMb = Math.round(Deno.systemMemoryInfo().total / 2 ** 20);
    kernel = Deno.osRelease();
    loadavg = Deno.loadavg().map((x) => Math.round(x * 100) / 100);
  } catch {
    // Without --allow-sys: keep what is known.
  }
  return {
    cpu,
    nproc,
    memTotalMb,
    kernel,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    date: new Date().toISOString(),
    loadavg,
  };
}

/** The path of an executable on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const path = `${dir}/${name}`;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

// ------------------------------------------------------------- histogram

const BUCKET_US = 10;
const BUCKETS = 1_000_000; // 10 µs buckets up to 10 s; slower lands in the last

/** Latency histogram with 10 µs resolution up to 10 s, plus the exact maximum. */
export class Histogram {
  readonly counts: Uint32Array = new Uint32Array(BUCKETS);
  count = 0;
  maxUs = 0;

  /** Adds one sample in microseconds. */
  add(us: number): void {
    const v = us < 0 ? 0 : us;
    const b = v >= BUCKETS * BUCKET_US ? BUCKETS - 1 : Math.floor(v / BUCKET_US);
    this.counts[b]!++;
    this.count++;
    if (v > this.maxUs) this.maxUs = v;
  }

  /** The q-quantile (0..1) in milliseconds; NaN with no samples. */
  quantileMs(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return ((b + 1) * BUCKET_US) / 1000;
    }
    return this.maxUs / 1000;
  }
}

// ---------------------------------------------------------- subprocesses

/** A child process whose output is drained, with a bounded stop. */
export class Proc {
  readonly pid: number;
  /** The last lines of its stderr. */
  readonly stderrTail: string[] = [];
  stderrLines = 0;
  /** stderr lines mentioning a client dropped as too slow. */
  tooSlowLines = 0;
  exited = false;
  exitCode: number | undefined;
  readonly #child: Deno.ChildProcess;
  readonly #stdout: ReadableStreamDefaultReader<Uint8Array> | undefined;

  /** Starts `command args`; stdout is piped only when `readStdout` is set. */
  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: { cwd?: string; readStdout?: boolean } = {},
  ) {
    this.#child = new Deno.Command(command, {
      args,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdin: "null",
      stdout: options.readStdout ? "piped" : "null",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.#child.status.then((status) => {
      this.exited = true;
      this.exitCode = status.code;
    });
    this.#stdout = options.readStdout ? this.#child.stdout.getReader() : undefined;
    this.#drainStderr().catch(() => {});
  }

  async #drainStderr(): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of this.#child.stderr) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        this.stderrLines++;
        if (line.includes("too slow")) this.tooSlowLines++;
        this.stderrTail.push(line);
        if (this.stderrTail.length > 20) this.stderrTail.shift();
      }
    }
  }

  /**
   * The first stdout line, within `ms`; the rest of stdout is then read and
   * dropped so the child never blocks on a full pipe.
   */
  async firstLine(ms: number): Promise<string> {
    const reader = this.#stdout;
    if (reader === undefined) throw new Error(`${this.name}: stdout is not piped`);
    const decoder = new TextDecoder();
    const read = async () => {
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      return text.split("\n")[0] ?? "";
    };
    const line = await withTimeout(read(), ms, `${this.name} first stdout line`);
    (async () => {
      while (!(await reader.read()).done) {
        // Dropped.
      }
    })().catch(() => {});
    return line;
  }

  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. Bounded. */
  async stop(graceMs = 5000): Promise<string> {
    if (this.exited) return `had exited (${this.exitCode})`;
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    if (await settlesWithin(this.#child.status, graceMs)) {
      return `exited (${this.exitCode}) after SIGTERM`;
    }
    this.kill();
    await settlesWithin(this.#child.status, 2000);
    return `killed with SIGKILL after ${graceMs} ms`;
  }

  /** SIGKILL now, synchronously (for a second Ctrl-C). */
  kill(): void {
    if (this.exited) return;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** A running confab server. */
export interface ConfabServer {
  proc: Proc;
  port: number;
  /** The first line it printed, e.g. `confab 0.1.0 listening on 127.0.0.1:41234`. */
  banner: string;
}

/**
 * `deno run` and its flags exactly as `deno task serve` runs the server
 * (permissions, V8 flags), taken from deno.json so the benchmark measures
 * what users run.
 */
export const SERVE_RUN_ARGS: string[] = (() => {
  const command = denoJson.tasks.serve.command.split(/\s+/);
  return command.slice(1, command.indexOf("main.ts"));
})();

/** The repository root (the directory holding main.ts). */
export const REPO_ROOT: string = decodeURIComponent(new URL("..", import.meta.url).pathname);

/**
 * Starts `main.ts serve` on 127.0.0.1 with a free port and the limits that
 * would get in the way of a load test lifted; `extra` flags go last. The
 * caller owns the returned process and must stop it.
 */
export async function startConfab(extra: string[], procs: Set<Proc>): Promise<ConfabServer> {
  const proc = new Proc("confab", Deno.execPath(), [
    ...SERVE_RUN_ARGS,
    "main.ts",
    "serve",
    "--host",
    HOST,
    "--port",
    "0",
    "--max-per-address",
    "100000",
    "--max-clients",
    "100000",
    ...extra,
  ], { cwd: REPO_ROOT, readStdout: true });
  procs.add(proc);
  let banner: string;
  try {
    banner = await proc.firstLine(30_000);
  } catch (error) {
    await proc.stop();
    throw new Error(
      `confab did not start: ${describe(error)}; stderr: ${proc.stderrTail.join(" | ")}`,
    );
  }
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(banner)?.[1]);
  if (!port) {
    await proc.stop(); // also lets its stderr (a refused flag, say) drain
    throw new Error(
      `unexpected first line from confab: ${JSON.stringify(banner)}; stderr: ${
        proc.stderrTail.join(" | ")
      }`,
    );
  }
  return { proc, port, banner };
}

/** A port that was free a moment ago (bind port 0, read it, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits until a TCP connect to `port` succeeds, within `ms`. */
export async function waitForPort(
  port: number,
  ms: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end && !signal?.aborted) {
    try {
      const conn = await withTimeout(
        Deno.connect({ hostname: HOST, port }),
        1000,
        "connect",
        (late) => late.close(),
      );
      conn.close();
      return true;
    } catch {
      await sleep(50, signal);
    }
  }
  return false;
}

// ----------------------------------------------------------------- clients

/** Receives every payload a client reads. */
export interface PayloadSink {
  /** One payload, read by client `receiver` at `atUs`. */
  onPayload(
    receiver: number,
    step: number,
    sender: number,
    seq: number,
    sentUs: number,
    atUs: number,
  ): void;
}

/**
 * How a client gets into the room: `confab` answers the alias prompt and
 * waits for the limits notice; `greeting` waits for the server's first line
 * (ncat's `<announce>`), which proves the server accepted the connection.
 */
export type Handshake = "confab" | "greeting";

/** Where a client is. */
export type ClientState = "joining" | "joined" | "closed";

/**
 * One load-generating connection. It reads with one large buffer in a single
 * loop (one promise per read, not per line), finds payloads by their marker,
 * and writes through a queue with one writer.
 */
export class Client {
  state: ClientState = "joining";
  /** Whether a barrier probe has been read. */
  seenProbe = false;
  /** Why the connection ended (a `!!` line from the server, or the error). */
  closeReason = "";
  /** The last `! ...` error line seen during the handshake. */
  lastError = "";
  /** After joining, read and drop everything without looking at it. */
  discard = false;
  /** Marker bytes that did not start a well-formed payload. */
  malformed = 0;
  /** Where payloads go; none means they are ignored. */
  sink: PayloadSink | undefined;
  /**
   * After joining, only count lines, without parsing them (a big-room sink):
   * every LF ends a line, and a line whose last 65 bytes are a payload of
   * {@linkcode countStep} adds one to {@linkcode counted}. Notices (joins,
   * crowd summaries, ncat announcements) and probes are not payloads.
   */
  countOnly = false;
  /** The step whose payload lines {@linkcode counted} counts. */
  countStep = 0;
  /** Payload lines of `countStep` read (countOnly). */
  counted = 0;
  /** Payload lines of any other step read (countOnly): late or stray. */
  countedOther = 0;
  /** Lines that were not payloads, probes included (countOnly). */
  otherLines = 0;
  /** `performance.now()` of the last read that added to `counted` (countOnly). */
  lastCountedMs = 0;
  /** Resolves true once joined, false if the connection ends first. */
  readonly joined: Promise<boolean>;
  #resolveJoined!: (joined: boolean) => void;
  #buf: Uint8Array;
  #keep = 0;
  #closing = false;
  #queue: Uint8Array[] = [];
  #callbacks: (() => void)[] = [];
  #pending = 0;
  #writing = false;
  readonly #decoder = new TextDecoder();

  /** Wraps a connected socket and starts reading. */
  constructor(
    readonly id: number,
    readonly alias: string,
    readonly conn: Deno.TcpConn,
    readonly handshake: Handshake,
    readBytes: number,
  ) {
    this.#buf = new Uint8Array(readBytes);
    this.joined = new Promise((resolve) => (this.#resolveJoined = resolve));
    this.#readLoop();
  }

  /** Connects to 127.0.0.1:`port` within `timeoutMs`. */
  static async connect(
    port: number,
    id: number,
    alias: string,
    handshake: Handshake,
    readBytes: number,
    timeoutMs = 5000,
  ): Promise<Client> {
    const conn = await withTimeout(
      Deno.connect({ hostname: HOST, port }),
      timeoutMs,
      `connect ${alias}`,
      (late) => late.close(),
    );
    try {
      conn.setNoDelay(true);
    } catch {
      // The first read will report a dead socket.
    }
    return new Client(id, alias, conn, handshake, readBytes);
  }

  /** Bytes queued or being written. */
  get pendingBytes(): number {
    return this.#pending;
  }

  /**
   * Queues bytes for the socket; `onWritten` runs once they are all written.
   * Returns false if the connection is closed.
   */
  send(bytes: Uint8Array, onWritten?: () => void): boolean {
    if (this.state === "closed") return false;
    this.#queue.push(bytes);
    if (onWritten) this.#callbacks.push(onWritten);
    this.#pending += bytes.length;
    if (!this.#writing) {
      this.#writing = true;
      this.#pump();
    }
    return true;
  }

  /** Closes the socket; later errors are not reported as a close reason. */
  close(): void {
    if (this.state === "closed") return;
    this.#closing = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    this.#gone("closed by the benchmark");
  }

  #markJoined(): void {
    this.state = "joined";
    this.#resolveJoined(true);
  }

  #gone(reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    if (!this.closeReason) this.closeReason = this.#closing ? "closed by the benchmark" : reason;
    this.#queue = [];
    this.#callbacks = [];
    this.#pending = 0;
    this.#resolveJoined(false);
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.state !== "closed") {
        const chunks = this.#queue;
        const callbacks = this.#callbacks;
        this.#queue = [];
        this.#callbacks = [];
        const data = concat(chunks);
        let offset = 0;
        while (offset < data.length) offset += await this.conn.write(data.subarray(offset));
        this.#pending -= data.length;
        for (const callback of callbacks) callback();
      }
    } catch (error) {
      try {
        this.conn.close();
      } catch {
        // Already closed.
      }
      this.#gone(`write failed: ${describe(error)}`);
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        // A full buffer without a line end cannot be a line of ours: drop it.
        if (this.#keep >= this.#buf.length) this.#keep = 0;
        const n = await this.conn.read(this.#buf.subarray(this.#keep));
        if (n === null) {
          this.#gone("closed by the server");
          break;
        }
        if (this.discard && this.state === "joined") continue;
        this.#take(this.#keep + n);
      }
    } catch (error) {
      this.#gone(describe(error));
    }
  }

  /** Handles the complete lines among the first `length` buffered bytes. */
  #take(length: number): void {
    const buf = this.#buf;
    const lastLf = buf.lastIndexOf(LF, length - 1);
    if (lastLf < 0) {
      this.#keep = length;
      return;
    }
    const lines = buf.subarray(0, lastLf + 1);
    if (this.state === "joined") this.#readJoined(lines);
    else if (this.handshake === "greeting") {
      this.#markJoined();
      this.#readJoined(lines);
    } else this.#handshake(lines);
    const rest = length - lastLf - 1;
    if (rest > 0) buf.copyWithin(0, lastLf + 1, length);
    this.#keep = rest;
  }

  #readJoined(lines: Uint8Array): void {
    if (this.countOnly) this.#count(lines);
    else this.#scan(lines);
  }

  /**
   * The sinks' hot path: one `indexOf(LF)` per line and a look at the bytes
   * just before it; nothing is decoded. A payload is recognised by its end
   * (ncat puts `<userN> ` in front of a forwarded chunk, not inside a line).
   */
  #count(lines: Uint8Array): void {
    const hi = DIGIT_0 + (Math.floor(this.countStep / 10) % 10);
    const lo = DIGIT_0 + (this.countStep % 10);
    let counted = 0;
    let start = 0;
    for (;;) {
      const q = lines.indexOf(LF, start);
      if (q < 0) break;
      const p = q - PAYLOAD_BYTES;
      if (p >= start && lines[p] === MARK && lines[p + 1] === KIND_DATA) {
        if (lines[p + 2] === hi && lines[p + 3] === lo) counted++;
        else this.countedOther++;
      } else {
        this.otherLines++;
        const m = q - PROBE_BYTES; // where a probe's marker would be
        if (m >= start && lines[m] === MARK && lines[m + 1] === KIND_PROBE) {
          this.seenProbe = true;
        } else if (lines[start] === BANG && lines[start + 1] === BANG) {
          this.closeReason = this.#decoder.decode(lines.subarray(start, q));
        }
      }
      start = q + 1;
    }
    if (counted > 0) {
      this.counted += counted;
      this.lastCountedMs = performance.now();
    }
  }

  /** The hot path: find payload markers and hand them to the sink. */
  #scan(lines: Uint8Array): void {
    const at = nowUs();
    const sink = this.sink;
    let i = 0;
    for (;;) {
      const p = lines.indexOf(MARK, i);
      if (p < 0) break;
      const kind = lines[p + 1];
      if (
        kind === KIND_DATA && p + PAYLOAD_BYTES < lines.length && lines[p + PAYLOAD_BYTES] === LF
      ) {
        sink?.onPayload(
          this.id,
          getDigits(lines, p + 2, 2),
          getDigits(lines, p + 4, 4),
          getDigits(lines, p + 8, 10),
          getDigits(lines, p + 18, 12),
          at,
        );
        i = p + LINE_BYTES;
        continue;
      }
      if (kind === KIND_PROBE) this.seenProbe = true;
      else this.malformed++;
      i = p + 1;
    }
    // A `!! reason` line comes last before the server closes the socket.
    const bang = lines.indexOf(BANG);
    if (bang >= 0) this.#noteBye(lines, bang);
  }

  #noteBye(lines: Uint8Array, from: number): void {
    for (let p = from; p >= 0 && p < lines.length; p = lines.indexOf(BANG, p + 1)) {
      if (lines[p + 1] === BANG && (p === 0 || lines[p - 1] === LF)) {
        const end = lines.indexOf(LF, p);
        this.closeReason = this.#decoder.decode(lines.subarray(p, end < 0 ? undefined : end));
        return;
      }
    }
  }

  /** Until joined: answer the alias prompt and wait for the limits notice. */
  #handshake(lines: Uint8Array): void {
    for (const line of this.#decoder.decode(lines).split("\n")) {
      if (line.startsWith("? alias:")) {
        this.send(encoder.encode(`${this.alias}\n`));
      } else if (line.startsWith("!! ")) {
        this.closeReason = line;
      } else if (line.startsWith("! ")) {
        this.lastError = line;
      } else if (/^\[\d\d:\d\d:\d\d\] -- limits: /.test(line)) {
        this.#markJoined();
      }
    }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

// ----------------------------------------------------------- clean-up

/** Everything a benchmark opened, so one `finally` can close it all. */
export class Resources {
  readonly procs: Set<Proc> = new Set();
  readonly clients: Set<Client> = new Set();

  /** Closes these clients and forgets them. */
  closeClients(clients: Iterable<Client>): void {
    for (const client of clients) {
      client.close();
      this.clients.delete(client);
    }
  }

  /** Stops one process (bounded) and forgets it. */
  async stopProc(proc: Proc): Promise<string> {
    const how = await proc.stop();
    this.procs.delete(proc);
    return how;
  }

  /** Stops every process, then closes every socket. Bounded; never throws. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.procs].map((proc) => proc.stop().catch(() => "")));
    this.procs.clear();
    this.closeClients([...this.clients]);
  }

  /** SIGKILL every process now (a second Ctrl-C). */
  killAll(): void {
    for (const proc of this.procs) proc.kill();
  }
}

/**
 * Aborts the returned signal on the first SIGINT/SIGTERM or at the deadline;
 * a second signal SIGKILLs the children and exits. Call `dispose` when done.
 */
export function guard(
  deadlineMs: number,
  resources: Resources,
  say: (line: string) => void,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    say(`global deadline of ${Math.round(deadlineMs / 1000)} s reached; stopping`);
    controller.abort();
  }, deadlineMs);
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handler = () => {
    if (controller.signal.aborted) {
      resources.killAll();
      Deno.exit(130);
    }
    say("interrupted; cleaning up (again to force)");
    controller.abort();
  };
  for (const s of signals) Deno.addSignalListener(s, handler);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      for (const s of signals) Deno.removeSignalListener(s, handler);
    },
  };
}

/** `1234567` as `1,234,567`. */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
}

/** A number with `digits` decimals, or `-`. */
export function fixed(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

/** A markdown table. */
export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** A numeric flag's value, `fallback` when absent; throws naming the flag when out of range. */
export function numberFlag(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${flag} must be a number from ${min} to ${max}, received '${text}'`);
  }
  return n;
}
