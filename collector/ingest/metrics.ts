// The collector's own telemetry, declared in one place: smmu_collector_<object>_<verb>[_<unit>]_total
// for counters, smmu_collector_<object>[_<unit>] for gauges.
import { Counter, Gauge, Histogram } from 'prom-client';
import { processRegistry } from '../../common/runtime/process-metrics';

export function collectorMetrics() {
  const registry = processRegistry('smmu_collector_');
  const r = [registry];
  return {
    registry,
    streams: new Gauge({ name: 'smmu_collector_streams', help: 'Open agent streams', registers: r }),
    bytesReceived: new Counter({
      name: 'smmu_collector_batches_received_bytes_total',
      help: 'Batch bytes received from agents',
      registers: r,
    }),
    batchesReceived: new Counter({
      name: 'smmu_collector_batches_received_total',
      help: 'Valid batches received from agents',
      registers: r,
    }),
    eventsReceived: new Counter({
      name: 'smmu_collector_events_received_total',
      help: 'Events in valid batches received',
      registers: r,
    }),
    rejected: new Counter({
      name: 'smmu_collector_batches_rejected_total',
      help: 'Batches rejected, by reason (malformed, permission_denied, kafka_unavailable)',
      labelNames: ['reason'],
      registers: r,
    }),
    streamsRejected: new Counter({
      name: 'smmu_collector_streams_rejected_total',
      help: 'Agent streams refused before any batch was read, by reason (unauthenticated)',
      labelNames: ['reason'],
      registers: r,
    }),
    throttled: new Counter({
      name: 'smmu_collector_batches_throttled_total',
      help: 'Batches after which reading paused to hold a host to its batch rate',
      registers: r,
    }),
    kafkaErrors: new Counter({
      name: 'smmu_collector_publishes_failed_total',
      help: 'Batches Kafka did not accept (the agent resends them)',
      registers: r,
    }),
    kafkaSetupFailures: new Counter({
      name: 'smmu_collector_kafka_setup_failures_total',
      help: 'Failed attempts to create the raw topic or connect the producer (the collector retries)',
      registers: r,
    }),
    publishSeconds: new Histogram({
      name: 'smmu_collector_publish_seconds',
      help: 'Time from receiving a batch to Kafka acknowledging it',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
  };
}

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;
