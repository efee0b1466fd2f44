// The raw-batches topic read from the beginning by a fresh consumer group into fleet totals,
// as the accounting counts it: for tests and benchmarks that check exact counts per host.
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { BatchConsumer } from '../../collector/accounting/consume';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { silentLogger } from '../../common/runtime/log';

/**
 * Consumes `topic` until `want` events are counted or `timeoutMs` passed, then one more
 * second, so that anything beyond `want` (a double count) would show too.
 */
export async function rawTopicTotals(
  brokers: string[],
  topic: string,
  want: number,
  timeoutMs = 60_000,
): Promise<{ totals: FleetTotals; malformed: number }> {
  const totals = new FleetTotals();
  const kafka = new Kafka({ clientId: 'raw-totals', brokers, logLevel: logLevel.NOTHING });
  const consumer = new BatchConsumer(
    kafka,
    { topic, groupId: `raw-totals-${topic}-${Date.now()}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => totals.add(b));
  const counted = () => totals.hostRows().reduce((s, h) => s + h.events, 0);
  const deadline = Date.now() + timeoutMs;
  while (counted() < want && Date.now() < deadline) await sleep(100);
  await sleep(1000);
  await consumer.stop();
  return { totals, malformed: consumer.malformed };
}
