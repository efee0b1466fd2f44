// Local fault accounting ("vmstat for SVA"): counts per SMMU, per StreamID (device) and per
// SubstreamID (process PASID) by fault kind, plus stalls and, when known, stall time.
//
// Stall time is only known when something can say how long each stall lasted (the model's
// latency model); the kernel's records do not carry it, so for real kernels it is null.

import { FAULT_KIND_NAMES } from '../../../common/smmu/event-ids';
import { faultKind, isStall, streamId, substreamId } from '../../../common/smmu/record';
import { type EventBlock, WORDS_PER_RECORD } from '../../../proto/event-block';
import { U64Map } from '../../../proto/u64-map';

/** Service time (ns) of the stalled record at words[w..w+8). */
export type StallTimeFn = (words: Uint32Array, w: number) => number;

export interface CounterRow {
  scope: 'smmu' | 'stream' | 'substream';
  /** SMMU name (smmu and stream rows); null for substream rows (PASIDs are host-wide). */
  smmu: string | null;
  /** StreamID (stream rows). */
  sid: number | null;
  /** SubstreamID (substream rows); 0 counts events without a valid PASID. */
  ssid: number | null;
  translation: number;
  access: number;
  permission: number;
  other: number;
  total: number;
  /** Events with STALL=1. */
  stalls: number;
  /** Sum of stall service times in ns, or null when unknown (real kernels). */
  stallTimeNs: number | null;
}

// Cell layout: counts by FaultKind at 0..3, then stalls, then stall ns.
const STALLS = 4;
const STALL_NS = 5;
const CELL = 6;

/** Count cells by a key of two uint32 halves, in order of first sight. */
class Cells {
  /** Cell position by key: a typed-array table, not a Map (events change stream nearly every time). */
  private readonly index = new U64Map();
  readonly keys: [lo: number, hi: number][] = [];
  readonly cells: Float64Array[] = [];
  of(lo: number, hi: number): Float64Array {
    let i = this.index.get(lo, hi);
    if (i < 0) {
      i = this.cells.length;
      this.index.add(lo, hi, i);
      this.keys.push([lo, hi]);
      this.cells.push(new Float64Array(CELL));
    }
    return this.cells[i];
  }
}

export class FaultCounters {
  private readonly stallTime: StallTimeFn | undefined;
  private readonly smmuNames: string[] = [];
  private readonly smmuByName = new Map<string, number>();
  private smmuCells: Float64Array[] = [];
  /** By (StreamID, SMMU index). */
  private streamCells = new Cells();
  /** By (SubstreamID, 0). */
  private ssidCells = new Cells();

  /** `stallTime`: how long each stall lasted; leave it out when that is unknown. */
  constructor(opts: { stallTime?: StallTimeFn } = {}) {
    this.stallTime = opts.stallTime;
  }

  /** Counts every event of the block. */
  add(block: EventBlock): void {
    const n = block.count;
    if (n === 0) return;
    const ids = block.smmuNames.map((name) => this.smmuIndex(name));
    const words = block.words;
    const smmuIndex = block.smmuIndex;
    const stallTime = this.stallTime;
    const streams = this.streamCells;
    const ssids = this.ssidCells;
    // Events come in runs from the same device and process: remember the last cells.
    let lastSid = -1;
    let lastSmmu = -1;
    let streamCell = this.smmuCells[0];
    let lastSsid = -1;
    let ssidCell = streamCell;
    for (let i = 0, w = 0; i < n; i++, w += WORDS_PER_RECORD) {
      const kind = faultKind(words, w);
      const smmu = ids[smmuIndex[i]];
      const sid = streamId(words, w);
      if (sid !== lastSid || smmu !== lastSmmu) {
        streamCell = streams.of(sid, smmu);
        lastSid = sid;
        lastSmmu = smmu;
      }
      const ssid = substreamId(words, w);
      if (ssid !== lastSsid) {
        ssidCell = ssids.of(ssid, 0);
        lastSsid = ssid;
      }
      const smmuCell = this.smmuCells[smmu];
      smmuCell[kind]++;
      streamCell[kind]++;
      ssidCell[kind]++;
      if (isStall(words, w)) {
        smmuCell[STALLS]++;
        streamCell[STALLS]++;
        ssidCell[STALLS]++;
        if (stallTime !== undefined) {
          const t = stallTime(words, w);
          smmuCell[STALL_NS] += t;
          streamCell[STALL_NS] += t;
          ssidCell[STALL_NS] += t;
        }
      }
    }
  }

  /** Forgets every count. */
  reset(): void {
    this.smmuCells = this.smmuCells.map(() => new Float64Array(CELL));
    this.streamCells = new Cells();
    this.ssidCells = new Cells();
  }

  /** Rows: SMMUs by name, streams by SMMU name and SID, substreams by SSID. */
  snapshot(): CounterRow[] {
    const byName = (a: number, b: number) =>
      this.smmuNames[a] < this.smmuNames[b] ? -1 : this.smmuNames[a] > this.smmuNames[b] ? 1 : 0;
    const rows: CounterRow[] = [];
    const smmus = this.smmuNames.map((_, i) => i).sort(byName);
    for (const i of smmus) rows.push(this.row('smmu', this.smmuNames[i], null, null, this.smmuCells[i]));
    const streams = this.streamCells;
    const byStream = streams.keys.map((_, i) => i);
    byStream.sort((a, b) => {
      const [sidA, smmuA] = streams.keys[a];
      const [sidB, smmuB] = streams.keys[b];
      return smmuA === smmuB ? sidA - sidB : byName(smmuA, smmuB);
    });
    for (const i of byStream) {
      const [sid, smmu] = streams.keys[i];
      rows.push(this.row('stream', this.smmuNames[smmu], sid, null, streams.cells[i]));
    }
    const ssids = this.ssidCells;
    const bySsid = ssids.keys.map((_, i) => i).sort((a, b) => ssids.keys[a][0] - ssids.keys[b][0]);
    for (const i of bySsid) rows.push(this.row('substream', null, null, ssids.keys[i][0], ssids.cells[i]));
    return rows;
  }

  private row(
    scope: CounterRow['scope'],
    smmu: string | null,
    sid: number | null,
    ssid: number | null,
    c: Float64Array,
  ): CounterRow {
    return {
      scope,
      smmu,
      sid,
      ssid,
      translation: c[0],
      access: c[1],
      permission: c[2],
      other: c[3],
      total: c[0] + c[1] + c[2] + c[3],
      stalls: c[STALLS],
      stallTimeNs: this.stallTime === undefined ? null : c[STALL_NS],
    };
  }

  private smmuIndex(name: string): number {
    let i = this.smmuByName.get(name);
    if (i === undefined) {
      i = this.smmuNames.length;
      this.smmuNames.push(name);
      this.smmuByName.set(name, i);
      this.smmuCells.push(new Float64Array(CELL));
    }
    return i;
  }
}

function hexOrDash(v: number | null): string {
  return v === null ? '-' : `0x${v.toString(16)}`;
}

/**
 * Rows as a vmstat-like table for a person: one line per row, right-aligned counts,
 * stall time in microseconds (total and mean per stall), "-" where unknown.
 */
export function formatTable(rows: readonly CounterRow[]): string {
  const header = [
    'scope',
    'smmu',
    'sid',
    'ssid',
    ...FAULT_KIND_NAMES,
    'total',
    'stalls',
    'stall_us',
    'avg_stall_us',
  ];
  const lines = rows.map((r) => [
    r.scope,
    r.smmu ?? '-',
    hexOrDash(r.sid),
    hexOrDash(r.ssid),
    String(r.translation),
    String(r.access),
    String(r.permission),
    String(r.other),
    String(r.total),
    String(r.stalls),
    r.stallTimeNs === null ? '-' : (r.stallTimeNs / 1000).toFixed(1),
    r.stallTimeNs === null || r.stalls === 0 ? '-' : (r.stallTimeNs / 1000 / r.stalls).toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  // Text columns (scope, smmu) left-aligned, the rest right-aligned like vmstat.
  const fmt = (cols: string[]) =>
    cols
      .map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...lines.map(fmt)].join('\n');
}
