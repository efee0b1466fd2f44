// The series table of one accounting state: one row per host x SMMU x StreamID x SSID, as a
// struct of typed arrays so the hot loop indexes numbers, never objects. Rows are only added;
// a row's index is stable for the life of the state (checkpoints refer to rows by index).
import { addRow, OTHER, STRIDE } from './cells';
import type { HostAccount } from './host';

/** Keys of a host's SMMU map: StreamID * SSID_SPAN + SSID. */
export const SSID_SPAN = 2 ** 20;

export interface SeriesKey {
  host: string;
  smmu: string;
  streamId: number;
  ssid: number;
}

export class SeriesTable {
  n = 0;
  private cap = 0;
  host = new Int32Array(0);
  sid = new Uint32Array(0);
  ssid = new Uint32Array(0);
  /** Index of the series among its host's series (its cell row in the host's open windows). */
  local = new Int32Array(0);
  /** Per series, the largest event offset of the batch being counted (-Infinity: none). */
  maxOff = new Float64Array(0);
  dirtyMark = new Uint8Array(0);
  smmu: string[] = [];
  lastNs: bigint[] = [];
  /** STRIDE cells per series (cells.ts). */
  cells = new Float64Array(0);
  /** series * 256 + event ID -> count, kind other. */
  readonly other = new Map<number, number>();
  /** Series changed since the last `clearDirty()`. */
  dirtyList: number[] = [];

  constructor() {
    this.grow(64);
  }

  /** A new series of host `h`, entered in its SMMU map `m` under `key`. */
  add(
    h: HostAccount,
    smmuName: string,
    sid: number,
    ssid: number,
    m: Map<number, number>,
    key: number,
  ): number {
    if (this.n === this.cap) this.grow(this.cap * 2);
    const s = this.n++;
    this.host[s] = h.index;
    this.sid[s] = sid;
    this.ssid[s] = ssid;
    this.smmu[s] = smmuName;
    this.lastNs[s] = 0n;
    const local = h.series.length;
    this.local[s] = local;
    h.series.push(s);
    m.set(key, s);
    // Open windows hold a cell row per host series: make room for this one.
    for (const open of h.open) for (const w of open.values()) w.ensure(local);
    return s;
  }

  markDirty(s: number): void {
    if (this.dirtyMark[s] === 0) {
      this.dirtyMark[s] = 1;
      this.dirtyList.push(s);
    }
  }

  clearDirty(): void {
    for (const s of this.dirtyList) this.dirtyMark[s] = 0;
    this.dirtyList = [];
  }

  key(s: number, hosts: readonly HostAccount[]): SeriesKey {
    return { host: hosts[this.host[s]].name, smmu: this.smmu[s], streamId: this.sid[s], ssid: this.ssid[s] };
  }

  cellsOf(s: number): Float64Array {
    return this.cells.subarray(s * STRIDE, (s + 1) * STRIDE);
  }

  /** Event ID -> count of kind "other" events of a series. */
  otherOf(s: number): Map<number, number> {
    const out = new Map<number, number>();
    if (this.cells[s * STRIDE + OTHER] === 0) return out;
    for (let id = 0; id < 256; id++) {
      const c = this.other.get(s * 256 + id);
      if (c) out.set(id, c);
    }
    return out;
  }

  /** The cells of the given series added up. */
  sum(series: readonly number[]): Float64Array {
    const out = new Float64Array(STRIDE);
    for (const s of series) addRow(out, 0, this.cells, s * STRIDE);
    return out;
  }

  private grow(cap: number): void {
    const g = <T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(a: T, size: number): T => {
      const out = new (a.constructor as new (n: number) => T)(size);
      out.set(a);
      return out;
    };
    this.host = g(this.host, cap);
    this.sid = g(this.sid, cap);
    this.ssid = g(this.ssid, cap);
    this.local = g(this.local, cap);
    this.dirtyMark = g(this.dirtyMark, cap);
    const mo = new Float64Array(cap).fill(Number.NEGATIVE_INFINITY);
    mo.set(this.maxOff);
    this.maxOff = mo;
    this.cells = g(this.cells, cap * STRIDE);
    this.cap = cap;
  }
}
