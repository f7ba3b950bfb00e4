// deno-lint-ignore-file no-console
/**
 * Fan-out benchmark: `deno task bench`.
 *
 * 1. Starts confab (`main.ts serve --port 0 --rate 0 ...`), joins N clients,
 *    and for each offered rate R has K of them send 64-byte payload lines at
 *    R lines/s in total for D seconds. Every client reads every line it gets;
 *    payloads carry sender, sequence number and send time, so the readers
 *    measure deliveries/s, loss, duplicates, per-sender order and latency.
 *    With `--sinks S`, S more clients join the same room and only count the
 *    payload lines they read (a big room: fan-out N - 1 + S per line).
 * 2. Runs the same workload against `ncat --chat` when ncat is on PATH.
 *    With `--instances N` (N >= 2), confab runs as N `serve --redis`
 *    instances sharing one redis-server (started here on a free port, no
 *    persistence), and the clients are split among them round-robin.
 * 3. On a fresh confab, joins M idle clients and reports the growth of the
 *    server's resident memory per client and how long the joins took.
 *
 * Prints a markdown table per part (and one JSON object with --json).
 * Progress goes to stderr, results to stdout.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  Client,
  cpuPercent,
  describe,
  encodeBatch,
  fixed,
  freePort,
  guard,
  type Handshake,
  Histogram,
  int,
  LINE_BYTES,
  type MachineInfo,
  machineInfo,
  nowUs,
  numberFlag,
  openFileLimit,
  type PayloadSink,
  pool,
  PROBE_LINE,
  Proc,
  Resources,
  sampleProc,
  selfCpuMs,
  settlesWithin,
  sleep,
  startConfab,
  table,
  until,
  waitForPort,
  waitQuiet,
  which,
} from "./lib.ts";

const HELP = `Usage: deno task bench [options]

Options:
  --clients N        clients in the room during fan-out (default 100)
  --senders K        how many of them send (default 10)
  --sinks S          extra clients in the room that only count the payload
                     lines they read, for a big room (default 0)
  --rates LIST       total offered lines/s per step, comma separated
                     (default 1000,5000,20000)
  --duration SECS    sending time per step (default 5)
  --idle-clients M   idle clients for the memory measurement, 0 to skip
                     (default 2000; capped by the open-file limit)
  --outbox-bytes N   passed to confab serve (default: the server's own)
  --instances N      run confab as N instances on one redis-server (started
                     here), clients split among them (default 1: no Redis)
  --deadline SECS    stop everything after this long (default 300)
  --no-ncat          skip the ncat --chat comparison
  --json             also print one JSON summary object at the end
  -h, --help         show this help
`;

interface Options {
  clients: number;
  senders: number;
  sinks: number;
  rates: number[];
  durationS: number;
  idleClients: number;
  outboxBytes: number | undefined;
  instances: number;
  deadlineS: number;
  ncat: boolean;
  json: boolean;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      clients: { type: "string" },
      senders: { type: "string" },
      sinks: { type: "string" },
      rates: { type: "string" },
      duration: { type: "string" },
      "idle-clients": { type: "string" },
      "outbox-bytes": { type: "string" },
      instances: { type: "string" },
      deadline: { type: "string" },
      "no-ncat": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  const clients = Math.floor(numberFlag("clients", values.clients, 100, 2, 9999));
  const senders = Math.floor(numberFlag("senders", values.senders, 10, 1, 9999));
  if (senders > clients) throw new Error("--senders cannot exceed --clients");
  const rates = (values.rates ?? "1000,5000,20000").split(",").map((r) =>
    Math.floor(numberFlag("rates", r.trim(), 0, 1, 1_000_000))
  );
  if (rates.length > 20) throw new Error("--rates takes at most 20 steps");
  return {
    clients,
    senders,
    sinks: Math.floor(numberFlag("sinks", values.sinks, 0, 0, 20_000)),
    rates,
    durationS: numberFlag("duration", values.duration, 5, 0.5, 120),
    idleClients: Math.floor(numberFlag("idle-clients", values["idle-clients"], 2000, 0, 100_000)),
    outboxBytes: values["outbox-bytes"] === undefined
      ? undefined
      : Math.floor(numberFlag("outbox-bytes", values["outbox-bytes"], 0, 1024, 1 << 30)),
    instances: Math.floor(numberFlag("instances", values.instances, 1, 1, 16)),
    deadlineS: numberFlag("deadline", values.deadline, 300, 10, 3600),
    ncat: !values["no-ncat"],
    json: values.json === true,
  };
}

const log = (line: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

/** Read buffer per fan-out client: big, so a busy client reads many lines per call. */
const FANOUT_READ_BYTES = 64 * 1024;
/** Read buffer per sink: big too, so a sink that falls behind catches up in few reads. */
const SINK_READ_BYTES = 64 * 1024;
/** ncat --chat waits in select(): it aborts past ~1,020 connections. */
const NCAT_MAX_ROOM = 1000;
/** Read buffer per idle client. */
const IDLE_READ_BYTES = 4 * 1024;
/** A sender with more than this queued skips lines instead of queueing more. */
const MAX_SENDER_BACKLOG = 256 * 1024;
/** Largest seen-bitmap (bytes) for exact duplicate detection. */
const MAX_BITMAP_BYTES = 64 * 1024 * 1024;

// ------------------------------------------------------------------ fan-out

/** One step's counters; the clients report every payload here. */
class StepStats implements PayloadSink {
  readonly hist: Histogram = new Histogram();
  received = 0;
  duplicates = 0;
  outOfOrder = 0;
  stray = 0;
  sent = 0;
  lastAtUs = 0;
  readonly #last: Int32Array;
  readonly #seen: Uint8Array | undefined;

  constructor(
    readonly step: number,
    readonly receivers: number,
    readonly senders: number,
    readonly capPerSender: number,
  ) {
    this.#last = new Int32Array(receivers * senders).fill(-1);
    const bitmapBytes = Math.ceil((receivers * senders * capPerSender) / 8);
    this.#seen = bitmapBytes <= MAX_BITMAP_BYTES ? new Uint8Array(bitmapBytes) : undefined;
  }

  /** Whether duplicates are told apart from reordering exactly. */
  get exactDuplicates(): boolean {
    return this.#seen !== undefined;
  }

  onPayload(
    receiver: number,
    step: number,
    sender: number,
    seq: number,
    sentUs: number,
    atUs: number,
  ): void {
    if (step !== this.step || sender >= this.senders || seq >= this.capPerSender) {
      this.stray++;
      return;
    }
    const slot = receiver * this.senders + sender;
    const seen = this.#seen;
    if (seen !== undefined) {
      const bit = slot * this.capPerSender + seq;
      const byte = Math.floor(bit / 8);
      const mask = 1 << (bit % 8);
      if (seen[byte]! & mask) {
        this.duplicates++;
        return;
      }
      seen[byte] = seen[byte]! | mask;
    } else if (seq === this.#last[slot]) {
      this.duplicates++;
      return;
    }
    if (seq < this.#last[slot]!) this.outOfOrder++;
    else this.#last[slot] = seq;
    this.received++;
    this.hist.add(atUs - sentUs);
    this.lastAtUs = atUs;
  }
}

interface StepResult {
  target: string;
  step: number;
  offeredPerS: number;
  durationS: number;
  sent: number;
  sentPerS: number;
  skipped: number;
  expected: number;
  received: number;
  lost: number;
  lossPct: number;
  duplicates: number;
  outOfOrder: number;
  stray: number;
  exactDuplicates: boolean;
  deliveriesPerS: number;
  windowS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  serverCpuPct: number;
  generatorCpuPct: number;
  serverRssKb: number;
  disconnected: number;
  disconnectReasons: string[];
  /** Sinks in the room (--sinks). */
  sinks: number;
  /** Lines sent x sinks. */
  sinkExpected: number;
  /** Payload lines of this step the sinks counted, all together. */
  sinkReceived: number;
  sinkLost: number;
  /** Sinks that counted fewer lines than were sent. */
  sinksShort: number;
  /** Payload lines of another step the sinks read during this one. */
  sinkStray: number;
  /** Lines the sinks read that were not payloads (notices, probes), all together. */
  sinkOtherLines: number;
  sinksDisconnected: number;
  sinkDisconnectReasons: string[];
  /** Parsing clients' and sinks' deliveries together, per second. */
  totalDeliveriesPerS: number;
  totalWindowS: number;
  /** Cut short by the deadline or an interrupt. */
  partial: boolean;
}

interface Target {
  name: "confab" | "ncat" | `confab x${number}`;
  /** Where the clients connect, round-robin. */
  ports: number[];
  /** The server processes, whose CPU is added up. */
  pids: number[];
  handshake: Handshake;
  /** Connections opened at once (ncat listens with a backlog of 10). */
  connectConcurrency: number;
  proc: Proc;
}

/** The clients of one fan-out room: the parsing ones (senders first) and the sinks. */
interface Room {
  clients: Client[];
  sinks: Client[];
}

/**
 * Connects N parsing clients and S sinks (at most `connectConcurrency`
 * connects in flight), waits for all to join, then runs the probe barrier.
 */
async function openRoom(
  target: Target,
  n: number,
  sinkCount: number,
  generation: number,
  res: Resources,
  signal: AbortSignal,
): Promise<Room> {
  const total = n + sinkCount;
  const all: Client[] = new Array(total);
  const started = performance.now();
  const suffix = generation ? `.${generation}` : "";
  const errors = await pool(total, target.connectConcurrency, async (i) => {
    const isSink = i >= n;
    const alias = isSink
      ? `s${String(i - n + 1).padStart(5, "0")}${suffix}`
      : `u${String(i + 1).padStart(4, "0")}${suffix}`;
    const port = target.ports[i % target.ports.length]!;
    const client = await Client.connect(
      port,
      i,
      alias,
      target.handshake,
      isSink ? SINK_READ_BYTES : FANOUT_READ_BYTES,
    );
    client.countOnly = isSink;
    res.clients.add(client);
    all[i] = client;
  }, signal);
  if (signal.aborted) throw new Error("aborted");
  if (errors.length > 0) {
    res.closeClients(all.filter((c) => c !== undefined));
    throw new Error(`${errors.length} connects failed: ${describe(errors[0])}`);
  }
  const joinBound = 10_000 + total * 20;
  const allJoined = await until(() => all.every((c) => c.state === "joined"), joinBound, signal);
  if (!allJoined) {
    const stuck = all.filter((c) => c.state !== "joined");
    const example = stuck[0];
    throw new Error(
      `${stuck.length} of ${total} clients did not join within ${joinBound} ms` +
        (example ? ` (e.g. ${example.alias}: ${example.closeReason || example.lastError})` : ""),
    );
  }
  // Barrier: client 0 sends probes until every other client and sink has read one.
  const prober = all[0]!;
  const others = all.slice(1);
  const barrierBound = 15_000 + total * 5;
  const barrierEnd = performance.now() + barrierBound;
  let passed = false;
  while (!passed && performance.now() < barrierEnd && !signal.aborted) {
    prober.send(PROBE_LINE);
    passed = await until(() => others.every((c) => c.seenProbe), 200 + total / 10, signal, 10);
  }
  if (!passed) {
    const missing = others.filter((c) => !c.seenProbe).length;
    const closed = all.filter((c) => c.state === "closed");
    throw new Error(
      `barrier: ${missing} clients never saw the probe within ${barrierBound} ms; ` +
        `${closed.length} closed` + (closed[0] ? ` (${closed[0].closeReason})` : "") +
        (target.proc.exited
          ? `; ${target.name} exited: ${target.proc.stderrTail.join(" | ")}`
          : ""),
    );
  }
  await sleep(200 + total / 10, signal); // let the last probes drain
  log(
    `${target.name}: ${n} clients${sinkCount ? ` and ${sinkCount} sinks` : ""} joined in ${
      Math.round(performance.now() - started)
    } ms`,
  );
  return { clients: all.slice(0, n), sinks: all.slice(n) };
}

async function runStep(
  target: Target,
  { clients: room, sinks }: Room,
  step: number,
  rate: number,
  o: Options,
  signal: AbortSignal,
): Promise<StepResult> {
  const k = o.senders;
  const senders = room.slice(0, k);
  const durationMs = o.durationS * 1000;
  const capPerSender = Math.ceil((rate * o.durationS) / k) + 2;
  const stats = new StepStats(step, room.length, k, capPerSender);
  for (const client of room) client.sink = stats;
  for (const sink of sinks) {
    sink.countStep = step;
    sink.counted = 0;
    sink.countedOther = 0;
    sink.otherLines = 0;
    sink.lastCountedMs = 0;
  }
  const sinkReceived = () => {
    let sum = 0;
    for (const sink of sinks) sum += sink.counted;
    return sum;
  };
  const nextSeq = new Array<number>(k).fill(0);
  let issued = 0;
  let skipped = 0;
  let rr = 0;
  const serverBefore = await cpuOf(target.pids);
  const genBefore = selfCpuMs();
  const t0 = performance.now();
  const t0Us = nowUs();
  const end = t0 + durationMs;

  // Offer lines at the fixed total rate: every tick, send what is due so far,
  // spread over the senders round-robin, one write per sender per tick.
  const counts = new Array<number>(k).fill(0);
  for (let now = performance.now(); now < end && !signal.aborted; now = performance.now()) {
    const due = Math.floor((rate * (now - t0)) / 1000) - issued;
    if (due > 0) {
      counts.fill(0);
      for (let j = 0; j < due; j++) {
        counts[rr]!++;
        rr = (rr + 1) % k;
      }
      const sentUs = nowUs();
      for (let s = 0; s < k; s++) {
        const c = counts[s]!;
        if (c === 0) continue;
        const sender = senders[s]!;
        if (sender.state !== "joined" || sender.pendingBytes > MAX_SENDER_BACKLOG) {
          skipped += c;
          continue;
        }
        const bytes = encodeBatch(step, s, nextSeq[s]!, c, sentUs);
        nextSeq[s]! += c;
        sender.send(bytes, () => (stats.sent += c));
      }
      issued += due;
    }
    await sleep(1, signal);
  }
  const sendEnd = performance.now();

  // Drain: wait for the writes, then for the deliveries to stop coming.
  await until(() => senders.every((c) => c.pendingBytes === 0), 10_000, signal);
  const drainEnd = performance.now() + 20_000;
  let lastCount = -1;
  let lastChange = performance.now();
  while (!signal.aborted && performance.now() < drainEnd) {
    const expected = stats.sent * (room.length - 1);
    const sinkCount = sinkReceived();
    if (stats.received >= expected && sinkCount >= stats.sent * sinks.length) break;
    if (stats.received + sinkCount !== lastCount) {
      lastCount = stats.received + sinkCount;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > 2000) break;
    await sleep(20, signal);
  }
  const t1 = performance.now();
  const genAfter = selfCpuMs();
  const serverSample = await sampleProc(target.pids[0]!);
  const serverAfter = await cpuOf(target.pids);

  const expected = stats.sent * (room.length - 1);
  const windowS = stats.received > 0 ? (stats.lastAtUs - t0Us) / 1e6 : (t1 - t0) / 1000;
  const closed = room.filter((c) => c.state === "closed");
  const reasons = [...new Set(closed.map((c) => c.closeReason))].slice(0, 3);
  const sendS = (sendEnd - t0) / 1000;
  const sinkExpected = stats.sent * sinks.length;
  const sinkTotal = sinkReceived();
  const sinksClosed = sinks.filter((c) => c.state === "closed");
  let lastMs = stats.received > 0 ? t0 + (stats.lastAtUs - t0Us) / 1000 : 0;
  for (const sink of sinks) if (sink.lastCountedMs > lastMs) lastMs = sink.lastCountedMs;
  const totalWindowS = lastMs > 0 ? (lastMs - t0) / 1000 : (t1 - t0) / 1000;
  return {
    target: target.name,
    step,
    offeredPerS: rate,
    durationS: Math.round(sendS * 100) / 100,
    sent: stats.sent,
    sentPerS: stats.sent / sendS,
    skipped,
    expected,
    received: stats.received,
    lost: expected - stats.received,
    lossPct: expected > 0 ? ((expected - stats.received) / expected) * 100 : 0,
    duplicates: stats.duplicates,
    outOfOrder: stats.outOfOrder,
    stray: stats.stray,
    exactDuplicates: stats.exactDuplicates,
    deliveriesPerS: windowS > 0 ? stats.received / windowS : 0,
    windowS: Math.round(windowS * 100) / 100,
    p50Ms: stats.hist.quantileMs(0.5),
    p90Ms: stats.hist.quantileMs(0.9),
    p99Ms: stats.hist.quantileMs(0.99),
    maxMs: stats.hist.maxUs / 1000,
    serverCpuPct: cpuPercent(serverBefore, serverAfter, t1 - t0),
    generatorCpuPct: cpuPercent(genBefore, genAfter, t1 - t0),
    serverRssKb: serverSample.rssKb,
    disconnected: closed.length,
    disconnectReasons: reasons,
    sinks: sinks.length,
    sinkExpected,
    sinkReceived: sinkTotal,
    sinkLost: sinkExpected - sinkTotal,
    sinksShort: sinks.filter((c) => c.counted < stats.sent).length,
    sinkStray: sinks.reduce((sum, c) => sum + c.countedOther, 0),
    sinkOtherLines: sinks.reduce((sum, c) => sum + c.otherLines, 0),
    sinksDisconnected: sinksClosed.length,
    sinkDisconnectReasons: [...new Set(sinksClosed.map((c) => c.closeReason))].slice(0, 3),
    totalDeliveriesPerS: totalWindowS > 0 ? (stats.received + sinkTotal) / totalWindowS : 0,
    totalWindowS: Math.round(totalWindowS * 100) / 100,
    partial: signal.aborted,
  };
}

/** CPU time (ms) of all of `pids` together. */
async function cpuOf(pids: number[]): Promise<number> {
  let ms = 0;
  for (const pid of pids) ms += (await sampleProc(pid)).cpuMs;
  return ms;
}

async function fanout(
  target: Target,
  o: Options,
  res: Resources,
  signal: AbortSignal,
): Promise<StepResult[]> {
  const results: StepResult[] = [];
  let generation = 0;
  let room = await openRoom(target, o.clients, o.sinks, generation, res, signal);
  const everyone = () => [...room.clients, ...room.sinks];
  try {
    for (const [i, rate] of o.rates.entries()) {
      if (signal.aborted) break;
      if (target.proc.exited) throw new Error(`${target.name} exited (${target.proc.exitCode})`);
      if (everyone().some((c) => c.state === "closed")) {
        // A client or sink was dropped in the last step: start the next from a full room.
        res.closeClients(everyone());
        await sleep(Math.min(500 + o.sinks, 5000), signal);
        room = await openRoom(target, o.clients, o.sinks, ++generation, res, signal);
      }
      log(`${target.name}: step ${i + 1}: ${rate} lines/s for ${o.durationS} s`);
      const r = await runStep(target, room, i + 1, rate, o, signal);
      results.push(r);
      log(
        `${target.name}: step ${i + 1}: ${int(r.deliveriesPerS)} deliveries/s, ` +
          `lost ${int(r.lost)}, p99 ${fixed(r.p99Ms, 2)} ms, server CPU ${
            fixed(r.serverCpuPct, 0)
          }%, ` +
          `generator CPU ${fixed(r.generatorCpuPct, 0)}%` +
          (r.disconnected ? `, ${r.disconnected} disconnected (${r.disconnectReasons[0]})` : "") +
          (r.sinks
            ? `; sinks ${int(r.sinkReceived)} of ${int(r.sinkExpected)}, ` +
              `${int(r.totalDeliveriesPerS)} deliveries/s in all` +
              (r.sinksDisconnected
                ? `, ${r.sinksDisconnected} sinks disconnected (${r.sinkDisconnectReasons[0]})`
                : "")
            : ""),
      );
      await sleep(300, signal);
    }
  } finally {
    res.closeClients(everyone());
  }
  return results;
}

async function runConfabFanout(o: Options, res: Resources, signal: AbortSignal) {
  const extra = ["--rate", "0"];
  if (o.outboxBytes !== undefined) extra.push("--outbox-bytes", String(o.outboxBytes));
  const redis = o.instances > 1 ? await startRedis(res, signal) : undefined;
  const servers = [];
  try {
    for (let i = 0; i < o.instances; i++) {
      const args = redis === undefined ? extra : [...extra, "--redis", redis.url];
      servers.push(await startConfab(args, res.procs));
    }
    const server = servers[0]!;
    log(server.banner + (redis ? ` (x${o.instances} on ${redis.url})` : ""));
    const target: Target = {
      name: o.instances > 1 ? `confab x${o.instances}` : "confab",
      ports: servers.map((s) => s.port),
      // Redis works for the instances: its CPU counts as theirs.
      pids: [...servers.map((s) => s.proc.pid), ...(redis ? [redis.proc.pid] : [])],
      handshake: "confab",
      connectConcurrency: 32,
      proc: server.proc,
    };
    const steps = await fanout(target, o, res, signal);
    const mem = await sampleProc(server.proc.pid);
    return {
      banner: server.banner + (redis ? `, ${o.instances} instances on one redis-server` : ""),
      steps,
      rssEndKb: mem.rssKb,
      hwmKb: mem.hwmKb,
      tooSlowLogLines: server.proc.tooSlowLines,
      stop: await res.stopProc(server.proc),
      stderrTail: server.proc.stderrTail.slice(-5),
    };
  } finally {
    for (const server of servers) if (res.procs.has(server.proc)) await res.stopProc(server.proc);
    if (redis !== undefined && res.procs.has(redis.proc)) await res.stopProc(redis.proc);
  }
}

/** A redis-server on a free loopback port, persistence off, for `--instances`. */
async function startRedis(res: Resources, signal: AbortSignal) {
  const path = which("redis-server");
  if (path === undefined) throw new Error("--instances needs redis-server on PATH");
  const port = freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const proc = new Proc("redis-server", path, args);
  res.procs.add(proc);
  if (!(await waitForPort(port, 10_000, signal))) {
    await res.stopProc(proc);
    throw new Error(`redis-server did not listen on ${port}: ${proc.stderrTail.join(" | ")}`);
  }
  return { proc, url: `redis://127.0.0.1:${port}` };
}

async function runNcatFanout(ncatPath: string, o: Options, res: Resources, signal: AbortSignal) {
  const port = freePort();
  const proc = new Proc("ncat", ncatPath, [
    "-l",
    "127.0.0.1",
    String(port),
    "--chat",
    "--max-conns",
    "20000",
  ]);
  res.procs.add(proc);
  try {
    if (!(await waitForPort(port, 10_000, signal))) {
      throw new Error(`ncat did not listen on ${port}: ${proc.stderrTail.join(" | ")}`);
    }
    // The readiness connect counts as a user; let ncat see it leave.
    await sleep(200, signal);
    const target: Target = {
      name: "ncat",
      ports: [port],
      pids: [proc.pid],
      handshake: "greeting",
      connectConcurrency: 8,
      proc,
    };
    const steps = await fanout(target, o, res, signal);
    const mem = await sampleProc(proc.pid);
    return { steps, rssEndKb: mem.rssKb, hwmKb: mem.hwmKb, stop: await res.stopProc(proc) };
  } finally {
    if (res.procs.has(proc)) await res.stopProc(proc);
  }
}

// ------------------------------------------------------------ idle memory

interface IdleResult {
  requested: number;
  attempted: number;
  joined: number;
  capNote: string;
  rssBeforeKb: number;
  rssAfterKb: number;
  kbPerClient: number;
  joinMs: number;
  joinsPerS: number;
  quiet: boolean;
  failures: number;
  firstFailure: string;
}

async function idleMemory(o: Options, res: Resources, signal: AbortSignal): Promise<IdleResult> {
  const limit = await openFileLimit();
  // Both processes hold one descriptor per client; leave room for the rest.
  const cap = Math.max(0, limit - 256);
  const m = Math.min(o.idleClients, cap);
  const capNote = m < o.idleClients
    ? `capped at ${m} by the open-file limit ${limit}; raise it with 'ulimit -n' before running`
    : "";
  if (capNote) log(capNote);
  const server = await startConfab(["--rate", "0"], res.procs);
  const clients: Client[] = [];
  try {
    const pid = server.proc.pid;
    await waitQuiet(pid, 5000, signal);
    const before = (await sampleProc(pid)).rssKb;
    log(`idle: server RSS ${int(before)} KiB before; connecting ${m} idle clients`);
    const t0 = performance.now();
    let lastJoin = t0;
    let joined = 0;
    const bound = Math.min(60_000 + m * 20, 240_000);
    const phase = AbortSignal.any([signal, AbortSignal.timeout(bound)]);
    const errors = await pool(m, 64, async (i) => {
      const client = await Client.connect(
        server.port,
        i,
        `i${String(i + 1).padStart(5, "0")}`,
        "confab",
        IDLE_READ_BYTES,
      );
      client.discard = true;
      clients.push(client);
      res.clients.add(client);
      if (!(await withSignal(client.joined, phase))) {
        throw new Error(`${client.alias}: ${client.closeReason || "no join before the deadline"}`);
      }
      joined++;
      lastJoin = performance.now();
    }, phase);
    const joinMs = lastJoin - t0;
    log(`idle: ${joined} joined in ${Math.round(joinMs)} ms; waiting for the server to go quiet`);
    const quiet = await waitQuiet(pid, 30_000, signal);
    const after = (await sampleProc(pid)).rssKb;
    return {
      requested: o.idleClients,
      attempted: m,
      joined,
      capNote,
      rssBeforeKb: before,
      rssAfterKb: after,
      kbPerClient: joined > 0 && before > 0 && after > 0 ? (after - before) / joined : NaN,
      joinMs,
      joinsPerS: joinMs > 0 ? (joined / joinMs) * 1000 : NaN,
      quiet,
      failures: errors.length,
      firstFailure: errors.length > 0 ? describe(errors[0]) : "",
    };
  } finally {
    // Stop the server first: its shutdown closes everyone without a leave
    // notice per client, which a mass disconnect would cost.
    await res.stopProc(server.proc);
    res.closeClients(clients);
  }
}

/** `promise`, or false once `signal` aborts. */
function withSignal(promise: Promise<boolean>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}

// ---------------------------------------------------------------- report

function stepRows(steps: StepResult[]): string[][] {
  return steps.map((s) => [
    s.partial ? `${s.target} (partial)` : s.target,
    int(s.offeredPerS),
    int(s.sentPerS),
    int(s.deliveriesPerS),
    int(s.expected),
    int(s.received),
    `${int(s.lost)} (${fixed(s.lossPct, 2)}%)`,
    `${int(s.duplicates)}/${int(s.outOfOrder)}`,
    fixed(s.p50Ms, 2),
    fixed(s.p90Ms, 2),
    fixed(s.p99Ms, 2),
    fixed(s.maxMs, 1),
    fixed(s.serverCpuPct, 0),
    fixed(s.generatorCpuPct, 0),
    int(s.disconnected),
  ]);
}

const STEP_HEAD = [
  "server",
  "offered/s",
  "sent/s",
  "deliveries/s",
  "expected",
  "received",
  "lost",
  "dup/ooo",
  "p50 ms",
  "p90 ms",
  "p99 ms",
  "max ms",
  "server CPU %",
  "gen CPU %",
  "dropped clients",
];

function sinkRows(steps: StepResult[]): string[][] {
  return steps.map((s) => [
    s.partial ? `${s.target} (partial)` : s.target,
    int(s.offeredPerS),
    int(s.sentPerS),
    int(s.sinks),
    int(s.sinkExpected),
    int(s.sinkReceived),
    s.sinkExpected > 0 ? fixed(s.sinkReceived / s.sinkExpected, 4) : "-",
    `${int(s.sinksShort)}`,
    int(s.sinkStray),
    int(s.sinkOtherLines),
    int(s.sinksDisconnected),
    int(s.deliveriesPerS),
    int(s.totalDeliveriesPerS),
    zeroLossStep(s) ? "yes" : "no",
  ]);
}

const SINK_HEAD = [
  "server",
  "offered/s",
  "sent/s",
  "sinks",
  "sink expected",
  "sink received",
  "ratio",
  "sinks short",
  "late lines",
  "other lines",
  "sinks dropped",
  "parsing deliveries/s",
  "total deliveries/s",
  "zero loss",
];

/**
 * No loss, nobody dropped (sinks included), and the offered rate really went
 * out (a server that stops reading pushes back on the senders instead of
 * losing lines).
 */
function zeroLossStep(s: StepResult): boolean {
  return !s.partial && s.lost === 0 && s.disconnected === 0 && s.sent > 0 &&
    s.sentPerS >= 0.95 * s.offeredPerS && s.sinkReceived === s.sinkExpected &&
    s.sinksDisconnected === 0;
}

function zeroLoss(steps: StepResult[]): StepResult | undefined {
  const ok = steps.filter(zeroLossStep);
  return ok.sort((a, b) => b.offeredPerS - a.offeredPerS)[0];
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && b > 0 ? fixed(a / b, 2) : "-";
}

function header(machine: MachineInfo, o: Options, banner: string): string {
  return [
    `## confab fan-out benchmark`,
    "",
    `- date: ${machine.date}`,
    `- machine: ${machine.cpu}, ${machine.nproc} CPUs (nproc), ${
      int(machine.memTotalMb)
    } MB RAM, ` +
    `Linux ${machine.kernel}, load average at start ${machine.loadavg.join(" ")}`,
    `- deno ${machine.deno} (V8 ${machine.v8}); ${banner || "confab"}`,
    `- workload: ${o.clients} clients, ${o.senders} senders, ${o.durationS} s per step, ` +
    `${LINE_BYTES - 1}-byte payloads, rates ${o.rates.join(", ")} lines/s; ` +
    `expected deliveries = lines sent x (clients - 1)` +
    (o.sinks
      ? `; plus ${o.sinks} sinks (count payload lines only), sink expected = lines sent x ` +
        `${o.sinks}; fan-out ${o.clients - 1 + o.sinks} per line`
      : ""),
    `- the load generator runs on the same machine; "gen CPU %" is its own use ` +
    `(100 = one core); near 100 it, not the server, may be the limit`,
  ].join("\n");
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(Deno.args);
  } catch (error) {
    console.error(`fanout: ${error instanceof Error ? error.message : error}\n\n${HELP}`);
    return 2;
  }
  if (o === undefined) return 0;
  const machine = machineInfo();
  const res = new Resources();
  const { signal, dispose } = guard(o.deadlineS * 1000, res, log);
  const ncatPath = o.ncat ? which("ncat") : undefined;
  const summary: Record<string, unknown> = { machine, options: o };
  const problems: string[] = [];
  let confab: Awaited<ReturnType<typeof runConfabFanout>> | undefined;
  let ncat: Awaited<ReturnType<typeof runNcatFanout>> | undefined;
  let idle: IdleResult | undefined;
  let ncatSkipped = "";
  try {
    const fileLimit = await openFileLimit();
    if (o.clients + o.sinks + 256 > fileLimit) {
      throw new Error(
        `--clients ${o.clients} + --sinks ${o.sinks} need an open-file limit of at least ` +
          `${o.clients + o.sinks + 256} (it is ${fileLimit}; raise it with 'ulimit -n')`,
      );
    }
    try {
      confab = await runConfabFanout(o, res, signal);
    } catch (error) {
      problems.push(`confab fan-out: ${describe(error)}`);
      log(problems.at(-1)!);
    }
    if (!o.ncat) log("ncat comparison skipped (--no-ncat)");
    else if (ncatPath === undefined) log("ncat is not on PATH; comparison skipped");
    else if (o.clients + o.sinks > NCAT_MAX_ROOM) {
      ncatSkipped = `ncat comparison skipped: ${o.clients + o.sinks} clients and sinks, ` +
        `more than the ${NCAT_MAX_ROOM} ncat --chat holds (it waits in select() and aborts ` +
        `past ~1,020 connections)`;
      log(ncatSkipped);
    } else if (!signal.aborted) {
      try {
        ncat = await runNcatFanout(ncatPath, o, res, signal);
      } catch (error) {
        problems.push(`ncat fan-out: ${describe(error)}`);
        log(problems.at(-1)!);
      }
    }
    if (o.idleClients > 0 && !signal.aborted) {
      try {
        idle = await idleMemory(o, res, signal);
      } catch (error) {
        problems.push(`idle memory: ${describe(error)}`);
        log(problems.at(-1)!);
      }
    }
  } catch (error) {
    problems.push(describe(error));
    log(problems.at(-1)!);
  } finally {
    const cleaned = await settlesWithin(res.closeAll(), 15_000);
    if (!cleaned) log("clean-up did not finish within 15 s");
    dispose();
  }

  // Report.
  const out: string[] = [header(machine, o, confab?.banner ?? ""), ""];
  const allSteps = [...(confab?.steps ?? []), ...(ncat?.steps ?? [])];
  if (allSteps.length > 0) {
    out.push("### Fan-out", "", table(STEP_HEAD, stepRows(allSteps)), "");
    if (o.sinks > 0) {
      out.push(
        `### Big room: ${o.clients} parsing clients + ${o.sinks} sinks`,
        "",
        table(SINK_HEAD, sinkRows(allSteps)),
        "",
        `ratio = sink received / sink expected; sinks short: sinks that counted fewer ` +
          `lines than were sent; late lines: payloads of an earlier step read during this ` +
          `one (not counted); other lines: notices (such as a big room's join summaries) ` +
          `and probes the sinks read (not counted); total deliveries/s = parsing + sink deliveries from the ` +
          `first send to the last delivery. Zero loss needs the sinks complete too.`,
        "",
      );
    }
    out.push(
      `dup/ooo: duplicate / out-of-order deliveries per sender; latency from the sender's ` +
        `write to the reader's read, generator clock. Server RSS at the end: confab ` +
        `${int(confab?.rssEndKb ?? NaN)} KiB (peak ${int(confab?.hwmKb ?? NaN)})` +
        (ncat ? `, ncat ${int(ncat.rssEndKb)} KiB (peak ${int(ncat.hwmKb)})` : "") + ".",
      "",
    );
  }
  const ratios: Record<string, unknown>[] = [];
  if (confab && ncat) {
    const rows: string[][] = [];
    for (const rate of o.rates) {
      const a = confab.steps.find((s) => s.offeredPerS === rate);
      const b = ncat.steps.find((s) => s.offeredPerS === rate);
      if (!a || !b) continue;
      const r = ratio(a.totalDeliveriesPerS, b.totalDeliveriesPerS);
      rows.push([int(rate), int(a.totalDeliveriesPerS), int(b.totalDeliveriesPerS), r]);
      ratios.push({
        offeredPerS: rate,
        confab: a.totalDeliveriesPerS,
        ncat: b.totalDeliveriesPerS,
        ratio: r,
      });
    }
    const za = zeroLoss(confab.steps);
    const zb = zeroLoss(ncat.steps);
    rows.push([
      `highest zero-loss step (confab ${za ? int(za.offeredPerS) : "none"}, ncat ${
        zb ? int(zb.offeredPerS) : "none"
      })`,
      int(za?.totalDeliveriesPerS ?? NaN),
      int(zb?.totalDeliveriesPerS ?? NaN),
      ratio(za?.totalDeliveriesPerS, zb?.totalDeliveriesPerS),
    ]);
    out.push(
      "### confab / ncat --chat",
      "",
      table(["offered lines/s", "confab deliveries/s", "ncat deliveries/s", "confab/ncat"], rows),
      "",
      ...(o.sinks > 0 ? ["Deliveries/s here are the totals: parsing clients and sinks.", ""] : []),
    );
    summary.zeroLoss = {
      confab: za?.offeredPerS ?? null,
      ncat: zb?.offeredPerS ?? null,
      ratio: ratio(za?.totalDeliveriesPerS, zb?.totalDeliveriesPerS),
    };
  }
  if (idle) {
    out.push(
      "### Memory per idle client (confab)",
      "",
      table(
        [
          "idle clients",
          "RSS before KiB",
          "RSS after KiB",
          "KiB per client",
          "join time ms",
          "joins/s",
        ],
        [[
          `${int(idle.joined)} of ${int(idle.attempted)}`,
          int(idle.rssBeforeKb),
          int(idle.rssAfterKb),
          fixed(idle.kbPerClient, 1),
          int(idle.joinMs),
          int(idle.joinsPerS),
        ]],
      ),
      "",
    );
    if (idle.capNote) out.push(`Note: ${idle.capNote}.`, "");
    if (!idle.quiet) out.push("Note: the server was still busy when its RSS was read.", "");
    if (idle.failures) out.push(`Note: ${idle.failures} joins failed (${idle.firstFailure}).`, "");
  }
  const hot = allSteps.filter((s) => s.generatorCpuPct >= 90);
  if (hot.length > 0) {
    out.push(
      `Note: the generator used >= 90% of a core at ${
        hot.map((s) => `${s.target} ${int(s.offeredPerS)}/s`).join(", ")
      }; those rows are bounded by the generator as much as by the server.`,
      "",
    );
  }
  if (ncatSkipped) out.push(`Note: ${ncatSkipped}.`, "");
  if (problems.length > 0) out.push("Problems:", ...problems.map((p) => `- ${p}`), "");
  if (signal.aborted) out.push("(stopped early: deadline or interrupt)", "");
  console.log(out.join("\n"));
  if (o.json) {
    Object.assign(summary, {
      confab: confab ?? null,
      ncat: ncat ?? null,
      ratios,
      idle: idle ?? null,
      problems,
      aborted: signal.aborted,
    });
    console.log(JSON.stringify(summary));
  }
  return problems.length > 0 || signal.aborted ? 1 : 0;
}

Deno.exit(await main());
