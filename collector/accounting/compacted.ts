// One reader of a compacted topic from its beginning, for the checkpoint topic (checkpoint.ts)
// and the totals topic (totals-view.ts). A consumer group of its own (a fresh name per reader,
// nothing committed) hands every message to the owner; `caughtUp` waits until everything the
// topic held when it was called has been handed on, which is what makes "the latest value of
// key k" an answer and not a guess.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import '../../common/kafka/codecs'; // reads zstd record batches

export interface CompactedReaderOptions {
  topic: string;
  /** Prefix of the private consumer group's name (a UUID is added). */
  groupPrefix: string;
  /** Fetch limits, for topics of large messages (checkpoints). */
  maxBytesPerPartition?: number;
  maxBytes?: number;
}

export class CompactedTopicReader {
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  /** Topic partition -> next offset handed on. */
  private readonly read = new Map<number, number>();

  constructor(
    kafka: Kafka,
    private readonly opts: CompactedReaderOptions,
    private readonly onMessage: (m: KafkaMessage) => void,
  ) {
    this.consumer = kafka.consumer({
      groupId: `${opts.groupPrefix}${randomUUID()}`,
      maxBytesPerPartition: opts.maxBytesPerPartition,
      maxBytes: opts.maxBytes,
      allowAutoTopicCreation: false,
    });
    this.admin = kafka.admin();
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) this.onMessage(m);
        this.read.set(batch.partition, Number(batch.lastOffset()) + 1);
      },
    });
  }

  /** Waits until everything the topic held when called has been read; throws after timeoutMs. */
  async caughtUp(timeoutMs: number): Promise<void> {
    const offsets = await this.admin.fetchTopicOffsets(this.opts.topic);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const behind = offsets.filter(
        (o) => Number(o.high) > Number(o.low) && (this.read.get(o.partition) ?? 0) < Number(o.high),
      );
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `topic ${this.opts.topic} not read up to its end within ${timeoutMs} ms (partitions ${behind.map((o) => o.partition).join(',')})`,
        );
      }
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
  }
}
