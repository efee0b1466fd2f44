// Boundary values end to end: a real collector (gRPC) publishes to a real broker, aggregators
// count the raw topic and serve the JSON API. 64-bit epochs and sequences stay exact (acks,
// dedup keys, checkpoints, JSON), absurd loss counts are refused with INVALID_ARGUMENT and a
// counted reason, a host's year-2255 timestamp does not make its later events late, a reused
// sequence with other content is reported as a conflict, and a restarted aggregator restores
// every partition before it says it is ready, on a topic where nothing new arrives.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { credentials, status } from '@grpc/grpc-js';
import Long from 'long';
import { Aggregator, defaultAggregatorConfig } from '../../collector/accounting/aggregator';
import type { HostTotalsRow } from '../../collector/accounting/rows';
import { Collector, defaultCollectorConfig } from '../../collector/ingest/collector';
import { silentLogger } from '../../common/runtime/log';
import { type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { type Batch, encodeBatch } from '../../proto/batch-codec';
import { type EventBlock, EventBlockBuilder } from '../../proto/event-block';
import { type LossReason, v1 } from '../../proto/index';
import { modelBatch } from '../support/batches';
import { exchange } from '../support/ingest-stream';

const M64 = 2n ** 64n - 1n;
const P53 = 2n ** 53n;
const S = 1_000_000_000n;
const run = Date.now();
const raw = `exact-raw-${run}`;
const insecure = credentials.createInsecure();

let broker: KafkaBroker;
let collector: Collector;
const aggregators: Aggregator[] = [];

before(async () => {
  broker = await startKafka();
  collector = new Collector(
    {
      ...defaultCollectorConfig,
      listen: '127.0.0.1:0',
      httpListen: '',
      brokers: broker.brokers,
      rawTopic: raw,
      topicPartitions: 2,
      maxBatchesPerSecond: 0,
    },
    silentLogger,
  );
  await collector.start();
});

after(async () => {
  for (const a of aggregators) await a.abort().catch(() => {});
  await collector?.stop(500);
  await broker?.stop();
});

/** Events 1 ms apart from t0 (StreamID sid). */
function events(n: number, t0: bigint, sid = 5): EventBlock {
  const b = new EventBlockBuilder();
  for (let i = 0; i < n; i++) {
    b.push(t0 + BigInt(i) * 1_000_000n, 'smmu0', [0x10n | (BigInt(sid) << 32n), 0n, BigInt(i) << 12n, 0n]);
  }
  return b.finish();
}

async function send(...batches: Array<Batch | Uint8Array>) {
  return exchange(
    collector.address,
    insecure,
    batches.map((b) => (b instanceof Uint8Array ? b : encodeBatch(b))),
  );
}

async function rejected(reason: string): Promise<number> {
  return (await collector.metrics.rejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

function aggregator(name: string): Aggregator {
  const a = new Aggregator(
    {
      ...defaultAggregatorConfig,
      brokers: broker.brokers,
      clientId: `exact-${name}`,
      groupId: `exact-agg-${run}`,
      rawTopic: raw,
      windowsTopic: `exact-windows-${run}`,
      totalsTopic: `exact-totals-${run}`,
      checkpointTopic: `exact-checkpoints-${run}`,
      httpListen: '127.0.0.1:0',
      topicPartitions: 2,
      checkpointIntervalMs: 300,
      windowGraceMs: 0,
      sessionTimeoutMs: 6000,
    },
    silentLogger,
  );
  aggregators.push(a);
  return a;
}

async function hosts(a: Aggregator): Promise<Map<string, HostTotalsRow>> {
  const res = await fetch(`http://${a.httpAddress}/v1/hosts`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { hosts: HostTotalsRow[] };
  return new Map(body.hosts.map((h) => [h.host, h]));
}

/** Waits until the aggregator read both partitions to their end and counted `batches` batches. */
async function caughtUp(a: Aggregator, batches: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = a.views.summary();
    const seen = s.batches + s.replayedBatches + s.conflictingBatches;
    const lag = s.partitions.reduce((n, p) => n + p.lag, 0);
    if (seen === batches && lag === 0 && s.partitions.length === 2) return;
    if (Date.now() > deadline) assert.fail(`saw ${seen} of ${batches} batches within ${timeoutMs} ms`);
    await sleep(100);
  }
}

const pick = (h: HostTotalsRow | undefined) =>
  h && [h.batches, h.events, h.replayedBatches, h.conflictingBatches, h.conflictingEvents];

test('64-bit identities, bounded losses, bad clocks and conflicts: exact through collector and aggregator', {
  timeout: 180_000,
}, async () => {
  const now = BigInt(Date.now()) * 1_000_000n;
  const t0 = now - 600n * S;
  // Two epochs of one agent that agree in their first 53 bits.
  const a1 = modelBatch('node-a', 1, events(100, t0), { epoch: 2n ** 60n + 1n });
  const a2 = modelBatch('node-a', 1, events(100, t0 + S), { epoch: 2n ** 60n + 2n });
  assert.deepEqual((await send(a1, a2)).acks, [1n, 1n]);
  // Sequences beyond 2^53 and the largest epoch: acknowledged exactly.
  const b1 = modelBatch('node-b', 1, events(10, t0), { epoch: M64, sequence: P53 + 1n });
  const b2 = modelBatch('node-b', 1, events(10, t0 + S), { epoch: M64, sequence: M64 });
  const bs = await send(b1, b2);
  assert.deepEqual([bs.code, bs.acks], [status.OK, [P53 + 1n, M64]]);
  // Losses nobody can count exactly are refused, each with its reason.
  const lossOnly = (reason: number, count: bigint) =>
    v1.EventBatch.encode({
      agent: { host: 'node-x', agent_id: 'node-x-agent', epoch: 1 },
      sequence: 1,
      lost: [{ reason, count: Long.fromString(count.toString(), true) }],
    }).finish();
  const [lostBefore, reasonBefore] = [
    await rejected('lost_out_of_range'),
    await rejected('loss_reason_out_of_range'),
  ];
  for (const count of [2n ** 63n, M64]) {
    const r = await send(lossOnly(1, count));
    assert.deepEqual(
      [r.code, r.details, r.acks],
      [
        status.INVALID_ARGUMENT,
        `malformed batch: ${count} events lost for reason 1 exceed the limit of 4294967295 per batch`,
        [],
      ],
    );
  }
  const r300 = await send(lossOnly(300, 1n));
  assert.deepEqual(
    [r300.code, r300.details],
    [status.INVALID_ARGUMENT, 'malformed batch: loss reason 300 outside 0..255'],
  );
  assert.equal((await rejected('lost_out_of_range')) - lostBefore, 2);
  assert.equal((await rejected('loss_reason_out_of_range')) - reasonBefore, 1);
  // A host whose clock jumped to 2255 for one batch, then 400 normal events over 40 s.
  const c = [modelBatch('node-c', 1, events(1, 8_990_000_000n * S))];
  for (let i = 0; i < 4; i++) c.push(modelBatch('node-c', 2 + i, events(100, t0 + BigInt(i) * 10n * S)));
  assert.equal((await send(...c)).acks.length, 5);
  // The same triple with other content (both acked: the collector keeps no state), and an
  // unknown loss reason.
  const d1 = modelBatch('node-d', 1, events(5, t0));
  const d1other = modelBatch('node-d', 1, events(7, t0, 9));
  const d2 = modelBatch('node-d', 2, events(0, t0), { lost: new Map([[77 as LossReason, 3]]) });
  assert.deepEqual((await send(d1, d1other, d2)).acks, [1n, 1n, 2n]);

  const first = aggregator('first');
  await first.start();
  await caughtUp(first, 2 + 2 + 5 + 3);
  let h = await hosts(first);
  assert.deepEqual(pick(h.get('node-a')), [2, 200, 0, 0, 0], 'two epochs, two agents');
  assert.deepEqual(pick(h.get('node-b')), [2, 20, 0, 0, 0]);
  assert.equal(h.has('node-x'), false, 'refused batches never reach the topic');
  const nodeC = h.get('node-c')!;
  assert.deepEqual(
    [nodeC.events, nodeC.outOfRangeEvents, nodeC.late],
    [401, 1, { '10s': 0, '1m': 0 }],
    'the year-2255 event is held apart; no later event is late',
  );
  assert.equal(nodeC.lastEventUnixNs, String(t0 + 30n * S + 99n * 1_000_000n));
  assert.deepEqual(pick(h.get('node-d')), [2, 5, 0, 1, 7], 'the conflict is counted with its events');
  assert.deepEqual(h.get('node-d')!.lost, { LOSS_REASON_UNKNOWN_77: 3 });
  const conflicts = (await first.metrics.batches.get()).values.find((v) => v.labels.result === 'conflict');
  assert.equal(conflicts?.value, 1);
  await first.stop();

  // After a restart: the largest epoch's batch resent is a replay, not a second count.
  assert.deepEqual((await send(b2)).acks, [M64]);
  const second = aggregator('second');
  await second.start();
  await caughtUp(second, 2 + 2 + 5 + 3 + 1);
  h = await hosts(second);
  assert.deepEqual(pick(h.get('node-b')), [2, 20, 1, 0, 0]);
  assert.deepEqual(pick(h.get('node-a')), [2, 200, 0, 0, 0]);
  assert.equal(h.get('node-c')!.outOfRangeEvents, 1);
  const s = second.views.summary();
  assert.deepEqual(
    [s.hosts, s.events, s.lostEvents, s.outOfRangeEvents, s.conflictingBatches, s.conflictingEvents],
    [4, 626, 3, 1, 1, 7],
  );
  await second.stop();
});

test('a restarted aggregator on a quiet topic is ready only with every partition restored', {
  timeout: 120_000,
}, async () => {
  const third = aggregator('third');
  const polls: string[] = [];
  const started = third.start();
  // Poll /readyz until it says ready (bounded); whenever it does, the hosts must be there.
  await started;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`http://${third.httpAddress}/readyz`);
    polls.push(String(res.status));
    if (res.status === 200) break;
    assert.equal(res.status, 503);
    if (Date.now() > deadline) assert.fail(`not ready within 60 s: ${polls.join(',')}`);
    await sleep(50);
  }
  const res = await fetch(`http://${third.httpAddress}/v1/summary`);
  const s = (await res.json()) as { hosts: number; events: number; assignedPartitions: number[] };
  assert.deepEqual([s.hosts, s.events, s.assignedPartitions], [4, 626, [0, 1]]);
  await third.stop();
});
