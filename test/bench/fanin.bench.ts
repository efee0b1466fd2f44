// Fan-in at fleet scale: `smmu-agent loadgen` opens 1,000 agent streams (distinct hosts, one
// connection each) at 100 events/s each into two collector processes -> Kafka, for a bounded
// time. Prints the collectors' CPU-seconds per million events and memory per stream (steady
// window: from every stream open to the end of generation), the agents' ack latency p50/p99,
// and whether every stream kept up: Kafka holds exactly each host's generated events and no
// stream's spool held more than KEPT_UP_PENDING batches. Then 1,000 idle streams on one
// collector: its RSS. Medians of BENCH_RUNS runs. Needs a broker (podman set-up, or KAFKA_BROKERS).
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadgenSummary } from '../../agent/src/loadgen/loadgen';
import { freePort, startKafka } from '../../deploy/kafka/container';
import { Proc } from '../support/processes';
import { rawTopicTotals } from '../support/raw-totals';
import { processCpuS, processMemBytes } from '../support/usage';
import { medianOf, report } from './bench-util';
import { topSelfTime } from './cpu-profile';

const STREAMS = Number(process.env.BENCH_FANIN_STREAMS ?? 1000);
const RATE = Number(process.env.BENCH_FANIN_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_FANIN_SECONDS ?? 60);
const IDLE_SECONDS = Number(process.env.BENCH_FANIN_IDLE_SECONDS ?? 20);
const IDLE_STREAMS = Number(process.env.BENCH_FANIN_IDLE_STREAMS ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Directory for V8 CPU profiles of the collectors (node --cpu-prof); printed as top-10 lists. */
const CPU_PROF = process.env.BENCH_FANIN_CPU_PROF ?? '';
/** A stream kept up if its spool never held more than this many unacknowledged batches (2 s at 500 ms). */
const KEPT_UP_PENDING = 4;
const MB = 1 << 20;

interface Collector {
  proc: Proc;
  address: string;
  http: number;
}

/** A collector process; resolves once it is ready. */
async function collector(name: string, brokers: string[], topic: string): Promise<Collector> {
  const [port, http] = [await freePort(), await freePort()];
  const proc = new Proc(
    name,
    'collector/ingest/cli.js',
    [
      ...['--listen', `127.0.0.1:${port}`, '--http-listen', `127.0.0.1:${http}`],
      ...['--kafka-brokers', brokers.join(','), '--raw-topic', topic, '--topic-partitions', '1'],
    ],
    { LOG_LEVEL: 'warn' },
    CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [],
  );
  // Ready once its /readyz answers 200 (Kafka connected, gRPC bound).
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${http}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (proc.child.exitCode !== null || i >= 600) {
      await proc.kill();
      throw new Error(`${name} not ready:\n${proc.tail()}`);
    }
    await sleep(100);
  }
  return { proc, address: `127.0.0.1:${port}`, http };
}

/** A collector's metric value (a counter or gauge without labels). */
async function metric(c: Collector, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${c.http}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** Polls until the collectors together have `n` streams open (or the timeout). */
async function streamsOpen(cs: Collector[], n: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = (await Promise.all(cs.map((c) => metric(c, 'smmu_collector_streams')))).reduce(
      (a, b) => a + b,
    );
    if (open >= n) return true;
    await sleep(200);
  }
  return false;
}

function loadgen(addresses: string[], streams: number, args: string[], modelFile: string): Proc {
  return new Proc(
    'loadgen',
    'agent/src/cli.js',
    [
      'loadgen',
      ...['--collector', addresses.join(','), '--http-listen', '', '--model-config', modelFile],
      ...['--streams', String(streams), '--drain-timeout-ms', '60000'],
      ...args,
    ],
    { LOG_LEVEL: 'info' },
  );
}

/** Resolves once loadgen has started every stream (its duration runs from then): the time. */
async function allStarted(lg: Proc): Promise<number> {
  await lg.waitForLog(/every stream started/, 300_000);
  return Date.now();
}

/** Loadgen's summary: its whole stdout (read apart from the log, whose lines come in chunks). */
async function summaryOf(p: Proc, timeoutMs: number): Promise<LoadgenSummary> {
  let out = '';
  p.child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await Promise.race([p.exited, sleep(timeoutMs).then(() => p.kill())]);
  const line = out.split('\n').find((l) => l.startsWith('{"streams"'));
  if (!line) throw new Error(`loadgen exited ${code} without a summary:\n${p.tail()}`);
  return JSON.parse(line);
}

/** Events per host in the topic, once `want` events are there (or 120 s passed). */
async function kafkaCounts(brokers: string[], topic: string, want: number): Promise<Map<string, number>> {
  const { totals } = await rawTopicTotals(brokers, topic, want, 120_000);
  return new Map(totals.hostRows().map((h) => [h.host, h.events]));
}

interface Loaded {
  cpuSPerMEvents: number;
  memPerStreamKiB: number;
  ackP50: number;
  ackP99: number;
  keptUp: number;
  exact: number;
  eventsPerS: number;
}

async function loadedRun(brokers: string[], modelFile: string, run: number): Promise<Loaded> {
  const topic = `fanin-${Date.now()}`;
  const cs = [await collector('collector-1', brokers, topic), await collector('collector-2', brokers, topic)];
  let lg: Proc | undefined;
  try {
    const base = cs.map((c) => processMemBytes(c.proc.child.pid as number, 'VmRSS'));
    const lg = loadgen(
      cs.map((c) => c.address),
      STREAMS,
      ['--rate', String(RATE), '--duration', String(SECONDS)],
      modelFile,
    );
    const startedAt = await allStarted(lg);
    if (!(await streamsOpen(cs, STREAMS, 120_000)))
      throw new Error(`not all ${STREAMS} streams opened:\n${lg.tail()}`);
    // The steady window: every stream open until generation ends (the drain is not in it).
    const cpu0 = cs.map((c) => processCpuS(c.proc.child.pid as number));
    const ev0 = await Promise.all(cs.map((c) => metric(c, 'smmu_collector_events_received_total')));
    const t0 = Date.now();
    const left = SECONDS * 1000 - (t0 - startedAt) - 1000;
    let rssMid = [0, 0];
    await sleep(left / 2);
    rssMid = cs.map((c) => processMemBytes(c.proc.child.pid as number, 'VmRSS'));
    await sleep(left / 2);
    const cpu1 = cs.map((c) => processCpuS(c.proc.child.pid as number));
    const ev1 = await Promise.all(cs.map((c) => metric(c, 'smmu_collector_events_received_total')));
    const windowS = (Date.now() - t0) / 1000;
    const cpuS = cpu1.reduce((s, x, i) => s + x - cpu0[i], 0);
    const events = ev1.reduce((s, x, i) => s + x - ev0[i], 0);
    const summary = await summaryOf(lg, SECONDS * 1000 + 180_000);
    const counts = await kafkaCounts(brokers, topic, summary.events);
    const hosts = Object.keys(summary.perStream);
    const exact = hosts.filter((h) => counts.get(h) === summary.perStream[h]).length;
    const extra = [...counts.keys()].filter((h) => !(h in summary.perStream)).length;
    const keptUp = summary.maxPendingBatches <= KEPT_UP_PENDING ? exact : 0;
    const r: Loaded = {
      cpuSPerMEvents: (cpuS / events) * 1e6,
      memPerStreamKiB: rssMid.reduce((s, x, i) => s + x - base[i], 0) / STREAMS / 1024,
      ackP50: summary.ackLatencyMs.p50,
      ackP99: summary.ackLatencyMs.p99,
      keptUp,
      exact,
      eventsPerS: events / windowS,
    };
    process.stdout.write(
      `# run ${run}: ${summary.events} events generated, ${events} received in the ${windowS.toFixed(1)} s window ` +
        `(${(events / windowS).toFixed(0)}/s), collector CPU ${cpuS.toFixed(1)} s, RSS ${base.map((b) => (b / MB).toFixed(0))} -> ` +
        `${rssMid.map((b) => (b / MB).toFixed(0))} MiB, ack p50/p99/max ${summary.ackLatencyMs.p50}/${summary.ackLatencyMs.p99}/` +
        `${summary.ackLatencyMs.max} ms, max pending ${summary.maxPendingBatches}, drained ${summary.drainedStreams}, ` +
        `exact in Kafka ${exact}/${hosts.length} hosts (${extra} unknown), lost ${summary.lostEvents + summary.reportedLost}\n`,
    );
    return r;
  } finally {
    await lg?.kill();
    for (const c of cs) {
      c.proc.child.kill('SIGTERM');
      await Promise.race([c.proc.exited, sleep(15_000).then(() => c.proc.kill())]);
    }
  }
}

async function idleRun(
  brokers: string[],
  modelFile: string,
  run: number,
): Promise<{ rss: number; delta: number }> {
  const topic = `fanin-idle-${Date.now()}`;
  const c = await collector('collector-idle', brokers, topic);
  let lg: Proc | undefined;
  try {
    const pid = c.proc.child.pid as number;
    const base = processMemBytes(pid, 'VmRSS');
    // One event per stream per 100 s: the streams stay open and (almost) silent.
    // Long enough to outlast opening every stream (which can take longer than IDLE_SECONDS); the
    // generator is stopped once RSS is read.
    lg = loadgen(
      [c.address],
      IDLE_STREAMS,
      ['--rate', '0.01', '--duration', String(IDLE_SECONDS + 180)],
      modelFile,
    );
    await allStarted(lg);
    if (!(await streamsOpen([c], IDLE_STREAMS, 120_000)))
      throw new Error(`not all ${IDLE_STREAMS} streams opened:\n${lg.tail()}`);
    await sleep(IDLE_SECONDS * 500);
    const rss = processMemBytes(pid, 'VmRSS');
    process.stdout.write(
      `# idle run ${run}: collector RSS ${(base / MB).toFixed(0)} MiB -> ${(rss / MB).toFixed(0)} MiB with ${IDLE_STREAMS} streams\n`,
    );
    return { rss, delta: rss - base };
  } finally {
    await lg?.kill();
    c.proc.child.kill('SIGTERM');
    await Promise.race([c.proc.exited, sleep(15_000).then(() => c.proc.kill())]);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fanin-'));
  // Steady rate: no fault storms (they would double some seconds' rate), so each stream sends RATE/s.
  const modelFile = join(dir, 'model.json');
  writeFileSync(modelFile, JSON.stringify({ bursts: { rateMultiplier: 1 } }));
  // Idle streams: 1 s chunks, so the generator wakes each stream once a second.
  const idleModelFile = join(dir, 'idle-model.json');
  writeFileSync(idleModelFile, JSON.stringify({ bursts: { rateMultiplier: 1 }, chunkNs: 1e9 }));
  if (CPU_PROF) mkdirSync(CPU_PROF, { recursive: true });
  const broker = await startKafka();
  try {
    const loaded: Loaded[] = [];
    for (let i = 1; i <= RUNS; i++) loaded.push(await loadedRun(broker.brokers, modelFile, i));
    const idle: Array<{ rss: number; delta: number }> = [];
    for (let i = 1; i <= RUNS; i++) idle.push(await idleRun(broker.brokers, idleModelFile, i));
    const pick = (k: keyof Loaded) => medianOf(loaded.map((r) => r[k]));
    report(`fanin_${STREAMS}x${RATE}_collector_cpu_s_per_M_events`, pick('cpuSPerMEvents'), 2);
    report(`fanin_${STREAMS}x${RATE}_events_per_s_received`, pick('eventsPerS'));
    report(`fanin_${STREAMS}x${RATE}_collector_memory_per_stream_KiB`, pick('memPerStreamKiB'), 1);
    report(`fanin_${STREAMS}x${RATE}_ack_p50_ms`, pick('ackP50'), 1);
    report(`fanin_${STREAMS}x${RATE}_ack_p99_ms`, pick('ackP99'), 1);
    report(`fanin_${STREAMS}x${RATE}_streams_kept_up_min`, Math.min(...loaded.map((r) => r.keptUp)));
    report(`fanin_${STREAMS}x${RATE}_streams_exact_in_kafka_min`, Math.min(...loaded.map((r) => r.exact)));
    report(`fanin_${IDLE_STREAMS}_idle_collector_rss_MiB`, medianOf(idle.map((r) => r.rss)) / MB, 1);
    report(`fanin_${IDLE_STREAMS}_idle_collector_rss_growth_MiB`, medianOf(idle.map((r) => r.delta)) / MB, 1);
    if (CPU_PROF)
      for (const f of readdirSync(CPU_PROF).filter((f) => f.endsWith('.cpuprofile')))
        process.stdout.write(
          `# profile ${f}\n${topSelfTime(join(CPU_PROF, f))
            .map((l) => `#   ${l}\n`)
            .join('')}`,
        );
  } finally {
    await broker.stop();
  }
}

main().then(
  // Exits once reported: a run was seen to stay alive after its report with no socket open.
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  },
);
