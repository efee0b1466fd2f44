// Checkpoints of the aggregator's per-partition state, kept in a compacted Kafka topic.
//
// One message per raw-topic partition and checkpoint: key "<group>/<raw topic>/<partition>",
// value smmu.accounting.v1.PartitionCheckpoint (the whole state of the partition and the raw
// offset it covers up to), headers content-type, schema-version and next-offset. Compaction
// keeps the latest per key; a reader takes the one with the largest next-offset (any of them is
// a consistent state, see README.md "Exactly-once").
//
// `CheckpointStore` tails the topic with a consumer of its own (a group private to this
// process, reading from the beginning) and answers "latest checkpoint of partition p" once it
// has read everything the topic held when asked.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../common/runtime/log';
import { smmu } from '../../proto/gen/telemetry';
import { SCHEMA_VERSION } from '../../proto/index';
import type { CheckpointProps } from './checkpoint-codec';

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
  private consumer: Consumer | undefined;
  private admin: Admin;
  private readonly latestByPartition = new Map<number, Stored>();
  /** Checkpoint-topic partition -> next offset read. */
  private readonly read = new Map<number, number>();
  private readonly prefix: string;
  /** Checkpoint messages read (all keys). */
  messages = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: { topic: string; groupId: string; rawTopic: string },
    private readonly log: Logger,
  ) {
    this.prefix = `${opts.groupId}/${opts.rawTopic}/`;
    this.admin = kafka.admin();
  }

  async start(): Promise<void> {
    await this.admin.connect();
    this.consumer = this.kafka.consumer({
      groupId: `${this.opts.groupId}.checkpoint-reader.${randomUUID()}`,
      maxBytesPerPartition: 64 << 20,
      maxBytes: 128 << 20,
      allowAutoTopicCreation: false,
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          this.messages++;
          const key = m.key?.toString() ?? '';
          if (!key.startsWith(this.prefix) || !m.value) continue;
          const p = Number(key.slice(this.prefix.length));
          const next = Number(m.headers?.['next-offset']?.toString() ?? Number.NaN);
          if (!Number.isInteger(p) || !Number.isFinite(next)) {
            this.log.warn({ key, offset: m.offset }, 'checkpoint without partition or next-offset: ignored');
            continue;
          }
          this.offer(p, next, m.value);
        }
        this.read.set(batch.partition, Number(batch.lastOffset()) + 1);
      },
    });
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
    const offsets = await this.admin.fetchTopicOffsets(this.opts.topic);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const behind = offsets.filter(
        (o) => Number(o.high) > Number(o.low) && (this.read.get(o.partition) ?? 0) < Number(o.high),
      );
      if (behind.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `checkpoint topic ${this.opts.topic} not read up to its end within ${timeoutMs} ms (partitions ${behind.map((o) => o.partition).join(',')})`,
        );
      }
      await sleep(20);
    }
    return this.latestByPartition.get(partition)?.value;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
  }
}
