// End to end against the peer, in one run, into one broker: the same SMMU event stream goes
//  (a) through `kcat -P` as trace_pipe text lines, one message per line (codecs none, lz4, zstd),
//  (b) through smmu-fleet: an agent process -> gRPC -> collector process -> Kafka, the agent
//      reading the same events three ways: the model unpaced (fleet_model), `smmu-agent replay`
//      of kcat's text lines (fleet_text, every line parsed into a record), and `smmu-agent
//      replay` of raw 4 KiB ring-buffer pages built from the events (fleet_pages).
// Per path: events/s (the topic's LogAppendTime window, first to last message; and wall time
// from process start to exit), bytes stored in Kafka per event (the topic's log segment sizes),
// CPU-seconds per million events per process (sender: GNU time over its whole run, start-up
// included; collector and broker: what they used between the sender's start and exit), peak
// RSS, and ratios against kcat's best. Every run is verified: kcat's topic holds exactly the
// input lines in order (count and digest); smmu-fleet's topic, deduplicated by (agent, epoch,
// sequence), holds exactly the events of its input (count and digest; text replay keeps whole
// microseconds, page replay shifts by the dump's one clock offset) with nothing lost. A mismatch
// fails the benchmark. Then the steady scenario: the agent at 10 k and 100 events/s.
// Needs the broker container (podman set-up of `npm test`); figures are medians of BENCH_RUNS.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { BatchConsumer } from '../../collector/accounting/consume';
import { rawTopic } from '../../common/kafka/topics';
import { silentLogger } from '../../common/runtime/log';
import { freePort, startKafka } from '../../deploy/kafka/container';
import { type Batch, encodeColumns } from '../../proto/batch-codec';
import { concatBlocks, type EventBlock } from '../../proto/event-block';
import { repoRoot } from '../support/paths';
import { Proc } from '../support/processes';
import { replayOffsetNs, writeRawDump } from '../support/raw-pages';
import {
  type Cgroup,
  cgroupCpuS,
  cgroupPeakBytes,
  containerCgroup,
  parseTimed,
  processCpuS,
  processMemBytes,
  timedCommand,
  topicLogBytes,
  type Usage,
} from '../support/usage';
import { medianOf, report } from './bench-util';
import { topSelfTime } from './cpu-profile';
import { modelBlocks, modelConfig, rawColumns, StreamDigest, traceText, xzBytes } from './e2e-stream';

const EVENTS = Number(process.env.BENCH_E2E_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const STEADY_S = Number(process.env.BENCH_E2E_STEADY_SECONDS ?? 60);
/**
 * Seconds the steady agent runs before its CPU is measured. A fresh agent at 100 events/s uses
 * 2-5 % of a core in its first half minute (V8 compiling the pipeline as it gets hot, the
 * start-up garbage collected) and settles after about 30 s; a daemon lives in the settled state.
 */
const STEADY_WARMUP_S = Number(process.env.BENCH_E2E_STEADY_WARMUP_SECONDS ?? 60);
/**
 * Model events a warm-up agent sends through each smmu-fleet path's collector before the
 * measured agent starts (0: none). A collector is a daemon: its JIT compiles, its Kafka
 * producer's set-up and its first batches are paid once, not per million events. The warm-up
 * agent's batches share the topic, under agent id WARMUP_AGENT: the measured figures (events/s,
 * bytes, CPU, the count and digest checks) take only what follows them.
 */
const COLLECTOR_WARMUP_EVENTS = Number(process.env.BENCH_E2E_COLLECTOR_WARMUP_EVENTS ?? 0);
const WARMUP_AGENT = 'e2e-warmup';
const STEADY_RATES = (process.env.BENCH_E2E_STEADY_RATES ?? '10000,100')
  .split(',')
  .filter(Boolean)
  .map(Number);
/** A flag string as argv words. */
const words = (s: string) => s.split(' ').filter(Boolean);
/** Extra agent flags for the smmu-fleet paths, e.g. "--batch-max-events 16384" (fleet_model: defaults + these). */
const AGENT_ARGS = words(process.env.BENCH_E2E_AGENT_ARGS ?? '');
/** Paths to run (substring match), e.g. "kcat_zstd,fleet_model". */
const PATHS = (process.env.BENCH_E2E_PATHS ?? '').split(',').filter(Boolean);
/** Directory for V8 CPU profiles of the agent and collector processes (node --cpu-prof); printed as top-10 lists. */
const CPU_PROF = process.env.BENCH_E2E_CPU_PROF ?? '';
/**
 * A built tree of another version (its dist/) to run beside this one on the same broker:
 * every smmu-fleet path and steady rate runs again as <name>_base, interleaved, so load on
 * the machine touches both alike.
 */
const BASE = process.env.BENCH_E2E_BASE ?? '';
const LOG_DIR = '/var/lib/kafka/data';
/** node flags for the agent and collector processes. */
const NODE_ARGS = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [];

/** The NODE_OPTIONS a unit in deploy/systemd sets, or "" (validate.sh checks the agent image sets the same). */
const deployedNodeOptions = (unit: string) =>
  /^Environment=NODE_OPTIONS=(.*)$/m.exec(
    readFileSync(join(repoRoot(), 'deploy/systemd', unit), 'utf8'),
  )?.[1] ?? '';
/**
 * node flags of the agent and the collector as deployed: their units' NODE_OPTIONS.
 * BENCH_E2E_AGENT_NODE_OPTIONS and BENCH_E2E_COLLECTOR_NODE_OPTIONS replace them ("" for
 * Node's defaults), BENCH_E2E_BASE_AGENT_NODE_OPTIONS the base build's agent's. Both builds'
 * collectors run with the same flags.
 */
const AGENT_NODE_OPTIONS =
  process.env.BENCH_E2E_AGENT_NODE_OPTIONS ?? deployedNodeOptions('smmu-agent.service');
const BASE_AGENT_NODE_OPTIONS = process.env.BENCH_E2E_BASE_AGENT_NODE_OPTIONS ?? AGENT_NODE_OPTIONS;
const COLLECTOR_NODE_ARGS = words(
  process.env.BENCH_E2E_COLLECTOR_NODE_OPTIONS ?? deployedNodeOptions('smmu-collector.service'),
);

/** Which build's programs a path runs: this tree's, or BENCH_E2E_BASE's, and the agent's node flags. */
interface Build {
  tag: '' | '_base';
  dist: string;
  agentNodeArgs: string[];
}
const BUILDS: Build[] = [
  { tag: '', dist: join(repoRoot(), 'dist'), agentNodeArgs: words(AGENT_NODE_OPTIONS) },
  ...(BASE
    ? [{ tag: '_base' as const, dist: join(BASE, 'dist'), agentNodeArgs: words(BASE_AGENT_NODE_OPTIONS) }]
    : []),
];
/** A program of `build` as the script path Proc takes (relative to this tree's dist/). */
const script = (build: Build, cli: string) => relative(join(repoRoot(), 'dist'), join(build.dist, cli));
const RUN_TIMEOUT_MS = 300_000;

interface Env {
  brokers: string[];
  admin: Admin;
  kafka: Kafka;
  container: string;
  cgroup: Cgroup;
  dir: string;
  textFile: string;
  textSha: string;
  modelFile: string;
  modelDigest: string;
  /** xz -9 of the model stream's plain columns, B/event. */
  modelBound: number;
  /** Events as text replay delivers them: whole microseconds. */
  textDigest: string;
  /** Raw per-CPU page dump of the same events. */
  rawDir: string;
  /** Events as page replay delivers them: trace clock mapped back by the dump's mtime. */
  pagesDigest: string;
}

interface Result {
  eventsPerS: number;
  wallS: number;
  bytesPerEvent: number;
  sender: Usage;
  collectorCpuS: number;
  collectorPeakRss: number;
  brokerCpuS: number;
}

/** Runs argv under GNU time, bounded; resolves with its exit code, stderr and wall seconds. */
function runTimed(argv: string[]): Promise<{ code: number | null; stderr: string; wallS: number }> {
  const t0 = process.hrtime.bigint();
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, wallS: Number(process.hrtime.bigint() - t0) / 1e9 });
    }),
  );
}

/** Milliseconds between the LogAppendTime of the message at `from` (an offset) and the last one's. */
function appendWindowMs(brokers: string[], topic: string, from = 'beginning'): number {
  const at = (offset: string) =>
    Number(
      execFileSync(
        'kcat',
        ['-C', '-b', brokers[0], '-t', topic, '-o', offset, '-c', '1', '-e', '-q', '-f', '%T'],
        {
          encoding: 'utf8',
        },
      ),
    );
  return at('-1') - at(from);
}

async function createTopic(env: Env, topic: string): Promise<void> {
  const spec = rawTopic(topic, 1, 1);
  spec.configEntries = [
    ...(spec.configEntries ?? []),
    { name: 'message.timestamp.type', value: 'LogAppendTime' },
  ];
  // kafkajs's waitForLeaders gives up when a loaded broker reports the new partition as not
  // yet hosted: wait here for its offsets instead.
  await env.admin.createTopics({ topics: [spec], waitForLeaders: false });
  for (const deadline = Date.now() + 60_000; ; await sleep(200)) {
    try {
      await env.admin.fetchTopicOffsets(topic);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

async function endOffset(env: Env, topic: string): Promise<number> {
  const [p] = await env.admin.fetchTopicOffsets(topic);
  return Number(p.high);
}

async function kcatPath(env: Env, codec: string): Promise<Result> {
  const topic = `e2e-kcat-${codec}-${Date.now()}`;
  await createTopic(env, topic);
  const broker0 = cgroupCpuS(env.cgroup);
  const r = await runTimed(
    timedCommand(['kcat', '-P', '-b', env.brokers[0], '-t', topic, '-z', codec, '-l', env.textFile]),
  );
  const brokerCpuS = cgroupCpuS(env.cgroup) - broker0;
  if (r.code !== 0) throw new Error(`kcat -P exited ${r.code}: ${r.stderr.slice(-2000)}`);
  const messages = await endOffset(env, topic);
  if (messages !== EVENTS)
    throw new Error(`kcat ${codec}: topic holds ${messages} messages, sent ${EVENTS} lines`);
  const sha = execFileSync(
    'sh',
    ['-c', `kcat -C -b ${env.brokers[0]} -t ${topic} -o beginning -e -q -f '%s\\n' | sha256sum`],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  ).split(' ')[0];
  if (sha !== env.textSha) throw new Error(`kcat ${codec}: the topic's lines differ from the input lines`);
  const result: Result = {
    eventsPerS: EVENTS / (appendWindowMs(env.brokers, topic) / 1000),
    wallS: r.wallS,
    bytesPerEvent: topicLogBytes(env.container, LOG_DIR, topic) / EVENTS,
    sender: parseTimed(r.stderr),
    collectorCpuS: 0,
    collectorPeakRss: 0,
    brokerCpuS,
  };
  await env.admin.deleteTopics({ topics: [topic] });
  return result;
}

async function startCollector(
  env: Env,
  topic: string,
  build: Build,
): Promise<{ proc: Proc; address: string }> {
  const port = await freePort();
  const proc = new Proc(
    `collector-${topic}`,
    script(build, 'collector/ingest/cli.js'),
    [
      ...['--listen', `127.0.0.1:${port}`, '--http-listen', '', '--kafka-brokers', env.brokers.join(',')],
      ...['--raw-topic', topic, '--topic-partitions', '1'],
    ],
    {},
    [...NODE_ARGS, ...COLLECTOR_NODE_ARGS],
  );
  await proc.waitForLog(/collector ready/);
  return { proc, address: `127.0.0.1:${port}` };
}

/**
 * Reads a raw topic to its end offset and checks it against the expected stream (the warm-up
 * agent's batches left out): batches deduplicated by (agent, epoch, sequence), sequences
 * without gaps, nothing lost, and the events' digest. Returns how many duplicate batches it
 * skipped.
 */
async function verifyFleetTopic(
  env: Env,
  topic: string,
  expectDigest: string | undefined,
  expectEvents: number,
): Promise<number> {
  const messages = await endOffset(env, topic);
  const bySeq = new Map<string, Batch>();
  let duplicates = 0;
  const consumer = new BatchConsumer(
    env.kafka,
    { topic, groupId: `verify-${topic}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => {
    if (b.agentId === WARMUP_AGENT) return;
    const key = `${b.agentId}/${b.epoch}/${b.sequence}`;
    if (bySeq.has(key)) duplicates++;
    else bySeq.set(key, b);
  });
  const deadline = Date.now() + 120_000;
  while (consumer.messages < messages && Date.now() < deadline) await sleep(50);
  await consumer.stop();
  if (consumer.messages !== messages || consumer.malformed > 0)
    throw new Error(
      `${topic}: read ${consumer.messages} of ${messages} messages, ${consumer.malformed} malformed`,
    );
  const batches = [...bySeq.values()].sort(
    (a, b) => Number(a.epoch) - Number(b.epoch) || Number(a.sequence) - Number(b.sequence),
  );
  const digest = new StreamDigest();
  let lost = 0;
  batches.forEach((b, i) => {
    if (b.sequence !== i + 1)
      throw new Error(`${topic}: batch sequence ${b.sequence} where ${i + 1} was due`);
    for (const n of b.lost.values()) lost += n;
    digest.add(b.events);
  });
  if (lost !== 0) throw new Error(`${topic}: ${lost} events reported lost`);
  if (digest.events !== expectEvents)
    throw new Error(`${topic}: ${digest.events} events, expected ${expectEvents}`);
  if (expectDigest !== undefined && digest.hex() !== expectDigest)
    throw new Error(`${topic}: the events differ from the model's stream`);
  return duplicates;
}

/** kcat (decompressing whatever codec the collector used) and protoc read the topic's first batch. */
function kcatProtocReads(env: Env, topic: string): void {
  const text = execFileSync(
    'sh',
    [
      '-c',
      `kcat -C -b ${env.brokers[0]} -t ${topic} -c 1 -e -q -D '' | protoc --decode=smmu.telemetry.v1.EventBatch --proto_path=proto smmu/telemetry/v1/telemetry.proto`,
    ],
    { cwd: repoRoot(), encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  if (!/^ {2}count: \d+$/m.test(text))
    throw new Error(`${topic}: kcat | protoc did not decode a batch:\n${text.slice(0, 500)}`);
}

/** What an smmu-fleet path feeds its agent: source flags and the digest its events must have. */
interface FleetSource {
  /** Agent arguments naming the source (after the program). */
  args: (env: Env) => string[];
  digest: (env: Env) => string;
}

const SOURCES: Record<'model' | 'text' | 'pages', FleetSource> = {
  model: {
    args: (env) => [
      '--rate',
      '0',
      '--max-events',
      String(EVENTS),
      '--seed',
      '3',
      '--model-config',
      env.modelFile,
    ],
    digest: (env) => env.modelDigest,
  },
  text: { args: (env) => ['replay', env.textFile], digest: (env) => env.textDigest },
  pages: { args: (env) => ['replay', env.rawDir], digest: (env) => env.pagesDigest },
};

/** COLLECTOR_WARMUP_EVENTS model events (another seed) through the collector, as agent WARMUP_AGENT with the path's flags. */
async function warmUp(env: Env, collector: string, build: Build, flags: string[]): Promise<void> {
  if (COLLECTOR_WARMUP_EVENTS <= 0) return;
  const args = [
    ...['--rate', '0', '--max-events', String(COLLECTOR_WARMUP_EVENTS), '--seed', '5'],
    ...['--model-config', env.modelFile, '--collector', collector, '--http-listen', ''],
    ...['--host', WARMUP_AGENT, '--agent-id', WARMUP_AGENT],
    ...flags,
  ];
  const r = await runTimed(
    timedCommand([process.execPath, ...build.agentNodeArgs, join(build.dist, 'agent/src/cli.js'), ...args]),
  );
  if (r.code !== 0) throw new Error(`warm-up agent exited ${r.code}: ${r.stderr.slice(-3000)}`);
}

async function fleetPath(env: Env, source: FleetSource, args: string[], build: Build): Promise<Result> {
  const topic = `e2e-fleet-${Date.now()}`;
  await createTopic(env, topic);
  const collector = await startCollector(env, topic, build);
  const cpid = collector.proc.child.pid as number;
  await warmUp(env, collector.address, build, args);
  const offset0 = await endOffset(env, topic);
  const bytes0 = offset0 > 0 ? topicLogBytes(env.container, LOG_DIR, topic) : 0;
  const collector0 = processCpuS(cpid);
  const broker0 = cgroupCpuS(env.cgroup);
  const agent = [
    process.execPath,
    ...NODE_ARGS,
    ...build.agentNodeArgs,
    join(build.dist, 'agent/src/cli.js'),
    ...source.args(env),
    ...['--collector', collector.address, '--host', 'e2e-host', '--agent-id', 'e2e-agent'],
    ...['--http-listen', ''],
    ...args,
  ];
  const r = await runTimed(timedCommand(agent));
  const collectorCpuS = processCpuS(cpid) - collector0;
  const brokerCpuS = cgroupCpuS(env.cgroup) - broker0;
  const collectorPeakRss = processMemBytes(cpid, 'VmHWM');
  await collector.proc.kill('SIGTERM');
  if (r.code !== 0) throw new Error(`agent exited ${r.code}: ${r.stderr.slice(-3000)}`);
  const duplicates = await verifyFleetTopic(env, topic, source.digest(env), EVENTS);
  kcatProtocReads(env, topic);
  if (duplicates > 0)
    process.stdout.write(`# ${topic}: ${duplicates} duplicate batches (dropped by dedup)\n`);
  const result: Result = {
    eventsPerS: EVENTS / (appendWindowMs(env.brokers, topic, String(offset0)) / 1000),
    wallS: r.wallS,
    bytesPerEvent: (topicLogBytes(env.container, LOG_DIR, topic) - bytes0) / EVENTS,
    sender: parseTimed(r.stderr),
    collectorCpuS,
    collectorPeakRss,
    brokerCpuS,
  };
  await env.admin.deleteTopics({ topics: [topic] });
  return result;
}

function reportPath(name: string, rs: Result[], kcatBest: number | undefined): void {
  const perM = 1e6 / EVENTS;
  const eps = medianOf(rs.map((r) => r.eventsPerS));
  report(`${name}_events_per_s`, eps);
  report(`${name}_wall_events_per_s`, medianOf(rs.map((r) => EVENTS / r.wallS)));
  report(`${name}_bytes_per_event`, medianOf(rs.map((r) => r.bytesPerEvent)), 2);
  report(`${name}_sender_cpu_s_per_m_events`, medianOf(rs.map((r) => r.sender.cpuS * perM)), 2);
  report(`${name}_sender_peak_rss_mb`, medianOf(rs.map((r) => r.sender.peakRssBytes / 2 ** 20)), 1);
  if (name.startsWith('fleet')) {
    report(`${name}_collector_cpu_s_per_m_events`, medianOf(rs.map((r) => r.collectorCpuS * perM)), 2);
    report(`${name}_collector_peak_rss_mb`, medianOf(rs.map((r) => r.collectorPeakRss / 2 ** 20)), 1);
  }
  report(`${name}_broker_cpu_s_per_m_events`, medianOf(rs.map((r) => r.brokerCpuS * perM)), 2);
  if (kcatBest !== undefined) report(`${name}_vs_kcat_best_events_per_s`, eps / kcatBest, 2);
}

/** The agent at a steady rate: CPU % of one core and RSS over STEADY_S after STEADY_WARMUP_S. */
async function steady(
  env: Env,
  rate: number,
  build: Build,
): Promise<{
  cpuPct: number;
  rssMb: number;
  anonMb: number;
  fileMb: number;
  hwmMb: number;
  collectorPct: number;
}> {
  const topic = `e2e-steady-${rate}-${Date.now()}`;
  await createTopic(env, topic);
  const collector = await startCollector(env, topic, build);
  const agent = new Proc(
    `agent-${rate}`,
    script(build, 'agent/src/cli.js'),
    [
      ...[
        '--collector',
        collector.address,
        '--host',
        'steady-host',
        '--agent-id',
        'steady-agent',
        '--http-listen',
        '',
      ],
      ...['--rate', String(rate), '--seed', '3', ...AGENT_ARGS],
    ],
    {},
    [...NODE_ARGS, ...build.agentNodeArgs],
  );
  const apid = agent.child.pid as number;
  const cpid = collector.proc.child.pid as number;
  await sleep(STEADY_WARMUP_S * 1000);
  const a0 = processCpuS(apid);
  const c0 = processCpuS(cpid);
  const t0 = process.hrtime.bigint();
  await sleep(STEADY_S * 1000);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const out = {
    cpuPct: ((processCpuS(apid) - a0) / wall) * 100,
    collectorPct: ((processCpuS(cpid) - c0) / wall) * 100,
    rssMb: processMemBytes(apid, 'VmRSS') / 2 ** 20,
    anonMb: processMemBytes(apid, 'RssAnon') / 2 ** 20,
    fileMb: processMemBytes(apid, 'RssFile') / 2 ** 20,
    hwmMb: processMemBytes(apid, 'VmHWM') / 2 ** 20,
  };
  await agent.kill('SIGTERM');
  const stopped = await agent.waitForLog(/agent stopped/);
  await collector.proc.kill('SIGTERM');
  const sent = JSON.parse(stopped).events as number;
  const duplicates = await verifyFleetTopic(env, topic, undefined, sent);
  if (duplicates > 0)
    process.stdout.write(`# ${topic}: ${duplicates} duplicate batches (dropped by dedup)\n`);
  await env.admin.deleteTopics({ topics: [topic] });
  return out;
}

async function setUp(brokers: string[], container: string): Promise<Env> {
  const kafka = new Kafka({ clientId: 'e2e-bench', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const dir = mkdtempSync(join(tmpdir(), 'smmu-e2e-'));
  const startTimeNs = 1_780_000_000_000_000_000n;
  const blocks = modelBlocks(modelConfig(EVENTS, startTimeNs));
  const digest = new StreamDigest();
  for (const b of blocks) digest.add(b);
  if (digest.events !== EVENTS) throw new Error(`the model made ${digest.events} events, not ${EVENTS}`);
  const text = traceText(blocks);
  const textFile = join(dir, 'trace_pipe.txt');
  writeFileSync(textFile, text);
  const textDigest = new StreamDigest();
  for (const b of blocks) textDigest.add(b, (ns) => ns - (ns % 1000n));
  const bootNs = startTimeNs - 1_000_000_000_000n;
  const dump = writeRawDump(join(dir, 'raw'), blocks, bootNs);
  const shift = replayOffsetNs(dump) - bootNs;
  const pagesDigest = new StreamDigest();
  for (const b of blocks) pagesDigest.add(b, (ns) => ns + shift);
  const modelFile = join(dir, 'model.json');
  writeFileSync(modelFile, JSON.stringify({ startTimeNs: String(startTimeNs) }));
  report('events', EVENTS);
  report('runs', RUNS);
  report('collector_warmup_events', COLLECTOR_WARMUP_EVENTS);
  for (const b of BUILDS)
    process.stdout.write(`# agent${b.tag} node flags: ${b.agentNodeArgs.join(' ') || '(defaults)'}\n`);
  process.stdout.write(`# collector node flags: ${COLLECTOR_NODE_ARGS.join(' ') || '(defaults)'}\n`);
  report('text_bytes_per_event', text.length / EVENTS, 1);
  // Entropy bounds from the first 100 k events (columns) and 30 k events (text): xz -9 of
  // the whole stream takes minutes on a loaded 2-core machine.
  const head = (n: number) => {
    const out: EventBlock[] = [];
    for (let got = 0, i = 0; got < n && i < blocks.length; got += blocks[i++].count) out.push(blocks[i]);
    return out;
  };
  const bound = (key: string, bytes: Buffer | Uint8Array, sample: EventBlock[]) => {
    const v = xzBytes(Buffer.from(bytes)) / sample.reduce((s, b) => s + b.count, 0);
    report(key, v, 2);
    return v;
  };
  const columnSample = head(100_000);
  const modelBound = bound(
    'entropy_bound_model_columns_xz9_bytes_per_event',
    rawColumns(columnSample),
    columnSample,
  );
  // The agent's own coding of the same sample, one batch, and that again through xz -9.
  const coded = encodeColumns(concatBlocks(columnSample));
  report('model_field_columns_bytes_per_event', coded.pos / columnSample.reduce((n, b) => n + b.count, 0), 2);
  bound('model_field_columns_xz9_bytes_per_event', coded.buf.subarray(0, coded.pos), columnSample);
  const textSample = head(30_000);
  bound('entropy_bound_text_xz9_bytes_per_event', traceText(textSample), textSample);
  return {
    brokers,
    admin,
    kafka,
    container,
    cgroup: containerCgroup(container),
    dir,
    textFile,
    textSha: createHash('sha256').update(text).digest('hex'),
    modelFile,
    modelDigest: digest.hex(),
    modelBound,
    textDigest: textDigest.hex(),
    rawDir: dump.dir,
    pagesDigest: pagesDigest.hex(),
  };
}

const wanted = (name: string) => PATHS.length === 0 || PATHS.some((p) => name.includes(p));

/** Prints each profile's top functions by self time (the newest profiles are the last runs'). */
function printProfiles(): void {
  for (const f of readdirSync(CPU_PROF).filter((x) => x.endsWith('.cpuprofile'))) {
    process.stdout.write(
      `# profile ${f}\n${topSelfTime(join(CPU_PROF, f))
        .map((l) => `#   ${l}\n`)
        .join('')}`,
    );
  }
}

async function main(): Promise<void> {
  if (CPU_PROF) mkdirSync(CPU_PROF, { recursive: true });
  const broker = await startKafka({ heapOpts: '-Xmx1g -Xms512m', startupTimeoutMs: 300_000 });
  let env: Env | undefined;
  try {
    const container = broker.container?.getId();
    if (!container)
      throw new Error(
        'the e2e benchmark reads log segments and CPU from the broker container: unset KAFKA_BROKERS',
      );
    env = await setUp(broker.brokers, container);
    const paths: Array<[string, () => Promise<Result>]> = [
      ['kcat_none', () => kcatPath(env as Env, 'none')],
      ['kcat_lz4', () => kcatPath(env as Env, 'lz4')],
      ['kcat_zstd', () => kcatPath(env as Env, 'zstd')],
    ];
    for (const b of BUILDS) {
      const fleet = (name: string, source: FleetSource, args: string[]) =>
        paths.push([`${name}${b.tag}`, () => fleetPath(env as Env, source, [...AGENT_ARGS, ...args], b)]);
      fleet('fleet_model', SOURCES.model, []);
      fleet('fleet_model_nogzip', SOURCES.model, ['--compression', 'none']);
      fleet('fleet_text', SOURCES.text, []);
      fleet('fleet_pages', SOURCES.pages, []);
    }
    const results = new Map<string, Result[]>();
    // Runs interleave the paths, so load changes on the machine touch each path alike.
    for (let run = 0; run < RUNS; run++) {
      for (const [name, fn] of paths) {
        if (!wanted(name)) continue;
        const r = await fn();
        results.set(name, [...(results.get(name) ?? []), r]);
        process.stdout.write(
          `# run ${run + 1} ${name}: ${Math.round(r.eventsPerS)} events/s, ${r.bytesPerEvent.toFixed(2)} B/event\n`,
        );
      }
    }
    const kcat = [...results]
      .filter(([n]) => n.startsWith('kcat'))
      .map(([, rs]) => medianOf(rs.map((r) => r.eventsPerS)));
    const kcatBest = kcat.length > 0 ? Math.max(...kcat) : undefined;
    if (kcatBest !== undefined) report('kcat_best_events_per_s', kcatBest);
    const kcatZstd = results.get('kcat_zstd');
    for (const [name, rs] of results) {
      reportPath(name, rs, name.startsWith('fleet') ? kcatBest : undefined);
      if (name.startsWith('fleet'))
        report(`${name}_vs_model_xz9_bound`, medianOf(rs.map((r) => r.bytesPerEvent)) / env.modelBound, 2);
      if (name.startsWith('fleet') && kcatZstd)
        report(
          `${name}_vs_kcat_zstd_bytes_per_event`,
          medianOf(rs.map((r) => r.bytesPerEvent)) / medianOf(kcatZstd.map((r) => r.bytesPerEvent)),
          3,
        );
    }
    for (const rate of STEADY_RATES) {
      if (!wanted(`steady_${rate}`)) continue;
      const rs = new Map<string, Awaited<ReturnType<typeof steady>>[]>();
      for (let run = 0; run < RUNS; run++) {
        for (const b of BUILDS) {
          const r = await steady(env, rate, b);
          rs.set(b.tag, [...(rs.get(b.tag) ?? []), r]);
          process.stdout.write(
            `# run ${run + 1} steady_${rate}${b.tag}: agent ${r.cpuPct.toFixed(2)} % of a core, ${r.rssMb.toFixed(1)} MB RSS (${r.anonMb.toFixed(1)} private, ${r.fileMb.toFixed(1)} file pages)\n`,
          );
        }
      }
      for (const [tag, xs] of rs) {
        report(`steady_${rate}${tag}_agent_cpu_pct_of_core`, medianOf(xs.map((r) => r.cpuPct)), 2);
        report(`steady_${rate}${tag}_agent_rss_mb`, medianOf(xs.map((r) => r.rssMb)), 1);
        report(`steady_${rate}${tag}_agent_rss_anon_mb`, medianOf(xs.map((r) => r.anonMb)), 1);
        report(`steady_${rate}${tag}_agent_rss_file_mb`, medianOf(xs.map((r) => r.fileMb)), 1);
        report(`steady_${rate}${tag}_agent_peak_rss_mb`, medianOf(xs.map((r) => r.hwmMb)), 1);
        report(`steady_${rate}${tag}_collector_cpu_pct_of_core`, medianOf(xs.map((r) => r.collectorPct)), 2);
      }
    }
    report('broker_peak_memory_mb', cgroupPeakBytes(env.cgroup) / 2 ** 20, 0);
    if (CPU_PROF) printProfiles();
  } finally {
    await env?.admin.disconnect();
    if (env) rmSync(env.dir, { recursive: true, force: true });
    await broker.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
