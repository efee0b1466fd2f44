// The agent, end to end: source -> decode/count -> batch -> spool -> transport.
import { encodeBatch } from '../../proto/batch-codec';
import { type EventBlock, EventBlockBuilder } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { Batcher, type BatcherOptions, type ClosedBatch } from './batch/batcher';
import type { AgentMetrics } from './metrics';
import type { Logger } from './runtime/log';
import type { EventSource } from './source/source';
import type { Spool } from './spool/spool';
import { IngestClient, type IngestClientOptions } from './transport/ingest-client';

export interface AgentIdentity {
  host: string;
  agentId: string;
}

export interface PipelineOptions {
  identity: AgentIdentity;
  batch: BatcherOptions;
  transport: Omit<IngestClientOptions, 'logger'>;
  /** How long stop() waits for the collector to acknowledge what is spooled. */
  drainTimeoutMs: number;
}

/** Something that watches every event block the source yields (local accounting). */
export interface BlockObserver {
  add(block: EventBlock): void;
}

export class AgentPipeline {
  readonly client: IngestClient;
  private batcher: Batcher;
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** Events read from the source and lost before batching, for tests and the final log. */
  readonly totals = { events: 0, batches: 0, lost: 0 };
  /** Where a resumable source starts: after the last event this spool holds from it. */
  private readonly startOffset: number;
  private spooledEvents = 0;
  failure: Error | undefined;

  constructor(
    private readonly opts: PipelineOptions,
    private readonly source: EventSource,
    private readonly spool: Spool,
    private readonly metrics: AgentMetrics,
    private readonly observers: BlockObserver[],
    private readonly log: Logger,
  ) {
    this.client = new IngestClient(
      {
        ...opts.transport,
        logger: log,
        onAck: (ms) => {
          metrics.acked.inc();
          metrics.ackSeconds.observe(ms / 1000);
          metrics.spoolBytes.set(spool.bytes());
        },
        onConnection: (up, address) => {
          metrics.connected.set(up ? 1 : 0);
          if (up) metrics.connects.inc({ collector: address });
        },
      },
      spool,
    );
    this.startOffset = source.resumable ? spool.sourceOffset() : 0;
    this.batcher = new Batcher(
      opts.batch,
      (b) => this.store(b),
      (err) => this.fail(err),
    );
  }

  start(): void {
    this.client.start();
    this.loop = this.run().catch((err: Error) => this.fail(err));
  }

  private async run(): Promise<void> {
    for await (const chunk of this.source.read(this.abort.signal, this.startOffset)) {
      const n = chunk.events.count;
      this.totals.events += n;
      this.metrics.eventsRead.inc(n);
      for (const o of this.observers) o.add(chunk.events);
      if (chunk.lost) for (const [r, c] of chunk.lost) this.countLost(r, c);
      await this.batcher.add(chunk.event ?? this.source.event, chunk.events, chunk.lost);
    }
  }

  private countLost(reason: LossReason, n: number): void {
    if (n <= 0) return;
    this.totals.lost += n;
    this.metrics.eventsLost.inc({ reason: LossReason[reason] ?? String(reason) }, n);
  }

  /** Numbers a closed batch, encodes it once and spools it, with any losses the spool owes. */
  private async store(b: ClosedBatch): Promise<void> {
    const dropped = this.spool.droppedUnreported();
    if (dropped > 0) {
      this.countLost(LossReason.LOSS_REASON_SPOOL_FULL, dropped);
      b.lost.set(
        LossReason.LOSS_REASON_SPOOL_FULL,
        (b.lost.get(LossReason.LOSS_REASON_SPOOL_FULL) ?? 0) + dropped,
      );
    }
    const id = this.opts.identity;
    const sequence = this.spool.nextSequence();
    const bytes = encodeBatch({
      host: id.host,
      agentId: id.agentId,
      epoch: this.spool.epoch,
      sequence,
      sourceKind: this.source.kind,
      sourceEvent: b.event,
      lost: b.lost,
      events: b.events,
      createdUnixNs: BigInt(Date.now()) * 1_000_000n,
    });
    this.spooledEvents += b.events.count;
    await this.spool.append({
      sequence,
      bytes,
      events: b.events.count,
      sourceOffset: this.source.resumable ? this.startOffset + this.spooledEvents : 0,
      reportsDropped: dropped,
    });
    this.totals.batches++;
    this.metrics.batches.inc();
    this.metrics.batchBytes.inc(bytes.length);
    this.metrics.spoolBytes.set(this.spool.bytes());
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.log.error({ err: err.message }, 'pipeline failed');
    this.abort.abort();
  }

  /** Resolves when the source is exhausted (finite sources) or failed. */
  async done(): Promise<void> {
    await this.loop;
  }

  /** Stops reading, closes the open batch and waits (bounded) for the collector's acks. */
  async stop(): Promise<boolean> {
    this.abort.abort();
    await this.loop;
    await this.batcher.flush();
    this.batcher.stop();
    // Batches the spool dropped while the last ones went in are reported in a loss-only batch
    // (which could itself push out another one: hence the bounded loop).
    for (let i = 0; this.spool.droppedUnreported() > 0 && i < 3; i++) {
      await this.store({
        event: this.source.event,
        events: new EventBlockBuilder(1).finish(),
        lost: new Map(),
      });
    }
    const drained = await this.client.drain(this.opts.drainTimeoutMs);
    if (!drained) {
      this.log.warn(
        { unacked: this.spool.pendingCount() },
        'collector did not acknowledge every batch before the drain timeout',
      );
    }
    this.client.close();
    await this.spool.close();
    return drained;
  }
}
