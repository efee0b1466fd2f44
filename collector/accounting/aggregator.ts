// The aggregator daemon (`smmu-fleet aggregate`): its lifecycle and its partitions, wiring the
// stages consume (consume.ts) -> aggregate (aggregate.ts) -> checkpoint (checkpoint.ts) ->
// publish (publish.ts) -> serve (serve.ts over the read-only views of views.ts).
//
//   raw batches topic --PartitionedConsumer--> AccountState per partition --> windows topic
//                                                      |                  --> totals topic
//                                                      +-- checkpoint ---> checkpoint topic
//                                                      +-- views --------> HTTP JSON API
//
// Instances share a consumer group and split the raw topic's partitions (a host's batches are
// all in one partition, so each host is counted by exactly one instance at a time). Per
// partition, every `checkpointIntervalMs` (and on shutdown) the aggregator publishes the windows
// closed since the last checkpoint and the totals that changed, then writes the partition's
// whole state with the raw offset it covers to the compacted checkpoint topic. A partition that
// is assigned is restored from its latest checkpoint and read on from that offset. See
// README.md "Exactly-once" for why totals neither lose nor double-count anything.
import type { Kafka } from 'kafkajs';
import { kafkaClient } from '../../common/kafka/client';
import { explainKafkaError, retryWhileRetriable } from '../../common/kafka/errors';
import { partitionCount } from '../../common/kafka/topics';
import type { HttpServer } from '../../common/runtime/http';
import type { Logger } from '../../common/runtime/log';
import type { Batch } from '../../proto/batch-codec';
import { type AccountOptions, AccountState } from './aggregate';
import { CheckpointStore, checkpointKey, decodeCheckpoint, encodeCheckpoint } from './checkpoint';
import { fromCheckpoint, toCheckpoint } from './checkpoint-codec';
import type { AggregatorConfig } from './config';
import { PartitionedConsumer } from './consume';
import { bytesDigest } from './dedup';
import { RawTopicLayout } from './layout';
import { aggregatorMetrics } from './metrics';
import {
  type AsOf,
  hostTotalsMessage,
  hostWindowMessage,
  OutputPublisher,
  seriesTotalsMessage,
  seriesWindowMessage,
} from './publish';
import { startApi } from './serve';
import { kafkaPermissions, prepareTopics } from './topic-setup';
import { AccountingViews } from './views';
import type { ClosedWindows } from './windows';

export { type AggregatorConfig, defaultAggregatorConfig } from './config';

class Partition {
  lastCheckpointAt = 0;
  /** Raw offset the latest checkpoint written by this instance covers up to (-1: none). */
  checkpointedOffset = -1;
  highWatermark = 0;
  /** Counted something since the last checkpoint. */
  dirty = false;
  /** Closed windows not yet published. */
  pending: ClosedWindows = { series: [], hosts: [] };
  constructor(
    readonly id: number,
    readonly state: AccountState,
  ) {}
}

export class Aggregator {
  readonly metrics = aggregatorMetrics({
    partitionsAssigned: () => this.parts.size,
    seriesHeld: () => [...this.parts.values()].reduce((s, p) => s + p.state.seriesCount, 0),
  });
  /** What the HTTP API reads. */
  readonly views: AccountingViews;
  readonly accountOptions: AccountOptions;
  private readonly kafka: Kafka;
  private readonly consumer: PartitionedConsumer;
  private readonly store: CheckpointStore;
  private readonly out: OutputPublisher;
  private readonly parts = new Map<number, Partition>();
  private readonly layout: RawTopicLayout;
  private api: HttpServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private flushing = false;
  private aborted = false;
  private ready = false;
  /** Why start() failed; why the last checkpoint failed, until one succeeds (readiness). */
  private startError: string | undefined;
  private checkpointError: string | undefined;
  httpAddress = '';

  constructor(
    readonly config: AggregatorConfig,
    private readonly log: Logger,
  ) {
    this.accountOptions = {
      windowGraceNs: config.windowGraceMs * 1e6,
      maxEventAheadNs: config.maxEventAheadMs * 1e6,
      hotPageShift: config.hotPageShift,
      sketchSlots: config.hotPageSlots,
      collectWindows: true,
    };
    this.kafka = kafkaClient(
      { clientId: config.clientId, brokers: config.brokers, security: config.kafkaSecurity },
      { retry: { retries: 8 } },
    );
    this.views = new AccountingViews(
      {
        partitions: () => this.parts.values(),
        assignedPartitions: () => this.consumer.partitions,
        skippedOffsets: () => this.consumer.skippedOffsets,
      },
      config,
    );
    this.layout = new RawTopicLayout(config.rawTopic, config.groupId, log);
    this.out = new OutputPublisher(this.kafka);
    this.store = new CheckpointStore(
      this.kafka,
      { topic: config.checkpointTopic, groupId: config.groupId, rawTopic: config.rawTopic },
      log,
    );
    this.consumer = new PartitionedConsumer(
      this.kafka,
      {
        topic: config.rawTopic,
        groupId: config.groupId,
        sessionTimeoutMs: config.sessionTimeoutMs,
        maxEventsPerBatch: config.maxEventsPerBatch,
      },
      {
        open: (p) => this.open(p),
        message: (p, offset, timestampMs, bytes, b, err) =>
          this.message(p, offset, timestampMs, bytes, b, err),
        flushed: (p, hw) => this.flushed(p, hw),
        revoked: (ps) => {
          for (const p of ps) {
            this.parts.delete(p);
            this.layout.forget(p);
          }
        },
      },
      log,
    );
  }

  async start(): Promise<void> {
    try {
      await this.startKafka();
    } catch (err) {
      this.startError = explainKafkaError(err, kafkaPermissions(this.config));
      throw new Error(this.startError, { cause: err });
    }
  }

  private async startKafka(): Promise<void> {
    const c = this.config;
    if (c.httpListen) {
      this.api = await startApi({
        listen: c.httpListen,
        registry: this.metrics.registry,
        notReady: () => this.notReady(),
        views: this.views,
        fleetPeers: c.fleetPeers,
      });
      this.httpAddress = this.api.address;
    }
    await prepareTopics(this.kafka, c);
    await retryWhileRetriable(() => this.out.connect());
    await this.store.start();
    this.running = true;
    await this.consumer.start();
    this.timer = setInterval(() => void this.flushIdle(), Math.max(50, c.checkpointIntervalMs / 2));
    this.ready = true;
    this.log.info(
      {
        http: this.httpAddress,
        group: c.groupId,
        raw: c.rawTopic,
        windows: c.windowsTopic,
        totals: c.totalsTopic,
        checkpoints: c.checkpointTopic,
      },
      'aggregator ready',
    );
  }

  /** Graceful stop: last checkpoints of every partition, then leave the group. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.ready = false;
    clearInterval(this.timer);
    try {
      this.consumer.pause();
    } catch {
      // Not running (it failed): nothing is being fetched anyway.
    }
    await this.consumer.lock.run(async () => {
      for (const p of this.parts.values()) {
        if (p.dirty) await this.checkpoint(p).catch((err) => this.fail(p, err));
      }
    });
    await this.consumer.stop();
    await this.shutdown();
  }

  /**
   * Stops without a last checkpoint, as a crash would: whatever was counted since the last
   * checkpoint is dropped (and counted again by the next owner). For tests.
   */
  async abort(): Promise<void> {
    this.aborted = true;
    this.running = false;
    this.ready = false;
    clearInterval(this.timer);
    await this.consumer.stop();
    await this.shutdown();
  }

  private async shutdown(): Promise<void> {
    await this.out.disconnect().catch(() => {});
    await this.store.stop();
    await this.api?.close();
  }

  // ---- consume -> aggregate ----

  private async open(p: number): Promise<number> {
    const cur = this.parts.get(p);
    await this.layout.learn(
      () => partitionCount(this.kafka, this.config.rawTopic),
      async (q) => decodeCheckpoint((await this.store.latest(q)) ?? new Uint8Array()).raw_partitions,
    );
    const bytes = await this.store.latest(p);
    const c = bytes ? decodeCheckpoint(bytes) : undefined;
    this.layout.open(p, c?.raw_partitions ?? 0);
    if (c) {
      const next = Number(c.next_offset?.toString() ?? 0);
      if (!cur || next > cur.state.nextOffset) {
        const st = fromCheckpoint(c, this.accountOptions);
        // Republish everything: overwrites whatever a previous owner left in the totals topic.
        st.markAllDirty();
        const part = new Partition(p, st);
        part.dirty = true;
        this.parts.set(p, part);
        this.metrics.restores.inc();
        this.log.info({ partition: p, nextOffset: next, series: st.seriesCount }, 'partition restored');
        return next;
      }
    }
    if (cur) return cur.state.nextOffset;
    const part = new Partition(p, new AccountState(this.accountOptions));
    this.parts.set(p, part);
    this.log.info({ partition: p }, 'partition without checkpoint: counting from the oldest retained batch');
    return -1;
  }

  /** Why /readyz says no: not started, in a rebalance, or assigned partitions not restored. */
  private notReady(): string | null {
    if (!this.ready) return this.startError ?? 'connecting to Kafka';
    if (this.checkpointError) return this.checkpointError;
    const refused = this.layout.refusal();
    if (refused) return refused;
    if (this.consumer.rebalancing) return 'joining the consumer group';
    const waiting = this.consumer.partitions.filter((p) => !this.parts.has(p));
    return waiting.length > 0 ? `restoring partitions ${waiting.join(',')}` : null;
  }

  private message(
    p: number,
    offset: number,
    timestampMs: number,
    bytes: Buffer,
    b: Batch | undefined,
    err?: Error,
  ): void {
    const part = this.parts.get(p);
    if (!part || !this.layout.accepts(p, offset, b?.host)) return;
    const st = part.state;
    if (b === undefined) {
      st.malformed++;
      this.metrics.batches.inc({ result: 'malformed' });
      this.log.warn({ partition: p, offset, err }, 'skipping undecodable raw message');
    } else {
      // The Kafka timestamp is the collector's clock when it published the batch; the digest is
      // of the raw bytes (a resent batch is the same bytes; they are ~4x smaller than decoded).
      const receivedNs = Number.isFinite(timestampMs) ? BigInt(timestampMs) * 1_000_000n : undefined;
      const verdict = st.offer(b, receivedNs, bytesDigest(bytes));
      if (verdict === 'new') {
        this.metrics.batches.inc({ result: 'counted' });
        this.metrics.events.inc(b.events.count);
      } else if (verdict === 'replay') {
        this.metrics.batches.inc({ result: 'replayed' });
      } else {
        this.metrics.batches.inc({ result: 'conflict' });
        this.log.error(
          {
            partition: p,
            offset,
            host: b.host,
            agentId: b.agentId,
            epoch: String(b.epoch),
            sequence: String(b.sequence),
            events: b.events.count,
          },
          'conflict: a counted (agent, epoch, sequence) came again with other content; not counted',
        );
      }
    }
    st.nextOffset = offset + 1;
    part.dirty = true;
  }

  private async flushed(p: number, highWatermark: number): Promise<void> {
    const part = this.parts.get(p);
    if (!part) return;
    part.highWatermark = highWatermark;
    this.metrics.lag.set({ partition: String(p) }, Math.max(0, highWatermark - part.state.nextOffset));
    if (Date.now() - part.lastCheckpointAt >= this.config.checkpointIntervalMs) {
      // A failed checkpoint loses nothing (the state stays); the idle timer tries again.
      await this.checkpoint(part).catch((err) => this.fail(part, err));
    }
  }

  /** Checkpoints partitions that counted something and have not been checkpointed for a while. */
  private async flushIdle(): Promise<void> {
    if (!this.running || this.consumer.rebalancing || this.flushing) return;
    this.flushing = true;
    try {
      const due = (p: Partition) =>
        p.dirty && Date.now() - p.lastCheckpointAt >= this.config.checkpointIntervalMs;
      for (const p of [...this.parts.values()]) {
        if (!due(p)) continue;
        await this.consumer.lock
          .run(async () => {
            // Still ours, still due, and no rebalance began while waiting for the lock.
            if (this.running && !this.consumer.rebalancing && this.parts.get(p.id) === p && due(p)) {
              await this.checkpoint(p);
            }
          })
          .catch((err) => this.fail(p, err));
      }
    } finally {
      this.flushing = false;
    }
  }

  private fail(p: Partition, err: Error): void {
    this.metrics.errors.inc();
    this.checkpointError = `checkpoint failed: ${explainKafkaError(err, kafkaPermissions(this.config))}`;
    this.log.error({ partition: p.id, err }, 'checkpoint failed; retrying at the next one');
  }

  /** Publishes closed windows and changed totals, then the partition's state. */
  private async checkpoint(p: Partition): Promise<void> {
    if (this.aborted) return;
    const st = p.state;
    const c = this.config;
    const closed = st.drainClosed();
    for (const w of closed.series) p.pending.series.push(w);
    for (const w of closed.hosts) p.pending.hosts.push(w);
    const asOf: AsOf = { rawTopic: c.rawTopic, partition: p.id, nextOffset: Math.max(0, st.nextOffset) };
    const windows = [...p.pending.series.map(seriesWindowMessage), ...p.pending.hosts.map(hostWindowMessage)];
    const dirty = st.dirty();
    const totals = [
      ...dirty.series.map((s) => seriesTotalsMessage(st, s, asOf)),
      ...dirty.hosts.map((h) => hostTotalsMessage(st, h, asOf)),
    ];
    await this.out.send(c.windowsTopic, windows);
    await this.out.send(c.totalsTopic, totals);
    this.metrics.published.inc({ topic: 'windows' }, windows.length);
    this.metrics.published.inc({ topic: 'totals' }, totals.length);
    this.views.remember(p.pending);
    p.pending = { series: [], hosts: [] };
    st.clearDirty();

    const bytes = encodeCheckpoint({
      ...toCheckpoint(st),
      group_id: c.groupId,
      raw_topic: c.rawTopic,
      partition: p.id,
      written_unix_ms: Date.now(),
      raw_partitions: this.layout.partitions,
    });
    const key = checkpointKey(c.groupId, c.rawTopic, p.id);
    await this.out.sendCheckpoint(c.checkpointTopic, key, asOf.nextOffset, bytes);
    this.store.offer(p.id, asOf.nextOffset, Buffer.from(bytes));
    this.metrics.checkpoints.inc();
    this.metrics.checkpointBytes.inc(bytes.length);
    p.lastCheckpointAt = Date.now();
    p.checkpointedOffset = asOf.nextOffset;
    p.dirty = false;
    this.checkpointError = undefined;
    if (st.nextOffset >= 0) await this.consumer.commit(p.id, st.nextOffset);
  }
}
