// The aggregator daemon's settings (`smmu-fleet aggregate`), with their defaults; the command
// line (cli.ts) derives its options from these.
import { type KafkaSecurity, noKafkaSecurity } from '../../common/kafka/client';

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
