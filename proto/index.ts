// TypeScript face of the wire contract. The classes come from protobufjs code generated at
// build time from proto/smmu/telemetry/v1/telemetry.proto (never edited, never committed), so
// they cannot drift from the .proto.
import { smmu } from './gen/telemetry';

export const v1 = smmu.telemetry.v1;
export type EventBatch = smmu.telemetry.v1.EventBatch;
export type EventBatchProps = smmu.telemetry.v1.EventBatch.$Properties;
export type Ack = smmu.telemetry.v1.Ack;
export const SourceKind = smmu.telemetry.v1.SourceKind;
export type SourceKind = smmu.telemetry.v1.SourceKind;
export const LossReason = smmu.telemetry.v1.LossReason;
export type LossReason = smmu.telemetry.v1.LossReason;

/** Fully qualified names, used in Kafka headers and the gRPC service path. */
export const EVENT_BATCH_TYPE = 'smmu.telemetry.v1.EventBatch';
export const INGEST_SERVICE = 'smmu.telemetry.v1.Ingest';
export const SCHEMA_VERSION = '1';
