// deno-lint-ignore-file no-console
/**
 * Soak test (not part of CI): a room of N clients chatting at a modest total
 * rate for M minutes, a few of them leaving and rejoining all the time.
 * Prints the server's memory and CPU every 10 s and a summary at the end:
 * RSS at start, peak and end, lines sent and delivered, loss, order, latency.
 *
 *   deno run --allow-net --allow-read --allow-run --allow-env --allow-sys \
 *     bench/soak.ts --clients 200 --minutes 10 --rate 20
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
  guard,
  Histogram,
  int,
  machineInfo,
  numberFlag,
  openFileLimit,
  type PayloadSink,
  pool,
  PROBE_LINE,
  Resources,
  sampleProc,
  settlesWithin,
  sleep,
  startConfab,
  table,
  until,
  waitQuiet,
} from "./lib.ts";

const HELP =
  `Usage: deno run --allow-net --allow-read --allow-run --allow-env --allow-sys bench/soak.ts [options]

Options:
  --clients N        clients in the room (default 200)
  --minutes M        how long to chat (default 10)
  --rate R           lines per second, all senders together (default 20)
  --churn C          of the clients, how many keep leaving and rejoining (default 5)
  --churn-every S    seconds between two reconnects of one churning client (default 30)
  --deadline SECS    stop everything after this long (default: the run plus 3 minutes)
  --json             also print one JSON summary object at the end
  -h, --help         show this help
`;

interface Options {
  clients: number;
  minutes: number;
  rate: number;
  churn: number;
  churnEveryS: number;
  deadlineS: number;
  json: boolean;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      clients: { type: "string" },
      minutes: { type: "string" },
      rate: { type: "string" },
      churn: { type: "string" },
      "churn-every": { type: "string" },
      deadline: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  const clients = Math.floor(numberFlag("clients", values.clients, 200, 3, 9999));
  const minutes = numberFlag("minutes", values.minutes, 10, 0.1, 24 * 60);
  const churn = Math.floor(numberFlag("churn", values.churn, 5, 0, 9999));
  if (clients - churn < 2) {
    throw new Error("at least two clients must stay (--clients minus --churn)");
  }
  return {
    clients,
    minutes,
    rate: numberFlag("rate", values.rate, 20, 0.1, 100_000),
    churn,
    churnEveryS: numberFlag("churn-every", values["churn-every"], 30, 1, 3600),
    deadlineS: numberFlag("deadline", values.deadline, minutes * 60 + 180, 10, 48 * 3600),
    json: values.json === true,
  };
}

const log = (line: string) =>
  console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}`);

const READ_BYTES = 16 * 1024;
const STEP = 1;
const MAX_SENDER_BACKLOG = 64 * 1024;

/** Counts what the clients that stay read; churning clients are not counted. */
class SoakStats implements PayloadSink {
  readonly hist: Histogram = new Histogram();
  received = 0;
  duplicateOrOutOfOrder = 0;
  stray = 0;
  sent = 0;
  readonly #last: Int32Array;

  constructor(readonly stable: number) {
    this.#last = new Int32Array(stable * stable).fill(-1);
  }

  onPayload(
    receiver: number,
    step: number,
    sender: number,
    seq: number,
    sentUs: number,
    atUs: number,
  ): void {
    if (step !== STEP || sender >= this.stable || receiver >= this.stable) {
      this.stray++;
      return;
    }
    const slot = receiver * this.stable + sender;
    if (seq <= this.#last[slot]!) {
      this.duplicateOrOutOfOrder++;
      return;
    }
    this.#last[slot] = seq;
    this.received++;
    this.hist.add(atUs - sentUs);
  }
}

interface Sample {
  atS: number;
  rssKb: number;
  serverCpuPct: number;
  sent: number;
  received: number;
  connected: number;
}

async function main(): Promise<number> {
  let parsed: Options | undefined;
  try {
    parsed = parseOptions(Deno.args);
  } catch (error) {
    console.error(`soak: ${error instanceof Error ? error.message : error}\n\n${HELP}`);
    return 2;
  }
  if (parsed === undefined) return 0;
  const o = parsed;
  const machine = machineInfo();
  const res = new Resources();
  const { signal, dispose } = guard(o.deadlineS * 1000, res, log);
  const stableCount = o.clients - o.churn;
  const perClient = o.rate / stableCount;
  // The server's own flood limit (5 lines/s) stays on unless the senders
  // would run into it.
  const extra = perClient <= 4 ? [] : ["--rate", "0"];
  const stats = new SoakStats(stableCount);
  const samples: Sample[] = [];
  const problems: string[] = [];
  let rssIdleKb = -1;
  let rssStartKb = -1;
  let hwmKb = -1;
  let rssEndKb = -1;
  let reconnects = 0;
  let reconnectFailures = 0;
  let firstReconnectFailure = "";
  let skipped = 0;
  let stableDropped: string[] = [];
  let tooSlowLines = 0;
  let serverStop = "";
  let sendS = 0;
  let banner = "";
  try {
    if (o.clients + 256 > (await openFileLimit())) {
      throw new Error(`--clients ${o.clients} needs a higher open-file limit ('ulimit -n')`);
    }
    const server = await startConfab(extra, res.procs);
    banner = server.banner;
    log(`${banner}${extra.length ? " (--rate 0)" : " (default flood limit)"}`);
    const pid = server.proc.pid;
    await waitQuiet(pid, 5000, signal);
    rssIdleKb = (await sampleProc(pid)).rssKb;

    // Join everyone: ids below stableCount stay; the rest churn.
    const room: Client[] = new Array(o.clients);
    const generation = new Array<number>(o.clients).fill(0);
    const aliasOf = (i: number) =>
      i < stableCount
        ? `s${String(i + 1).padStart(4, "0")}`
        : `c${String(i - stableCount + 1).padStart(4, "0")}.${generation[i]}`;
    const connect = async (i: number) => {
      const client = await Client.connect(server.port, i, aliasOf(i), "confab", READ_BYTES);
      res.clients.add(client);
      room[i] = client;
      if (i < stableCount) client.sink = stats;
      if (!(await settlesWithin(client.joined, 15_000)) || client.state !== "joined") {
        throw new Error(`${client.alias} did not join: ${client.closeReason || client.lastError}`);
      }
    };
    const errors = await pool(o.clients, 32, connect, signal);
    if (errors.length > 0) throw new Error(`${errors.length} joins failed: ${describe(errors[0])}`);
    const others = room.slice(1, stableCount);
    let passed = false;
    for (let k = 0; k < 50 && !passed && !signal.aborted; k++) {
      room[0]!.send(PROBE_LINE);
      passed = await until(() => others.every((c) => c.seenProbe), 300, signal, 10);
    }
    if (!passed) throw new Error("barrier: not every client saw the probe");
    await waitQuiet(pid, 10_000, signal);
    rssStartKb = (await sampleProc(pid)).rssKb;
    log(
      `${o.clients} joined (${o.churn} churning); RSS ${int(rssIdleKb)} KiB empty, ` +
        `${int(rssStartKb)} KiB with everyone; ${o.rate} lines/s for ${o.minutes} min`,
    );

    // Chat, churn and sample until the time is up.
    const senders = room.slice(0, stableCount);
    const nextSeq = new Array<number>(stableCount).fill(0);
    const churnAt = Array.from(
      { length: o.churn },
      (_, j) => performance.now() + ((j + 1) * o.churnEveryS * 1000) / o.churn,
    );
    const churning = new Map<number, Promise<void>>();
    const t0 = performance.now();
    const end = t0 + o.minutes * 60_000;
    let issued = 0;
    let rr = 0;
    let nextSample = t0 + 10_000;
    let lastCpu = (await sampleProc(pid)).cpuMs;
    let lastSampleAt = t0;
    const counts = new Array<number>(stableCount).fill(0);
    while (!signal.aborted && performance.now() < end && !server.proc.exited) {
      const now = performance.now();
      const due = Math.floor((o.rate * (now - t0)) / 1000) - issued;
      if (due > 0) {
        counts.fill(0);
        for (let j = 0; j < due; j++) {
          counts[rr]!++;
          rr = (rr + 1) % stableCount;
        }
        const at = Math.round(performance.now() * 1000);
        for (let s = 0; s < stableCount; s++) {
          const c = counts[s]!;
          if (c === 0) continue;
          const sender = senders[s]!;
          if (sender.state !== "joined" || sender.pendingBytes > MAX_SENDER_BACKLOG) {
            skipped += c;
            continue;
          }
          sender.send(encodeBatch(STEP, s, nextSeq[s]!, c, at), () => (stats.sent += c));
          nextSeq[s]! += c;
        }
        issued += due;
      }
      for (let j = 0; j < o.churn; j++) {
        const i = stableCount + j;
        if (now < churnAt[j]! || churning.has(i)) continue;
        churnAt[j] = now + o.churnEveryS * 1000;
        res.closeClients([room[i]!]);
        generation[i]!++;
        churning.set(
          i,
          connect(i).then(
            () => void reconnects++,
            (error) => {
              reconnectFailures++;
              firstReconnectFailure ||= describe(error);
            },
          ).finally(() => churning.delete(i)),
        );
      }
      if (now >= nextSample) {
        nextSample += 10_000;
        const sample = await sampleProc(pid);
        const atS = (performance.now() - t0) / 1000;
        const s: Sample = {
          atS: Math.round(atS),
          rssKb: sample.rssKb,
          serverCpuPct: cpuPercent(lastCpu, sample.cpuMs, performance.now() - lastSampleAt),
          sent: stats.sent,
          received: stats.received,
          connected: room.filter((c) => c.state === "joined").length,
        };
        lastCpu = sample.cpuMs;
        lastSampleAt = performance.now();
        samples.push(s);
        console.log(
          `t=${s.atS}s rss=${int(s.rssKb)} KiB server_cpu=${fixed(s.serverCpuPct, 0)}% ` +
            `sent=${int(s.sent)} delivered=${int(s.received)} connected=${s.connected} ` +
            `reconnects=${reconnects} failed=${reconnectFailures}`,
        );
      }
      await sleep(20, signal);
    }
    sendS = (performance.now() - t0) / 1000;
    if (server.proc.exited) problems.push(`the server exited (${server.proc.exitCode})`);

    // Drain: the writes, then the deliveries.
    await until(() => senders.every((c) => c.pendingBytes === 0), 10_000, signal);
    let last = -1;
    let lastChange = performance.now();
    const drainEnd = performance.now() + 20_000;
    while (!signal.aborted && performance.now() < drainEnd) {
      if (stats.received >= stats.sent * (stableCount - 1)) break;
      if (stats.received !== last) {
        last = stats.received;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > 3000) break;
      await sleep(50, signal);
    }
    await settlesWithin(Promise.all(churning.values()), 16_000);
    const endSample = await sampleProc(pid);
    rssEndKb = endSample.rssKb;
    hwmKb = endSample.hwmKb;
    stableDropped = senders.filter((c) => c.state === "closed").map((c) =>
      `${c.alias}: ${c.closeReason}`
    );
    tooSlowLines = server.proc.tooSlowLines;
    serverStop = await res.stopProc(server.proc);
  } catch (error) {
    problems.push(describe(error));
    log(problems.at(-1)!);
  } finally {
    const cleaned = await settlesWithin(res.closeAll(), 15_000);
    if (!cleaned) log("clean-up did not finish within 15 s");
    dispose();
  }

  const expected = stats.sent * (stableCount - 1);
  const lost = expected - stats.received;
  const peakSampleKb = Math.max(rssStartKb, rssEndKb, ...samples.map((s) => s.rssKb));
  const summary = {
    machine,
    options: o,
    banner,
    serverFlags: extra,
    rssEmptyKb: rssIdleKb,
    rssStartKb,
    rssPeakSampledKb: peakSampleKb,
    rssHwmKb: hwmKb,
    rssEndKb,
    sendSeconds: Math.round(sendS),
    sent: stats.sent,
    skipped,
    expected,
    delivered: stats.received,
    lost,
    lossPct: expected > 0 ? (lost / expected) * 100 : 0,
    duplicateOrOutOfOrder: stats.duplicateOrOutOfOrder,
    stray: stats.stray,
    p50Ms: stats.hist.quantileMs(0.5),
    p99Ms: stats.hist.quantileMs(0.99),
    maxMs: stats.hist.maxUs / 1000,
    reconnects,
    reconnectFailures,
    firstReconnectFailure,
    stableDropped,
    tooSlowLogLines: tooSlowLines,
    serverStop,
    samples,
    problems,
    aborted: signal.aborted,
  };
  console.log([
    "",
    `## confab soak: ${o.clients} clients (${o.churn} churning every ${o.churnEveryS} s), ` +
    `${o.rate} lines/s, ${fixed(sendS / 60, 1)} min`,
    "",
    `- ${machine.date}; ${machine.cpu}, ${machine.nproc} CPUs; deno ${machine.deno}; ${banner}` +
    `${extra.length ? " --rate 0" : ""}; load average at start ${machine.loadavg.join(" ")}`,
    "",
    table(
      ["RSS empty KiB", "start KiB", "peak KiB (sampled / VmHWM)", "end KiB", "end - start KiB"],
      [[
        int(rssIdleKb),
        int(rssStartKb),
        `${int(peakSampleKb)} / ${int(hwmKb)}`,
        int(rssEndKb),
        int(rssEndKb - rssStartKb),
      ]],
    ),
    "",
    table(
      ["sent", "expected", "delivered", "lost", "dup/ooo", "p50 ms", "p99 ms", "max ms"],
      [[
        int(stats.sent),
        int(expected),
        int(stats.received),
        `${int(lost)} (${fixed(summary.lossPct, 3)}%)`,
        int(stats.duplicateOrOutOfOrder),
        fixed(summary.p50Ms, 2),
        fixed(summary.p99Ms, 2),
        fixed(summary.maxMs, 1),
      ]],
    ),
    "",
    `reconnects ${reconnects} (failed ${reconnectFailures}${
      firstReconnectFailure ? `: ${firstReconnectFailure}` : ""
    }); lines skipped by the generator ${skipped}; staying clients dropped ${stableDropped.length}` +
    `${
      stableDropped[0] ? ` (${stableDropped[0]})` : ""
    }; server log "too slow" lines ${tooSlowLines}; ` +
    `server ${serverStop}`,
    ...(problems.length ? ["", "Problems:", ...problems.map((p) => `- ${p}`)] : []),
    ...(signal.aborted ? ["", "(stopped early: deadline or interrupt)"] : []),
  ].join("\n"));
  if (o.json) console.log(JSON.stringify(summary));
  return problems.length > 0 || lost !== 0 || signal.aborted ? 1 : 0;
}

Deno.exit(await main());
