// The agent's options for the SMMU model source, and how they combine with --model-config:
// an option set by a flag, the environment or --config wins over the model file; an option
// left at its default never overrides a value the model file gives.
import { readFileSync } from 'node:fs';
import { OptionError, type Options } from '../../common/runtime/options';
import {
  ModelConfigError,
  type ModelConfigInput,
  defaultModelConfig as m,
  SmmuModelSource,
} from './source/model';

export const modelSpecs = {
  rate: {
    type: 'number',
    default: 1000,
    min: 0,
    help: 'model: target events/s, or DMA page touches/s with --model-pace work (0: as fast as possible)',
  },
  seed: { type: 'string', default: String(m.seed), help: 'model: PRNG seed (same seed, same event stream)' },
  maxEvents: {
    type: 'number',
    default: m.maxEvents,
    min: 0,
    integer: true,
    help: 'model: stop after this many events (0: never)',
  },
  smmus: {
    type: 'number',
    default: m.topology.smmus,
    min: 1,
    integer: true,
    help: 'model: SMMU instances on the host',
  },
  devicesPerSmmu: {
    type: 'number',
    default: m.topology.devicesPerSmmu,
    min: 1,
    integer: true,
    help: 'model: accelerator devices (StreamIDs) per SMMU',
  },
  processes: {
    type: 'number',
    default: m.topology.processes,
    min: 1,
    integer: true,
    help: 'model: processes (PASIDs) bound through SVA',
  },
  prefault: {
    type: 'boolean',
    default: m.memory.prefault,
    help: 'model: MAP_POPULATE every mapping (removes translation faults)',
  },
  modelPace: {
    type: 'string',
    default: m.pace,
    choices: ['events', 'work'],
    help: 'model: what --rate counts: fault events/s, or DMA page touches/s (then prefault shows as fewer faults/s)',
  },
  modelConfig: {
    type: 'string',
    default: '',
    help: 'model: JSON file with any model settings (see agent/src/source/model/config.ts); options given explicitly win over it',
  },
} as const;

export type ModelOptions = Options<typeof modelSpecs>;

/** Reads --model-config (empty: no file); an unreadable file is a usage error. */
export function readModelFile(path: string): ModelConfigInput {
  if (!path) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new OptionError(`--model-config ${path}: ${(err as Error).message}`);
  }
}

/**
 * The model configuration: the file's values, overlaid by the options that were given, and the
 * options' defaults only where the file is silent.
 */
export function modelConfigInput(
  o: ModelOptions,
  given: ReadonlySet<string>,
  file: ModelConfigInput,
  nowNs: bigint,
): ModelConfigInput {
  const pick = <T>(key: keyof ModelOptions, fileValue: T | undefined, value: T): T =>
    given.has(key) || fileValue === undefined ? value : fileValue;
  const seed = /^\d+$/.test(o.seed) ? Number(o.seed) : o.seed;
  return {
    ...file,
    // A live agent stamps events with the wall clock; a config file can fix the start for replays.
    startTimeNs: file.startTimeNs !== undefined ? BigInt(file.startTimeNs) : nowNs,
    seed: pick('seed', file.seed, seed),
    pace: pick('modelPace', file.pace, o.modelPace as 'events' | 'work'),
    rate: pick('rate', file.rate, o.rate),
    maxEvents: pick('maxEvents', file.maxEvents, o.maxEvents),
    topology: {
      ...file.topology,
      smmus: pick('smmus', file.topology?.smmus, o.smmus),
      devicesPerSmmu: pick('devicesPerSmmu', file.topology?.devicesPerSmmu, o.devicesPerSmmu),
      processes: pick('processes', file.topology?.processes, o.processes),
    },
    memory: { ...file.memory, prefault: pick('prefault', file.memory?.prefault, o.prefault) },
  };
}

/** The model source for a configuration; a bad one is a usage error naming --model-config. */
export function openModelSource(input: ModelConfigInput, modelConfig: string): SmmuModelSource {
  try {
    return new SmmuModelSource(input);
  } catch (err) {
    if (err instanceof ModelConfigError)
      throw new OptionError(`--model-config ${modelConfig}: ${err.message}`);
    throw err;
  }
}
