// The consumer contract of the aggregate topics and the query surface, end to end with the real
// programs: `smmu-fleet aggregate` runs as a daemon process; its windows, totals and checkpoint
// topics are read with kcat and decoded with protoc and nothing but the .proto; `smmu-fleet top`
// (from the API and from the totals topic) and `smmu-fleet advise` show the numbers the API and
// the totals topic hold.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { SmmuModel } from '../../agent/src/source/model';
import { fleetSummary, type ProcessRow, processRows } from '../../collector/accounting/query';
import type { HostTotalsRow, SeriesTotalsRow } from '../../collector/accounting/rows';
import type { TopFrame } from '../../collector/accounting/table';
import { BatchPublisher } from '../../collector/ingest/publish';
import { ensureTopics, rawTopic } from '../../common/kafka/topics';
import { freePort, type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { encodeBatch } from '../../proto/batch-codec';
import { LossReason } from '../../proto/index';
import { modelBatch } from '../support/batches';
import { repoRoot } from '../support/paths';

const run = promisify(execFile);
const CLI = join(__dirname, '..', '..', 'collector', 'accounting', 'cli.js');
const PROTO = join(repoRoot(), 'proto');
const id = Date.now();
const topics = {
  raw: `contract-raw-${id}`,
  windows: `contract-windows-${id}`,
  totals: `contract-totals-${id}`,
  checkpoints: `contract-checkpoints-${id}`,
};

let broker: KafkaBroker;
let kafka: Kafka;
let daemon: ChildProcess | undefined;
let api = '';
let stderr = '';
let expectedEvents = 0;

function startDaemon(port: number): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'aggregate',
      '--kafka-brokers',
      broker.brokers.join(','),
      '--raw-topic',
      topics.raw,
      '--windows-topic',
      topics.windows,
      '--totals-topic',
      topics.totals,
      '--checkpoint-topic',
      topics.checkpoints,
      '--group-id',
      `contract-${id}`,
      '--topic-partitions',
      '2',
      '--http-listen',
      `127.0.0.1:${port}`,
      '--checkpoint-interval-ms',
      '300',
      '--window-grace-ms',
      '0',
      '--session-timeout-ms',
      '6000',
      '--min-faults',
      '2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return child;
}

async function get<T>(path: string): Promise<T> {
  const res = await fetch(`${api}${path}`);
  assert.equal(res.status, 200, `${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

before(async () => {
  broker = await startKafka();
  kafka = new Kafka({ clientId: 'contract-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  await ensureTopics(kafka, [rawTopic(topics.raw, 3, 1)]);
  // Five hosts, two SMMUs x two devices and three processes each, 2500 events per host.
  const publisher = new BatchPublisher(kafka, topics.raw);
  await publisher.connect();
  const sends: Promise<void>[] = [];
  for (let h = 1; h <= 5; h++) {
    const host = `host-${h}`;
    const m = new SmmuModel({
      seed: h,
      rate: 0,
      clockRate: 200,
      maxEvents: 2500,
      topology: { smmus: 2, devicesPerSmmu: 2, processes: 3, devicesPerProcess: 2 },
    });
    for (let seq = 1; !m.exhausted; seq++) {
      const b = modelBatch(host, seq, m.generate(250), {
        epoch: 7,
        lost: new Map(seq === 2 ? [[LossReason.LOSS_REASON_SPOOL_FULL, 11]] : []),
      });
      expectedEvents += b.events.count;
      sends.push(publisher.publish({ host, agentId: b.agentId, bytes: encodeBatch(b) }));
    }
  }
  await Promise.all(sends);
  await publisher.disconnect();

  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  daemon = startDaemon(port);
  const deadline = Date.now() + 90_000;
  for (;;) {
    const s = await fetch(`${api}/v1/summary`)
      .then((r) =>
        r.ok ? (r.json() as Promise<{ events: number; partitions: Array<{ lag: number }> }>) : null,
      )
      .catch(() => null);
    if (s && s.events === expectedEvents && s.partitions.every((p) => p.lag === 0)) break;
    if (daemon.exitCode !== null) throw new Error(`aggregator exited ${daemon.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`aggregator not caught up: ${JSON.stringify(s)} ${stderr}`);
    await sleep(200);
  }
  await sleep(1000); // the idle checkpoint publishes the last totals
});

after(async () => {
  if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
  await broker?.stop();
});

/** Every message of a topic as kcat lists it: partition, offset, key and headers. */
async function kcatList(
  topic: string,
): Promise<Array<{ p: number; o: number; key: string; headers: string }>> {
  const { stdout } = await run(
    'kcat',
    ['-C', '-b', broker.brokers[0], '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p\t%o\t%k\t%h\n'],
    { maxBuffer: 64 << 20 },
  );
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [p, o, key, headers] = l.split('\t');
      return { p: Number(p), o: Number(o), key, headers };
    });
}

/** One message's value read with kcat, decoded with protoc from the .proto alone. */
function kcatDecode(topic: string, p: number, o: number, type: string): string {
  const value = execFileSync(
    'kcat',
    [
      '-C',
      '-b',
      broker.brokers[0],
      '-t',
      topic,
      '-p',
      String(p),
      '-o',
      String(o),
      '-c',
      '1',
      '-e',
      '-q',
      '-f',
      '%s',
    ],
    { maxBuffer: 64 << 20 },
  );
  return execFileSync(
    'protoc',
    [`--decode=${type}`, `--proto_path=${PROTO}`, 'smmu/accounting/v1/accounting.proto'],
    { input: value },
  ).toString();
}

test('the totals, windows and checkpoint topics decode with kcat, protoc and the .proto', {
  timeout: 60_000,
}, async () => {
  const hosts = (await get<{ hosts: HostTotalsRow[] }>('/v1/hosts')).hosts;
  const series = (await get<{ series: SeriesTotalsRow[] }>('/v1/series')).series;

  const totals = await kcatList(topics.totals);
  // The newest record of a host key and of a series key.
  const last = (key: string) => totals.filter((m) => m.key === key).sort((a, b) => b.o - a.o)[0];
  const h = hosts[0];
  const hostMsg = last(h.host);
  assert.ok(hostMsg, `a totals record keyed ${h.host}`);
  assert.match(
    hostMsg.headers,
    /content-type=application\/x-protobuf; messageType=smmu\.accounting\.v1\.TotalsRecord/,
  );
  assert.match(hostMsg.headers, /schema-version=1/);
  assert.match(hostMsg.headers, /record-type=host/);
  const hostText = kcatDecode(topics.totals, hostMsg.p, hostMsg.o, 'smmu.accounting.v1.TotalsRecord');
  assert.match(hostText, new RegExp(`host: "${h.host}"`));
  assert.match(hostText, new RegExp(`\\n  events: ${h.events}\\n`));
  assert.match(hostText, new RegExp(`batches: ${h.batches}\\n`));
  assert.match(hostText, /reason: LOSS_REASON_SPOOL_FULL\n\s+count: 11/);
  assert.match(hostText, /kind: FAULT_KIND_TRANSLATION/);

  const s = series[0];
  const key = `${s.host}/${s.smmu}/${s.streamId}/${s.ssid}`;
  const seriesMsg = last(key);
  assert.ok(seriesMsg, `a totals record keyed ${key}`);
  assert.match(seriesMsg.headers, /record-type=series/);
  const seriesText = kcatDecode(topics.totals, seriesMsg.p, seriesMsg.o, 'smmu.accounting.v1.TotalsRecord');
  assert.match(seriesText, new RegExp(`stream_id: ${s.streamId}\\n`));
  assert.match(seriesText, new RegExp(`\\n  events: ${s.events}\\n`));
  assert.match(seriesText, new RegExp(`raw_topic: "${topics.raw}"`));
  assert.doesNotMatch(seriesText, /stall_time_ns/, 'stall time is unknown, not zero');

  const windows = await kcatList(topics.windows);
  const seriesWin = windows.find((m) => m.key.includes('/'));
  assert.ok(seriesWin, 'a series window');
  assert.match(seriesWin.headers, /messageType=smmu\.accounting\.v1\.WindowRecord/);
  const winText = kcatDecode(topics.windows, seriesWin.p, seriesWin.o, 'smmu.accounting.v1.WindowRecord');
  const start = BigInt(winText.match(/start_unix_ns: (\d+)/)![1]);
  const width = BigInt(winText.match(/width_ns: (\d+)/)![1]);
  assert.ok(width === 10_000_000_000n || width === 60_000_000_000n);
  assert.equal(start % width, 0n);
  assert.match(winText, /events_per_s: /);

  const ckpt = await kcatList(topics.checkpoints);
  assert.ok(ckpt.length > 0);
  assert.match(ckpt[0].key, new RegExp(`^contract-${id}/${topics.raw}/\\d+$`));
  assert.match(ckpt[0].headers, /next-offset=\d+/);
  const ckptText = kcatDecode(
    topics.checkpoints,
    ckpt[0].p,
    ckpt[0].o,
    'smmu.accounting.v1.PartitionCheckpoint',
  );
  assert.match(ckptText, new RegExp(`raw_topic: "${topics.raw}"`));
});

function cli(args: string[]): Promise<string> {
  return run(process.execPath, [CLI, ...args], { timeout: 60_000, maxBuffer: 16 << 20 }).then(
    (r) => r.stdout,
  );
}

const comparable = (rows: ProcessRow[]) =>
  rows
    .map((r) => ({
      host: r.host,
      ssid: r.ssid,
      events: r.events,
      kinds: r.kinds,
      stalls: r.stalls,
      devices: r.devices,
    }))
    .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.ssid - b.ssid));

test('top from the API, top from the totals topic and the API show the same numbers', {
  timeout: 90_000,
}, async () => {
  const apiProcs = (await get<{ processes: ProcessRow[] }>('/v1/processes')).processes;
  const apiHosts = (await get<{ hosts: HostTotalsRow[] }>('/v1/hosts')).hosts;
  const apiSeries = (await get<{ series: SeriesTotalsRow[] }>('/v1/series')).series;
  assert.equal(
    apiProcs.reduce((s, p) => s + p.events, 0),
    expectedEvents,
  );
  assert.deepEqual(comparable(processRows(apiSeries)), comparable(apiProcs), 'processes are sums of series');

  const fromApi = JSON.parse(
    await cli(['top', '--api-url', api, '--count', '1', '--format', 'json']),
  ) as TopFrame;
  const fromTopic = JSON.parse(
    await cli([
      'top',
      '--source',
      'topic',
      '--kafka-brokers',
      broker.brokers.join(','),
      '--totals-topic',
      topics.totals,
      '--count',
      '1',
      '--format',
      'json',
    ]),
  ) as TopFrame;
  assert.deepEqual(comparable(fromApi.processes), comparable(apiProcs), 'top --source api');
  assert.deepEqual(comparable(fromTopic.processes), comparable(apiProcs), 'top --source topic');
  assert.deepEqual(fromApi.summary, fleetSummary(apiHosts));
  assert.deepEqual(fromTopic.summary, fromApi.summary);
  assert.equal(fromTopic.summary.events, expectedEvents);
  assert.equal(fromTopic.summary.lostEvents, 5 * 11);
  assert.ok(fromApi.processes.length >= 15, 'five hosts with three processes each');

  // The table: two frames, the second with rates (vmstat style).
  const table = await cli(['top', '--api-url', api, '--count', '2', '--interval-ms', '200']);
  assert.match(table, /HOST\s+SSID\s+faults\/s\s+trans\/s/);
  assert.match(table, new RegExp(`fleet: 5 hosts, \\d+ series, ${expectedEvents} faults`));

  const advice = JSON.parse(await cli(['advise', '--api-url', api, '--min-faults', '2', '--format', 'json']));
  const apiAdvice = await get<{ advice: unknown[] }>('/v1/advice?minFaults=2');
  assert.deepEqual(advice.advice, apiAdvice.advice);
  assert.ok(advice.advice.length > 0, 'hot ranges found');
  const adviceTable = await cli(['advise', '--api-url', api, '--min-faults', '2']);
  assert.match(adviceTable, /MADV_POPULATE_(READ|WRITE)/);
});

test('totals prints the raw topic counts once drained and exits at once', { timeout: 60_000 }, async () => {
  // Default --idle-ms (3 s): its clock starts before the consumer group has joined.
  const args = ['totals', '--kafka-brokers', broker.brokers.join(','), '--raw-topic', topics.raw];
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let printedAt = 0;
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (/^}\n?$/m.test(out)) printedAt ||= Date.now();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const exitedAt = Date.now();
  assert.equal(code, 0);
  const totals = JSON.parse(out) as { hosts: Array<{ events: number; lost: number }> };
  assert.equal(
    totals.hosts.reduce((s, h) => s + h.events, 0),
    expectedEvents,
  );
  assert.equal(
    totals.hosts.reduce((s, h) => s + h.lost, 0),
    5 * 11,
  );
  // Leaving the consumer group used to wait for kafkajs's 5 s fetch.
  assert.ok(exitedAt - printedAt < 1500, `exited ${exitedAt - printedAt} ms after printing`);
});

test('the aggregator daemon stops on SIGTERM after a last checkpoint', { timeout: 60_000 }, async () => {
  const d = daemon!;
  const exited = new Promise<number | null>((resolve) => d.once('exit', (code) => resolve(code)));
  d.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.doesNotMatch(stderr, /"level":(50|60)/, 'no errors logged');
});
