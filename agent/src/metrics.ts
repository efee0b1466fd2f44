// The agent's own telemetry, declared in one place: smmu_agent_<name>_<unit>.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function agentMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'smmu_agent_process_' });
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
      name: 'smmu_agent_batches_total',
      help: 'Batches closed and spooled',
      registers: r,
    }),
    batchBytes: new Counter({
      name: 'smmu_agent_batch_bytes_total',
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
    ackSeconds: new Histogram({
      name: 'smmu_agent_ack_latency_seconds',
      help: 'Time from sending a batch to its acknowledgement',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
  };
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;
