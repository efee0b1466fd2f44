// The latest value per key of the compacted totals topic (the `top` command's source without an
// aggregator API, and the tests' view of what was published). Of two values of one key the one
// with the larger as_of.next_offset wins (equal: the later one), so a stale write cannot hide a
// newer value; an empty value deletes the key; an undecodable one is counted, never fatal.
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '../../common/runtime/log';
import { smmu } from '../../proto/gen/telemetry';
import { CompactedTopicReader } from './compacted';

const pb = smmu.accounting.v1;
export type TotalsRecord = smmu.accounting.v1.TotalsRecord;

export class TotalsTopicView {
  private readonly reader: CompactedTopicReader;
  readonly latest = new Map<string, { rank: number; record: TotalsRecord }>();
  malformed = 0;

  constructor(
    kafka: Kafka,
    topic: string,
    private readonly log: Logger,
  ) {
    this.reader = new CompactedTopicReader(kafka, { topic, groupPrefix: 'smmu-fleet-totals-view-' }, (m) =>
      this.read(m),
    );
  }

  start(): Promise<void> {
    return this.reader.start();
  }

  private read(m: KafkaMessage): void {
    const key = m.key?.toString() ?? '';
    if (!m.value || m.value.length === 0) {
      this.latest.delete(key);
      return;
    }
    let r: TotalsRecord;
    try {
      r = pb.TotalsRecord.decode(m.value);
    } catch (err) {
      this.malformed++;
      this.log.warn({ key, err }, 'undecodable totals record');
      return;
    }
    const asOf = r.series?.as_of ?? r.host?.as_of;
    const rank = Number(asOf?.next_offset?.toString() ?? 0);
    const cur = this.latest.get(key);
    if (!cur || rank >= cur.rank) this.latest.set(key, { rank, record: r });
  }

  /** Waits until everything the topic held when called has been read. */
  caughtUp(timeoutMs = 60_000): Promise<void> {
    return this.reader.caughtUp(timeoutMs);
  }

  records(): TotalsRecord[] {
    return [...this.latest.values()].map((v) => v.record);
  }

  stop(): Promise<void> {
    return this.reader.stop();
  }
}
