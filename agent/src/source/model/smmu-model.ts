// The SMMU model engine: turns accelerator DMA streams over SVA-bound process memory into
// the event-queue records an SMMUv3 would write, on a simulated clock.
//
// Synchronous and allocation-free per event (records are written straight into the block
// builder's word array), so benchmarks and tests call `generate`/`nextBlock` directly; the
// EventSource in ./model-source.ts paces it against the wall clock.
//
// Two pacings (config `pace`): 'events' advances the clock once per event slot and each slot
// makes touches until one faults; 'work' advances the clock once per DMA page touch and
// emits an event only for a touch that faults or draws a rare event, so the event rate
// follows the page states (prefault, HA/HD) of a fixed amount of work.
import { EVT_F_ACCESS, EVT_F_PERMISSION, EVT_F_TRANSLATION } from '../../../../common/smmu/event-ids';
import { RECORD_BITS } from '../../../../common/smmu/record';
import { type EventBlock, EventBlockBuilder } from '../../../../proto/event-block';
import { accessFault, afterAccess, afterFault, MappedPages, NO_FAULT } from './address-space';
import {
  type ModelConfig,
  type ModelConfigInput,
  PATTERN_NAMES,
  RARE_EVENT_NAMES,
  resolveModelConfig,
} from './config';
import { createStallTimeModel, type StallTimeFn } from './latency';
import { type RareEventContext, writeRareEvent } from './rare-events';
import { cumulative, Rng } from './rng';
import { SimClock } from './sim-clock';
import { buildTopology, type Topology } from './topology';
import { Job } from './workload';

const FAULT_IDS = [EVT_F_TRANSLATION, EVT_F_ACCESS, EVT_F_PERMISSION];
/** Touches of one job before the model switches to another (interleaves devices). */
const TOUCHES_PER_PICK = 64;
/** Touches without a fault after which an event slot stays empty (a quiescent workload). */
const TOUCHES_PER_SLOT = 1 << 16;
/** generate() gives up after this many empty slots in a row. */
const MAX_EMPTY_SLOTS = 1000;
/** 'work' pace: generate() gives up after as many touches without an event as events pace allows. */
const MAX_IDLE_TOUCHES = MAX_EMPTY_SLOTS * TOUCHES_PER_SLOT;

export interface ModelStats {
  /** Events emitted. */
  events: number;
  /** Page touches simulated (faulting or not). */
  touches: number;
  /** Events by FaultKind (translation, access, permission, other). */
  byKind: [number, number, number, number];
  /** Events with STALL=1. */
  stalls: number;
  /** Event slots without an event because no job faulted ('work' pace: runs of TOUCHES_PER_SLOT touches without an event). */
  emptySlots: number;
  /** Jobs started. */
  jobs: number;
}

/** What every page touch reads, resolved once from the config. */
interface TouchParams {
  readonly mappingPages: number;
  readonly pageBytes: number;
  /** Byte offsets within a page, 64-byte aligned. */
  readonly offsetMask: number;
  readonly ha: boolean;
  readonly hd: boolean;
  readonly hot: number;
  /** A touch writes when a uniform u32 is below this. */
  readonly writeThreshold: number;
}

export class SmmuModel {
  readonly config: ModelConfig;
  readonly topology: Topology;
  /** Service time (ns) of a stalled record, as the model's latency model defines it. */
  readonly stallTimeNs: StallTimeFn;
  readonly stats: ModelStats = {
    events: 0,
    touches: 0,
    byKind: [0, 0, 0, 0],
    stalls: 0,
    emptySlots: 0,
    jobs: 0,
  };

  private readonly rng: Rng;
  private readonly clock: SimClock;
  private readonly memory: MappedPages;
  private readonly jobs: Job[];
  private readonly jobDevice: Int32Array;
  private readonly jobPasid: Int32Array;
  private readonly stags: Uint16Array;
  private readonly patternCum: Float64Array;
  private readonly rareCum: Float64Array;
  private readonly rareTotal: number;
  private readonly rareCtx: RareEventContext;
  private readonly builder = new EventBlockBuilder(1024);
  private readonly blockSmmuIds: Int32Array;

  private readonly touchParams: TouchParams;
  /** Clock offset of the current block's base (an integer). */
  private blockBase = 0;

  // 'work' pace only: the job whose touches run now, touches left before the next pick,
  // touches left before the next rare event (geometric, from its own stream so the rare
  // events depend on the amount of work only), touches since the last event.
  private readonly work: boolean;
  private readonly rareRng: Rng;
  private readonly rareLogKeep: number;
  private pickJob: Job | null = null;
  private pickLeft = 0;
  private rareLeft = Number.POSITIVE_INFINITY;
  private idleTouches = 0;

  constructor(input: ModelConfigInput = {}) {
    const c = resolveModelConfig(input);
    this.config = c;
    this.rng = new Rng(c.seed, 'events');
    this.topology = buildTopology(c, new Rng(c.seed, 'topology'));
    this.stallTimeNs = createStallTimeModel(c.latency, c.seed);
    const meanGapNs = 1e9 / (c.rate > 0 ? c.rate : c.clockRate);
    this.clock = new SimClock(c.startTimeNs, meanGapNs, c.bursts, new Rng(c.seed, 'clock'));

    const m = c.memory;
    this.memory = new MappedPages(this.topology.processes, m, c.workload.writeFraction > 0, this.rng);
    this.touchParams = {
      mappingPages: m.mappingPages,
      pageBytes: 2 ** m.pageShift,
      offsetMask: (1 << m.pageShift) - 64,
      ha: m.hardwareAccessFlag,
      hd: m.hardwareDirty,
      hot: c.workload.hotSetProbability,
      writeThreshold: c.workload.writeFraction * 4294967296,
    };

    this.patternCum = cumulative(PATTERN_NAMES.map((k) => c.workload.patterns[k]));
    this.rareCum = cumulative(RARE_EVENT_NAMES.map((k) => c.rareEvents[k]));
    this.rareTotal = this.rareCum[this.rareCum.length - 1];
    this.stags = new Uint16Array(c.topology.smmus);
    this.blockSmmuIds = new Int32Array(c.topology.smmus).fill(-1);
    this.rareCtx = {
      rng: this.rng,
      pageShift: m.pageShift,
      unboundPasid: c.topology.firstPasid + c.topology.processes,
      nextStag: (smmu) => this.nextStag(smmu),
    };

    const b = this.topology.bindings;
    this.jobs = b.map((_, i) => new Job(i));
    this.jobDevice = Int32Array.from(b, (x) => x.device);
    this.jobPasid = Int32Array.from(b, (x) => this.topology.processes[x.process].pasid);
    for (const j of this.jobs) this.startJob(j);

    this.work = c.pace === 'work';
    this.rareRng = new Rng(c.seed, 'rare');
    // log(1 - p): -Infinity when every touch is a rare event, 0 when none is.
    this.rareLogKeep = Math.log(1 - this.rareTotal);
    if (this.work) this.rareLeft = this.rareGap();
  }

  /** The SMMU names, index = ModelDevice.smmu. */
  get smmuNames(): string[] {
    return this.topology.smmus.map((s) => s.name);
  }

  /** Simulated time of the next event slot, ns since the Unix epoch. */
  get nowNs(): bigint {
    return this.clock.epochNs + BigInt(Math.floor(this.clock.now));
  }

  /** Simulated ns from the configured start to the end of the last block's window. */
  get simulatedNs(): bigint {
    const k = this.clock;
    return k.epochNs + BigInt(Math.floor(k.windowStart)) - this.config.startTimeNs;
  }

  /** The configured event limit has been reached. */
  get exhausted(): boolean {
    return this.config.maxEvents > 0 && this.stats.events >= this.config.maxEvents;
  }

  /** Up to n events as one block, regardless of time windows (fewer only at maxEvents or when quiescent). */
  generate(n: number): EventBlock {
    this.beginBlock(Math.floor(this.clock.now));
    if (this.work) {
      this.runWork(Number.POSITIVE_INFINITY, n, true);
      this.clock.windowStart = Math.floor(this.clock.now);
      return this.endBlock();
    }
    let empty = 0;
    while (this.builder.count < n && !this.exhausted && empty < MAX_EMPTY_SLOTS) {
      if (this.emitAt(this.clock.now)) empty = 0;
      else empty++;
      this.clock.advance();
    }
    this.clock.windowStart = Math.floor(this.clock.now);
    return this.endBlock();
  }

  /**
   * The events of the next chunk: one `chunkNs` window of simulated time, cut short after
   * `maxChunkEvents` events or at `maxEvents`.
   */
  nextBlock(): EventBlock {
    this.beginBlock(this.clock.windowStart);
    const end = this.clock.windowStart + this.config.chunkNs;
    const max = this.config.maxChunkEvents;
    if (this.work) {
      this.runWork(end, max, false);
    } else {
      while (this.clock.now < end && this.builder.count < max && !this.exhausted) {
        this.emitAt(this.clock.now);
        this.clock.advance();
      }
    }
    this.clock.windowStart = this.clock.now < end ? Math.floor(this.clock.now) : end;
    return this.endBlock();
  }

  private beginBlock(baseOffset: number): void {
    const base = this.clock.rebase(baseOffset);
    this.builder.setBase(this.clock.epochNs + BigInt(base));
    this.blockBase = base;
    this.blockSmmuIds.fill(-1);
  }

  private endBlock(): EventBlock {
    return this.builder.finish();
  }

  /** Touches before the next rare event: geometric with success probability rareTotal. */
  private rareGap(): number {
    if (this.rareTotal <= 0) return Number.POSITIVE_INFINITY;
    if (this.rareTotal >= 1) return 0;
    return Math.floor(Math.log(1 - this.rareRng.float()) / this.rareLogKeep);
  }

  /**
   * 'work' pace: one page touch per clock gap until the clock reaches `end`, the block holds
   * `max` events or maxEvents is reached (and, when `giveUp`, after MAX_IDLE_TOUCHES touches
   * without an event). The touch sequence does not depend on where blocks end.
   */
  private runWork(end: number, max: number, giveUp: boolean): void {
    const c = this.config;
    const rng = this.rng;
    const jobs = this.jobs;
    const stats = this.stats;
    const maxEvents = c.maxEvents > 0 ? c.maxEvents : Number.POSITIVE_INFINITY;
    const builder = this.builder;
    const idleLimit = giveUp ? MAX_IDLE_TOUCHES : Number.POSITIVE_INFINITY;
    let idle = 0;
    let j = this.pickJob;
    while (this.clock.now < end && builder.count < max && stats.events < maxEvents && idle < idleLimit) {
      const t = this.clock.now;
      stats.touches++;
      if (this.rareLeft <= 0) {
        // The transaction is aborted by a configuration error before any page-table walk.
        this.emitRare(t, this.rareRng.float() * this.rareTotal);
        this.rareLeft = this.rareGap();
        this.idleTouches = 0;
        idle = 0;
        this.clock.advance();
        continue;
      }
      this.rareLeft--;
      if (this.pickLeft <= 0 || j === null) {
        j = jobs[rng.int(jobs.length)];
        this.pickJob = j;
        this.pickLeft = TOUCHES_PER_PICK;
      }
      this.pickLeft--;
      if (this.touch(t, j)) {
        this.idleTouches = 0;
        idle = 0;
      } else {
        idle++;
        if (++this.idleTouches % TOUCHES_PER_SLOT === 0) stats.emptySlots++;
      }
      this.clock.advance();
    }
  }

  /**
   * One DMA page touch by job j at clock offset t: the page's state moves on and, when the touch
   * faults, its event is written. True if it faulted.
   */
  private touch(t: number, j: Job): boolean {
    const m = this.touchParams;
    if (j.remaining <= 0) this.endJob(j);
    const p = j.nextPage(m.mappingPages, m.hot, this.rng);
    const r = this.rng.u32();
    const write = r < m.writeThreshold;
    const idx = j.mapping * m.mappingPages + p;
    const pages = this.memory.states;
    const s = pages[idx];
    const fault = accessFault(s, write, m.ha, m.hd);
    if (fault === NO_FAULT) {
      pages[idx] = afterAccess(s, write, m.ha, m.hd);
      return false;
    }
    pages[idx] = afterFault(s, write);
    // Sequential and strided streams cross into a page at its start; the others land anywhere.
    const offset = j.pattern <= 1 ? 0 : r & m.offsetMask;
    this.writeFault(t, j, fault, write, this.memory.base[j.mapping] + p * m.pageBytes + offset);
    return true;
  }

  private nextStag(smmu: number): number {
    const t = this.stags[smmu];
    this.stags[smmu] = t + 1;
    return t;
  }

  private smmuBlockId(smmu: number): number {
    let id = this.blockSmmuIds[smmu];
    if (id < 0) {
      id = this.builder.smmuId(this.topology.smmus[smmu].name);
      this.blockSmmuIds[smmu] = id;
    }
    return id;
  }

  private startJob(j: Job): void {
    const c = this.config;
    const b = this.topology.bindings[j.binding];
    const mapping = b.process * c.memory.mappingsPerProcess + this.rng.int(c.memory.mappingsPerProcess);
    const pattern = this.rng.pick(this.patternCum);
    const pages = c.memory.mappingPages;
    j.start(
      mapping,
      pattern,
      pages,
      c.workload.passes * pages,
      c.workload.stridePages,
      c.workload.hotSetFraction,
      this.rng,
    );
    this.stats.jobs++;
  }

  /** Applies the configured churn to the job's mapping, then starts the binding's next job. */
  private endJob(j: Job): void {
    this.memory.churn(j.mapping, this.config.workload.churn, this.rng);
    this.startJob(j);
  }

  /** Emits one event at clock offset t; false when no job faulted within the slot's budget. */
  private emitAt(t: number): boolean {
    const u = this.rng.float();
    if (u < this.rareTotal) {
      this.emitRare(t, u);
      return true;
    }
    return this.emitFault(t);
  }

  private emitRare(t: number, u: number): void {
    let k = 0;
    while (u >= this.rareCum[k]) k++;
    const b = this.topology.bindings[this.rng.int(this.topology.bindings.length)];
    const dev = this.topology.devices[b.device];
    const w = this.builder.appendOffset(Math.floor(t) - this.blockBase, this.smmuBlockId(dev.smmu));
    writeRareEvent(
      RARE_EVENT_NAMES[k],
      this.builder.wordArray,
      w,
      dev,
      this.topology.processes[b.process],
      this.rareCtx,
    );
    this.count(w);
  }

  private emitFault(t: number): boolean {
    let budget = TOUCHES_PER_SLOT;
    while (budget > 0) {
      const j = this.jobs[this.rng.int(this.jobs.length)];
      for (let k = 0; k < TOUCHES_PER_PICK && budget > 0; k++, budget--) {
        this.stats.touches++;
        if (this.touch(t, j)) return true;
      }
    }
    this.stats.emptySlots++;
    return false;
  }

  private writeFault(t: number, j: Job, fault: number, write: boolean, addr: number): void {
    const dev = this.topology.devices[this.jobDevice[j.binding]];
    const w = this.builder.appendOffset(Math.floor(t) - this.blockBase, this.smmuBlockId(dev.smmu));
    const words = this.builder.wordArray;
    words[w] = (FAULT_IDS[fault] | RECORD_BITS.SSV | (this.jobPasid[j.binding] << 12)) >>> 0;
    words[w + 1] = dev.sid;
    if (dev.stall) words[w + 2] = (RECORD_BITS.STALL | this.nextStag(dev.smmu)) >>> 0;
    // Unprivileged data access by the input address (CLASS=IN); stage 1 only, so IPA stays 0.
    words[w + 3] = (write ? 0 : RECORD_BITS.RNW) | (2 << RECORD_BITS.CLASS_SHIFT);
    words[w + 4] = addr >>> 0;
    words[w + 5] = Math.floor(addr / 4294967296);
    this.count(w);
  }

  private count(w: number): void {
    const words = this.builder.wordArray;
    const id = words[w] & 0xff;
    const s = this.stats;
    s.events++;
    s.byKind[id === EVT_F_TRANSLATION ? 0 : id === EVT_F_ACCESS ? 1 : id === EVT_F_PERMISSION ? 2 : 3]++;
    if ((words[w + 2] & RECORD_BITS.STALL) !== 0) s.stalls++;
  }
}
