// Fleet accounting against a real broker: a simulated fleet (6 hosts, 2 SMMUs x 2 devices and
// 4 processes each) publishes model batches with the collector's BatchPublisher; aggregators
// count them. Totals per host, device, process and kind must equal a per-event count of what was
// published, closed windows must hold exactly their events, and neither replayed batches, nor
// an aggregator crashing mid-stream, nor two instances sharing the partitions may change a number.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { SmmuModel } from '../../agent/src/source/model';
import { Aggregator, defaultAggregatorConfig } from '../../collector/accounting/aggregator';
import { KIND_NAMES, type KindCounts, STRIDE } from '../../collector/accounting/cells';
import {
  type DeviceRow,
  hostRowFromProto,
  type ProcessRow,
  seriesRowFromProto,
} from '../../collector/accounting/query';
import type { SeriesTotalsRow } from '../../collector/accounting/rows';
import { TotalsTopicView } from '../../collector/accounting/totals-view';
import { WIDTHS_NS } from '../../collector/accounting/windows';
import { BatchPublisher } from '../../collector/ingest/publish';
import { ensureTopics, rawTopic } from '../../common/kafka/topics';
import { silentLogger } from '../../common/runtime/log';
import { faultKind, isStall, streamId, substreamId } from '../../common/smmu/record';
import { type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { type Batch, encodeBatch } from '../../proto/batch-codec';
import { timestampNs, WORDS_PER_RECORD } from '../../proto/event-block';
import { smmu } from '../../proto/gen/telemetry';
import { LossReason } from '../../proto/index';
import { modelBatch } from '../support/batches';

const HOSTS = 6;
const EVENTS_PER_HOST = 6000;
const BATCH_EVENTS = 300;

let broker: KafkaBroker;
let kafka: Kafka;
const run = Date.now();
const aggregators: Aggregator[] = [];

before(async () => {
  broker = await startKafka();
  kafka = new Kafka({ clientId: 'accounting-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
});

after(async () => {
  for (const a of aggregators) await a.abort().catch(() => {});
  await broker?.stop();
});

interface Published {
  batch: Batch;
  bytes: Uint8Array;
}

/** Each host's batches in order: model events (250 events/s of simulated time: ~24 s per host). */
function fleet(hostCount = HOSTS): Published[][] {
  return Array.from({ length: hostCount }, (_, h) => {
    const host = `node-${h + 1}`;
    const m = new SmmuModel({
      seed: 100 + h,
      rate: 0,
      clockRate: 250,
      maxEvents: EVENTS_PER_HOST,
      // Hosts start at different times: their windows close independently.
      startTimeNs: 1_700_000_000_000_000_000n + BigInt(h) * 3_700_000_000n,
      topology: { smmus: 2, devicesPerSmmu: 2, processes: 4, devicesPerProcess: 2 },
    });
    const out: Published[] = [];
    while (!m.exhausted) {
      const seq = out.length + 1;
      const batch = modelBatch(host, seq, m.generate(BATCH_EVENTS), {
        // Every fifth batch reports some ring-buffer overruns.
        lost: new Map(seq % 5 === 0 ? [[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, seq]] : []),
      });
      out.push({ batch, bytes: encodeBatch(batch) });
    }
    return out;
  });
}

/** What an exact count of the published batches gives (replays excluded). */
function expected(hosts: Published[][]) {
  const series = new Map<string, number[]>();
  const windows = new Map<string, number[]>();
  const lost = new Map<string, number>();
  const lastNs = new Map<string, bigint>();
  const inc = (m: Map<string, number[]>, k: string, kind: number, stall: boolean) => {
    let c = m.get(k);
    if (!c) {
      c = new Array(STRIDE).fill(0);
      m.set(k, c);
    }
    c[kind]++;
    if (stall) c[4 + kind]++;
  };
  for (const batches of hosts) {
    for (const { batch: b } of batches) {
      for (const [, c] of b.lost) lost.set(b.host, (lost.get(b.host) ?? 0) + c);
      const e = b.events;
      for (let i = 0; i < e.count; i++) {
        const w = i * WORDS_PER_RECORD;
        const key = `${b.host}/${e.smmuNames[e.smmuIndex[i]]}/${streamId(e.words, w)}/${substreamId(e.words, w)}`;
        const kind = faultKind(e.words, w);
        const stall = isStall(e.words, w);
        inc(series, key, kind, stall);
        const ts = timestampNs(e, i);
        if (ts > (lastNs.get(b.host) ?? 0n)) lastNs.set(b.host, ts);
        WIDTHS_NS.forEach((width) => {
          inc(windows, `${key}|${width}|${(ts / BigInt(width)) * BigInt(width)}`, kind, stall);
        });
      }
    }
  }
  return { series, windows, lost, lastNs };
}

function rowCells(r: SeriesTotalsRow): number[] {
  return [...KIND_NAMES.map((k) => r.kinds[k]), ...KIND_NAMES.map((k) => r.stallsByKind[k])];
}

function sortedEntries<T>(m: Map<string, T>): Array<[string, T]> {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

async function publish(topic: string, items: Published[]): Promise<void> {
  const p = new BatchPublisher(kafka, topic);
  await p.connect();
  try {
    await Promise.all(
      items.map((x) => p.publish({ host: x.batch.host, agentId: x.batch.agentId, bytes: x.bytes })),
    );
  } finally {
    await p.disconnect();
  }
}

function aggregator(name: string, overrides: Partial<typeof defaultAggregatorConfig>): Aggregator {
  const a = new Aggregator(
    {
      ...defaultAggregatorConfig,
      brokers: broker.brokers,
      clientId: `accounting-test-${name}`,
      groupId: `agg-${name}-${run}`,
      rawTopic: `raw-${name}-${run}`,
      windowsTopic: `windows-${name}-${run}`,
      totalsTopic: `totals-${name}-${run}`,
      checkpointTopic: `checkpoints-${name}-${run}`,
      httpListen: '127.0.0.1:0',
      topicPartitions: 3,
      checkpointIntervalMs: 300,
      windowGraceMs: 0,
      sessionTimeoutMs: 6000,
      adviceMinFaults: 2,
      ...overrides,
    },
    silentLogger,
  );
  aggregators.push(a);
  return a;
}

/** Waits until the instances together counted `events` events and read every partition to its end. */
async function caughtUp(instances: Aggregator[], events: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sums = instances.map((a) => a.views.summary());
    const counted = sums.reduce((s, x) => s + x.events, 0);
    const lag = sums.flatMap((x) => x.partitions).reduce((s, p) => s + p.lag, 0);
    if (counted === events && lag === 0) return;
    if (counted > events) assert.fail(`counted ${counted} events, more than the ${events} published`);
    if (Date.now() > deadline) assert.fail(`counted ${counted} of ${events} events within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function apiJson<T>(a: Aggregator, path: string): Promise<T> {
  const res = await fetch(`http://${a.httpAddress}${path}`);
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return (await res.json()) as T;
}

/** The totals topic's latest records, once every checkpoint has been published. */
async function readTotals(topic: string) {
  const view = new TotalsTopicView(kafka, topic, silentLogger);
  await view.start();
  try {
    await view.caughtUp();
    const recs = view.records();
    return {
      series: recs.filter((r) => r.series).map((r) => seriesRowFromProto(r.series!)),
      hosts: recs.filter((r) => r.host).map((r) => hostRowFromProto(r.host!)),
    };
  } finally {
    await view.stop();
  }
}

/** Every record of the windows topic, by (key, width, start); repeats must be identical. */
async function readWindows(
  topic: string,
  timeoutMs = 30_000,
): Promise<Map<string, smmu.accounting.v1.WindowRecord>> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = ends.reduce((s, o) => s + Number(o.high), 0);
  const out = new Map<string, smmu.accounting.v1.WindowRecord>();
  const bytes = new Map<string, string>();
  let seen = 0;
  const consumer = kafka.consumer({ groupId: `windows-reader-${Date.now()}-${Math.random()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen++;
      const r = smmu.accounting.v1.WindowRecord.decode(message.value!);
      const w = r.series ?? r.host!;
      const id = `${message.key?.toString()}|${w.width_ns}|${w.start_unix_ns}`;
      const hex = message.value!.toString('hex');
      if (bytes.has(id)) assert.equal(hex, bytes.get(id), `a republished window is identical: ${id}`);
      bytes.set(id, hex);
      out.set(id, r);
    },
  });
  const deadline = Date.now() + timeoutMs;
  while (seen < want && Date.now() < deadline) await sleep(50);
  await consumer.disconnect();
  assert.equal(seen, want, 'read the whole windows topic');
  return out;
}

/**
 * Every window whose end the host's event time passed is published, exactly once in content,
 * with exactly its events; the others are still open. Returns how many closed.
 */
function assertWindows(
  windows: Map<string, smmu.accounting.v1.WindowRecord>,
  exp: ReturnType<typeof expected>,
): number {
  let closed = 0;
  for (const [key, cells] of exp.windows) {
    const [series, width, start] = key.split('|');
    const host = series.split('/')[0];
    const end = BigInt(start) + BigInt(width);
    const rec = windows.get(`${series}|${width}|${start}`)?.series;
    if (end > exp.lastNs.get(host)!) {
      assert.equal(rec, undefined, `${key} is still open`);
      continue;
    }
    closed++;
    assert.ok(rec, `${key} published`);
    assert.equal(BigInt(String(rec.start_unix_ns)) % BigInt(width), 0n, 'window start on a width boundary');
    const got = new Array(STRIDE).fill(0);
    for (const k of rec.kinds ?? []) {
      const kind = k.kind ?? 0;
      got[kind - 1] = Number(k.events);
      got[kind + 3] = Number(k.stalls);
    }
    assert.deepEqual(got, cells, key);
    assert.equal(rec.events_per_s, Number(rec.events) / (Number(width) / 1e9));
  }
  const seriesWindows = [...windows.values()].filter((w) => w.series).length;
  assert.equal(seriesWindows, closed, 'no window beyond the expected ones');
  return closed;
}

function assertTotals(
  rows: { series: SeriesTotalsRow[] },
  exp: ReturnType<typeof expected>,
  what: string,
): void {
  const got = new Map(rows.series.map((r) => [`${r.host}/${r.smmu}/${r.streamId}/${r.ssid}`, rowCells(r)]));
  assert.deepEqual(sortedEntries(got), sortedEntries(exp.series), `${what}: series totals by kind and stall`);
}

test('exact fleet totals and windows despite replays and an aggregator crash mid-stream', {
  timeout: 240_000,
}, async () => {
  const hosts = fleet();
  const exp = expected(hosts);
  const all = hosts.flat();
  const total = all.reduce((s, x) => s + x.batch.events.count, 0);
  assert.equal(total, HOSTS * EVENTS_PER_HOST);
  // Eighths of every host's batches, in order: a host's batches reach Kafka in sequence order.
  const part = (from: number, to: number) =>
    hosts.flatMap((b) => b.slice(Math.floor((b.length * from) / 8), Math.floor((b.length * to) / 8)));
  const q = (i: number) => part(2 * i, 2 * i + 2);
  const count = (xs: Published[]) => xs.reduce((s, x) => s + x.batch.events.count, 0);

  const first = aggregator('fleet', { checkpointIntervalMs: 1500 });
  const c = first.config;
  await ensureTopics(kafka, [rawTopic(c.rawTopic, 4, 1)]);
  // Quarter 1, with the first two batches of every host published twice (an agent resend).
  const replays1 = hosts.flatMap((b) => b.slice(0, 2));
  await publish(c.rawTopic, [...q(0), ...replays1]);
  await first.start();
  await caughtUp([first], count(q(0)));
  // Count quarter 2 in two steps: the first ends with a checkpoint (the interval has passed),
  // the second is counted and then lost in a crash before the next checkpoint.
  await sleep(2000);
  await publish(c.rawTopic, part(2, 3));
  await caughtUp([first], count(part(0, 3)));
  await publish(c.rawTopic, part(3, 4));
  await caughtUp([first], count(part(0, 4)));
  const before = first.views.summary().partitions;
  await first.abort();
  assert.ok(
    before.some((p) => p.nextOffset > p.checkpointedOffset),
    `some counting was not checkpointed when the aggregator stopped: ${JSON.stringify(before)}`,
  );

  // Quarters 3 and 4 while no aggregator runs, with replays of batches from every quarter.
  const replays2 = hosts.flatMap((b) => [b[1], b[Math.floor(b.length / 3)], b[Math.floor(b.length / 2) + 1]]);
  await publish(c.rawTopic, [...q(2), ...replays2, ...q(3)]);
  const second = aggregator('fleet', {});
  await second.start();
  await caughtUp([second], total);
  await sleep(1000); // anything counted twice would show up now
  // The crash recovery path ran: the new instance restored its partitions from checkpoints.
  const restored = (await second.metrics.restores.get()).values.reduce((n, v) => n + v.value, 0);
  assert.ok(restored >= 1, `partitions restored from a checkpoint: ${restored}`);
  const summary = second.views.summary();
  assert.equal(summary.events, total);
  assert.deepEqual(summary.late, { '10s': 0, '1m': 0 }, 'batches arrived in order: nothing late');

  // Totals per series, host, device, process and kind, from the API.
  const series = await apiJson<{ series: SeriesTotalsRow[] }>(second, '/v1/series');
  assertTotals(series, exp, 'API');
  const hostRows = (await apiJson<{ hosts: Array<Record<string, unknown>> }>(second, '/v1/hosts')).hosts;
  assert.deepEqual(
    hostRows.map((h) => [h.host, h.batches, h.events, h.lostEvents, h.replayedBatches]),
    hosts.map((b) => [b[0].batch.host, b.length, EVENTS_PER_HOST, exp.lost.get(b[0].batch.host), 5]),
  );
  const sum = (key: (k: string[]) => string) => {
    const m = new Map<string, number[]>();
    for (const [k, cells] of exp.series) {
      const kk = key(k.split('/'));
      const cur = m.get(kk) ?? new Array(STRIDE).fill(0);
      m.set(
        kk,
        cur.map((v, j) => v + cells[j]),
      );
    }
    return m;
  };
  const kinds = (r: { kinds: KindCounts }) => KIND_NAMES.map((k) => r.kinds[k]);
  const devices = (await apiJson<{ devices: DeviceRow[] }>(second, '/v1/devices')).devices;
  assert.deepEqual(
    sortedEntries(new Map(devices.map((d) => [`${d.host}/${d.smmu}/${d.streamId}`, kinds(d)]))),
    sortedEntries(sum(([h, s, sid]) => `${h}/${s}/${sid}`)).map(([k, c]) => [k, c.slice(0, 4)]),
    'per device',
  );
  const procs = (await apiJson<{ processes: ProcessRow[] }>(second, '/v1/processes')).processes;
  assert.deepEqual(
    sortedEntries(new Map(procs.map((p) => [`${p.host}/${p.ssid}`, [...kinds(p), p.stalls]]))),
    sortedEntries(sum(([h, , , ssid]) => `${h}/${ssid}`)).map(([k, c]) => [
      k,
      [...c.slice(0, 4), c[4] + c[5] + c[6] + c[7]],
    ]),
    'per process',
  );
  assert.ok(procs.length >= HOSTS * 4, 'every host has several processes');
  assert.ok(devices.length >= HOSTS * 4, 'every host has several devices');

  // The totals topic says the same.
  const topic = await readTotals(c.totalsTopic);
  assertTotals(topic, exp, 'totals topic');
  assert.deepEqual(
    topic.hosts.sort((a, b) => (a.host < b.host ? -1 : 1)),
    hostRows,
    'host totals in the topic equal the API',
  );

  // Windows: every window whose end the host's event time passed is published, exactly once in
  // content, with exactly its events; the others are still open.
  const windows = await readWindows(c.windowsTopic);
  const closed = assertWindows(windows, exp);
  assert.ok(closed > HOSTS * 10, `${closed} closed windows`);
  // Host windows: events add up to the host's closed series windows; lost events are all there.
  const hostWin = [...windows.values()].filter((w) => w.host).map((w) => w.host!);
  assert.ok(
    hostWin.some((w) => Number(w.lost_events) > 0),
    'losses appear in host windows',
  );

  // The time-series API shows the closed windows of a series and its open one.
  const someSeries = series.series[0];
  const ts = await apiJson<{ windows: Array<{ closed: boolean; events: number; startUnixNs: string }> }>(
    second,
    `/v1/windows?width=10s&host=${someSeries.host}&smmu=${someSeries.smmu}&streamId=${someSeries.streamId}&ssid=${someSeries.ssid}`,
  );
  assert.ok(ts.windows.length > 0);
  assert.ok(
    ts.windows.every((w, i) => i === 0 || BigInt(w.startUnixNs) > BigInt(ts.windows[i - 1].startUnixNs)),
  );

  // Hot pages and advice exist for the model's processes.
  const advice = await apiJson<{ advice: Array<{ ranges: unknown[]; savedFaults: number }> }>(
    second,
    '/v1/advice',
  );
  assert.ok(advice.advice.length > 0 && advice.advice[0].savedFaults > 0, 'prefault advice');
  const bad = await fetch(`http://${second.httpAddress}/v1/windows?width=5s`);
  assert.equal(bad.status, 400);

  await second.stop();
});

test('two instances in one group split the partitions and count what one instance counts', {
  timeout: 240_000,
}, async () => {
  const hosts = fleet();
  const exp = expected(hosts);
  const all = hosts.flat();
  const total = all.reduce((s, x) => s + x.batch.events.count, 0);
  const single = aggregator('single', {});
  const raw = single.config.rawTopic;
  await ensureTopics(kafka, [rawTopic(raw, 4, 1)]);
  await publish(raw, all.slice(0, Math.floor(all.length / 2)));

  const pairA = aggregator('pair', { rawTopic: raw, clientId: 'pair-a' });
  const pairB = aggregator('pair', { rawTopic: raw, clientId: 'pair-b' });
  await Promise.all([single.start(), pairA.start()]);
  await sleep(500);
  await pairB.start(); // joins while pairA is counting: partitions move
  await publish(raw, all.slice(Math.floor(all.length / 2)));
  await caughtUp([single], total);
  await caughtUp([pairA, pairB], total);
  // The group settles with every partition held by exactly one of the two.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const a = pairA.views.summary().assignedPartitions;
    const b = pairB.views.summary().assignedPartitions;
    if (a.length > 0 && b.length > 0 && [...a, ...b].sort().join() === '0,1,2,3') break;
    assert.ok(Date.now() < deadline, `partitions split: ${a} / ${b}`);
    await sleep(200);
  }
  await caughtUp([pairA, pairB], total);
  await Promise.all([single.stop(), pairA.stop(), pairB.stop()]);

  const one = await readTotals(single.config.totalsTopic);
  const two = await readTotals(pairA.config.totalsTopic);
  assertTotals(one, exp, 'one instance');
  assertTotals(two, exp, 'two instances');
  const byHost = (rows: typeof one.hosts) => rows.sort((a, b) => (a.host < b.host ? -1 : 1));
  assert.deepEqual(byHost(two.hosts), byHost(one.hosts));
});

/** Waits until the instances hold partitions 0..n-1 between them, each one some, none twice. */
async function split(instances: Aggregator[], n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const held = instances.map((a) => a.views.summary().assignedPartitions);
    const all = held.flat().sort((x, y) => x - y);
    if (held.every((h) => h.length > 0) && all.join() === Array.from({ length: n }, (_, i) => i).join())
      return;
    assert.ok(Date.now() < deadline, `partitions held: ${JSON.stringify(held)}`);
    await sleep(200);
  }
}

test('12 raw partitions, three instances, one killed mid-stream and started again: exact totals and windows', {
  timeout: 300_000,
}, async () => {
  const hosts = fleet(24);
  const exp = expected(hosts);
  const count = (xs: Published[]) => xs.reduce((s, x) => s + x.batch.events.count, 0);
  const piece = (i: number, n: number) =>
    hosts.flatMap((b) => b.slice(Math.floor((b.length * i) / n), Math.floor((b.length * (i + 1)) / n)));
  const quarter = (i: number) => piece(i, 4);
  const total = count(hosts.flat());
  const instance = (id: string, interval = 500) =>
    aggregator('scale', { clientId: `scale-${id}`, topicPartitions: 12, checkpointIntervalMs: interval });
  // b checkpoints a partition at its first flush, then not for a minute: its kill loses counted work.
  const [a, b, c] = [instance('a'), instance('b', 60_000), instance('c')];
  const raw = a.config.rawTopic;
  await ensureTopics(kafka, [rawTopic(raw, 12, 1)]);
  await publish(raw, quarter(0));
  await Promise.all([a.start(), b.start(), c.start()]);
  await split([a, b, c], 12);
  await caughtUp([a, b, c], count(quarter(0)));

  // Quarter 1 in two eighths: a partition b took over (after a rebalance) checkpoints at its first
  // flush, which may hold all of one piece; the second piece then stays uncheckpointed.
  await publish(raw, piece(2, 8));
  await caughtUp([a, b, c], count([...quarter(0), ...piece(2, 8)]));
  await publish(raw, piece(3, 8));
  await caughtUp([a, b, c], count([...quarter(0), ...quarter(1)]));
  const lostWork = b.views.summary().partitions.filter((p) => p.nextOffset > p.checkpointedOffset);
  assert.ok(lostWork.length > 0, 'b counted work it never checkpointed');
  await b.abort(); // first rebalance: a and c take b's partitions and restore them
  await publish(raw, quarter(2));
  await split([a, c], 12);
  const b2 = instance('b');
  await b2.start(); // second rebalance
  await publish(raw, quarter(3));
  await split([a, b2, c], 12);
  await caughtUp([a, b2, c], total);
  await sleep(1000); // anything counted twice would show up now
  await caughtUp([a, b2, c], total);
  const restored = await Promise.all(
    [a, c, b2].map(async (x) => (await x.metrics.restores.get()).values.reduce((n, v) => n + v.value, 0)),
  );
  assert.ok(
    restored[0] + restored[1] > 0 && restored[2] > 0,
    `partitions restored from checkpoints: ${restored}`,
  );
  await Promise.all([a.stop(), b2.stop(), c.stop()]);

  const topic = await readTotals(a.config.totalsTopic);
  assertTotals(topic, exp, '12 partitions, 3 instances');
  assert.deepEqual(
    topic.hosts.map((h) => [h.host, h.events, h.replayedBatches]).sort(),
    hosts.map((x) => [x[0].batch.host, EVENTS_PER_HOST, 0]).sort(),
    'host totals',
  );
  const closed = assertWindows(await readWindows(a.config.windowsTopic), exp);
  assert.ok(closed > 24 * 10, `${closed} closed windows`);
});

test('partitions added under a running aggregator: counting stops at the first misplaced batch, with the reason', {
  timeout: 240_000,
}, async () => {
  // Kafka's default partitioner, 4 -> 6 partitions: node-4 stays in 0; node-6 moves from 3 to
  // 1, node-2 and node-3 from 1 to 3, node-1 from 2 to 4, node-5 from 3 to 5 (test/unit/raw-layout.test.ts).
  const hosts = fleet();
  const half = (i: number) =>
    hosts.flatMap((b) => b.slice(Math.floor((b.length * i) / 2), Math.floor((b.length * (i + 1)) / 2)));
  const count = (xs: Published[]) => xs.reduce((s, x) => s + x.batch.events.count, 0);
  const g = aggregator('grow', { topicPartitions: 4 });
  const raw = g.config.rawTopic;
  await ensureTopics(kafka, [rawTopic(raw, 4, 1)]);
  await publish(raw, half(0));
  await g.start();
  await caughtUp([g], count(half(0)));
  await sleep(500); // a checkpoint records the 4 partitions

  const admin = kafka.admin();
  await admin.connect();
  await admin.createPartitions({ topicPartitions: [{ topic: raw, count: 6 }] });
  await admin.disconnect();
  await publish(raw, half(1));
  // Counted: everything before the growth, and node-4's later batches (still in partition 0).
  const node4 = hosts[3];
  const want = count(half(0)) + count(node4.slice(Math.floor(node4.length / 2)));
  const stopped = async (x: Aggregator) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const res = await fetch(`http://${x.httpAddress}/readyz`);
      const body = await res.text();
      // Partitions 1 and 3 received moved hosts: they wait at the first of those.
      const waiting = x.views
        .summary()
        .partitions.filter((p) => p.lag > 0)
        .map((p) => p.partition);
      // (4 and 5, new, wait too once the consumer has seen them; 0 and 2 count on.)
      const ok =
        res.status === 503 &&
        body.includes('growing the raw topic') &&
        waiting.includes(1) &&
        waiting.includes(3) &&
        !waiting.includes(0) &&
        !waiting.includes(2);
      if (ok && x.views.summary().events === want) return body;
      assert.ok(
        Date.now() < deadline,
        `readyz ${res.status} ${body}; counted ${x.views.summary().events} of ${want}; waiting ${waiting}`,
      );
      await sleep(200);
    }
  };
  const reason = await stopped(g);
  assert.match(
    reason,
    /counting of partition [13] stopped: host node-[236] at offset \d+ belongs in partition [13] of 4/,
  );
  const rows = new Map(g.views.hostRows().map((r) => [r.host, r.events]));
  assert.deepEqual(
    hosts.map((b) => [b[0].batch.host, rows.get(b[0].batch.host)]),
    hosts.map((b) => [
      b[0].batch.host,
      b[0].batch.host === 'node-4' ? EVENTS_PER_HOST : count(b.slice(0, Math.floor(b.length / 2))),
    ]),
    'hosts counted up to the growth, node-4 (not moved) to the end',
  );
  await g.stop();

  // A restart restores the checkpoints (built with 4) and stops at the same batches again.
  const again = aggregator('grow', {});
  await again.start();
  await stopped(again);
  await again.stop();
});
