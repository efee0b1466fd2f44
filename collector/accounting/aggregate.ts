// Accounting stage 2: aggregate. `AccountState` counts the batches of one raw-topic partition
// (or of everything, for one-shot use, fleet-totals.ts) after dropping replays:
//
//  - totals per series (host x SMMU x StreamID x SSID) by fault kind, with stalls by kind and
//    the "other" events by event ID; per host: batches, events, lost events by reason, replays;
//  - tumbling windows of 10 s and 1 min per series (and per host), by event timestamp
//    (windows.ts; closed by the host's event-time watermark, window-close.ts);
//  - a Space-Saving sketch of faulting pages per (host, SSID), for prefault advice.
//
// Guarantee: every event of a batch the replay filter lets through is counted exactly once in
// the totals, and in each width's window or that host's late counter; a replay is counted as a
// replay only, a conflict (same agent, epoch and sequence, other content: dedup.ts) as a
// conflict with its events. Everything is a pure function of the batches offered, in order,
// which is what makes checkpoints (checkpoint-codec.ts) exact. Stall time is unknown: SMMU
// records carry the STALL bit (counted) but not how long the stall lasted.
//
// Event time is only as good as the host's clock. An event before 1970, or further ahead of
// the collector's clock (the raw message's Kafka timestamp) than `maxEventAheadNs`, is held
// apart: counted in the totals and the host's out-of-range counter, but in no window and in no
// event-time field, so one bad timestamp cannot move the host's watermark and turn every later
// event into a late one.
//
// The hot loop (`count`) runs over the EventBlock's u32 words without allocating per event:
// events come in runs from one device and process, so the series, window and sketch lookups
// are cached across the run. It is the one long function of the accounting, kept whole so that
// V8 optimises it as one unit.
import { FAULT_KIND_BY_ID } from '../../common/smmu/event-ids';
import { eventIdOfWord0, inputPage, isStall, streamId, substreamIdOfWord0 } from '../../common/smmu/record';
import type { Batch } from '../../proto/batch-codec';
import { WORDS_PER_RECORD } from '../../proto/event-block';
import { countEvent, OTHER, STRIDE } from './cells';
import { batchDigest, ReplayFilter, type ReplayVerdict } from './dedup';
import { HostAccount } from './host';
import { SpaceSaving } from './hotpages';
import { type SeriesKey, SeriesTable, SSID_SPAN } from './series';
import { closeDue, windowRecords } from './window-close';
import { type ClosedWindows, floorDiv, type OpenWindow, WIDTHS_BIG, WIDTHS_NS } from './windows';

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

/** The accounting state of one raw-topic partition. */
export class AccountState {
  readonly opts: AccountOptions;
  readonly replays = new ReplayFilter();
  /** Raw messages that did not decode. */
  malformed = 0;
  /** Next raw offset to count (-1: none counted yet). Kept by the consumer. */
  nextOffset = -1;
  readonly table = new SeriesTable();

  private readonly hosts: HostAccount[] = [];
  private readonly hostIndex = new Map<string, number>();
  private closed: ClosedWindows = { series: [], hosts: [] };
  private readonly touched: number[] = [];
  private readonly touchedSketches: SpaceSaving[] = [];
  private stamp = 0;

  constructor(opts: Partial<AccountOptions> = {}) {
    this.opts = { ...defaultAccountOptions, ...opts };
  }

  get seriesCount(): number {
    return this.table.n;
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
    // A replacement for a damaged batch differs from the original by design: offered without a
    // digest, whichever of the two comes second is a replay, never a conflict (telemetry.proto).
    const verdict = this.replays.offer(
      b.agentId,
      b.epoch,
      b.sequence,
      b.replacesDamaged ? undefined : digest,
    );
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
      for (const [k, w] of closeDue(h, this.opts.windowGraceNs)) {
        if (!this.opts.collectWindows) continue;
        const r = windowRecords(this.table, h, k, w);
        for (const x of r.series) this.closed.series.push(x);
        this.closed.hosts.push(r.host);
      }
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
    const t = this.table;
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
    let row = 0;
    let cellBase = 0;
    let lastWin10 = Number.NaN;
    let win10: OpenWindow | null = null;
    let lastWin60 = Number.NaN;
    let win60: OpenWindow | null = null;
    let lastSketchSsid = -1;
    let sketch: SpaceSaving | null = null;
    let cells = t.cells;
    let maxOffs = t.maxOff;

    for (let i = 0, w = 0; i < n; i++, w += WORDS_PER_RECORD) {
      const w0 = words[w];
      const id = eventIdOfWord0(w0);
      const kind = FAULT_KIND_BY_ID[id];
      const sm = smmuIndex[i];
      const ssid = substreamIdOfWord0(w0);
      const sid = streamId(words, w);
      const key = sid * SSID_SPAN + ssid;
      if (key !== lastKey || sm !== lastSmmu) {
        const m = maps[sm];
        let si = m.get(key);
        if (si === undefined) {
          si = t.add(h, e.smmuNames[sm], sid, ssid, m, key);
          cells = t.cells;
          maxOffs = t.maxOff;
        }
        s = si;
        local = t.local[s];
        row = local * STRIDE;
        cellBase = s * STRIDE;
        lastKey = key;
        lastSmmu = sm;
        if (maxOffs[s] === Number.NEGATIVE_INFINITY) touched.push(s);
      }
      const stall = isStall(words, w);
      countEvent(cells, cellBase, kind, stall);
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
        let wi = base10 + floorDiv(rem10 + off, w10);
        if (wi !== lastWin10) {
          lastWin10 = wi;
          win10 = wi < ct10 ? null : h.window(0, wi);
        }
        if (win10 === null) late10++;
        else countEvent(win10.cells, row, kind, stall);
        wi = base60 + floorDiv(rem60 + off, w60);
        if (wi !== lastWin60) {
          lastWin60 = wi;
          win60 = wi < ct60 ? null : h.window(1, wi);
        }
        if (win60 === null) late60++;
        else countEvent(win60.cells, row, kind, stall);
      }

      if (kind === OTHER) {
        const k = s * 256 + id;
        t.other.set(k, (t.other.get(k) ?? 0) + 1);
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
        sketch.add(inputPage(words, w, shift), kind, stall ? 1 : 0);
      }
    }

    h.late[0] += late10;
    h.late[1] += late60;
    const base = e.baseNs;
    for (const x of touched) {
      if (maxOffs[x] !== Number.NEGATIVE_INFINITY) {
        const last = base + BigInt(maxOffs[x]);
        if (last > t.lastNs[x]) t.lastNs[x] = last;
      }
      maxOffs[x] = Number.NEGATIVE_INFINITY;
      t.markDirty(x);
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

  /** Windows closed since the last call (collectWindows only). */
  drainClosed(): ClosedWindows {
    const out = this.closed;
    this.closed = { series: [], hosts: [] };
    return out;
  }

  /** Series and hosts changed since the last `clearDirty()`. */
  dirty(): { series: number[]; hosts: HostAccount[] } {
    return { series: [...this.table.dirtyList], hosts: this.hosts.filter((h) => h.dirty) };
  }

  clearDirty(): void {
    this.table.clearDirty();
    for (const h of this.hosts) h.dirty = false;
  }

  /** Marks everything as changed (after a restore: the new owner republishes all of it). */
  markAllDirty(): void {
    this.clearDirty();
    for (let s = 0; s < this.table.n; s++) this.table.markDirty(s);
    for (const h of this.hosts) h.dirty = true;
  }

  // ---- Read-only access (rows.ts, publish.ts, checkpoint-codec.ts) ----

  allHosts(): readonly HostAccount[] {
    return this.hosts;
  }

  seriesKey(s: number): SeriesKey {
    return this.table.key(s, this.hosts);
  }

  seriesCells(s: number): Float64Array {
    return this.table.cellsOf(s);
  }

  seriesLastNs(s: number): bigint {
    return this.table.lastNs[s];
  }

  /** Event ID -> count of kind "other" events of a series. */
  seriesOther(s: number): Map<number, number> {
    return this.table.otherOf(s);
  }

  /** Events and stalls by kind of a host (sum over its series). */
  hostCells(h: HostAccount): Float64Array {
    return this.table.sum(h.series);
  }
}
