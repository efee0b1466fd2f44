// What the aggregation keeps per host: batch and loss counts, its event-time watermark and
// closed-through marks, the index of its series, its open windows and hot-page sketches.
import type { SpaceSaving } from './hotpages';
import { OpenWindow, WIDTHS_NS } from './windows';

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
