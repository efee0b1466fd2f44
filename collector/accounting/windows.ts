// Tumbling windows of 10 s and 1 min by event time: an event at t is in [floor(t/w)*w, +w).
// What an open window holds, and the closed windows the aggregation hands on (to the windows
// topic, publish.ts, and the time-series API). Closing itself is in window-close.ts.
import { STRIDE } from './cells';

/** Window widths in ns: 10 s and 1 min. */
export const WIDTHS_NS: readonly number[] = [10e9, 60e9];
export const WIDTH_NAMES: readonly string[] = ['10s', '1m'];
export const WIDTHS_BIG: readonly bigint[] = WIDTHS_NS.map(BigInt);

/** floor(x / w) for integers x (exact where x / w rounds up to an integer). */
export function floorDiv(x: number, w: number): number {
  let q = Math.floor(x / w);
  if (q * w > x) q--;
  else if ((q + 1) * w <= x) q++;
  return q;
}

/** An open window of one host: its series' cells by host-local series index. */
export class OpenWindow {
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
