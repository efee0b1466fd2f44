// smmu-agent loadgen: many model agents in one process, for fan-in tests and benchmarks. Each
// stream is the agent's own pipeline (model source -> batcher -> memory spool -> transport)
// with its own host, agent id, seed and gRPC connection (a channel outside the process-wide
// subchannel pool), so a collector sees what that many hosts would send it. Stream n tries the
// collector addresses starting at the n-th, so the streams spread over them. Metrics are shared
// (sums over the streams); ack latencies go into one histogram for the summary.
import { createHistogram } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from '../../../common/runtime/log';
import type { BatcherOptions } from '../batch/batcher';
import type { AgentMetrics } from '../metrics';
import { AgentPipeline, type StopResult } from '../pipeline';
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
  private readonly streams: Stream[] = [];
  /** Ack round trips in microseconds. */
  private readonly acks = createHistogram();
  private maxPending = 0;
  private sampler: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private stopped: Promise<LoadgenSummary> | undefined;

  constructor(
    private readonly plan: LoadgenPlan,
    private readonly settings: LoadgenSettings,
    private readonly source: (seed: number | string) => EventSource,
    private readonly metrics: AgentMetrics,
    private readonly log: Logger,
  ) {}

  private open(i: number): Stream {
    const { plan, settings } = this;
    const s = plan.streams[i];
    const addresses = settings.transport.addresses;
    const first = i % addresses.length;
    const spool = new MemorySpool(settings.spoolBudgetBytes);
    const pipeline = new AgentPipeline(
      {
        identity: { host: s.host, agentId: s.agentId },
        batch: settings.batch,
        transport: {
          ...settings.transport,
          addresses: [...addresses.slice(first), ...addresses.slice(0, first)],
          channelOptions: { ...settings.transport.channelOptions, 'grpc.use_local_subchannel_pool': 1 },
          onAck: (ms: number) => this.acks.record(Math.max(1, Math.round(ms * 1000))),
        },
        drainTimeoutMs: settings.drainTimeoutMs,
      },
      this.source(s.seed),
      spool,
      this.metrics,
      [],
      this.log.child({ stream: s.host }),
    );
    return { host: s.host, spool, pipeline };
  }

  /**
   * Opens and starts the streams one by one (a model takes milliseconds to build; the loop
   * serves the streams already open meanwhile), then runs for the duration. Resolves when
   * every source ended or the duration passed since the last stream started.
   */
  async run(): Promise<void> {
    this.startedAt = performance.now();
    for (let i = 0; i < this.plan.streams.length && !this.stopped; i++) {
      const s = this.open(i);
      this.streams.push(s);
      s.pipeline.start();
      await yieldToLoop();
    }
    this.log.info({ streams: this.streams.length }, 'loadgen: every stream started');
    this.sampler = setInterval(() => {
      for (const s of this.streams) this.maxPending = Math.max(this.maxPending, s.spool.pendingCount());
    }, 1000);
    await new Promise<void>((resolve) => {
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
