// End to end, with real parts: model agent -> gRPC (through a byte-counting TCP proxy) ->
// collector -> Kafka -> consumer. Prints bytes/event on the wire and the latency from an
// event's timestamp to its batch being decoded by a Kafka consumer, at several event rates,
// with the agent's default batching (the model's timestamps start at the wall clock, so the
// latency includes the source's hand-over, the batch delay, the collector and the consumer).
// Needs a broker: KAFKA_BROKERS, or the podman set-up that `npm test` makes.
import { createHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { defaultBatchOptions } from '../../agent/src/batch/batcher';
import { agentMetrics } from '../../agent/src/metrics';
import { AgentPipeline } from '../../agent/src/pipeline';
import { SmmuModelSource } from '../../agent/src/source/model';
import { MemorySpool } from '../../agent/src/spool/memory-spool';
import { BatchConsumer } from '../../collector/accounting/consume';
import { Collector, defaultCollectorConfig } from '../../collector/ingest/collector';
import { silentLogger } from '../../common/runtime/log';
import { startKafka } from '../../deploy/kafka/container';
import { timestampNs } from '../../proto/event-block';
import { TcpProxy } from '../support/tcp-proxy';
import { report } from './bench-util';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RATES = (process.env.BENCH_RATES ?? '1000,10000,50000').split(',').map(Number);

async function main(): Promise<void> {
  const broker = await startKafka();
  try {
    for (const rate of RATES) {
      for (const gzip of [false, true]) await once(broker.brokers, rate, gzip);
    }
  } finally {
    await broker.stop();
  }
}

async function once(brokers: string[], rate: number, gzip: boolean): Promise<void> {
  const topic = `bench-${rate}-${gzip}-${Date.now()}`;
  const collector = new Collector(
    {
      ...defaultCollectorConfig,
      listen: '127.0.0.1:0',
      httpListen: '',
      brokers,
      rawTopic: topic,
      topicPartitions: 1,
      maxBatchesPerSecond: 0,
    },
    silentLogger,
  );
  await collector.start();
  const [host, port] = collector.address.split(':');
  const proxy = new TcpProxy({ host, port: Number(port) });
  const address = await proxy.start();

  const latency = createHistogram();
  let consumed = 0;
  const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  const consumer = new BatchConsumer(
    kafka,
    { topic, groupId: `bench-${Date.now()}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => {
    const now = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < b.events.count; i++)
      latency.record(Math.max(1, Number((now - timestampNs(b.events, i)) / 1000n)));
    consumed += b.events.count;
  });

  const events = rate * SECONDS;
  const source = new SmmuModelSource({
    seed: 3,
    rate,
    maxEvents: events,
    bursts: null,
    startTimeNs: BigInt(Date.now()) * 1_000_000n,
  });
  const pipeline = new AgentPipeline(
    {
      identity: { host: 'bench-node', agentId: 'bench-agent' },
      batch: defaultBatchOptions,
      transport: { addresses: [address], window: 32, backoffMinMs: 50, backoffMaxMs: 1000, gzip },
      drainTimeoutMs: 30_000,
    },
    source,
    new MemorySpool(256 << 20),
    agentMetrics(),
    [],
    silentLogger,
  );
  const cpu0 = process.cpuUsage();
  pipeline.start();
  await pipeline.done();
  await pipeline.stop();
  const deadline = Date.now() + 30_000;
  while (consumed < events && Date.now() < deadline) await sleep(50);
  const cpu = process.cpuUsage(cpu0);
  await consumer.stop();
  await collector.stop(500);
  await proxy.stop();

  const tag = `rate_${rate}_${gzip ? 'gzip' : 'plain'}`;
  report(`${tag}_events`, consumed);
  report(`${tag}_wire_bytes_per_event`, proxy.bytesUp / events, 2);
  report(`${tag}_latency_p50_ms`, latency.percentile(50) / 1000, 1);
  report(`${tag}_latency_p99_ms`, latency.percentile(99) / 1000, 1);
  report(`${tag}_process_cpu_s_per_million_events`, ((cpu.user + cpu.system) / 1e6) * (1e6 / events), 2);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
