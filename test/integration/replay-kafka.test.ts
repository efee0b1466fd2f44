// `smmu-agent replay FILE --collector ...` end to end with real parts: the agent process
// replays a trace_pipe text capture, and a trace.dat (v7, zstd), through gRPC into a real
// collector and Kafka; the fleet totals of its host must be exactly the capture's records and
// its counted losses.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { ReplaySource } from '../../agent/src/source/replay';
import { BatchConsumer } from '../../collector/accounting/consume';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { silentLogger } from '../../common/runtime/log';
import { LossReason } from '../../proto/index';
import { type KafkaCollector, startKafkaCollector } from '../support/kafka-collector';
import { agentProc } from '../support/processes';
import { fixtureDatSpec, writeTraceDat } from '../support/trace-dat-writer';
import { expectedRecord, tracefsFixture } from '../support/uprobe-records';

const N = 5000;
let kc: KafkaCollector | undefined;
const topic = `replay-test-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'smmu-replay-kafka-'));

before(async () => {
  kc = await startKafkaCollector(topic, 1);
});

after(async () => {
  await kc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a replayed text capture reaches Kafka counted like live events', { timeout: 180_000 }, async () => {
  const lines = ['# tracer: nop', '#'];
  for (let i = 0; i < N; i++) {
    const w = expectedRecord(i, 0x300n).map((v) => `0x${v.toString(16).padStart(16, '0')}`);
    lines.push(
      `   emit-1 [00${i % 2}] ..... ${100 + i / 1000}: smmu_evtq_event: arm-smmu-v3.0.auto evt: ${w.join(' ')}`,
    );
  }
  lines.splice(100, 0, 'CPU:1 [LOST 7 EVENTS]', 'not a trace line');
  const file = join(dir, 'capture.txt');
  writeFileSync(file, `${lines.join('\n')}\n`);

  const host = await replayIntoKafka(file, 'captured-host', N);
  assert.equal(host.events, N);
  assert.equal(host.lost, 7 + 1); // the LOST line's 7 overruns and the malformed line
  assert.equal(host.byReason.get(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN), 7);
  assert.equal(host.byReason.get(LossReason.LOSS_REASON_MALFORMED_RECORD), 1);
});

test('a replayed trace.dat (v7, zstd) reaches Kafka counted like live events', {
  timeout: 180_000,
}, async () => {
  // Two CPUs: 20 copies of the captured page, and the page with a missed-events count.
  const page = readFileSync(tracefsFixture('smmu-4k.page'));
  const file = join(dir, 'trace.dat');
  const bytes = await writeTraceDat({
    version: 7,
    compression: 'zstd',
    ...fixtureDatSpec([
      Buffer.concat(Array.from({ length: 20 }, () => page)),
      readFileSync(tracefsFixture('missed-4k.page')),
    ]),
  });
  writeFileSync(file, bytes);
  // What the file holds, read in-process (the same reader is checked against trace-cmd report).
  let records = 0;
  let overruns = 0;
  for await (const c of new ReplaySource({ input: file }).read(new AbortController().signal)) {
    records += c.events.count;
    overruns += c.lost?.get(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN) ?? 0;
  }
  assert.ok(records > 20 * 10 && overruns > 0);
  const host = await replayIntoKafka(file, 'dat-host', records);
  assert.equal(host.events, records);
  assert.equal(host.lost, overruns);
  assert.equal(host.byReason.get(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN), overruns);
});

/** Runs `smmu-agent replay file` as `host`, then the fleet totals of that host from Kafka. */
async function replayIntoKafka(
  file: string,
  host: string,
  expected: number,
): Promise<{ events: number; lost: number; byReason: Map<LossReason, number> }> {
  const k = kc as KafkaCollector;
  const agent = agentProc(`replay-agent-${host}`, {
    collector: k.collector.address,
    host,
    args: ['replay', file, '--state-dir', join(dir, `state-${host}`), '--batch-max-events', '1000'],
  });
  assert.equal(await agent.exited, 0, agent.tail());

  const totals = new FleetTotals();
  const kafka = new Kafka({ clientId: 'replay-test', brokers: k.broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = new BatchConsumer(
    kafka,
    { topic, groupId: `replay-test-${host}-${Date.now()}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => totals.add(b));
  const row = () => totals.hostRows().find((h) => h.host === host);
  const deadline = Date.now() + 60_000;
  while ((row()?.events ?? 0) < expected && Date.now() < deadline) await sleep(100);
  await sleep(500);
  await consumer.stop();
  const r = row();
  const state = totals.state.allHosts().find((h) => h.name === host);
  return { events: r?.events ?? 0, lost: r?.lost ?? 0, byReason: state?.lost ?? new Map() };
}
