// The aggregator's Prometheus metrics (smmu_fleet_aggregator_*); gauges are read at scrape time.
import { Counter, Gauge } from 'prom-client';
import { processRegistry } from '../../common/runtime/process-metrics';

/** What the gauges read at scrape time. */
export interface AggregatorGaugeSource {
  partitionsAssigned(): number;
  seriesHeld(): number;
}

export function aggregatorMetrics(gauges: AggregatorGaugeSource) {
  const registry = processRegistry('smmu_fleet_aggregator_');
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
