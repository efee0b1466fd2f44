// The agent's own telemetry, declared in one place: smmu_agent_<object>_<verb>[_<unit>]_total for
// counters, smmu_agent_<object>[_<unit>] for gauges; labels are named after what the metric names.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { processRegistry } from '../../common/runtime/process-metrics';
import type { CounterRow } from './smmu/counters';
import type { SegmentSpoolStats } from './spool/spool-settings';

export function agentMetrics() {
  const registry = processRegistry('smmu_agent_');
  const r = [registry];
  return {
    registry,
    eventsRead: new Counter({
      name: 'smmu_agent_events_read_total',
      help: 'Events read from the source',
      registers: r,
    }),
    eventsLost: new Counter({
      name: 'smmu_agent_events_lost_total',
      help: 'Events lost before delivery, by reason',
      labelNames: ['reason'],
      registers: r,
    }),
    batches: new Counter({
      name: 'smmu_agent_batches_spooled_total',
      help: 'Batches closed and spooled',
      registers: r,
    }),
    batchBytes: new Counter({
      name: 'smmu_agent_batches_spooled_bytes_total',
      help: 'Encoded bytes of the batches spooled',
      registers: r,
    }),
    spoolBytes: new Gauge({
      name: 'smmu_agent_spool_bytes',
      help: 'Bytes of unacknowledged batches held in the spool',
      registers: r,
    }),
    acked: new Counter({
      name: 'smmu_agent_batches_acked_total',
      help: 'Batches the collector acknowledged',
      registers: r,
    }),
    connected: new Gauge({
      name: 'smmu_agent_collector_connected',
      help: '1 while a collector stream is open',
      registers: r,
    }),
    connects: new Counter({
      name: 'smmu_agent_collector_connects_total',
      help: 'Streams opened, by collector address (more than one: the agent reconnected or failed over)',
      labelNames: ['collector'],
      registers: r,
    }),
    refused: new Counter({
      name: 'smmu_agent_streams_refused_total',
      help: 'Streams the collector ended with an error retrying cannot cure (gRPC status name); batches stay spooled, see the error log',
      labelNames: ['code'],
      registers: r,
    }),
    ackSeconds: new Histogram({
      name: 'smmu_agent_ack_latency_seconds',
      help: 'Time from sending a batch to its acknowledgement',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
  };
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;

/**
 * The local fault accounting as Prometheus counters, read from the counters at scrape time:
 * per device (SMMU, StreamID) and per process (PASID = SSID), by fault kind, plus stalls and,
 * where known (the model), stall seconds.
 */
export function registerFaultMetrics(registry: Registry, snapshot: () => CounterRow[]): void {
  const kinds = ['translation', 'access', 'permission', 'other'] as const;
  const r = [registry];
  const rows = (scope: CounterRow['scope']) => snapshot().filter((x) => x.scope === scope);
  const fill = (c: Counter<string>, values: Array<[Record<string, string>, number]>) => {
    c.reset();
    for (const [labels, v] of values) if (v > 0) c.inc(labels, v);
  };
  new Counter({
    name: 'smmu_agent_device_faults_total',
    help: 'SMMU events per device (SMMU, StreamID) by fault kind',
    labelNames: ['smmu', 'sid', 'kind'],
    registers: r,
    collect() {
      fill(
        this,
        rows('stream').flatMap((x) =>
          kinds.map((k): [Record<string, string>, number] => [
            { smmu: x.smmu ?? '', sid: String(x.sid), kind: k },
            x[k],
          ]),
        ),
      );
    },
  });
  new Counter({
    name: 'smmu_agent_pasid_faults_total',
    help: "SMMU events per process (PASID, the SMMU's SSID; 0: no PASID) by fault kind",
    labelNames: ['pasid', 'kind'],
    registers: r,
    collect() {
      fill(
        this,
        rows('substream').flatMap((x) =>
          kinds.map((k): [Record<string, string>, number] => [{ pasid: String(x.ssid), kind: k }, x[k]]),
        ),
      );
    },
  });
  new Counter({
    name: 'smmu_agent_pasid_stalls_total',
    help: 'Stalled transactions (STALL=1) per process',
    labelNames: ['pasid'],
    registers: r,
    collect() {
      fill(
        this,
        rows('substream').map((x) => [{ pasid: String(x.ssid) }, x.stalls]),
      );
    },
  });
  new Counter({
    name: 'smmu_agent_pasid_stall_seconds_total',
    help: 'Device stall time per process, where the source knows it (the SMMU model; not real kernels)',
    labelNames: ['pasid'],
    registers: r,
    collect() {
      fill(
        this,
        rows('substream').map((x) => [{ pasid: String(x.ssid) }, (x.stallTimeNs ?? 0) / 1e9]),
      );
    },
  });
}

/**
 * The durable spool's findings since this process opened it, read at scrape time: damaged
 * records (found on open, or when read back to be resent and then replaced), batches dropped
 * over budget, writes the disk refused, and events missing between two files that recovery
 * without its meta took for a file deleted once acknowledged. Their events are in
 * smmu_agent_events_lost_total{reason}; these say what happened to the spool.
 */
export function registerSpoolMetrics(registry: Registry, stats: () => SegmentSpoolStats): void {
  const r = [registry];
  const counter = (name: string, help: string, value: (s: SegmentSpoolStats) => number) =>
    new Counter({
      name,
      help,
      registers: r,
      collect() {
        this.reset();
        this.inc(value(stats()));
      },
    });
  new Counter({
    name: 'smmu_agent_spool_records_damaged_total',
    help: 'Spool records found damaged: on open (found="open") or when read back to be resent (found="resend", sent as their replacement)',
    labelNames: ['found'],
    registers: r,
    collect() {
      const s = stats();
      this.reset();
      this.inc({ found: 'open' }, s.corruptRecords);
      this.inc({ found: 'resend' }, s.replacedRecords);
    },
  });
  counter(
    'smmu_agent_spool_batches_dropped_total',
    'Batches dropped to stay within the spool budget',
    (s) => s.droppedBatches,
  );
  counter(
    'smmu_agent_spool_writes_failed_total',
    'Batches the disk refused to take (full, quota, I/O error)',
    (s) => s.failedWrites,
  );
  counter(
    'smmu_agent_spool_gap_events_total',
    'Events missing between two spool files that recovery without its meta took for a file deleted once acknowledged (see the warning log)',
    (s) => s.gapEvents,
  );
}
