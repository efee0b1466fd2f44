// The SMMU model source: configuration, engine and EventSource.
export {
  type BurstConfig,
  defaultModelConfig,
  type LatencyConfig,
  type ModelConfig,
  ModelConfigError,
  type ModelConfigInput,
  type ModelPace,
  PACE_NAMES,
  PATTERN_NAMES,
  type PatternName,
  type PrefaultOverride,
  RARE_EVENT_NAMES,
  type RareEventName,
  resolveModelConfig,
  validateModelConfig,
} from './config';
export { createStallTimeModel, type StallTimeFn } from './latency';
export { MODEL_EVENT, SmmuModelSource, wakeIntervalNs } from './model-source';
export { type ModelStats, SmmuModel } from './smmu-model';
export type { ModelBinding, ModelDevice, ModelMapping, ModelProcess, ModelSmmu, Topology } from './topology';
