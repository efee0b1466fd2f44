// Hot faulting pages per (host, SSID) in bounded memory, and the prefault advice drawn from them.
//
// A "hot page" is an aligned block of 2^hotPageShift bytes of the process's address space
// (default 64 KiB: fine enough to point at the faulting part of a mapping, coarse enough that a
// process's working set fits a few hundred counters). Each process (host x SSID) gets a
// Space-Saving sketch (Metwally, Agrawal, El Abbadi, 2005) of `slots` counters over the pages
// of its page faults (translation, access and permission faults: the ones populating a page
// avoids). A page that is not tracked takes the slot with the smallest count and inherits that
// count as its possible overestimate (`error`), so for every tracked page
//   count - error <= true faults <= count,
// and every page with more than offered / slots faults is tracked. Memory is fixed per process;
// updates are O(1) amortized (the minimum is found by a cursor scan, as counts only grow).
//
// The sketch is a pure function of the pages offered, in order: restored from a checkpoint it
// makes the same decisions again.

/** Faulting-page kinds tracked per slot: translation, access, permission. */
export const PAGE_KINDS = 3;

export interface SketchState {
  pages: number[];
  counts: number[];
  errors: number[];
  stalls: number[];
  /** PAGE_KINDS per slot. */
  kinds: number[];
  offered: number;
  cursor: number;
  minCount: number;
  firstNs: bigint;
  lastNs: bigint;
}

export class SpaceSaving {
  readonly pages: Float64Array;
  readonly counts: Float64Array;
  readonly errors: Float64Array;
  readonly stalls: Float64Array;
  readonly kinds: Float64Array;
  /** Slots in use. */
  size = 0;
  /** Faults offered (tracked or not). */
  offered = 0;
  /** Event time of the first and latest batch that offered faults (ns since the Unix epoch). */
  firstNs = 0n;
  lastNs = 0n;
  /** Scratch mark of the aggregator's hot loop (which batch touched the sketch last); not state. */
  stamp = 0;
  private cursor = 0;
  private minCount = 0;
  private readonly index = new Map<number, number>();

  constructor(readonly slots: number) {
    if (!Number.isInteger(slots) || slots < 1)
      throw new RangeError(`sketch slots must be >= 1 (got ${slots})`);
    this.pages = new Float64Array(slots);
    this.counts = new Float64Array(slots);
    this.errors = new Float64Array(slots);
    this.stalls = new Float64Array(slots);
    this.kinds = new Float64Array(slots * PAGE_KINDS);
  }

  /** Counts one fault on `page` of `kind` (0..2); `stall` is 1 when the fault stalled. */
  add(page: number, kind: number, stall: number): void {
    this.offered++;
    let s = this.index.get(page);
    if (s === undefined) {
      if (this.size < this.slots) {
        s = this.size++;
      } else {
        s = this.victim();
        this.index.delete(this.pages[s]);
        this.errors[s] = this.counts[s];
        this.stalls[s] = 0;
        const k = s * PAGE_KINDS;
        this.kinds[k] = 0;
        this.kinds[k + 1] = 0;
        this.kinds[k + 2] = 0;
      }
      this.pages[s] = page;
      this.index.set(page, s);
    }
    this.counts[s]++;
    this.stalls[s] += stall;
    this.kinds[s * PAGE_KINDS + kind]++;
  }

  /** A slot holding the smallest count (the first one at or after the cursor). */
  private victim(): number {
    const k = this.slots;
    const c = this.counts;
    let i = this.cursor;
    for (let n = 0; n < k; n++) {
      if (c[i] === this.minCount) {
        this.cursor = i + 1 === k ? 0 : i + 1;
        return i;
      }
      i = i + 1 === k ? 0 : i + 1;
    }
    let m = Number.POSITIVE_INFINITY;
    let at = 0;
    for (let j = 0; j < k; j++) {
      if (c[j] < m) {
        m = c[j];
        at = j;
      }
    }
    this.minCount = m;
    this.cursor = at + 1 === k ? 0 : at + 1;
    return at;
  }

  /** Tracked pages, most faults first (ties: lower page first). */
  top(limit = this.size): HotPage[] {
    const out: HotPage[] = [];
    for (let s = 0; s < this.size; s++) {
      const k = s * PAGE_KINDS;
      out.push({
        page: this.pages[s],
        faults: this.counts[s],
        error: this.errors[s],
        guaranteed: this.counts[s] - this.errors[s],
        stalls: this.stalls[s],
        translation: this.kinds[k],
        access: this.kinds[k + 1],
        permission: this.kinds[k + 2],
      });
    }
    out.sort((a, b) => b.faults - a.faults || a.page - b.page);
    return out.slice(0, limit);
  }

  snapshot(): SketchState {
    const n = this.size;
    return {
      pages: Array.from(this.pages.subarray(0, n)),
      counts: Array.from(this.counts.subarray(0, n)),
      errors: Array.from(this.errors.subarray(0, n)),
      stalls: Array.from(this.stalls.subarray(0, n)),
      kinds: Array.from(this.kinds.subarray(0, n * PAGE_KINDS)),
      offered: this.offered,
      cursor: this.cursor,
      minCount: this.minCount,
      firstNs: this.firstNs,
      lastNs: this.lastNs,
    };
  }

  static restore(slots: number, s: SketchState): SpaceSaving {
    const n = s.pages.length;
    if (n > slots || s.counts.length !== n || s.errors.length !== n || s.stalls.length !== n) {
      throw new Error(`sketch state with ${n} slots does not fit ${slots} slots`);
    }
    if (s.kinds.length !== n * PAGE_KINDS) throw new Error('sketch state: kinds length mismatch');
    const sk = new SpaceSaving(slots);
    sk.pages.set(s.pages);
    sk.counts.set(s.counts);
    sk.errors.set(s.errors);
    sk.stalls.set(s.stalls);
    sk.kinds.set(s.kinds);
    sk.size = n;
    for (let i = 0; i < n; i++) sk.index.set(s.pages[i], i);
    sk.offered = s.offered;
    sk.cursor = s.cursor;
    sk.minCount = s.minCount;
    sk.firstNs = s.firstNs;
    sk.lastNs = s.lastNs;
    return sk;
  }
}

export interface HotPage {
  /** Page number (address >> hotPageShift). */
  page: number;
  /** Faults counted on the page since it was tracked, including the inherited estimate. */
  faults: number;
  /** Largest possible overestimate of `faults`. */
  error: number;
  /** faults - error: at least this many faults happened on the page. */
  guaranteed: number;
  stalls: number;
  translation: number;
  access: number;
  permission: number;
}

export interface AdviceRange {
  /** First page and the page after the last one (address >> hotPageShift). */
  startPage: number;
  endPage: number;
  /** Hot pages in the range. */
  hotPages: number;
  /** Faults counted on the range's hot pages (upper bound) and at least (guaranteed). */
  faults: number;
  guaranteedFaults: number;
  stalls: number;
  translation: number;
  access: number;
  permission: number;
  /**
   * What to populate with: "write" (MADV_POPULATE_WRITE / MAP_POPULATE of a writable mapping:
   * present, young and dirty, so no permission fault on the first write) when permission
   * faults were seen, else "read" (MADV_POPULATE_READ).
   */
  populate: 'read' | 'write';
}

export interface AdviceOptions {
  /** A page qualifies when at least this many faults on it are guaranteed. */
  minFaults: number;
  /** Most non-hot pages between two hot pages of one range (0: adjacent pages only). */
  gapPages: number;
}

/**
 * Address ranges worth populating: runs of hot pages (guaranteed faults >= minFaults) with at
 * most gapPages non-hot pages between neighbours, largest saving first. Faults in a range are the faults a prefault
 * of the range would have saved (an upper bound; guaranteedFaults a lower one).
 */
export function adviseRanges(sk: SpaceSaving, o: AdviceOptions): AdviceRange[] {
  const hot = sk
    .top()
    .filter((p) => p.guaranteed >= o.minFaults)
    .sort((a, b) => a.page - b.page);
  const out: AdviceRange[] = [];
  let cur: AdviceRange | undefined;
  for (const p of hot) {
    if (!cur || p.page - cur.endPage > o.gapPages) {
      cur = {
        startPage: p.page,
        endPage: p.page + 1,
        hotPages: 0,
        faults: 0,
        guaranteedFaults: 0,
        stalls: 0,
        translation: 0,
        access: 0,
        permission: 0,
        populate: 'read',
      };
      out.push(cur);
    }
    cur.endPage = p.page + 1;
    cur.hotPages++;
    cur.faults += p.faults;
    cur.guaranteedFaults += p.guaranteed;
    cur.stalls += p.stalls;
    cur.translation += p.translation;
    cur.access += p.access;
    cur.permission += p.permission;
    if (cur.permission > 0) cur.populate = 'write';
  }
  return out.sort((a, b) => b.faults - a.faults || a.startPage - b.startPage);
}
