// The walking skeleton end to end, with real parts: model agents -> gRPC -> collector ->
// Apache Kafka -> accounting consumer group. Totals must equal what the agents generated.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { agentMetrics } from '../../agent/src/metrics';
import { AgentPipeline } from '../../agent/src/pipeline';
import { SmmuModelSource } from '../../agent/src/source/model';
import { MemorySpool } from '../../agent/src/spool/memory-spool';
import { BatchConsumer } from '../../collector/accounting/consume';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { Collector, defaultCollectorConfig } from '../../collector/ingest/collector';
import { silentLogger } from '../../common/runtime/log';
import { eventName } from '../../common/smmu/event-ids';
import { eventId } from '../../common/smmu/record';
import { type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { decodeBatch } from '../../proto/batch-codec';
import { type EventBlock, timestampNs, WORDS_PER_RECORD, word64 } from '../../proto/event-block';
import { v1 } from '../../proto/index';
import { repoRoot } from '../support/paths';
import { finishDrained } from '../support/pipeline-drain';

let broker: KafkaBroker;
let collector: Collector;
const topic = `fleet-test-${Date.now()}`;

before(async () => {
  broker = await startKafka();
  collector = new Collector(
    {
      ...defaultCollectorConfig,
      listen: '127.0.0.1:0',
      httpListen: '127.0.0.1:0',
      brokers: broker.brokers,
      rawTopic: topic,
      topicPartitions: 3,
    },
    silentLogger,
  );
  await collector.start();
});

after(async () => {
  await collector?.stop(1000);
  await broker?.stop();
});

/** Counts what an agent read from its source, per event name: the expected totals. */
class Tally {
  readonly byEvent = new Map<string, number>();
  first: EventBlock | undefined;
  add(b: EventBlock): void {
    this.first ??= b;
    for (let i = 0; i < b.count; i++) {
      const name = eventName(eventId(b.words, i * WORDS_PER_RECORD));
      this.byEvent.set(name, (this.byEvent.get(name) ?? 0) + 1);
    }
  }
}

async function runAgent(host: string, seed: number, events: number): Promise<Tally> {
  const tally = new Tally();
  const source = new SmmuModelSource({ seed, rate: 0, maxEvents: events, maxChunkEvents: 700 });
  const pipeline = new AgentPipeline(
    {
      identity: { host, agentId: `${host}-agent` },
      batch: { maxEvents: 1000, maxDelayMs: 50 },
      transport: { addresses: [collector.address], window: 8, backoffMinMs: 50, backoffMaxMs: 1000 },
      drainTimeoutMs: 30_000,
    },
    source,
    new MemorySpool(64 << 20),
    agentMetrics(),
    [tally],
    silentLogger,
  );
  pipeline.start();
  await finishDrained(pipeline, host, events);
  return tally;
}

test('three agents through one collector: fleet totals per host and event type are exact', {
  timeout: 120_000,
}, async () => {
  const plan = [
    ['node-a', 1, 12_000],
    ['node-b', 2, 7_500],
    ['node-c', 3, 3_001],
  ] as const;
  const tallies = await Promise.all(plan.map(([h, seed, n]) => runAgent(h, seed, n)));

  const totals = new FleetTotals();
  const kafka = new Kafka({ clientId: 'fleet-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = new BatchConsumer(
    kafka,
    { topic, groupId: `fleet-test-${Date.now()}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => totals.add(b));
  const want = plan.reduce((s, [, , n]) => s + n, 0);
  const deadline = Date.now() + 60_000;
  const counted = () => totals.hostRows().reduce((s, h) => s + h.events, 0);
  while (counted() < want && Date.now() < deadline) await sleep(100);
  await sleep(500); // anything beyond the expected count would show up now
  await consumer.stop();

  assert.equal(counted(), want);
  assert.equal(consumer.malformed, 0);
  const perHost = totals.perHostEvent();
  plan.forEach(([host], i) => {
    assert.deepEqual(
      Object.fromEntries([...(perHost.get(host) ?? [])].sort()),
      Object.fromEntries([...tallies[i].byEvent].sort()),
      host,
    );
  });
  // The model's default workload produces at least the three SVA fault kinds.
  for (const kind of ['F_TRANSLATION', 'F_ACCESS', 'F_PERMISSION'])
    assert.ok((tallies[0].byEvent.get(kind) ?? 0) > 0, kind);
  const received = await collector.metrics.eventsReceived.get();
  assert.equal(received.values[0].value, want);
});

test('a raw-topic message decodes with protoc and the .proto alone', { timeout: 60_000 }, async () => {
  const host = 'node-protoc';
  const tally = await runAgent(host, 9, 40);
  const kafka = new Kafka({ clientId: 'protoc-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `protoc-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let found: { value: Buffer; headers: Record<string, string> } | undefined;
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.key?.toString() === host && !found) {
        const headers = Object.fromEntries(
          Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
        );
        found = { value: message.value as Buffer, headers };
      }
    },
  });
  const deadline = Date.now() + 30_000;
  while (!found && Date.now() < deadline) await sleep(100);
  await consumer.disconnect();
  assert.ok(found, 'message for the host found');
  assert.equal(
    found.headers['content-type'],
    'application/x-protobuf; messageType=smmu.telemetry.v1.EventBatch',
  );
  assert.equal(found.headers['schema-version'], '1');

  const dir = mkdtempSync(join(tmpdir(), 'protoc-'));
  writeFileSync(join(dir, 'batch.bin'), found.value);
  const root = repoRoot();
  const text = execFileSync(
    'protoc',
    [
      '--decode=smmu.telemetry.v1.EventBatch',
      `--proto_path=${join(root, 'proto')}`,
      'smmu/telemetry/v1/telemetry.proto',
    ],
    {
      input: found.value,
    },
  ).toString();
  const first = tally.first!;
  assert.match(text, new RegExp(`host: "${host}"`));
  assert.match(text, /agent_id: "node-protoc-agent"/);
  assert.match(text, /sequence: 1\n/);
  assert.match(text, /kind: SOURCE_KIND_MODEL/);
  assert.match(text, /event: "model:smmu_evtq_event"/);
  assert.match(text, /count: 40\n/);
  // The field coding (coding 2): event 0's fields are readable as they are from the text.
  const w0 = word64(first, 0, 0);
  assert.match(text, /coding: 2\n/);
  assert.match(text, new RegExp(`timestamp_ns: ${timestampNs(first, 0)}\n`));
  assert.match(text, new RegExp(`stream_word0_hi: ${w0 >> 32n}\n`));
  assert.match(text, new RegExp(`stream_ssid: ${(w0 >> 12n) & 0xfffffn}\n`));
  assert.match(text, new RegExp(`shape_word0_lo: ${w0 & 0xfffn}\n`));
  assert.equal(text.match(/addr_offset: (\d+)/)?.[1], String(word64(first, 0, 2) & 0xfffn));
  assert.equal(text.match(/timestamp_delta_units: /g)?.length, 39);
  for (const perEvent of ['stream_index', 'shape_index', 'addr_page_delta', 'addr_offset'])
    assert.equal(text.match(new RegExp(`${perEvent}: `, 'g'))?.length, 40, perEvent);
});

test('smmu-agent --column-coding words sends word columns (coding 0) that consumers decode exactly', {
  timeout: 90_000,
}, async () => {
  const host = 'node-words';
  const events = 5_000;
  const agentCli = join(repoRoot(), 'dist', 'agent', 'src', 'cli.js');
  const args = ['--collector', collector.address, '--host', host, '--agent-id', `${host}-agent`];
  await promisify(execFile)(
    process.execPath,
    [
      agentCli,
      ...args,
      '--http-listen',
      '',
      '--rate',
      '0',
      '--max-events',
      String(events),
      '--column-coding',
      'words',
    ],
    { timeout: 60_000, env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  // The same events through the default coding, in process, for the expected per-kind totals.
  const expected = new Tally();
  const model = new SmmuModelSource({ rate: 0, maxEvents: events });
  for await (const c of model.read(new AbortController().signal, 0)) expected.add(c.events);

  const kafka = new Kafka({ clientId: 'words-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `words-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const codings = new Set<number>();
  const got = new Tally();
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.key?.toString() !== host || !message.value) return;
      codings.add(v1.EventBatch.decode(message.value).events?.coding ?? -1);
      got.add(decodeBatch(message.value).events);
    },
  });
  const deadline = Date.now() + 30_000;
  const count = () => [...got.byEvent.values()].reduce((s, n) => s + n, 0);
  while (count() < events && Date.now() < deadline) await sleep(100);
  await sleep(500);
  await consumer.disconnect();
  assert.deepEqual([...codings], [0], 'every batch in word columns');
  assert.deepEqual(
    Object.fromEntries([...got.byEvent].sort()),
    Object.fromEntries([...expected.byEvent].sort()),
  );
});
