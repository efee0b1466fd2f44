// Accounting stage 5 (part): the read-only views of the partitions one aggregator instance
// holds, as the HTTP API (serve.ts) answers them. Guarantee: a view reads the live
// AccountStates and never changes them; every row is a sum over the same cells the totals and
// windows topics carry (query.ts), so API, CLI and topics show the same numbers. The daemon
// (aggregator.ts) owns the partitions and tells the views of each closed window it published.
import type { AccountState } from './aggregate';
import { rowEvents } from './cells';
import type { HostAccount } from './host';
import { type AdviceRange, adviseRanges, type HotPage } from './hotpages';
import {
  type DeviceRow,
  deviceRows,
  type FleetSummary,
  fleetSummary,
  hostWindowJson,
  type ProcessRow,
  processRows,
  seriesWindowJson,
  type WindowJson,
} from './query';
import { type HostTotalsRow, hostRows, type SeriesTotalsRow, seriesRow } from './rows';
import { openWindowRecords } from './window-close';
import {
  type ClosedWindows,
  type HostWindowOut,
  type SeriesWindowOut,
  WIDTH_NAMES,
  WIDTHS_NS,
} from './windows';

/** A partition as the views see it. */
export interface PartitionView {
  readonly id: number;
  readonly state: AccountState;
  /** Raw offset the latest checkpoint written by this instance covers up to (-1: none). */
  readonly checkpointedOffset: number;
  readonly highWatermark: number;
}

/** What the views read from the daemon. */
export interface ViewSource {
  partitions(): Iterable<PartitionView>;
  /** Raw-topic partitions the consumer group assigned to this instance. */
  assignedPartitions(): number[];
  /** Raw offsets the consumer skipped (see consume.ts). */
  skippedOffsets(): number;
}

/** The settings the views report or apply. */
export interface ViewSettings {
  hotPageShift: number;
  windowHistory: number;
  checkpointIntervalMs: number;
  windowGraceMs: number;
  adviceMinFaults: number;
  adviceGapPages: number;
}

export type PartitionRow = {
  partition: number;
  nextOffset: number;
  checkpointedOffset: number;
  highWatermark: number;
  lag: number;
};

export type Summary = FleetSummary & {
  partitions: PartitionRow[];
  assignedPartitions: number[];
  malformedMessages: number;
  skippedOffsets: number;
  checkpointIntervalMs: number;
  windowGraceMs: number;
};

/** Closed windows kept for the time-series API, oldest dropped first. */
export class WindowHistory {
  private series: SeriesWindowOut[] = [];
  private hosts: HostWindowOut[] = [];
  constructor(private readonly cap: number) {}
  add(c: ClosedWindows): void {
    if (this.cap === 0) return;
    for (const w of c.series) this.series.push(w);
    for (const w of c.hosts) this.hosts.push(w);
    if (this.series.length > this.cap * 1.25) this.series = this.series.slice(-this.cap);
    if (this.hosts.length > this.cap * 1.25) this.hosts = this.hosts.slice(-this.cap);
  }
  all(): { series: readonly SeriesWindowOut[]; hosts: readonly HostWindowOut[] } {
    return { series: this.series, hosts: this.hosts };
  }
}

export interface WindowQuery {
  width: number;
  host?: string;
  smmu?: string;
  streamId?: number;
  ssid?: number;
  /** Only windows starting at or after (ns since the Unix epoch). */
  sinceNs?: bigint;
  includeOpen: boolean;
  limit: number;
}

export interface HotPagesView {
  host: string;
  ssid: number;
  hotPageShift: number;
  /** Faults offered to the sketch (all page faults of the process). */
  faults: number;
  slots: number;
  pages: Array<HotPage & { address: string }>;
}

export interface AdviceView {
  host: string;
  ssid: number;
  hotPageShift: number;
  /** Seconds of event time the sketch covers. */
  observedSeconds: number;
  faults: number;
  ranges: Array<
    AdviceRange & {
      start: string;
      end: string;
      bytes: number;
      faultsPerSec: number | null;
      stallTimeNs: null;
    }
  >;
  /** Faults the ranges together would have saved (upper bound; guaranteed: lower bound). */
  savedFaults: number;
  savedGuaranteedFaults: number;
  savedStalls: number;
}

/** The questions the HTTP API asks (serve.ts depends on this, not on the daemon). */
export interface AccountingQueries {
  readonly settings: ViewSettings;
  summary(): Summary;
  hostRows(): HostTotalsRow[];
  seriesRows(filter?: SeriesFilter): SeriesTotalsRow[];
  processRows(host?: string): ProcessRow[];
  deviceRows(host?: string): DeviceRow[];
  windows(q: WindowQuery): WindowJson[];
  hotPages(host: string | undefined, ssid: number | undefined, limit: number): HotPagesView[];
  advice(
    host: string | undefined,
    ssid: number | undefined,
    minFaults: number,
    gapPages: number,
  ): AdviceView[];
  widthIndex(name: string): number;
}

export interface SeriesFilter {
  host?: string;
  smmu?: string;
  streamId?: number;
  ssid?: number;
}

export class AccountingViews implements AccountingQueries {
  private readonly history: WindowHistory;
  /** host -> last closed 10 s window: index and events per SSID (for the processes' rates). */
  private readonly lastClosed = new Map<string, { index: number; perSsid: Map<number, number> }>();

  constructor(
    private readonly src: ViewSource,
    readonly settings: ViewSettings,
  ) {
    this.history = new WindowHistory(settings.windowHistory);
  }

  /** Takes windows the daemon has published (kept for /v1/windows and the process rates). */
  remember(c: ClosedWindows): void {
    this.history.add(c);
    for (const w of c.hosts) {
      if (w.width !== 0) continue;
      const cur = this.lastClosed.get(w.host);
      if (!cur || w.index > cur.index) this.lastClosed.set(w.host, { index: w.index, perSsid: new Map() });
    }
    for (const w of c.series) {
      if (w.width !== 0) continue;
      const cur = this.lastClosed.get(w.host);
      if (cur && cur.index === w.index) {
        const ev = rowEvents(w.cells);
        cur.perSsid.set(w.ssid, (cur.perSsid.get(w.ssid) ?? 0) + ev);
      }
    }
  }

  /** Partitions held, with their positions. */
  partitions(): PartitionRow[] {
    return [...this.src.partitions()]
      .sort((a, b) => a.id - b.id)
      .map((p) => ({
        partition: p.id,
        nextOffset: Math.max(0, p.state.nextOffset),
        checkpointedOffset: p.checkpointedOffset,
        highWatermark: p.highWatermark,
        // nextOffset -1: nothing read yet (an empty partition has no lag).
        lag: Math.max(0, p.highWatermark - Math.max(0, p.state.nextOffset)),
      }));
  }

  private states(): AccountState[] {
    return [...this.src.partitions()].map((p) => p.state);
  }

  hostRows(): HostTotalsRow[] {
    return this.states()
      .flatMap((s) => hostRows(s))
      .filter((h) => h.batches > 0 || h.replayedBatches > 0 || h.conflictingBatches > 0)
      .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  }

  seriesRows(filter: SeriesFilter = {}): SeriesTotalsRow[] {
    const out: SeriesTotalsRow[] = [];
    for (const st of this.states()) {
      for (let s = 0; s < st.seriesCount; s++) {
        const k = st.seriesKey(s);
        if (filter.host !== undefined && k.host !== filter.host) continue;
        if (filter.smmu !== undefined && k.smmu !== filter.smmu) continue;
        if (filter.streamId !== undefined && k.streamId !== filter.streamId) continue;
        if (filter.ssid !== undefined && k.ssid !== filter.ssid) continue;
        out.push(seriesRow(st, s));
      }
    }
    return out.sort(
      (a, b) =>
        b.events - a.events ||
        (a.host < b.host ? -1 : a.host > b.host ? 1 : 0) ||
        a.streamId - b.streamId ||
        a.ssid - b.ssid,
    );
  }

  summary(): Summary {
    return {
      ...fleetSummary(this.hostRows()),
      partitions: this.partitions(),
      assignedPartitions: this.src.assignedPartitions(),
      malformedMessages: this.states().reduce((s, st) => s + st.malformed, 0),
      skippedOffsets: this.src.skippedOffsets(),
      checkpointIntervalMs: this.settings.checkpointIntervalMs,
      windowGraceMs: this.settings.windowGraceMs,
    };
  }

  /** Per-process rows with the rate of the host's last closed 10 s window. */
  processRows(host?: string): ProcessRow[] {
    const rates = new Map<string, Map<number, number>>();
    for (const [h, w] of this.lastClosed) {
      rates.set(h, new Map([...w.perSsid].map(([ssid, ev]) => [ssid, ev / 10])));
    }
    return processRows(this.seriesRows({ host }), rates);
  }

  deviceRows(host?: string): DeviceRow[] {
    return deviceRows(this.seriesRows({ host }));
  }

  private findHost(name: string): { st: AccountState; h: HostAccount } | undefined {
    for (const st of this.states()) {
      const h = st.findHost(name);
      if (h) return { st, h };
    }
    return undefined;
  }

  hasHost(name: string): boolean {
    return this.findHost(name) !== undefined;
  }

  windows(q: WindowQuery): WindowJson[] {
    const match = (w: { host: string; width: number; index: number }, s?: SeriesWindowOut) => {
      if (w.width !== q.width) return false;
      if (q.host !== undefined && w.host !== q.host) return false;
      if (q.sinceNs !== undefined && BigInt(w.index) * BigInt(WIDTHS_NS[q.width]) < q.sinceNs) return false;
      if (s) {
        if (q.smmu !== undefined && s.smmu !== q.smmu) return false;
        if (q.streamId !== undefined && s.streamId !== q.streamId) return false;
        if (q.ssid !== undefined && s.ssid !== q.ssid) return false;
      }
      return true;
    };
    const seriesLevel = q.smmu !== undefined || q.streamId !== undefined || q.ssid !== undefined;
    const out: WindowJson[] = [];
    const h = this.history.all();
    if (seriesLevel) {
      for (const w of h.series) if (match(w, w)) out.push(seriesWindowJson(w, true));
    } else {
      for (const w of h.hosts) if (match(w)) out.push(hostWindowJson(w, true));
    }
    if (q.includeOpen) {
      for (const st of this.states()) {
        for (const host of st.allHosts()) {
          if (q.host !== undefined && host.name !== q.host) continue;
          for (const ow of openWindowRecords(st.table, host, q.width)) {
            if (seriesLevel) {
              for (const w of ow.series) if (match(w, w)) out.push(seriesWindowJson(w, false));
            } else if (match(ow.host)) out.push(hostWindowJson(ow.host, false));
          }
        }
      }
    }
    out.sort(
      (a, b) =>
        (BigInt(a.startUnixNs) < BigInt(b.startUnixNs)
          ? -1
          : BigInt(a.startUnixNs) > BigInt(b.startUnixNs)
            ? 1
            : 0) ||
        (a.host < b.host ? -1 : a.host > b.host ? 1 : 0) ||
        (a.streamId ?? 0) - (b.streamId ?? 0) ||
        (a.ssid ?? 0) - (b.ssid ?? 0),
    );
    return out.slice(-q.limit);
  }

  private sketches(host?: string, ssid?: number) {
    const out: Array<{
      host: string;
      ssid: number;
      sk: NonNullable<ReturnType<HostAccount['sketches']['get']>>;
    }> = [];
    for (const st of this.states()) {
      for (const h of st.allHosts()) {
        if (host !== undefined && h.name !== host) continue;
        for (const [s, sk] of h.sketches)
          if (ssid === undefined || s === ssid) out.push({ host: h.name, ssid: s, sk });
      }
    }
    return out.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.ssid - b.ssid));
  }

  hotPages(host: string | undefined, ssid: number | undefined, limit: number): HotPagesView[] {
    const shift = BigInt(this.settings.hotPageShift);
    return this.sketches(host, ssid).map(({ host, ssid, sk }) => ({
      host,
      ssid,
      hotPageShift: this.settings.hotPageShift,
      faults: sk.offered,
      slots: sk.slots,
      pages: sk.top(limit).map((p) => ({ ...p, address: `0x${(BigInt(p.page) << shift).toString(16)}` })),
    }));
  }

  advice(
    host: string | undefined,
    ssid: number | undefined,
    minFaults: number,
    gapPages: number,
  ): AdviceView[] {
    const shift = BigInt(this.settings.hotPageShift);
    const out: AdviceView[] = [];
    for (const { host: h, ssid: s, sk } of this.sketches(host, ssid)) {
      const seconds = sk.lastNs > sk.firstNs ? Number(sk.lastNs - sk.firstNs) / 1e9 : 0;
      const ranges = adviseRanges(sk, { minFaults, gapPages }).map((r) => ({
        ...r,
        start: `0x${(BigInt(r.startPage) << shift).toString(16)}`,
        end: `0x${(BigInt(r.endPage) << shift).toString(16)}`,
        bytes: (r.endPage - r.startPage) * 2 ** this.settings.hotPageShift,
        faultsPerSec: seconds > 0 ? r.faults / seconds : null,
        stallTimeNs: null,
      }));
      if (ranges.length === 0) continue;
      out.push({
        host: h,
        ssid: s,
        hotPageShift: this.settings.hotPageShift,
        observedSeconds: seconds,
        faults: sk.offered,
        ranges,
        savedFaults: ranges.reduce((a, r) => a + r.faults, 0),
        savedGuaranteedFaults: ranges.reduce((a, r) => a + r.guaranteedFaults, 0),
        savedStalls: ranges.reduce((a, r) => a + r.stalls, 0),
      });
    }
    return out.sort((a, b) => b.savedFaults - a.savedFaults);
  }

  widthIndex(name: string): number {
    return WIDTH_NAMES.indexOf(name);
  }
}
