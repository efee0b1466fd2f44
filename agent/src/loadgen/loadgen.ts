// smmu-agent loadgen: many model agents in one process, for fan-in tests and benchmarks. Each
// stream is the agent's own pipeline (model source -> batcher -> memory spool -> transport)
// with its own host, agent id, seed and gRPC connection (a channel outside the process-wide
// subchannel pool), so a collector sees what that many hosts would send it. Stream n tries the
// collector addresses starting at the n-th, so the streams spread over them. Metrics are shared
// (sums over the streams); ack latencies go into one histogram for the summary.
import { createHistogram } from 'node:perf_hooks';
import type { BatcherOptions } from '../batch/batcher';
import type { AgentMetrics } from '../metrics';
import { AgentPipeline, type StopResult } from '../pipeline';
import type { Logger } from '../runtime/log';
import type { EventSource } from '../source/source';
import { MemorySpool } from '../spool/memory-spool';
import type { IngestClientOptions } from '../transport/ingest-client';
import type { LoadgenPlan } from './plan';

export interface LoadgenSettings {
  batch: BatcherOptions;
  transport: Omit<IngestClientOptions, 'logger'>;
  drainTimeoutMs: number;
  spoolBudgetBytes: number;
}

/** What a run did, printed as JSON by the command and read by the fan-in benchmark. */
export interface LoadgenSummary {
  streams: number;
  /** Wall time from start to the end of the drain. */
  seconds: number;
  /** Events generated, all streams. */
  events: number;
  batches: number;
  ackedBatches: number;
  /** Streams whose every batch was acknowledged before the drain timeout. */
  drainedStreams: number;
  /** Events that died unacknowledged in the memory spools at exit. */
  lostEvents: number;
  /** Losses counted and reported in batches (spool full), all streams. */
  reportedLost: number;
  failedStreams: number;
  /** The most unacknowledged batches any stream held, sampled each second while generating. */
  maxPendingBatches: number;
  ackLatencyMs: { p50: number; p99: number; max: number };
  /** Events generated per host. */
  perStream: Record<string, number>;
}

interface Stream {
  host: string;
  spool: MemorySpool;
  pipeline: AgentPipeline;
}

export class Loadgen {
  private readonly streams: Stream[];
  /** Ack round trips in microseconds. */
  private readonly acks = createHistogram();
  private maxPending = 0;
  private sampler: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private stopped: Promise<LoadgenSummary> | undefined;

  constructor(
    private readonly plan: LoadgenPlan,
    settings: LoadgenSettings,
    source: (seed: number | string) => EventSource,
    metrics: AgentMetrics,
    log: Logger,
  ) {
    const transport = {
      ...settings.transport,
      channelOptions: { ...settings.transport.channelOptions, 'grpc.use_local_subchannel_pool': 1 },
      onAck: (ms: number) => this.acks.record(Math.max(1, Math.round(ms * 1000))),
    };
    const addresses = settings.transport.addresses;
    this.streams = plan.streams.map((s, i) => {
      const spool = new MemorySpool(settings.spoolBudgetBytes);
      const first = i % addresses.length;
      const pipeline = new AgentPipeline(
        {
          identity: { host: s.host, agentId: s.agentId },
          batch: settings.batch,
          transport: { ...transport, addresses: [...addresses.slice(first), ...addresses.slice(0, first)] },
          drainTimeoutMs: settings.drainTimeoutMs,
        },
        source(s.seed),
        spool,
        metrics,
        [],
        log.child({ stream: s.host }),
      );
      return { host: s.host, spool, pipeline };
    });
  }

  /** Starts every stream; resolves when all sources ended or the duration passed. */
  run(): Promise<void> {
    this.startedAt = performance.now();
    for (const s of this.streams) s.pipeline.start();
    this.sampler = setInterval(() => {
      for (const s of this.streams) this.maxPending = Math.max(this.maxPending, s.spool.pendingCount());
    }, 1000);
    return new Promise<void>((resolve) => {
      this.deadline = setTimeout(resolve, this.plan.durationMs);
      void Promise.all(this.streams.map((s) => s.pipeline.done())).then(() => resolve());
    });
  }

  /** Stops every stream (each drains, bounded by its drain timeout) and sums up. Idempotent. */
  stop(): Promise<LoadgenSummary> {
    this.stopped ??= (async () => {
      clearInterval(this.sampler);
      clearTimeout(this.deadline);
      const results = await Promise.all(this.streams.map((s) => s.pipeline.stop()));
      return this.summary(results);
    })();
    return this.stopped;
  }

  private summary(results: StopResult[]): LoadgenSummary {
    const perStream: Record<string, number> = {};
    let events = 0;
    let batches = 0;
    let reportedLost = 0;
    for (const s of this.streams) {
      reportedLost += s.pipeline.totals.lost;
      perStream[s.host] = s.pipeline.totals.events;
      events += s.pipeline.totals.events;
      batches += s.pipeline.totals.batches;
    }
    const ms = (us: number) => Math.round(us) / 1000;
    const n = this.acks.count;
    return {
      streams: this.streams.length,
      seconds: Math.round(performance.now() - this.startedAt) / 1000,
      events,
      batches,
      ackedBatches: n,
      drainedStreams: results.filter((r) => r.drained).length,
      lostEvents: results.reduce((sum, r) => sum + r.lostEvents, 0),
      reportedLost,
      failedStreams: this.streams.filter((s) => s.pipeline.failure).length,
      maxPendingBatches: this.maxPending,
      ackLatencyMs: {
        p50: n ? ms(this.acks.percentile(50)) : 0,
        p99: n ? ms(this.acks.percentile(99)) : 0,
        max: n ? ms(this.acks.max) : 0,
      },
      perStream,
    };
  }
}
