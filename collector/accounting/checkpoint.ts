// Accounting stage 3: checkpoint. The aggregator's per-partition state, kept in a compacted
// Kafka topic.
//
// One message per raw-topic partition and checkpoint: key "<group>/<raw topic>/<partition>",
// value smmu.accounting.v1.PartitionCheckpoint (the whole state of the partition and the raw
// offset it covers up to), headers content-type, schema-version and next-offset. Compaction
// keeps the latest per key; a reader takes the one with the largest next-offset (any of them is
// a consistent state, see README.md "Exactly-once").
//
// Guarantee: a partition's new owner starts from the latest
// checkpoint any instance wrote for it (the one with the largest next-offset), never from an
// older one: `CheckpointStore` tails the topic (compacted.ts) and answers "latest checkpoint of
// partition p" only once it has read everything the topic held when asked.
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '../../common/runtime/log';
import { smmu } from '../../proto/gen/telemetry';
import { SCHEMA_VERSION } from '../../proto/index';
import type { CheckpointProps } from './checkpoint-codec';
import { CompactedTopicReader } from './compacted';

const pb = smmu.accounting.v1;
export const CHECKPOINT_TYPE = 'smmu.accounting.v1.PartitionCheckpoint';

export function encodeCheckpoint(c: CheckpointProps): Uint8Array {
  return pb.PartitionCheckpoint.encode(c).finish();
}

export function decodeCheckpoint(bytes: Uint8Array): smmu.accounting.v1.PartitionCheckpoint {
  return pb.PartitionCheckpoint.decode(bytes);
}

export function checkpointKey(groupId: string, rawTopic: string, partition: number): string {
  return `${groupId}/${rawTopic}/${partition}`;
}

export function checkpointHeaders(nextOffset: number): Record<string, string> {
  return {
    'content-type': `application/x-protobuf; messageType=${CHECKPOINT_TYPE}`,
    'schema-version': SCHEMA_VERSION,
    'next-offset': String(nextOffset),
  };
}

interface Stored {
  nextOffset: number;
  value: Buffer;
}

export class CheckpointStore {
  private readonly reader: CompactedTopicReader;
  private readonly latestByPartition = new Map<number, Stored>();
  private readonly prefix: string;
  /** Checkpoint messages read (all keys). */
  messages = 0;

  constructor(
    kafka: Kafka,
    opts: { topic: string; groupId: string; rawTopic: string },
    private readonly log: Logger,
  ) {
    this.prefix = `${opts.groupId}/${opts.rawTopic}/`;
    this.reader = new CompactedTopicReader(
      kafka,
      {
        topic: opts.topic,
        groupPrefix: `${opts.groupId}.checkpoint-reader.`,
        maxBytesPerPartition: 64 << 20,
        maxBytes: 128 << 20,
      },
      (m) => this.read(m),
    );
  }

  start(): Promise<void> {
    return this.reader.start();
  }

  private read(m: KafkaMessage): void {
    this.messages++;
    const key = m.key?.toString() ?? '';
    if (!key.startsWith(this.prefix) || !m.value) return;
    const p = Number(key.slice(this.prefix.length));
    const next = Number(m.headers?.['next-offset']?.toString() ?? Number.NaN);
    if (!Number.isInteger(p) || !Number.isFinite(next)) {
      this.log.warn({ key, offset: m.offset }, 'checkpoint without partition or next-offset: ignored');
      return;
    }
    this.offer(p, next, m.value);
  }

  /** Keeps a checkpoint if it covers at least as much as the one known (later ones win ties). */
  offer(partition: number, nextOffset: number, value: Buffer): void {
    const cur = this.latestByPartition.get(partition);
    if (!cur || nextOffset >= cur.nextOffset) this.latestByPartition.set(partition, { nextOffset, value });
  }

  /**
   * The latest checkpoint of a raw partition, after reading everything the checkpoint topic held
   * when called; undefined when there is none.
   */
  async latest(partition: number, timeoutMs = 60_000): Promise<Buffer | undefined> {
    await this.reader.caughtUp(timeoutMs);
    return this.latestByPartition.get(partition)?.value;
  }

  stop(): Promise<void> {
    return this.reader.stop();
  }
}
