// Accounting stage 2: aggregation. `AccountState` counts the batches of one raw-topic partition
// (or of everything, for one-shot use) after dropping replays:
//
//  - totals per series (host x SMMU x StreamID x SSID) by fault kind, with stalls by kind and
//    the "other" events by event ID; per host: batches, events, lost events by reason, replays;
//  - tumbling windows of 10 s and 1 min per series (and per host), by event timestamp;
//  - a Space-Saving sketch of faulting pages per (host, SSID), for prefault advice.
//
// Windows: an event at t belongs to [floor(t/w)*w, +w). Each host has an event-time watermark,
// the latest event timestamp it sent; once the watermark passes a window's end plus the grace,
// the window is closed and emitted. Events arriving for a closed window are late: they count in
// the totals and in the host's late counter, never in a window (a published window is final).
// A host that stops sending keeps its last windows open. Stall time is unknown: SMMU records
// carry the STALL bit (counted) but not how long the stall lasted.
//
// Event time is only as good as the host's clock. An event before 1970, or further ahead of
// the collector's clock (the raw message's Kafka timestamp) than `maxEventAheadNs`, is held
// apart: counted in the totals and the host's out-of-range counter, but in no window and in no
// event-time field, so one bad timestamp cannot move the host's watermark and turn every later
// event into a late one. A batch that reuses a counted (agent, epoch, sequence) with other
// content is a conflict (dedup.ts): not counted, but counted per host with its events.
//
// The hot loop runs over the EventBlock's u32 words without allocating per event: events come
// in runs from one device and process, so the series, window and sketch lookups are cached
// across the run. Everything is a pure function of the batches offered, in order, which is
// what makes checkpoints (checkpoint.ts) exact.
import Long from 'long';
import {
  EVT_C_BAD_SUBSTREAMID,
  EVT_F_ACCESS,
  EVT_F_PERMISSION,
  EVT_F_TRANSLATION,
  eventName,
  FAULT_KIND_BY_ID,
  RECORD_BITS,
} from '../../common/smmu/record';
import type { Batch } from '../../proto/batch-codec';
import { WORDS_PER_RECORD } from '../../proto/event-block';
import type { smmu } from '../../proto/gen/telemetry';
import { LossReason } from '../../proto/index';
import { batchDigest, ReplayFilter, type ReplayVerdict } from './dedup';
import { SpaceSaving } from './hotpages';

export type CheckpointProps = smmu.accounting.v1.PartitionCheckpoint.$Properties;

/** Window widths in ns: 10 s and 1 min. */
export const WIDTHS_NS: readonly number[] = [10e9, 60e9];
export const WIDTH_NAMES: readonly string[] = ['10s', '1m'];
const WIDTHS_BIG = WIDTHS_NS.map(BigInt);
/** Cell layout: events by FaultKind (0..3), then stalls by FaultKind (4..7). */
export const STRIDE = 8;
export const KIND_NAMES = ['translation', 'access', 'permission', 'other'] as const;
/** The event ID of each of the first three kinds (they are one event each). */
const KIND_EVENT = [EVT_F_TRANSLATION, EVT_F_ACCESS, EVT_F_PERMISSION];
const OTHER = 3;
const SSV = RECORD_BITS.SSV;
const STALL = RECORD_BITS.STALL;
const SSID_SPAN = 2 ** 20;

export interface AccountOptions {
  /** Windows close once the host's event time passes their end plus this. */
  windowGraceNs: number;
  /** Granularity of the hot-page sketches: aligned blocks of 2^hotPageShift bytes (16: 64 KiB). */
  hotPageShift: number;
  /** Counters per (host, SSID) sketch. */
  sketchSlots: number;
  /** Keep closed windows for `drainClosed()` (off: they are dropped, e.g. for one-shot totals). */
  collectWindows: boolean;
  /** Events further ahead of the collector's clock than this are held apart (see above). */
  maxEventAheadNs: number;
}

export const defaultAccountOptions: AccountOptions = {
  windowGraceNs: 0,
  hotPageShift: 16,
  sketchSlots: 128,
  collectWindows: false,
  maxEventAheadNs: 3600e9,
};

/** An open window of one host: its series' cells by host-local series index. */
class OpenWindow {
  cells: Float64Array;
  batches = 0;
  lost = new Map<number, number>();
  /** local series index * 256 + event ID -> count, for kind other. */
  other: Map<number, number> | null = null;
  constructor(
    readonly index: number,
    capacity: number,
  ) {
    this.cells = new Float64Array(capacity * STRIDE);
  }
  ensure(localSeries: number): void {
    if ((localSeries + 1) * STRIDE <= this.cells.length) return;
    let cap = Math.max(4, this.cells.length / STRIDE);
    while (cap <= localSeries) cap *= 2;
    const c = new Float64Array(cap * STRIDE);
    c.set(this.cells);
    this.cells = c;
  }
}

export class HostAccount {
  batches = 0;
  events = 0;
  readonly lost = new Map<number, number>();
  replayed = 0;
  /** Events held apart for their timestamp (counted in `events`, in no window). */
  outOfRange = 0;
  /** Batches refused as conflicts, and their events (not in `events`). */
  conflicts = 0;
  conflictEvents = 0;
  /** Late events per window width. */
  readonly late: number[] = WIDTHS_NS.map(() => 0);
  hasEvents = false;
  firstNs = 0n;
  lastNs = 0n;
  /** Per width: windows with a lower index are closed. */
  readonly closedThrough: number[] = WIDTHS_NS.map(() => 0);
  /** Account series indexes; the position is the host-local index. */
  readonly series: number[] = [];
  /** SMMU name -> (StreamID * 2^20 + SSID) -> series index. */
  readonly smmus = new Map<string, Map<number, number>>();
  /** Per width: window index -> open window. */
  readonly open: Array<Map<number, OpenWindow>> = WIDTHS_NS.map(() => new Map());
  /** SSID -> sketch of faulting pages. */
  readonly sketches = new Map<number, SpaceSaving>();
  dirty = true;
  constructor(
    readonly index: number,
    readonly name: string,
  ) {}

  smmuMap(name: string): Map<number, number> {
    let m = this.smmus.get(name);
    if (!m) {
      m = new Map();
      this.smmus.set(name, m);
    }
    return m;
  }

  window(width: number, index: number): OpenWindow {
    const m = this.open[width];
    let w = m.get(index);
    if (!w) {
      w = new OpenWindow(index, Math.max(4, this.series.length));
      m.set(index, w);
    }
    return w;
  }

  lostTotal(): number {
    let n = 0;
    for (const v of this.lost.values()) n += v;
    return n;
  }
}

/** A closed window of one series. */
export interface SeriesWindowOut {
  host: string;
  smmu: string;
  streamId: number;
  ssid: number;
  width: number;
  index: number;
  /** STRIDE values. */
  cells: Float64Array;
  /** Event ID -> count, kind other. */
  other: Map<number, number> | null;
}

/** A closed window of one host. */
export interface HostWindowOut {
  host: string;
  width: number;
  index: number;
  cells: Float64Array;
  batches: number;
  lost: Map<number, number>;
  series: number;
}

export interface ClosedWindows {
  series: SeriesWindowOut[];
  hosts: HostWindowOut[];
}

/** Counts by kind, as the JSON views show them. */
export interface KindCounts {
  translation: number;
  access: number;
  permission: number;
  other: number;
}

export function kindCounts(cells: ArrayLike<number>, offset: number): KindCounts {
  return {
    translation: cells[offset],
    access: cells[offset + 1],
    permission: cells[offset + 2],
    other: cells[offset + 3],
  };
}

/** Totals of one series (JSON view). */
export interface SeriesTotalsRow {
  host: string;
  smmu: string;
  streamId: number;
  ssid: number;
  events: number;
  kinds: KindCounts;
  stalls: number;
  stallsByKind: KindCounts;
  /** Always null: SMMU records do not say how long a stall lasted. */
  stallTimeNs: null;
  /** Kind "other" by event name. */
  otherEvents: Record<string, number>;
  /** ns since the Unix epoch, as a decimal string (beyond 2^53). */
  lastEventUnixNs: string;
}

/** Totals of one host (JSON view). */
export interface HostTotalsRow {
  host: string;
  batches: number;
  events: number;
  kinds: KindCounts;
  stalls: number;
  lost: Record<string, number>;
  lostEvents: number;
  replayedBatches: number;
  late: Record<string, number>;
  /** Events held apart for a timestamp before 1970 or too far ahead (in `events`, no window). */
  outOfRangeEvents: number;
  /** Batches refused for reusing a counted (agent, epoch, sequence) with other content. */
  conflictingBatches: number;
  conflictingEvents: number;
  firstEventUnixNs: string;
  lastEventUnixNs: string;
  series: number;
}

/** A loss reason's name; values this version does not know are kept, labelled unknown. */
export function lossName(r: number): string {
  return LossReason[r] ?? `LOSS_REASON_UNKNOWN_${r}`;
}

/** floor(x / w) for integers x (exact where x / w rounds up to an integer). */
function floorDiv(x: number, w: number): number {
  let q = Math.floor(x / w);
  if (q * w > x) q--;
  else if ((q + 1) * w <= x) q++;
  return q;
}

function u64(v: bigint): Long {
  return Long.fromString(v.toString(), true);
}

function num(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function big(v: number | Long | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  return BigInt(v.toString());
}

function numMap(m: { [k: string]: number | Long } | null | undefined): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, v] of Object.entries(m ?? {})) out.set(Number(k), num(v));
  return out;
}

/** The accounting state of one raw-topic partition. */
export class AccountState {
  readonly opts: AccountOptions;
  readonly replays = new ReplayFilter();
  /** Raw messages that did not decode. */
  malformed = 0;
  /** Next raw offset to count (-1: none counted yet). Kept by the consumer. */
  nextOffset = -1;

  private readonly hosts: HostAccount[] = [];
  private readonly hostIndex = new Map<string, number>();
  // Series table, struct of arrays.
  private n = 0;
  private cap = 0;
  private sHost = new Int32Array(0);
  private sSid = new Uint32Array(0);
  private sSsid = new Uint32Array(0);
  private sLocal = new Int32Array(0);
  private sMaxOff = new Float64Array(0);
  private sDirty = new Uint8Array(0);
  private sSmmu: string[] = [];
  private sLast: bigint[] = [];
  private cells = new Float64Array(0);
  /** series * 256 + event ID -> count, kind other. */
  private readonly other = new Map<number, number>();
  private dirtyList: number[] = [];
  private closed: ClosedWindows = { series: [], hosts: [] };
  private readonly touched: number[] = [];
  private readonly touchedSketches: SpaceSaving[] = [];
  private stamp = 0;

  constructor(opts: Partial<AccountOptions> = {}) {
    this.opts = { ...defaultAccountOptions, ...opts };
    this.grow(64);
  }

  get seriesCount(): number {
    return this.n;
  }

  get hostCount(): number {
    return this.hosts.length;
  }

  host(name: string): HostAccount {
    let i = this.hostIndex.get(name);
    if (i === undefined) {
      i = this.hosts.length;
      this.hosts.push(new HostAccount(i, name));
      this.hostIndex.set(name, i);
    }
    return this.hosts[i];
  }

  findHost(name: string): HostAccount | undefined {
    const i = this.hostIndex.get(name);
    return i === undefined ? undefined : this.hosts[i];
  }

  /** Counts a batch; returns false (and counts nothing but the replay) when it is a replay. */
  add(b: Batch, receivedNs?: bigint): boolean {
    return this.offer(b, receivedNs) === 'new';
  }

  /**
   * Counts a batch that is new; counts a replay or a conflict as such. `receivedNs`: the
   * collector's clock when it took the batch (bounds event time, see above); none: unbounded.
   * `digest`: of the batch's content (dedup.ts); one state must always get it the same way.
   */
  offer(b: Batch, receivedNs?: bigint, digest = batchDigest(b)): ReplayVerdict {
    const verdict = this.replays.offer(b.agentId, b.epoch, b.sequence, digest);
    if (verdict !== 'new') {
      const h = this.host(b.host);
      if (verdict === 'replay') h.replayed++;
      else {
        h.conflicts++;
        h.conflictEvents += b.events.count;
      }
      h.dirty = true;
      return verdict;
    }
    const h = this.host(b.host);
    h.batches++;
    h.dirty = true;
    for (const [r, c] of b.lost) {
      if (c > 0) h.lost.set(r, (h.lost.get(r) ?? 0) + c);
    }
    const e = b.events;
    let n = e.count;
    let batchMax = 0n;
    let batchMin = 0n;
    if (n > 0) {
      const [minOff, maxOff, apart] = this.count(h, b, receivedNs);
      h.events += n;
      h.outOfRange += apart;
      n -= apart;
      if (n > 0) {
        batchMin = e.baseNs + BigInt(minOff);
        batchMax = e.baseNs + BigInt(maxOff);
      }
    }
    // Batches and losses go to the window of the batch's latest event (or the host's latest
    // event so far), or to the oldest open window when that one is closed. Before the host's
    // first event they are in the totals only. `n`: events with a usable timestamp.
    const at = n > 0 ? batchMax : h.hasEvents ? h.lastNs : 0n;
    if (at > 0n) {
      for (let k = 0; k < WIDTHS_NS.length; k++) {
        const idx = Math.max(h.closedThrough[k], Number(at / WIDTHS_BIG[k]));
        const w = h.window(k, idx);
        w.batches++;
        for (const [r, c] of b.lost) if (c > 0) w.lost.set(r, (w.lost.get(r) ?? 0) + c);
      }
    }
    if (n > 0) {
      if (!h.hasEvents) {
        h.hasEvents = true;
        h.firstNs = batchMin;
        h.lastNs = batchMax;
      } else {
        if (batchMin < h.firstNs) h.firstNs = batchMin;
        if (batchMax > h.lastNs) h.lastNs = batchMax;
      }
      this.advance(h);
    }
    return 'new';
  }

  /**
   * The per-event loop. Returns the smallest and largest offsetNs of the events with a usable
   * timestamp, and how many events were held apart for theirs.
   */
  private count(h: HostAccount, b: Batch, receivedNs: bigint | undefined): [number, number, number] {
    const e = b.events;
    const n = e.count;
    // Usable offsets: at or after the Unix epoch, not beyond the collector's clock plus slack.
    const loOff = Number(-e.baseNs);
    const hiOff =
      receivedNs === undefined
        ? Number.POSITIVE_INFINITY
        : Number(receivedNs + BigInt(this.opts.maxEventAheadNs) - e.baseNs);
    let apart = 0;
    const words = e.words;
    const offsets = e.offsetNs;
    const smmuIndex = e.smmuIndex;
    const maps = e.smmuNames.map((name) => h.smmuMap(name));
    const shift = this.opts.hotPageShift;
    const hiScale = 2 ** (32 - shift);
    const slots = this.opts.sketchSlots;
    const w10 = WIDTHS_NS[0];
    const w60 = WIDTHS_NS[1];
    const base10 = Number(e.baseNs / WIDTHS_BIG[0]);
    const rem10 = Number(e.baseNs % WIDTHS_BIG[0]);
    const base60 = Number(e.baseNs / WIDTHS_BIG[1]);
    const rem60 = Number(e.baseNs % WIDTHS_BIG[1]);
    const ct10 = h.closedThrough[0];
    const ct60 = h.closedThrough[1];
    const touched = this.touched;
    touched.length = 0;
    const sketches = this.touchedSketches;
    sketches.length = 0;
    const stamp = ++this.stamp;
    let late10 = 0;
    let late60 = 0;
    let minOff = Number.POSITIVE_INFINITY;
    let maxOff = Number.NEGATIVE_INFINITY;

    let lastKey = -1;
    let lastSmmu = -1;
    let s = 0;
    let local = 0;
    let cellBase = 0;
    let lastWin10 = Number.NaN;
    let win10: OpenWindow | null = null;
    let lastWin60 = Number.NaN;
    let win60: OpenWindow | null = null;
    let lastSketchSsid = -1;
    let sketch: SpaceSaving | null = null;
    let cells = this.cells;
    let maxOffs = this.sMaxOff;

    for (let i = 0, w = 0; i < n; i++, w += WORDS_PER_RECORD) {
      const w0 = words[w];
      const id = w0 & 0xff;
      const kind = FAULT_KIND_BY_ID[id];
      const sm = smmuIndex[i];
      const ssid = (w0 & SSV) !== 0 || id === EVT_C_BAD_SUBSTREAMID ? w0 >>> 12 : 0;
      const key = words[w + 1] * SSID_SPAN + ssid;
      if (key !== lastKey || sm !== lastSmmu) {
        const m = maps[sm];
        let si = m.get(key);
        if (si === undefined) {
          si = this.newSeries(h, e.smmuNames[sm], words[w + 1], ssid, m, key);
          cells = this.cells;
          maxOffs = this.sMaxOff;
        }
        s = si;
        local = this.sLocal[s];
        cellBase = s * STRIDE;
        lastKey = key;
        lastSmmu = sm;
        if (maxOffs[s] === Number.NEGATIVE_INFINITY) touched.push(s);
      }
      const stall = (words[w + 2] & STALL) !== 0 ? 1 : 0;
      cells[cellBase + kind]++;
      if (stall) cells[cellBase + 4 + kind]++;
      const off = offsets[i];
      if (off < loOff || off > hiOff) {
        // Held apart: totals only (the window caches are reset for the next event).
        apart++;
        win10 = win60 = null;
        lastWin10 = lastWin60 = Number.NaN;
      } else {
        if (off > maxOffs[s]) maxOffs[s] = off;
        if (off < minOff) minOff = off;
        if (off > maxOff) maxOff = off;

        // Windows: the window index of the event, cached while it stays the same.
        const t10 = rem10 + off;
        let wi = base10 + floorDiv(t10, w10);
        if (wi !== lastWin10) {
          lastWin10 = wi;
          win10 = wi < ct10 ? null : h.window(0, wi);
        }
        if (win10 === null) late10++;
        else {
          const c = win10.cells;
          c[local * STRIDE + kind]++;
          if (stall) c[local * STRIDE + 4 + kind]++;
        }
        wi = base60 + floorDiv(rem60 + off, w60);
        if (wi !== lastWin60) {
          lastWin60 = wi;
          win60 = wi < ct60 ? null : h.window(1, wi);
        }
        if (win60 === null) late60++;
        else {
          const c = win60.cells;
          c[local * STRIDE + kind]++;
          if (stall) c[local * STRIDE + 4 + kind]++;
        }
      }

      if (kind === OTHER) {
        const k = s * 256 + id;
        this.other.set(k, (this.other.get(k) ?? 0) + 1);
        const lk = local * 256 + id;
        if (win10 !== null) {
          win10.other ??= new Map();
          win10.other.set(lk, (win10.other.get(lk) ?? 0) + 1);
        }
        if (win60 !== null) {
          win60.other ??= new Map();
          win60.other.set(lk, (win60.other.get(lk) ?? 0) + 1);
        }
      } else {
        // A page fault: the page it faulted on goes into the process's sketch.
        if (ssid !== lastSketchSsid || sketch === null) {
          sketch = h.sketches.get(ssid) ?? null;
          if (sketch === null) {
            sketch = new SpaceSaving(slots);
            h.sketches.set(ssid, sketch);
          }
          lastSketchSsid = ssid;
          if (sketch.stamp !== stamp) {
            sketch.stamp = stamp;
            sketches.push(sketch);
          }
        }
        sketch.add(words[w + 5] * hiScale + (words[w + 4] >>> shift), kind, stall);
      }
    }

    h.late[0] += late10;
    h.late[1] += late60;
    const base = e.baseNs;
    for (const t of touched) {
      if (maxOffs[t] !== Number.NEGATIVE_INFINITY) {
        const last = base + BigInt(maxOffs[t]);
        if (last > this.sLast[t]) this.sLast[t] = last;
      }
      maxOffs[t] = Number.NEGATIVE_INFINITY;
      if (this.sDirty[t] === 0) {
        this.sDirty[t] = 1;
        this.dirtyList.push(t);
      }
    }
    if (sketches.length > 0 && apart < n) {
      const first = base + BigInt(minOff);
      const last = base + BigInt(maxOff);
      for (const sk of sketches) {
        if (sk.firstNs === 0n || first < sk.firstNs) sk.firstNs = first;
        if (last > sk.lastNs) sk.lastNs = last;
      }
    }
    return [minOff, maxOff, apart];
  }

  private newSeries(
    h: HostAccount,
    smmuName: string,
    sid: number,
    ssid: number,
    m: Map<number, number>,
    key: number,
  ): number {
    if (this.n === this.cap) this.grow(this.cap * 2);
    const s = this.n++;
    this.sHost[s] = h.index;
    this.sSid[s] = sid;
    this.sSsid[s] = ssid;
    this.sSmmu[s] = smmuName;
    this.sLast[s] = 0n;
    const local = h.series.length;
    this.sLocal[s] = local;
    h.series.push(s);
    m.set(key, s);
    // Open windows hold a cell per host series: make room for this one.
    for (const open of h.open) for (const w of open.values()) w.ensure(local);
    return s;
  }

  private grow(cap: number): void {
    const g = <T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(a: T, size: number): T => {
      const out = new (a.constructor as new (n: number) => T)(size);
      out.set(a);
      return out;
    };
    this.sHost = g(this.sHost, cap);
    this.sSid = g(this.sSid, cap);
    this.sSsid = g(this.sSsid, cap);
    this.sLocal = g(this.sLocal, cap);
    this.sDirty = g(this.sDirty, cap);
    const mo = new Float64Array(cap).fill(Number.NEGATIVE_INFINITY);
    mo.set(this.sMaxOff);
    this.sMaxOff = mo;
    this.cells = g(this.cells, cap * STRIDE);
    this.cap = cap;
  }

  /** Closes the host's windows its watermark has passed. */
  private advance(h: HostAccount): void {
    const wm = h.lastNs - BigInt(this.opts.windowGraceNs);
    for (let k = 0; k < WIDTHS_NS.length; k++) {
      const ct = wm <= 0n ? 0 : Number(wm / WIDTHS_BIG[k]);
      if (ct <= h.closedThrough[k]) continue;
      h.closedThrough[k] = ct;
      const due = [...h.open[k].keys()].filter((i) => i < ct).sort((a, b) => a - b);
      for (const idx of due) {
        const w = h.open[k].get(idx)!;
        h.open[k].delete(idx);
        if (this.opts.collectWindows) {
          const r = this.windowRecords(h, k, w);
          for (const x of r.series) this.closed.series.push(x);
          this.closed.hosts.push(r.host);
        }
      }
    }
  }

  /** The records of a window: one per series with events, and the host's. */
  private windowRecords(
    h: HostAccount,
    k: number,
    w: OpenWindow,
  ): { series: SeriesWindowOut[]; host: HostWindowOut } {
    const out: SeriesWindowOut[] = [];
    const sum = new Float64Array(STRIDE);
    const nLocal = Math.min(h.series.length, w.cells.length / STRIDE);
    for (let l = 0; l < nLocal; l++) {
      const o = l * STRIDE;
      if (w.cells[o] + w.cells[o + 1] + w.cells[o + 2] + w.cells[o + 3] === 0) continue;
      const cells = w.cells.slice(o, o + STRIDE);
      for (let j = 0; j < STRIDE; j++) sum[j] += cells[j];
      let other: Map<number, number> | null = null;
      if (w.other !== null && cells[OTHER] > 0) {
        other = new Map();
        for (const [lk, c] of w.other) if (Math.floor(lk / 256) === l) other.set(lk % 256, c);
      }
      const s = h.series[l];
      out.push({
        host: h.name,
        smmu: this.sSmmu[s],
        streamId: this.sSid[s],
        ssid: this.sSsid[s],
        width: k,
        index: w.index,
        cells,
        other,
      });
    }
    return {
      series: out,
      host: {
        host: h.name,
        width: k,
        index: w.index,
        cells: sum,
        batches: w.batches,
        lost: new Map(w.lost),
        series: out.length,
      },
    };
  }

  /** Windows closed since the last call (collectWindows only). */
  drainClosed(): ClosedWindows {
    const out = this.closed;
    this.closed = { series: [], hosts: [] };
    return out;
  }

  /** Series and hosts changed since the last `clearDirty()`. */
  dirty(): { series: number[]; hosts: HostAccount[] } {
    return { series: [...this.dirtyList], hosts: this.hosts.filter((h) => h.dirty) };
  }

  clearDirty(): void {
    for (const s of this.dirtyList) this.sDirty[s] = 0;
    this.dirtyList = [];
    for (const h of this.hosts) h.dirty = false;
  }

  /** Marks everything as changed (after a restore: the new owner republishes all of it). */
  markAllDirty(): void {
    this.clearDirty();
    for (let s = 0; s < this.n; s++) {
      this.sDirty[s] = 1;
      this.dirtyList.push(s);
    }
    for (const h of this.hosts) h.dirty = true;
  }

  // ---- Views ----

  allHosts(): readonly HostAccount[] {
    return this.hosts;
  }

  seriesKey(s: number): { host: string; smmu: string; streamId: number; ssid: number } {
    return {
      host: this.hosts[this.sHost[s]].name,
      smmu: this.sSmmu[s],
      streamId: this.sSid[s],
      ssid: this.sSsid[s],
    };
  }

  seriesCells(s: number): Float64Array {
    return this.cells.subarray(s * STRIDE, (s + 1) * STRIDE);
  }

  seriesLastNs(s: number): bigint {
    return this.sLast[s];
  }

  /** Event ID -> count of kind "other" events of a series. */
  seriesOther(s: number): Map<number, number> {
    const out = new Map<number, number>();
    if (this.cells[s * STRIDE + OTHER] === 0) return out;
    for (let id = 0; id < 256; id++) {
      const c = this.other.get(s * 256 + id);
      if (c) out.set(id, c);
    }
    return out;
  }

  seriesRow(s: number): SeriesTotalsRow {
    const c = this.seriesCells(s);
    const other: Record<string, number> = {};
    for (const [id, n] of this.seriesOther(s)) other[eventName(id)] = n;
    return {
      ...this.seriesKey(s),
      events: c[0] + c[1] + c[2] + c[3],
      kinds: kindCounts(c, 0),
      stalls: c[4] + c[5] + c[6] + c[7],
      stallsByKind: kindCounts(c, 4),
      stallTimeNs: null,
      otherEvents: other,
      lastEventUnixNs: String(this.sLast[s]),
    };
  }

  seriesRows(): SeriesTotalsRow[] {
    const out: SeriesTotalsRow[] = [];
    for (let s = 0; s < this.n; s++) out.push(this.seriesRow(s));
    return out;
  }

  /** Events and stalls by kind of a host (sum over its series). */
  hostCells(h: HostAccount): Float64Array {
    const sum = new Float64Array(STRIDE);
    for (const s of h.series) for (let j = 0; j < STRIDE; j++) sum[j] += this.cells[s * STRIDE + j];
    return sum;
  }

  hostRow(h: HostAccount): HostTotalsRow {
    const c = this.hostCells(h);
    const lost: Record<string, number> = {};
    for (const [r, n] of h.lost) lost[lossName(r)] = n;
    const late: Record<string, number> = {};
    WIDTH_NAMES.forEach((name, k) => {
      late[name] = h.late[k];
    });
    return {
      host: h.name,
      batches: h.batches,
      events: h.events,
      kinds: kindCounts(c, 0),
      stalls: c[4] + c[5] + c[6] + c[7],
      lost,
      lostEvents: h.lostTotal(),
      replayedBatches: h.replayed,
      late,
      outOfRangeEvents: h.outOfRange,
      conflictingBatches: h.conflicts,
      conflictingEvents: h.conflictEvents,
      firstEventUnixNs: String(h.firstNs),
      lastEventUnixNs: String(h.lastNs),
      series: h.series.length,
    };
  }

  hostRows(): HostTotalsRow[] {
    return this.hosts
      .map((h) => this.hostRow(h))
      .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  }

  /** Open windows of a host of width index k (for the time-series view), oldest first. */
  openWindows(h: HostAccount, k: number): Array<{ series: SeriesWindowOut[]; host: HostWindowOut }> {
    return [...h.open[k].keys()]
      .sort((a, b) => a - b)
      .map((idx) => this.windowRecords(h, k, h.open[k].get(idx)!));
  }

  // ---- Checkpoint ----

  /** The whole state as a PartitionCheckpoint (the caller adds group, topic and partition). */
  toCheckpoint(): CheckpointProps {
    const hostState = this.hosts.map((h) => ({
      host: h.name,
      batches: h.batches,
      events: h.events,
      lost: Object.fromEntries(h.lost),
      replayed_batches: h.replayed,
      late: [...h.late],
      first_event_unix_ns: u64(h.firstNs),
      last_event_unix_ns: u64(h.lastNs),
      closed_through: [...h.closedThrough],
      out_of_range_events: h.outOfRange,
      conflicting_batches: h.conflicts,
      conflicting_events: h.conflictEvents,
    }));
    const series: smmu.accounting.v1.SeriesState.$Properties[] = [];
    for (let s = 0; s < this.n; s++) {
      series.push({
        host: this.sHost[s],
        smmu: this.sSmmu[s],
        stream_id: this.sSid[s],
        ssid: this.sSsid[s],
        cells: Array.from(this.seriesCells(s)),
        other_events: Object.fromEntries(this.seriesOther(s)),
        last_event_unix_ns: u64(this.sLast[s]),
      });
    }
    const sketches: smmu.accounting.v1.SketchState.$Properties[] = [];
    const windows: smmu.accounting.v1.OpenWindowState.$Properties[] = [];
    for (const h of this.hosts) {
      for (const [ssid, sk] of h.sketches) {
        const st = sk.snapshot();
        sketches.push({
          host: h.index,
          ssid,
          pages: st.pages,
          counts: st.counts,
          errors: st.errors,
          stalls: st.stalls,
          kinds: st.kinds,
          offered: st.offered,
          cursor: st.cursor,
          min_count: st.minCount,
          first_event_unix_ns: u64(st.firstNs),
          last_event_unix_ns: u64(st.lastNs),
        });
      }
      h.open.forEach((m, k) => {
        for (const w of m.values()) {
          const ids: number[] = [];
          const cells: number[] = [];
          const nLocal = Math.min(h.series.length, w.cells.length / STRIDE);
          for (let l = 0; l < nLocal; l++) {
            const o = l * STRIDE;
            if (w.cells[o] + w.cells[o + 1] + w.cells[o + 2] + w.cells[o + 3] === 0) continue;
            ids.push(h.series[l]);
            for (let j = 0; j < STRIDE; j++) cells.push(w.cells[o + j]);
          }
          const other: number[] = [];
          for (const [lk, c] of w.other ?? []) other.push(h.series[Math.floor(lk / 256)], lk % 256, c);
          windows.push({
            host: h.index,
            width: k,
            index: w.index,
            batches: w.batches,
            lost: Object.fromEntries(w.lost),
            series: ids,
            cells,
            other_events: other,
          });
        }
      });
    }
    return {
      next_offset: Math.max(0, this.nextOffset),
      hosts: hostState,
      series,
      replays: this.replays.snapshot().map((r) => ({
        agent_id: r.agentId,
        epoch: u64(r.epoch),
        watermark: u64(r.watermark),
        ahead: r.ahead.map(u64),
        recent: r.recent.map((x) => ({ sequence: u64(x.sequence), digest: u64(x.digest) })),
      })),
      sketches,
      windows,
      malformed: this.malformed,
      page_shift: this.opts.hotPageShift,
      sketch_slots: this.opts.sketchSlots,
      window_grace_ns: this.opts.windowGraceNs,
      replay_duplicates: this.replays.duplicates,
      replay_conflicts: this.replays.conflicts,
    };
  }

  /** A state restored from a checkpoint; throws when it was taken with other settings. */
  static fromCheckpoint(c: CheckpointProps, opts: Partial<AccountOptions> = {}): AccountState {
    const st = new AccountState(opts);
    const o = st.opts;
    if (
      c.page_shift !== o.hotPageShift ||
      c.sketch_slots !== o.sketchSlots ||
      num(c.window_grace_ns) !== o.windowGraceNs
    ) {
      throw new Error(
        `checkpoint taken with hotPageShift ${c.page_shift}, sketchSlots ${c.sketch_slots}, windowGraceNs ${num(c.window_grace_ns)}; ` +
          `this aggregator runs with ${o.hotPageShift}, ${o.sketchSlots}, ${o.windowGraceNs}: use the same settings or a new group`,
      );
    }
    st.nextOffset = num(c.next_offset);
    st.malformed = num(c.malformed);
    for (const hs of c.hosts ?? []) {
      const h = st.host(hs.host ?? '');
      h.batches = num(hs.batches);
      h.events = num(hs.events);
      for (const [r, v] of numMap(hs.lost)) h.lost.set(r, v);
      h.replayed = num(hs.replayed_batches);
      (hs.late ?? []).forEach((v, k) => {
        if (k < h.late.length) h.late[k] = num(v);
      });
      h.firstNs = big(hs.first_event_unix_ns);
      h.lastNs = big(hs.last_event_unix_ns);
      h.outOfRange = num(hs.out_of_range_events);
      h.conflicts = num(hs.conflicting_batches);
      h.conflictEvents = num(hs.conflicting_events);
      h.hasEvents = h.events > h.outOfRange;
      (hs.closed_through ?? []).forEach((v, k) => {
        if (k < h.closedThrough.length) h.closedThrough[k] = num(v);
      });
    }
    for (const ss of c.series ?? []) {
      const h = st.hosts[ss.host ?? 0];
      const sid = ss.stream_id ?? 0;
      const ssid = ss.ssid ?? 0;
      const m = h.smmuMap(ss.smmu ?? '');
      const s = st.newSeries(h, ss.smmu ?? '', sid, ssid, m, sid * SSID_SPAN + ssid);
      (ss.cells ?? []).forEach((v, j) => {
        st.cells[s * STRIDE + j] = num(v);
      });
      for (const [id, v] of numMap(ss.other_events)) st.other.set(s * 256 + id, v);
      st.sLast[s] = big(ss.last_event_unix_ns);
    }
    st.replays.restore(
      (c.replays ?? []).map((r) => ({
        agentId: r.agent_id ?? '',
        epoch: big(r.epoch),
        watermark: big(r.watermark),
        ahead: (r.ahead ?? []).map(big),
        recent: (r.recent ?? []).map((x) => ({ sequence: big(x.sequence), digest: big(x.digest) })),
      })),
      num(c.replay_duplicates),
      num(c.replay_conflicts),
    );
    for (const k of c.sketches ?? []) {
      const h = st.hosts[k.host ?? 0];
      h.sketches.set(
        k.ssid ?? 0,
        SpaceSaving.restore(o.sketchSlots, {
          pages: (k.pages ?? []).map(num),
          counts: (k.counts ?? []).map(num),
          errors: (k.errors ?? []).map(num),
          stalls: (k.stalls ?? []).map(num),
          kinds: (k.kinds ?? []).map(num),
          offered: num(k.offered),
          cursor: k.cursor ?? 0,
          minCount: num(k.min_count),
          firstNs: big(k.first_event_unix_ns),
          lastNs: big(k.last_event_unix_ns),
        }),
      );
    }
    for (const ws of c.windows ?? []) {
      const h = st.hosts[ws.host ?? 0];
      const w = h.window(ws.width ?? 0, num(ws.index));
      w.batches = num(ws.batches);
      for (const [r, v] of numMap(ws.lost)) w.lost.set(r, v);
      const cells = (ws.cells ?? []).map(num);
      (ws.series ?? []).forEach((s, i) => {
        const l = st.sLocal[s];
        w.ensure(l);
        for (let j = 0; j < STRIDE; j++) w.cells[l * STRIDE + j] = cells[i * STRIDE + j];
      });
      const other = (ws.other_events ?? []).map(num);
      for (let i = 0; i + 2 < other.length; i += 3) {
        w.other ??= new Map();
        w.other.set(st.sLocal[other[i]] * 256 + other[i + 1], other[i + 2]);
      }
    }
    st.clearDirty();
    return st;
  }
}

// ---- The one-shot view the `totals` command, the demo and the tests use ----

export interface CountRow {
  host: string;
  smmu: string;
  streamId: number;
  ssid: number;
  eventId: number;
  event: string;
  count: number;
}

export interface LostRow {
  host: string;
  reason: string;
  count: number;
}

export interface HostRow {
  host: string;
  batches: number;
  events: number;
  lost: number;
}

/** Fleet totals over everything offered: per host x SMMU x StreamID x SSID x event type. */
export class FleetTotals {
  readonly state: AccountState;

  constructor(opts: Partial<AccountOptions> = {}) {
    this.state = new AccountState(opts);
  }

  get replays(): ReplayFilter {
    return this.state.replays;
  }

  /** Adds a batch; returns false (and counts nothing) when it is a replay or a conflict. */
  add(b: Batch, receivedNs?: bigint): boolean {
    return this.state.add(b, receivedNs);
  }

  rows(): CountRow[] {
    const st = this.state;
    const out: CountRow[] = [];
    for (let s = 0; s < st.seriesCount; s++) {
      const k = st.seriesKey(s);
      const c = st.seriesCells(s);
      const base = { host: k.host, smmu: k.smmu, streamId: k.streamId, ssid: k.ssid };
      for (let kind = 0; kind < OTHER; kind++) {
        if (c[kind] > 0) {
          const id = KIND_EVENT[kind];
          out.push({ ...base, eventId: id, event: eventName(id), count: c[kind] });
        }
      }
      for (const [id, count] of st.seriesOther(s))
        out.push({ ...base, eventId: id, event: eventName(id), count });
    }
    return out.sort(
      (a, b) =>
        b.count - a.count ||
        a.host.localeCompare(b.host) ||
        a.streamId - b.streamId ||
        a.ssid - b.ssid ||
        a.eventId - b.eventId,
    );
  }

  lostRows(): LostRow[] {
    const out: LostRow[] = [];
    for (const h of this.state.allHosts())
      for (const [r, count] of h.lost) out.push({ host: h.name, reason: lossName(r), count });
    return out;
  }

  hostRows(): HostRow[] {
    return this.state
      .allHosts()
      .filter((h) => h.batches > 0)
      .map((h) => ({ host: h.name, batches: h.batches, events: h.events, lost: h.lostTotal() }))
      .sort((a, b) => a.host.localeCompare(b.host));
  }

  /** Events per host and event name: the coarse view tests and the demo print. */
  perHostEvent(): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>();
    for (const r of this.rows()) {
      let m = out.get(r.host);
      if (!m) {
        m = new Map();
        out.set(r.host, m);
      }
      m.set(r.event, (m.get(r.event) ?? 0) + r.count);
    }
    return out;
  }
}
