// `smmu-agent loadgen` against a real collector and Kafka: N streams with distinct hosts from
// one process arrive exactly, each host with the events its stream generated, whether the run
// ends by --max-events (a known count) or by --duration (the count the summary reports).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadgenSummary } from '../../agent/src/loadgen/loadgen';
import { type KafkaCollector, startKafkaCollector } from '../support/kafka-collector';
import { Proc } from '../support/processes';
import { rawTopicTotals } from '../support/raw-totals';

const topic = `loadgen-${Date.now()}`;
let kc: KafkaCollector;

before(async () => {
  kc = await startKafkaCollector(topic, 1);
});

after(async () => {
  await kc?.stop();
});

/** Runs loadgen to its end; returns its exit code and summary. */
async function loadgen(args: string[]): Promise<{ code: number | null; summary: LoadgenSummary; p: Proc }> {
  const p = new Proc('loadgen', 'agent/src/cli.js', [
    'loadgen',
    ...['--collector', kc.collector.address, '--http-listen', '', '--batch-max-delay-ms', '100'],
    ...args,
  ]);
  const code = await Promise.race([p.exited, sleep(90_000).then(() => p.kill())]);
  const line = p.log.find((l) => l.startsWith('{"streams"'));
  assert.ok(line, `loadgen printed its summary; its log:\n${p.tail()}`);
  return { code, summary: JSON.parse(line), p };
}

/** Events and losses per host in the raw topic once `want` events arrived (or 60 s passed). */
async function kafkaEventsByHost(want: number): Promise<Record<string, [number, number]>> {
  const { totals, malformed } = await rawTopicTotals(kc.broker.brokers, topic, want);
  assert.equal(malformed, 0);
  return Object.fromEntries(totals.hostRows().map((h) => [h.host, [h.events, h.lost]]));
}

test('20 streams to --max-events: every host arrives with exactly its events', {
  timeout: 180_000,
}, async () => {
  const { code, summary, p } = await loadgen([
    ...['--streams', '20', '--host', 'lg-a', '--rate', '500', '--max-events', '1000', '--duration', '60'],
  ]);
  assert.equal(code, 0, p.tail());
  assert.equal(summary.streams, 20);
  assert.equal(summary.events, 20_000);
  assert.equal(summary.drainedStreams, 20);
  assert.equal(summary.lostEvents + summary.reportedLost + summary.failedStreams, 0);
  assert.ok(summary.ackLatencyMs.p50 > 0 && summary.ackLatencyMs.p99 >= summary.ackLatencyMs.p50);
  const want = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`lg-a-${i + 1}`, 1000]));
  assert.deepEqual(summary.perStream, want);
  const got = await kafkaEventsByHost(20_000);
  assert.deepEqual(got, Object.fromEntries(Object.keys(want).map((h) => [h, [1000, 0]])));
});

test('10 streams for --duration 2 s: Kafka holds what each stream generated', {
  timeout: 180_000,
}, async () => {
  const { code, summary, p } = await loadgen([
    '--streams',
    '10',
    '--host',
    'lg-b',
    '--rate',
    '200',
    '--duration',
    '2',
  ]);
  assert.equal(code, 0, p.tail());
  assert.equal(summary.drainedStreams, 10);
  const hosts = Object.keys(summary.perStream);
  assert.equal(hosts.length, 10);
  // The model's faults come in bursts, so 2 s at 200 events/s is some hundreds per stream.
  for (const h of hosts) assert.ok(summary.perStream[h] > 0, `${h}: ${summary.perStream[h]}`);
  assert.equal(
    summary.events,
    hosts.reduce((s, h) => s + summary.perStream[h], 0),
  );
  const got = await kafkaEventsByHost(20_000 + summary.events);
  for (const h of hosts) assert.deepEqual(got[h], [summary.perStream[h], 0], h);
});
