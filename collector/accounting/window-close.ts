// Window closing. Each host has an event-time watermark, the latest event timestamp it sent;
// once it passes a window's end plus the grace, the window is closed, and a closed window is
// final: it is emitted once and nothing is added to it again (later events for it are late).
import { addRow, OTHER, rowEvents, STRIDE } from './cells';
import type { HostAccount } from './host';
import type { SeriesTable } from './series';
import { type HostWindowOut, type OpenWindow, type SeriesWindowOut, WIDTHS_BIG, WIDTHS_NS } from './windows';

export interface WindowRecords {
  series: SeriesWindowOut[];
  host: HostWindowOut;
}

/**
 * Closes the host's windows its watermark (last event time minus `graceNs`) has passed and
 * returns them, per width oldest first, as [width index, window].
 */
export function closeDue(h: HostAccount, graceNs: number): Array<[number, OpenWindow]> {
  const out: Array<[number, OpenWindow]> = [];
  const wm = h.lastNs - BigInt(graceNs);
  for (let k = 0; k < WIDTHS_NS.length; k++) {
    const ct = wm <= 0n ? 0 : Number(wm / WIDTHS_BIG[k]);
    if (ct <= h.closedThrough[k]) continue;
    h.closedThrough[k] = ct;
    const due = [...h.open[k].keys()].filter((i) => i < ct).sort((a, b) => a - b);
    for (const idx of due) {
      out.push([k, h.open[k].get(idx)!]);
      h.open[k].delete(idx);
    }
  }
  return out;
}

/** The records of a window of width index k: one per series with events, and the host's. */
export function windowRecords(t: SeriesTable, h: HostAccount, k: number, w: OpenWindow): WindowRecords {
  const out: SeriesWindowOut[] = [];
  const sum = new Float64Array(STRIDE);
  const nLocal = Math.min(h.series.length, w.cells.length / STRIDE);
  for (let l = 0; l < nLocal; l++) {
    const o = l * STRIDE;
    if (rowEvents(w.cells, o) === 0) continue;
    const cells = w.cells.slice(o, o + STRIDE);
    addRow(sum, 0, cells, 0);
    let other: Map<number, number> | null = null;
    if (w.other !== null && cells[OTHER] > 0) {
      other = new Map();
      for (const [lk, c] of w.other) if (Math.floor(lk / 256) === l) other.set(lk % 256, c);
    }
    const s = h.series[l];
    out.push({
      host: h.name,
      smmu: t.smmu[s],
      streamId: t.sid[s],
      ssid: t.ssid[s],
      width: k,
      index: w.index,
      cells,
      other,
    });
  }
  const host = {
    host: h.name,
    width: k,
    index: w.index,
    cells: sum,
    batches: w.batches,
    lost: new Map(w.lost),
    series: out.length,
  };
  return { series: out, host };
}

/** Open windows of a host of width index k (for the time-series view), oldest first. */
export function openWindowRecords(t: SeriesTable, h: HostAccount, k: number): WindowRecords[] {
  return [...h.open[k].keys()]
    .sort((a, b) => a - b)
    .map((idx) => windowRecords(t, h, k, h.open[k].get(idx)!));
}
