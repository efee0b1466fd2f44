// The aggregator daemon (`smmu-fleet aggregate`): consume -> aggregate -> serve.
//
//   raw batches topic --PartitionedConsumer--> AccountState per partition --> windows topic
//                                                      |                  --> totals topic
//                                                      +-- checkpoint ---> checkpoint topic
//                                                      +-- HTTP JSON API (serve.ts)
//
// Instances share a consumer group and split the raw topic's partitions (a host's batches are
// all in one partition, so each host is counted by exactly one instance at a time). Per
// partition, every `checkpointIntervalMs` (and on shutdown) the aggregator publishes the windows
// closed since the last checkpoint and the totals that changed, then writes the partition's
// whole state with the raw offset it covers to the compacted checkpoint topic. A partition that
// is assigned is restored from its latest checkpoint and read on from that offset. See
// README.md "Exactly-once" for why totals neither lose nor double-count anything.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Logger } from '../../../agent/src/runtime/log';
import type { Batch } from '../../../proto/batch-codec';
import { type KafkaSecurity, kafkaClient, noKafkaSecurity } from '../kafka-client';
import { explainKafkaError, isRetriable } from '../kafka-errors';
import {
  checkpointTopic,
  ensureTopics,
  rawTopic,
  totalsTopic,
  verifyTopicConfig,
  windowsTopic,
} from '../topics';
import {
  type AccountOptions,
  AccountState,
  type ClosedWindows,
  type HostAccount,
  type HostTotalsRow,
  type HostWindowOut,
  type SeriesTotalsRow,
  type SeriesWindowOut,
  WIDTH_NAMES,
  WIDTHS_NS,
} from './aggregate';
import { CheckpointStore, checkpointKey, decodeCheckpoint, encodeCheckpoint } from './checkpoint';
import { PartitionedConsumer } from './consume';
import { bytesDigest } from './dedup';
import { type AdviceRange, adviseRanges, type HotPage } from './hotpages';
import { RawTopicLayout } from './layout';
import {
  type AsOf,
  hostTotalsMessage,
  hostWindowMessage,
  OutputPublisher,
  seriesTotalsMessage,
  seriesWindowMessage,
} from './outputs';
import {
  type DeviceRow,
  deviceRows,
  type FleetSummary,
  fleetSummary,
  hostWindowJson,
  type ProcessRow,
  processRows,
  seriesWindowJson,
  type WindowJson,
} from './query';
import { type ApiServer, startApi } from './serve';

export interface AggregatorConfig {
  brokers: string[];
  kafkaSecurity: KafkaSecurity;
  clientId: string;
  /** Consumer group of the aggregator instances (also part of the checkpoint keys). */
  groupId: string;
  rawTopic: string;
  windowsTopic: string;
  totalsTopic: string;
  checkpointTopic: string;
  /** Create missing output topics (partitions/replication below). */
  createTopics: boolean;
  topicPartitions: number;
  topicReplication: number;
  windowsRetentionMs: number;
  /** HTTP listen address for the API, /healthz, /readyz, /metrics; empty: none. */
  httpListen: string;
  /** The other instances' API base URLs: /v1/fleet/ and the web page merge their answers. */
  fleetPeers: string[];
  checkpointIntervalMs: number;
  windowGraceMs: number;
  /** Events further ahead of the collector's clock than this are held apart (aggregate.ts). */
  maxEventAheadMs: number;
  hotPageShift: number;
  hotPageSlots: number;
  /** Closed windows kept in memory for the time-series API. */
  windowHistory: number;
  sessionTimeoutMs: number;
  maxEventsPerBatch: number;
  adviceMinFaults: number;
  adviceGapPages: number;
}

export const defaultAggregatorConfig: AggregatorConfig = {
  brokers: ['127.0.0.1:9092'],
  kafkaSecurity: noKafkaSecurity,
  clientId: 'smmu-fleet-aggregator',
  groupId: 'smmu-fleet-aggregator',
  rawTopic: 'smmu-fleet.batches.v1',
  windowsTopic: 'smmu-fleet.windows.v1',
  totalsTopic: 'smmu-fleet.totals.v1',
  checkpointTopic: 'smmu-fleet.checkpoints.v1',
  createTopics: true,
  topicPartitions: 6,
  topicReplication: 1,
  windowsRetentionMs: 7 * 24 * 3600 * 1000,
  httpListen: '127.0.0.1:9472',
  fleetPeers: [],
  checkpointIntervalMs: 5000,
  windowGraceMs: 5000,
  maxEventAheadMs: 3600_000,
  hotPageShift: 16,
  hotPageSlots: 128,
  windowHistory: 50_000,
  sessionTimeoutMs: 30_000,
  maxEventsPerBatch: 1 << 20,
  adviceMinFaults: 4,
  adviceGapPages: 0,
};

/** What the gauges read at scrape time. */
export interface AggregatorGaugeSource {
  partitionsAssigned(): number;
  seriesHeld(): number;
}

export function aggregatorMetrics(gauges: AggregatorGaugeSource) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'smmu_fleet_aggregator_' });
  const r = [registry];
  return {
    registry,
    batches: new Counter({
      name: 'smmu_fleet_aggregator_batches_read_total',
      help: 'Raw batches read, by result (counted, replayed, conflict, malformed)',
      labelNames: ['result'],
      registers: r,
    }),
    events: new Counter({
      name: 'smmu_fleet_aggregator_events_counted_total',
      help: 'Events counted',
      registers: r,
    }),
    checkpoints: new Counter({
      name: 'smmu_fleet_aggregator_checkpoints_written_total',
      help: 'Partition checkpoints written',
      registers: r,
    }),
    checkpointBytes: new Counter({
      name: 'smmu_fleet_aggregator_checkpoints_written_bytes_total',
      help: 'Bytes of checkpoints written (before compression)',
      registers: r,
    }),
    restores: new Counter({
      name: 'smmu_fleet_aggregator_partitions_restored_total',
      help: 'Partitions restored from a checkpoint',
      registers: r,
    }),
    published: new Counter({
      name: 'smmu_fleet_aggregator_records_published_total',
      help: 'Records published, by topic kind (windows, totals)',
      labelNames: ['topic'],
      registers: r,
    }),
    errors: new Counter({
      name: 'smmu_fleet_aggregator_checkpoints_failed_total',
      help: 'Failed checkpoints or publishes',
      registers: r,
    }),
    partitions: new Gauge({
      name: 'smmu_fleet_aggregator_partitions_assigned',
      help: 'Raw-topic partitions assigned to this instance',
      registers: r,
      collect() {
        this.set(gauges.partitionsAssigned());
      },
    }),
    series: new Gauge({
      name: 'smmu_fleet_aggregator_series',
      help: 'Series held',
      registers: r,
      collect() {
        this.set(gauges.seriesHeld());
      },
    }),
    lag: new Gauge({
      name: 'smmu_fleet_aggregator_lag_messages',
      help: 'Raw messages not yet counted, by partition',
      labelNames: ['partition'],
      registers: r,
    }),
  };
}

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

/** Closed windows kept for the time-series API, oldest dropped first. */
class WindowHistory {
  private series: SeriesWindowOut[] = [];
  private hosts: HostWindowOut[] = [];
  constructor(private readonly cap: number) {}
  add(c: ClosedWindows): void {
    if (this.cap === 0) return;
    for (const w of c.series) this.series.push(w);
    for (const w of c.hosts) this.hosts.push(w);
    if (this.series.length > this.cap * 1.25) this.series = this.series.slice(-this.cap);
    if (this.hosts.length > this.cap * 1.25) this.hosts = this.hosts.slice(-this.cap);
  }
  all(): { series: readonly SeriesWindowOut[]; hosts: readonly HostWindowOut[] } {
    return { series: this.series, hosts: this.hosts };
  }
}

export interface WindowQuery {
  width: number;
  host?: string;
  smmu?: string;
  streamId?: number;
  ssid?: number;
  /** Only windows starting at or after (ns since the Unix epoch). */
  sinceNs?: bigint;
  includeOpen: boolean;
  limit: number;
}

export interface HotPagesView {
  host: string;
  ssid: number;
  hotPageShift: number;
  /** Faults offered to the sketch (all page faults of the process). */
  faults: number;
  slots: number;
  pages: Array<HotPage & { address: string }>;
}

export interface AdviceView {
  host: string;
  ssid: number;
  hotPageShift: number;
  /** Seconds of event time the sketch covers. */
  observedSeconds: number;
  faults: number;
  ranges: Array<
    AdviceRange & {
      start: string;
      end: string;
      bytes: number;
      faultsPerSec: number | null;
      stallTimeNs: null;
    }
  >;
  /** Faults the ranges together would have saved (upper bound; guaranteed: lower bound). */
  savedFaults: number;
  savedGuaranteedFaults: number;
  savedStalls: number;
}

export class Aggregator {
  readonly metrics = aggregatorMetrics({
    partitionsAssigned: () => this.parts.size,
    seriesHeld: () => this.states().reduce((s, st) => s + st.seriesCount, 0),
  });
  readonly accountOptions: AccountOptions;
  private readonly kafka: Kafka;
  private readonly consumer: PartitionedConsumer;
  private readonly store: CheckpointStore;
  private readonly out: OutputPublisher;
  private readonly parts = new Map<number, Partition>();
  private readonly history: WindowHistory;
  private readonly layout: RawTopicLayout;
  /** host -> last closed 10 s window: index and events per SSID (for the processes' rates). */
  private readonly lastClosed = new Map<string, { index: number; perSsid: Map<number, number> }>();
  private api: ApiServer | undefined;
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
    this.history = new WindowHistory(config.windowHistory);
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

  /** What the aggregator needs from Kafka, for error messages naming a missing ACL. */
  private needs(): string {
    const c = this.config;
    return `READ on topics ${c.rawTopic} and ${c.checkpointTopic}, READ on consumer groups with the prefix ${c.groupId}, WRITE on topics ${c.windowsTopic}, ${c.totalsTopic} and ${c.checkpointTopic}, DESCRIBE_CONFIGS on ${c.checkpointTopic} and ${c.totalsTopic}`;
  }

  async start(): Promise<void> {
    try {
      await this.startKafka();
    } catch (err) {
      this.startError = explainKafkaError(err, this.needs());
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
        aggregator: this,
        fleetPeers: c.fleetPeers,
      });
      this.httpAddress = this.api.address;
    }
    // Two instances starting together race to create the topics; Kafka then answers "does not
    // host this topic-partition" until the new topics' metadata has spread.
    await retryTransient(async () => {
      if (c.createTopics) {
        await ensureTopics(this.kafka, [
          // Normally the collector creates it; the same specification either way.
          rawTopic(c.rawTopic, c.topicPartitions, c.topicReplication),
          windowsTopic(c.windowsTopic, c.topicPartitions, c.topicReplication, c.windowsRetentionMs),
          totalsTopic(c.totalsTopic, c.topicPartitions, c.topicReplication),
          checkpointTopic(c.checkpointTopic, c.topicReplication),
        ]);
      }
      // A checkpoint topic that deletes old checkpoints would make a restore start from nothing.
      await verifyTopicConfig(this.kafka, [
        { topic: c.checkpointTopic, name: 'cleanup.policy', value: 'compact' },
        { topic: c.totalsTopic, name: 'cleanup.policy', value: 'compact' },
      ]);
    });
    await retryTransient(() => this.out.connect());
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
      () => this.rawPartitionCount(),
      async (q) => decodeCheckpoint((await this.store.latest(q)) ?? new Uint8Array()).raw_partitions,
    );
    const bytes = await this.store.latest(p);
    const c = bytes ? decodeCheckpoint(bytes) : undefined;
    this.layout.open(p, c?.raw_partitions ?? 0);
    if (c) {
      const next = Number(c.next_offset?.toString() ?? 0);
      if (!cur || next > cur.state.nextOffset) {
        const st = AccountState.fromCheckpoint(c, this.accountOptions);
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

  /** The raw topic's partition count now. */
  private async rawPartitionCount(): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const md = await admin.fetchTopicMetadata({ topics: [this.config.rawTopic] });
      return md.topics[0]?.partitions.length ?? 0;
    } finally {
      await admin.disconnect();
    }
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
    this.checkpointError = `checkpoint failed: ${explainKafkaError(err, this.needs())}`;
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
    this.remember(p.pending);
    p.pending = { series: [], hosts: [] };
    st.clearDirty();

    const bytes = encodeCheckpoint({
      ...st.toCheckpoint(),
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

  private remember(c: ClosedWindows): void {
    this.history.add(c);
    for (const w of c.hosts) {
      if (w.width !== 0) continue;
      const cur = this.lastClosed.get(w.host);
      if (!cur || w.index > cur.index) this.lastClosed.set(w.host, { index: w.index, perSsid: new Map() });
    }
    for (const w of c.series) {
      if (w.width !== 0) continue;
      const cur = this.lastClosed.get(w.host);
      if (cur && cur.index === w.index) {
        const ev = w.cells[0] + w.cells[1] + w.cells[2] + w.cells[3];
        cur.perSsid.set(w.ssid, (cur.perSsid.get(w.ssid) ?? 0) + ev);
      }
    }
  }

  // ---- serve: the views the API answers with ----

  /** Partitions held, with their positions. */
  partitions(): Array<{
    partition: number;
    nextOffset: number;
    checkpointedOffset: number;
    highWatermark: number;
    lag: number;
  }> {
    return [...this.parts.values()]
      .sort((a, b) => a.id - b.id)
      .map((p) => ({
        partition: p.id,
        nextOffset: Math.max(0, p.state.nextOffset),
        checkpointedOffset: p.checkpointedOffset,
        highWatermark: p.highWatermark,
        // nextOffset -1: nothing read yet (an empty partition has no lag).
        lag: Math.max(0, p.highWatermark - Math.max(0, p.state.nextOffset)),
      }));
  }

  private states(): AccountState[] {
    return [...this.parts.values()].map((p) => p.state);
  }

  hostRows(): HostTotalsRow[] {
    return this.states()
      .flatMap((s) => s.hostRows())
      .filter((h) => h.batches > 0 || h.replayedBatches > 0 || h.conflictingBatches > 0)
      .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  }

  seriesRows(
    filter: { host?: string; smmu?: string; streamId?: number; ssid?: number } = {},
  ): SeriesTotalsRow[] {
    const out: SeriesTotalsRow[] = [];
    for (const st of this.states()) {
      for (let s = 0; s < st.seriesCount; s++) {
        const k = st.seriesKey(s);
        if (filter.host !== undefined && k.host !== filter.host) continue;
        if (filter.smmu !== undefined && k.smmu !== filter.smmu) continue;
        if (filter.streamId !== undefined && k.streamId !== filter.streamId) continue;
        if (filter.ssid !== undefined && k.ssid !== filter.ssid) continue;
        out.push(st.seriesRow(s));
      }
    }
    return out.sort(
      (a, b) =>
        b.events - a.events ||
        (a.host < b.host ? -1 : a.host > b.host ? 1 : 0) ||
        a.streamId - b.streamId ||
        a.ssid - b.ssid,
    );
  }

  summary(): FleetSummary & {
    partitions: ReturnType<Aggregator['partitions']>;
    assignedPartitions: number[];
    malformedMessages: number;
    skippedOffsets: number;
    checkpointIntervalMs: number;
    windowGraceMs: number;
  } {
    return {
      ...fleetSummary(this.hostRows()),
      partitions: this.partitions(),
      assignedPartitions: this.consumer.partitions,
      malformedMessages: this.states().reduce((s, st) => s + st.malformed, 0),
      skippedOffsets: this.consumer.skippedOffsets,
      checkpointIntervalMs: this.config.checkpointIntervalMs,
      windowGraceMs: this.config.windowGraceMs,
    };
  }

  /** Per-process rows with the rate of the host's last closed 10 s window. */
  processRows(host?: string): ProcessRow[] {
    const rates = new Map<string, Map<number, number>>();
    for (const [h, w] of this.lastClosed) {
      rates.set(h, new Map([...w.perSsid].map(([ssid, ev]) => [ssid, ev / 10])));
    }
    return processRows(this.seriesRows({ host }), rates);
  }

  deviceRows(host?: string): DeviceRow[] {
    return deviceRows(this.seriesRows({ host }));
  }

  private findHost(name: string): { st: AccountState; h: HostAccount } | undefined {
    for (const st of this.states()) {
      const h = st.findHost(name);
      if (h) return { st, h };
    }
    return undefined;
  }

  hasHost(name: string): boolean {
    return this.findHost(name) !== undefined;
  }

  windows(q: WindowQuery): WindowJson[] {
    const match = (w: { host: string; width: number; index: number }, s?: SeriesWindowOut) => {
      if (w.width !== q.width) return false;
      if (q.host !== undefined && w.host !== q.host) return false;
      if (q.sinceNs !== undefined && BigInt(w.index) * BigInt(WIDTHS_NS[q.width]) < q.sinceNs) return false;
      if (s) {
        if (q.smmu !== undefined && s.smmu !== q.smmu) return false;
        if (q.streamId !== undefined && s.streamId !== q.streamId) return false;
        if (q.ssid !== undefined && s.ssid !== q.ssid) return false;
      }
      return true;
    };
    const seriesLevel = q.smmu !== undefined || q.streamId !== undefined || q.ssid !== undefined;
    const out: WindowJson[] = [];
    const h = this.history.all();
    if (seriesLevel) {
      for (const w of h.series) if (match(w, w)) out.push(seriesWindowJson(w, true));
    } else {
      for (const w of h.hosts) if (match(w)) out.push(hostWindowJson(w, true));
    }
    if (q.includeOpen) {
      for (const st of this.states()) {
        for (const host of st.allHosts()) {
          if (q.host !== undefined && host.name !== q.host) continue;
          for (const ow of st.openWindows(host, q.width)) {
            if (seriesLevel) {
              for (const w of ow.series) if (match(w, w)) out.push(seriesWindowJson(w, false));
            } else if (match(ow.host)) out.push(hostWindowJson(ow.host, false));
          }
        }
      }
    }
    out.sort(
      (a, b) =>
        (BigInt(a.startUnixNs) < BigInt(b.startUnixNs)
          ? -1
          : BigInt(a.startUnixNs) > BigInt(b.startUnixNs)
            ? 1
            : 0) ||
        (a.host < b.host ? -1 : a.host > b.host ? 1 : 0) ||
        (a.streamId ?? 0) - (b.streamId ?? 0) ||
        (a.ssid ?? 0) - (b.ssid ?? 0),
    );
    return out.slice(-q.limit);
  }

  private sketches(host?: string, ssid?: number) {
    const out: Array<{
      host: string;
      ssid: number;
      sk: NonNullable<ReturnType<HostAccount['sketches']['get']>>;
    }> = [];
    for (const st of this.states()) {
      for (const h of st.allHosts()) {
        if (host !== undefined && h.name !== host) continue;
        for (const [s, sk] of h.sketches)
          if (ssid === undefined || s === ssid) out.push({ host: h.name, ssid: s, sk });
      }
    }
    return out.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.ssid - b.ssid));
  }

  hotPages(host: string | undefined, ssid: number | undefined, limit: number): HotPagesView[] {
    const shift = BigInt(this.config.hotPageShift);
    return this.sketches(host, ssid).map(({ host, ssid, sk }) => ({
      host,
      ssid,
      hotPageShift: this.config.hotPageShift,
      faults: sk.offered,
      slots: sk.slots,
      pages: sk.top(limit).map((p) => ({ ...p, address: `0x${(BigInt(p.page) << shift).toString(16)}` })),
    }));
  }

  advice(
    host: string | undefined,
    ssid: number | undefined,
    minFaults: number,
    gapPages: number,
  ): AdviceView[] {
    const shift = BigInt(this.config.hotPageShift);
    const out: AdviceView[] = [];
    for (const { host: h, ssid: s, sk } of this.sketches(host, ssid)) {
      const seconds = sk.lastNs > sk.firstNs ? Number(sk.lastNs - sk.firstNs) / 1e9 : 0;
      const ranges = adviseRanges(sk, { minFaults, gapPages }).map((r) => ({
        ...r,
        start: `0x${(BigInt(r.startPage) << shift).toString(16)}`,
        end: `0x${(BigInt(r.endPage) << shift).toString(16)}`,
        bytes: (r.endPage - r.startPage) * 2 ** this.config.hotPageShift,
        faultsPerSec: seconds > 0 ? r.faults / seconds : null,
        stallTimeNs: null,
      }));
      if (ranges.length === 0) continue;
      out.push({
        host: h,
        ssid: s,
        hotPageShift: this.config.hotPageShift,
        observedSeconds: seconds,
        faults: sk.offered,
        ranges,
        savedFaults: ranges.reduce((a, r) => a + r.faults, 0),
        savedGuaranteedFaults: ranges.reduce((a, r) => a + r.guaranteedFaults, 0),
        savedStalls: ranges.reduce((a, r) => a + r.stalls, 0),
      });
    }
    return out.sort((a, b) => b.savedFaults - a.savedFaults);
  }

  widthIndex(name: string): number {
    return WIDTH_NAMES.indexOf(name);
  }
}

/** Runs op again (up to 5 tries, 0.5 s, 1 s, ... apart) while Kafka calls its failure retriable. */
async function retryTransient<T>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (attempt >= 5 || !isRetriable(err)) throw err;
      await sleep(500 * attempt);
    }
  }
}
