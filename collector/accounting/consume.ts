// Accounting stage 1: consume. Guarantee: for each assigned partition the raw messages are
// handed on in offset order from the offset its restored state needs: none below it (already
// counted), none above it skipped; each one decoded, or as malformed.
//
//  - BatchConsumer: raw batches from a consumer group, each decoded batch handed on (the
//    one-shot `totals` command, the demo, tests).
//  - PartitionedConsumer: the aggregator's reader. Positions come from the aggregator's own
//    checkpoints, not from the group's committed offsets: as soon as a partition is assigned
//    (not when its next message comes: a quiet partition's hosts are served at once), its
//    handler restores it and says which offset its state needs next; the consumer skips what lies below it
//    and seeks back when the group's position lies above it. Committed offsets only trail the
//    checkpoints (so a restart reads little twice) and serve lag monitoring.
//
// A raw message that does not decode is counted and skipped (it cannot be retried into
// validity), never fatal. Each batch comes with its Kafka timestamp: the collector's clock when
// it published the batch, which bounds the batch's event time (aggregate.ts).
import type { Admin, Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../common/runtime/log';
import { type Batch, decodeBatch } from '../../proto/batch-codec';
import '../../common/kafka/codecs'; // reads zstd record batches

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
    // A short fetch wait: stop() waits for the fetch in flight, and one-shot readers (totals,
    // top --source raw) should exit as soon as they are done, not up to kafkajs's 5 s later.
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      maxBytesPerPartition: 8 << 20,
      maxWaitTimeInMs: 250,
    });
  }

  async start(onBatch: (b: Batch, receivedNs: bigint) => void): Promise<void> {
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
              { partition: batch.partition, offset: m.offset, err },
              'skipping undecodable message',
            );
            continue;
          }
          onBatch(b, BigInt(m.timestamp) * 1_000_000n);
        }
      },
    });
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }
}

/** What the aggregator does with its partitions; every call runs under the consumer's lock. */
export interface PartitionHandler {
  /**
   * The partition is (re)assigned to this process: bring its state up to date (restore it from
   * the latest checkpoint when that is ahead) and return the offset it needs next; -1: the
   * oldest retained message.
   */
  open(partition: number): Promise<number>;
  /**
   * One raw message, decoded (undefined, with the error, when it does not decode), with its
   * Kafka timestamp in ms and its bytes.
   */
  message(
    partition: number,
    offset: number,
    timestampMs: number,
    bytes: Buffer,
    batch: Batch | undefined,
    err?: Error,
  ): void;
  /** A fetched run of messages of the partition has been handed over. */
  flushed(partition: number, highWatermark: number): Promise<void>;
  /** The partitions are no longer assigned to this process: forget their state. */
  revoked(partitions: number[]): void;
}

export interface PartitionedConsumerOptions {
  topic: string;
  groupId: string;
  sessionTimeoutMs: number;
  maxEventsPerBatch: number;
}

/** Serializes async sections (message handling, checkpoints, shutdown). */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

export class PartitionedConsumer {
  readonly lock = new Lock();
  private consumer: Consumer;
  private admin: Admin;
  /** Assigned partitions whose state is open, and the next offset each needs. */
  private readonly next = new Map<number, number>();
  /** The offset a seek was last issued for, per partition (a gap seen twice is accepted). */
  private readonly sought = new Map<number, number>();
  private assigned = new Set<number>();
  /** True between "the group is rebalancing" and the new assignment. */
  rebalancing = true;
  /** Offsets skipped because the raw topic no longer held them (retention). */
  skippedOffsets = 0;

  constructor(
    kafka: Kafka,
    private readonly opts: PartitionedConsumerOptions,
    private readonly handler: PartitionHandler,
    private readonly log: Logger,
  ) {
    this.consumer = kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(opts.sessionTimeoutMs / 10)),
      maxBytesPerPartition: 8 << 20,
      allowAutoTopicCreation: false,
    });
    this.admin = kafka.admin();
  }

  /** Partitions assigned to this process. */
  get partitions(): number[] {
    return [...this.assigned].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    await this.admin.connect();
    const { GROUP_JOIN, REBALANCING } = this.consumer.events;
    this.consumer.on(REBALANCING, () => {
      this.rebalancing = true;
    });
    this.consumer.on(GROUP_JOIN, (e) => {
      const now = new Set<number>(e.payload.memberAssignment[this.opts.topic] ?? []);
      const gone = [...this.assigned].filter((p) => !now.has(p));
      this.assigned = now;
      // Every assignment re-opens its partitions: another member may have counted further.
      this.next.clear();
      this.sought.clear();
      if (gone.length > 0) this.handler.revoked(gone);
      this.rebalancing = false;
      this.log.info({ partitions: this.partitions }, 'partitions assigned');
      this.openAssigned();
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        const p = batch.partition;
        if (batch.messages.length === 0) return;
        const resolved = await this.lock.run(async () => {
          const want = this.next.get(p) ?? (await this.open(p));
          const first = Number(batch.messages[0].offset);
          if (first > want) {
            if (this.sought.get(p) !== want && want >= (await this.lowOffset(p))) {
              // The group's position is ahead of the state (e.g. a checkpoint was lost): go back.
              this.sought.set(p, want);
              this.log.info(
                { partition: p, from: first, to: want },
                'seeking back to the checkpointed offset',
              );
              this.consumer.seek({ topic: this.opts.topic, partition: p, offset: String(want) });
              return false;
            }
            this.skippedOffsets += first - want;
            this.log.error(
              { partition: p, expected: want, first },
              'raw messages no longer in the topic (retention): counting from the oldest retained one',
            );
          }
          let n = want;
          for (const m of batch.messages) {
            const off = Number(m.offset);
            if (off < n) continue;
            if (m.value) {
              let b: Batch | undefined;
              let err: Error | undefined;
              try {
                b = decodeBatch(m.value, { maxEvents: this.opts.maxEventsPerBatch });
              } catch (e) {
                err = e as Error;
              }
              this.handler.message(p, off, Number(m.timestamp), m.value, b, err);
            }
            n = off + 1;
          }
          this.next.set(p, n);
          await this.handler.flushed(p, Number(batch.highWatermark));
          return true;
        });
        if (resolved) resolveOffset(batch.lastOffset());
        await heartbeat();
      },
    });
  }

  /** Opens a partition's state; returns the offset it needs next. */
  private async open(p: number): Promise<number> {
    let want = await this.handler.open(p);
    if (want < 0) want = await this.lowOffset(p);
    this.next.set(p, want);
    return want;
  }

  /** Opens every assigned partition now (a failure is retried at the partition's next message). */
  private openAssigned(): void {
    void this.lock.run(async () => {
      for (const p of this.partitions) {
        if (this.next.has(p) || !this.assigned.has(p)) continue;
        await this.open(p).catch((err: Error) =>
          this.log.error(
            { partition: p, err: err.message },
            'restoring the partition failed; trying again at its next message',
          ),
        );
      }
    });
  }

  private async lowOffset(p: number): Promise<number> {
    const offs = await this.admin.fetchTopicOffsets(this.opts.topic);
    return Number(offs.find((o) => o.partition === p)?.low ?? 0);
  }

  /** Records the group's position for lag monitoring (never used to restore state). */
  async commit(partition: number, nextOffset: number): Promise<void> {
    try {
      await this.consumer.commitOffsets([{ topic: this.opts.topic, partition, offset: String(nextOffset) }]);
    } catch (err) {
      this.log.debug({ partition, err }, 'offset commit failed (a rebalance?)');
    }
  }

  /** Stops fetching new messages (the one being handled finishes). */
  pause(): void {
    this.consumer.pause([{ topic: this.opts.topic }]);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => {});
    await this.admin.disconnect().catch(() => {});
  }
}
