// Configuration of the SMMU model: the type, its defaults (all in `defaultModelConfig`) and
// validation that names the offending key.

export type PatternName = 'sequential' | 'strided' | 'random' | 'hotset';
export const PATTERN_NAMES: readonly PatternName[] = ['sequential', 'strided', 'random', 'hotset'];

/** Configuration and abort events the model can emit besides the three page-fault kinds. */
export const RARE_EVENT_NAMES = [
  'F_UUT',
  'C_BAD_STREAMID',
  'F_STE_FETCH',
  'C_BAD_STE',
  'F_BAD_ATS_TREQ',
  'F_STREAM_DISABLED',
  'F_TRANSL_FORBIDDEN',
  'C_BAD_SUBSTREAMID',
  'F_CD_FETCH',
  'C_BAD_CD',
  'F_WALK_EABT',
  'F_ADDR_SIZE',
  'F_TLB_CONFLICT',
  'F_CFG_CONFLICT',
  'F_VMS_FETCH',
  'IMPDEF',
] as const;
export type RareEventName = (typeof RARE_EVENT_NAMES)[number];

/**
 * What `rate` counts and what advances the simulated clock:
 * - 'events': `rate` is fault events/s; every event slot advances the clock by one gap, and
 *   each slot emits one event (it makes page touches until one faults). Prefaulting changes
 *   the mix of faults, not how many there are per second.
 * - 'work': `rate` is DMA page touches/s of the whole accelerator fleet; every touch advances
 *   the clock by one gap, and only a touch that faults (or draws a rare event) emits one.
 *   The same work with prefault on gives fewer fault events per second: what prefault saves.
 */
export type ModelPace = 'events' | 'work';
export const PACE_NAMES: readonly ModelPace[] = ['events', 'work'];

export interface BurstConfig {
  /** Mean simulated time between the starts of two fault storms (exponential gaps). */
  meanIntervalMs: number;
  /** How long a storm lasts. */
  durationMs: number;
  /** Event rate ('work' pace: page-touch rate) during a storm, as a multiple of the base rate. */
  rateMultiplier: number;
}

export interface PrefaultOverride {
  /** Process index (0-based; its PASID is topology.firstPasid + index). */
  process: number;
  /** Mapping index within the process; absent: every mapping of the process. */
  mapping?: number;
  prefault: boolean;
}

export interface LatencyConfig {
  /** Median service time of a stalled fault, by kind, in ns (IRQ thread + IOPF + mm fault + resume). */
  translationNs: number;
  accessNs: number;
  permissionNs: number;
  /** Other stalled events (e.g. F_ADDR_SIZE): the handler fails and the stall is terminated. */
  otherNs: number;
  /** Log-normal shape of the jitter around the median (0: none). */
  sigma: number;
  /** Probability that a translation fault needs I/O (swap-in, page cache miss). */
  majorFaultProbability: number;
  majorFaultNs: number;
}

export interface ModelConfig {
  /** PRNG seed: same seed and config give a byte-identical event stream. */
  seed: number | string;
  /** Simulated clock at the first event, ns since the Unix epoch (fixed default: deterministic). */
  startTimeNs: bigint;
  /** What `rate` and `clockRate` count: fault events (default) or DMA page touches (see ModelPace). */
  pace: ModelPace;
  /**
   * Target events/s ('events' pace) or page touches/s ('work' pace), paced against the wall
   * clock; 0: as fast as possible. Simulated gaps are exponential with mean 1e9/rate ns.
   */
  rate: number;
  /** With rate 0: the events/s ('work' pace: touches/s) the simulated clock assumes for timestamps. */
  clockRate: number;
  /** Fault storms, or null for none. */
  bursts: BurstConfig | null;
  /** Simulated time covered by one chunk of the source. */
  chunkNs: number;
  /** A chunk also ends after this many events. */
  maxChunkEvents: number;
  /** The source ends after this many events; 0: never. */
  maxEvents: number;
  topology: {
    /** SMMU instances on the host ("arm-smmu-v3.<i>.auto"). */
    smmus: number;
    devicesPerSmmu: number;
    processes: number;
    /** SVA bindings per process (devices it shares its address space with). */
    devicesPerProcess: number;
    /** Fraction of devices using the stall model (STALL=1, stall tags); the rest terminate. */
    stallDeviceFraction: number;
    /** PASID of process 0; PASID 0 is IOMMU_NO_PASID. */
    firstPasid: number;
  };
  memory: {
    /** Translation granule: 12 (4K), 14 (16K) or 16 (64K). */
    pageShift: number;
    mappingsPerProcess: number;
    mappingPages: number;
    /** Page states of a fresh (not prefaulted) mapping, as fractions; the rest is not present. */
    initialPages: { old: number; readOnly: number; writableClean: number };
    /** MAP_POPULATE for every mapping: pages start present and accessed (dirty if the job writes). */
    prefault: boolean;
    /** Per-process / per-mapping prefault switches, applied in order after `prefault`. */
    prefaultOverrides: PrefaultOverride[];
    /** CD.HA: hardware access-flag update (no F_ACCESS). */
    hardwareAccessFlag: boolean;
    /** CD.HD: hardware dirty-state update (writes to writable-clean pages do not fault). */
    hardwareDirty: boolean;
  };
  workload: {
    /** Relative weights of the DMA access patterns of new jobs. */
    patterns: Record<PatternName, number>;
    /** Fraction of a job's page touches that are writes. */
    writeFraction: number;
    /** Stride of strided jobs, in pages. */
    stridePages: number;
    /** Hot-set jobs: size of the hot set as a fraction of the mapping... */
    hotSetFraction: number;
    /** ...and probability that a touch hits it. */
    hotSetProbability: number;
    /** A job makes this many passes (mappingPages touches each) over its mapping. */
    passes: number;
    /** What happens to a job's mapping when the job ends (independent probabilities). */
    churn: {
      /** munmap + mmap at the same address: fresh pages (prefaulted if the mapping is). */
      remap: number;
      /** Page aging clears the access flag of every page. */
      age: number;
      /** Writeback cleans dirty pages (write-protected again without hardwareDirty). */
      clean: number;
    };
  };
  /**
   * Probability of each configuration/abort event per emitted event ('events' pace), or per
   * page touch ('work' pace: the touch is aborted instead of walking the page tables, so the
   * number of these events depends on the work alone, not on the page states).
   */
  rareEvents: Record<RareEventName, number>;
  latency: LatencyConfig;
}

export const defaultModelConfig: ModelConfig = {
  seed: 1,
  startTimeNs: 1_700_000_000_000_000_000n,
  pace: 'events',
  rate: 10_000,
  clockRate: 1_000_000,
  bursts: { meanIntervalMs: 2_000, durationMs: 50, rateMultiplier: 20 },
  chunkNs: 10_000_000,
  maxChunkEvents: 8192,
  maxEvents: 0,
  topology: {
    smmus: 2,
    devicesPerSmmu: 4,
    processes: 8,
    devicesPerProcess: 2,
    stallDeviceFraction: 0.75,
    firstPasid: 1,
  },
  memory: {
    pageShift: 12,
    mappingsPerProcess: 4,
    mappingPages: 512,
    initialPages: { old: 0.1, readOnly: 0.1, writableClean: 0.05 },
    prefault: false,
    prefaultOverrides: [],
    hardwareAccessFlag: false,
    hardwareDirty: false,
  },
  workload: {
    patterns: { sequential: 0.4, strided: 0.2, random: 0.2, hotset: 0.2 },
    writeFraction: 0.3,
    stridePages: 8,
    hotSetFraction: 0.05,
    hotSetProbability: 0.9,
    passes: 2,
    churn: { remap: 0.5, age: 0.3, clean: 0.3 },
  },
  rareEvents: {
    F_UUT: 0,
    C_BAD_STREAMID: 2e-5,
    F_STE_FETCH: 0,
    C_BAD_STE: 5e-5,
    F_BAD_ATS_TREQ: 0,
    F_STREAM_DISABLED: 5e-5,
    F_TRANSL_FORBIDDEN: 0,
    C_BAD_SUBSTREAMID: 1e-4,
    F_CD_FETCH: 1e-5,
    C_BAD_CD: 2e-5,
    F_WALK_EABT: 2e-5,
    F_ADDR_SIZE: 1e-5,
    F_TLB_CONFLICT: 0,
    F_CFG_CONFLICT: 0,
    F_VMS_FETCH: 0,
    IMPDEF: 0,
  },
  latency: {
    translationNs: 6_000,
    accessNs: 2_000,
    permissionNs: 4_500,
    otherNs: 3_000,
    sigma: 0.35,
    majorFaultProbability: 0.005,
    majorFaultNs: 200_000,
  },
};

type DeepPartial<T> = T extends bigint | number | string | boolean | null
  ? T
  : T extends readonly (infer U)[]
    ? U[]
    : { [K in keyof T]?: DeepPartial<T[K]> };

/** What callers pass: any subset of ModelConfig (nested objects merge, arrays replace). */
export type ModelConfigInput = DeepPartial<ModelConfig>;

export class ModelConfigError extends Error {
  constructor(message: string) {
    super(`model config: ${message}`);
    this.name = 'ModelConfigError';
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: unknown, over: unknown, path: string): unknown {
  if (over === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (!(k in base)) throw new ModelConfigError(`unknown key ${path}${k}`);
    out[k] = merge(base[k], v, `${path}${k}.`);
  }
  return out;
}

function num(
  path: string,
  v: unknown,
  min: number,
  max: number,
  opts: { integer?: boolean; minExclusive?: boolean } = {},
): void {
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (opts.minExclusive ? v > min : v >= min) &&
    v <= max &&
    (!opts.integer || Number.isInteger(v));
  if (!ok) {
    const what = opts.integer ? 'an integer' : 'a number';
    const lo = opts.minExclusive ? `> ${min}` : `>= ${min}`;
    throw new ModelConfigError(`${path} must be ${what} ${lo} and <= ${max} (got ${String(v)})`);
  }
}

function bool(path: string, v: unknown): void {
  if (typeof v !== 'boolean') throw new ModelConfigError(`${path} must be true or false (got ${String(v)})`);
}

function fraction(path: string, v: unknown): void {
  num(path, v, 0, 1);
}

/** Throws ModelConfigError, naming the key, unless `c` is a usable configuration. */
export function validateModelConfig(c: ModelConfig): void {
  if (!((typeof c.seed === 'number' && Number.isFinite(c.seed)) || typeof c.seed === 'string')) {
    throw new ModelConfigError(`seed must be a finite number or a string (got ${String(c.seed)})`);
  }
  if (typeof c.startTimeNs !== 'bigint' || c.startTimeNs < 0n) {
    throw new ModelConfigError(`startTimeNs must be a bigint >= 0 (got ${String(c.startTimeNs)})`);
  }
  if (!(PACE_NAMES as readonly unknown[]).includes(c.pace)) {
    throw new ModelConfigError(`pace must be one of ${PACE_NAMES.join(', ')} (got ${String(c.pace)})`);
  }
  num('rate', c.rate, 0, 1e9);
  num('clockRate', c.clockRate, 0, 1e10, { minExclusive: true });
  if (c.bursts !== null) {
    if (!isPlainObject(c.bursts)) throw new ModelConfigError('bursts must be an object or null');
    num('bursts.meanIntervalMs', c.bursts.meanIntervalMs, 0, 1e9, { minExclusive: true });
    num('bursts.durationMs', c.bursts.durationMs, 0, 1e9, { minExclusive: true });
    num('bursts.rateMultiplier', c.bursts.rateMultiplier, 1, 1e6);
  }
  num('chunkNs', c.chunkNs, 1000, 1e11, { integer: true });
  num('maxChunkEvents', c.maxChunkEvents, 1, 1e7, { integer: true });
  num('maxEvents', c.maxEvents, 0, Number.MAX_SAFE_INTEGER, { integer: true });

  const t = c.topology;
  num('topology.smmus', t.smmus, 1, 64, { integer: true });
  num('topology.devicesPerSmmu', t.devicesPerSmmu, 1, 4096, { integer: true });
  num('topology.processes', t.processes, 1, 65536, { integer: true });
  num('topology.devicesPerProcess', t.devicesPerProcess, 1, t.smmus * t.devicesPerSmmu, { integer: true });
  fraction('topology.stallDeviceFraction', t.stallDeviceFraction);
  // Leave room above the bound PASIDs for the stale ones C_BAD_SUBSTREAMID reports.
  num('topology.firstPasid', t.firstPasid, 1, 0xfffff - t.processes - 16, { integer: true });

  const m = c.memory;
  if (![12, 14, 16].includes(m.pageShift)) {
    throw new ModelConfigError(`memory.pageShift must be 12, 14 or 16 (got ${String(m.pageShift)})`);
  }
  num('memory.mappingsPerProcess', m.mappingsPerProcess, 1, 1024, { integer: true });
  num('memory.mappingPages', m.mappingPages, 1, 1 << 20, { integer: true });
  const totalPages = t.processes * m.mappingsPerProcess * m.mappingPages;
  if (totalPages > 1 << 26) {
    throw new ModelConfigError(
      `processes x mappingsPerProcess x mappingPages = ${totalPages} pages; at most ${1 << 26} are modelled`,
    );
  }
  fraction('memory.initialPages.old', m.initialPages.old);
  fraction('memory.initialPages.readOnly', m.initialPages.readOnly);
  fraction('memory.initialPages.writableClean', m.initialPages.writableClean);
  if (m.initialPages.old + m.initialPages.readOnly + m.initialPages.writableClean > 1) {
    throw new ModelConfigError('memory.initialPages fractions must add up to at most 1');
  }
  bool('memory.prefault', m.prefault);
  if (!Array.isArray(m.prefaultOverrides))
    throw new ModelConfigError('memory.prefaultOverrides must be an array');
  m.prefaultOverrides.forEach((o, i) => {
    const p = `memory.prefaultOverrides[${i}]`;
    if (!isPlainObject(o)) throw new ModelConfigError(`${p} must be an object`);
    for (const k of Object.keys(o)) {
      if (k !== 'process' && k !== 'mapping' && k !== 'prefault')
        throw new ModelConfigError(`unknown key ${p}.${k}`);
    }
    num(`${p}.process`, o.process, 0, t.processes - 1, { integer: true });
    if (o.mapping !== undefined)
      num(`${p}.mapping`, o.mapping, 0, m.mappingsPerProcess - 1, { integer: true });
    bool(`${p}.prefault`, o.prefault);
  });
  bool('memory.hardwareAccessFlag', m.hardwareAccessFlag);
  bool('memory.hardwareDirty', m.hardwareDirty);

  const w = c.workload;
  let weights = 0;
  for (const k of Object.keys(w.patterns)) {
    if (!PATTERN_NAMES.includes(k as PatternName))
      throw new ModelConfigError(`unknown key workload.patterns.${k}`);
  }
  for (const k of PATTERN_NAMES) {
    num(`workload.patterns.${k}`, w.patterns[k], 0, 1e6);
    weights += w.patterns[k];
  }
  if (weights <= 0) throw new ModelConfigError('workload.patterns: at least one weight must be > 0');
  fraction('workload.writeFraction', w.writeFraction);
  num('workload.stridePages', w.stridePages, 1, 1 << 20, { integer: true });
  num('workload.hotSetFraction', w.hotSetFraction, 0, 1, { minExclusive: true });
  fraction('workload.hotSetProbability', w.hotSetProbability);
  num('workload.passes', w.passes, 0, 1000, { minExclusive: true });
  fraction('workload.churn.remap', w.churn.remap);
  fraction('workload.churn.age', w.churn.age);
  fraction('workload.churn.clean', w.churn.clean);

  let rare = 0;
  for (const k of Object.keys(c.rareEvents)) {
    if (!(RARE_EVENT_NAMES as readonly string[]).includes(k)) {
      throw new ModelConfigError(`unknown key rareEvents.${k} (known: ${RARE_EVENT_NAMES.join(', ')})`);
    }
  }
  for (const k of RARE_EVENT_NAMES) {
    fraction(`rareEvents.${k}`, c.rareEvents[k]);
    rare += c.rareEvents[k];
  }
  if (rare > 1) throw new ModelConfigError(`rareEvents probabilities add up to ${rare}, more than 1`);

  const l = c.latency;
  num('latency.translationNs', l.translationNs, 0, 1e10, { minExclusive: true });
  num('latency.accessNs', l.accessNs, 0, 1e10, { minExclusive: true });
  num('latency.permissionNs', l.permissionNs, 0, 1e10, { minExclusive: true });
  num('latency.otherNs', l.otherNs, 0, 1e10, { minExclusive: true });
  num('latency.sigma', l.sigma, 0, 3);
  fraction('latency.majorFaultProbability', l.majorFaultProbability);
  num('latency.majorFaultNs', l.majorFaultNs, 0, 1e11, { minExclusive: true });
}

/** Defaults overlaid with `input` (nested objects merge, arrays and null replace), validated. */
export function resolveModelConfig(input: ModelConfigInput = {}): ModelConfig {
  if (!isPlainObject(input)) throw new ModelConfigError('configuration must be an object');
  const c = merge(defaultModelConfig, input, '') as ModelConfig;
  validateModelConfig(c);
  return c;
}
