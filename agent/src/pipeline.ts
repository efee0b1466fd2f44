// The agent, end to end: source -> decode/count -> batch -> spool -> transport.

import type { Logger } from '../../common/runtime/log';
import { type ColumnCoding, encodeBatch, FIELD_CODING } from '../../proto/batch-codec';
import { type EventBlock, EventBlockBuilder } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { Batcher, type BatcherOptions, type ClosedBatch } from './batch/batcher';
import type { AgentMetrics } from './metrics';
import type { EventSource } from './source/source';
import { LOSS_KEYS, LOSS_REASONS, type Losses, type Spool, totalLosses } from './spool/spool';
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
  /** EventColumns coding of the batches (default: field columns). */
  columnCoding?: ColumnCoding;
}

/** Something that watches every event block the source yields (local accounting). */
export interface BlockObserver {
  add(block: EventBlock): void;
}

/** How a stop went: whether every batch was acknowledged, and what a memory spool lost with the process. */
export interface StopResult {
  drained: boolean;
  /** Unacknowledged batches left in the spool. */
  unackedBatches: number;
  /** Events that die with the process (memory spool only: its batches and unreported losses). */
  lostEvents: number;
}

const EMPTY_BLOCK = new EventBlockBuilder(1).finish();

/** Adds spool losses to a batch's loss counts, under their wire reasons; returns `lost`. */
function withLosses(lost: Map<LossReason, number>, l: Losses): Map<LossReason, number> {
  for (const k of LOSS_KEYS) if (l[k] > 0) lost.set(LOSS_REASONS[k], (lost.get(LOSS_REASONS[k]) ?? 0) + l[k]);
  return lost;
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
          opts.transport.onAck?.(ms);
        },
        onConnection: (up, address) => {
          metrics.connected.set(up ? 1 : 0);
          if (up) metrics.connects.inc({ collector: address });
        },
        onRefused: (code) => metrics.refused.inc({ code }),
      },
      spool,
    );
    this.startOffset = source.resumable ? spool.sourceOffset() : 0;
    // Spool losses count when they happen; those found on open (or owed by the previous run) now.
    this.countSpoolLosses(spool.owed());
    spool.onLoss((l) => this.countSpoolLosses(l));
    spool.replaceDamagedWith((sequence, lost) =>
      this.encode(sequence, this.source.event, withLosses(new Map(), lost), EMPTY_BLOCK, true),
    );
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

  private countSpoolLosses(l: Losses): void {
    for (const k of LOSS_KEYS) this.countLost(LOSS_REASONS[k], l[k]);
  }

  /** Numbers a closed batch, encodes it once and spools it, with any losses the spool owes. */
  private async store(b: ClosedBatch): Promise<void> {
    const reports = this.spool.owed();
    const sequence = this.spool.nextSequence();
    const bytes = this.encode(sequence, b.event, withLosses(b.lost, reports), b.events);
    this.spooledEvents += b.events.count;
    await this.spool.append({
      sequence,
      bytes,
      events: b.events.count,
      sourceOffset: this.source.resumable ? this.startOffset + this.spooledEvents : 0,
      reports,
    });
    this.totals.batches++;
    this.metrics.batches.inc();
    this.metrics.batchBytes.inc(bytes.length);
    this.metrics.spoolBytes.set(this.spool.bytes());
  }

  /**
   * This agent's EventBatch `sequence`. A replacement for a damaged batch (no events) has no
   * creation time, so it is the same bytes whenever it is built again.
   */
  private encode(
    sequence: number,
    event: string,
    lost: Map<LossReason, number>,
    events: EventBlock,
    replacesDamaged = false,
  ): Uint8Array {
    const id = this.opts.identity;
    return encodeBatch(
      {
        host: id.host,
        agentId: id.agentId,
        epoch: this.spool.epoch,
        sequence,
        sourceKind: this.source.kind,
        sourceEvent: event,
        lost,
        events,
        createdUnixNs: replacesDamaged ? 0n : BigInt(Date.now()) * 1_000_000n,
        replacesDamaged,
      },
      this.opts.columnCoding ?? FIELD_CODING,
    );
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.log.error({ err }, 'pipeline failed');
    this.abort.abort();
  }

  /** Resolves when the source is exhausted (finite sources) or failed. */
  async done(): Promise<void> {
    await this.loop;
  }

  /** Stops reading, closes the open batch and waits (bounded) for the collector's acks. */
  async stop(): Promise<StopResult> {
    this.abort.abort();
    await this.loop;
    await this.batcher.flush();
    this.batcher.stop();
    // Losses the spool incurred while the last batches went in are reported in a loss-only batch.
    // Appended to a full spool it could push out another batch (owing more), so it goes in once
    // the spool has drained: then it is the only batch and fits whatever the budget. Bounded: a
    // durable spool keeps what is still owed for the next start.
    const deadline = Date.now() + this.opts.drainTimeoutMs;
    let drained = await this.client.drain(this.opts.drainTimeoutMs);
    for (let i = 0; drained && totalLosses(this.spool.owed()) > 0 && i < 3; i++) {
      await this.store({ event: this.source.event, events: EMPTY_BLOCK, lost: new Map() });
      drained = await this.client.drain(Math.max(0, deadline - Date.now()));
    }
    if (!drained) {
      this.log.warn(
        { unacked: this.spool.pendingCount() },
        'collector did not acknowledge every batch before the drain timeout',
      );
    }
    this.client.close();
    const result: StopResult = {
      drained,
      unackedBatches: this.spool.pendingCount(),
      lostEvents: this.spool.durable ? 0 : this.spool.pendingEvents() + totalLosses(this.spool.owed()),
    };
    await this.spool.close();
    if (result.lostEvents > 0)
      this.log.error(
        { lostEvents: result.lostEvents, unackedBatches: result.unackedBatches },
        'exiting with unacknowledged batches in the memory spool: their events are lost',
      );
    return result;
  }
}
