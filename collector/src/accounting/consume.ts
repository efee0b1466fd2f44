// Accounting stage 1: reads raw batches from Kafka in a consumer group and hands each decoded
// batch on. A message that does not decode is counted and skipped (it cannot be retried into
// validity), never fatal.
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../../agent/src/runtime/log';
import { type Batch, decodeBatch } from '../../../proto/batch-codec';

export interface ConsumeOptions {
  topic: string;
  groupId: string;
  /** Start from the oldest retained batch when the group has no committed offset. */
  fromBeginning: boolean;
}

export class BatchConsumer {
  private consumer: Consumer;
  malformed = 0;
  messages = 0;

  constructor(
    kafka: Kafka,
    private readonly opts: ConsumeOptions,
    private readonly log: Logger,
  ) {
    this.consumer = kafka.consumer({ groupId: opts.groupId, maxBytesPerPartition: 8 << 20 });
  }

  async start(onBatch: (b: Batch) => void): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: this.opts.fromBeginning });
    await this.consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          this.messages++;
          if (!m.value) continue;
          let b: Batch;
          try {
            b = decodeBatch(m.value);
          } catch (err) {
            this.malformed++;
            this.log.warn(
              { partition: batch.partition, offset: m.offset, err: (err as Error).message },
              'skipping undecodable message',
            );
            continue;
          }
          onBatch(b);
        }
      },
    });
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }
}
