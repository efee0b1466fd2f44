// What `smmu-agent loadgen` will run, from its options: how many streams, each stream's host
// name, agent id and model seed (all distinct, so each is a host of its own to the collector
// and the accounting), and for how long. Options that make no sense for many agents in one
// process are refused as usage errors.
import { OptionError } from '../../../common/runtime/options';

/** Bounds that keep a load run finite and within one process's file descriptors. */
export const MAX_STREAMS = 10_000;
export const MAX_DURATION_S = 86_400;
/** Simulated time per model chunk: 100 ms keeps 1,000 paced streams at 10,000 wake-ups/s. */
export const LOADGEN_CHUNK_NS = 100_000_000;

export interface LoadgenFlags {
  streams: number;
  duration: number;
  host: string;
  agentId: string;
  stateDir: string;
  source: string;
  seed: string;
}

export interface StreamPlan {
  host: string;
  agentId: string;
  seed: number | string;
}

export interface LoadgenPlan {
  streams: StreamPlan[];
  durationMs: number;
}

export const loadgenSpecs = {
  streams: {
    type: 'number',
    default: 10,
    min: 1,
    integer: true,
    help: `loadgen: agent streams to open (at most ${MAX_STREAMS}), each a host <host>-<n> with its own seed and connection`,
  },
  duration: {
    type: 'number',
    default: 60,
    min: 0,
    help: `loadgen: seconds of events before every stream drains (at most ${MAX_DURATION_S}; a stream also ends at --max-events)`,
  },
} as const;

export function loadgenPlan(o: LoadgenFlags, given: ReadonlySet<string>): LoadgenPlan {
  if (o.streams > MAX_STREAMS) throw new OptionError(`--streams: at most ${MAX_STREAMS}, got ${o.streams}`);
  if (!(o.duration > 0 && o.duration <= MAX_DURATION_S))
    throw new OptionError(`--duration: seconds in (0, ${MAX_DURATION_S}], got ${o.duration}`);
  if (o.source !== 'model')
    throw new OptionError(`loadgen generates model events: --source ${o.source} is not supported`);
  if (o.stateDir) throw new OptionError('loadgen keeps every stream in memory: --state-dir is not supported');
  if (given.has('agentId'))
    throw new OptionError("loadgen names each stream's agent after its host: --agent-id is not supported");
  const prefix = o.host || 'loadgen';
  const base = /^\d+$/.test(o.seed) ? Number(o.seed) : undefined;
  const streams = Array.from({ length: o.streams }, (_, i) => {
    const host = `${prefix}-${i + 1}`;
    return { host, agentId: host, seed: base !== undefined ? base + i : `${o.seed}-${i + 1}` };
  });
  return { streams, durationMs: o.duration * 1000 };
}
