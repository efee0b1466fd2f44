// Views over totals, shared by the HTTP API (from the aggregator's state) and the CLI (from the
// API or from the totals topic), so both show the same numbers by construction: per process,
// per device and fleet summaries are sums over series rows.
import { eventName } from '../../common/smmu/event-ids';
import type { smmu } from '../../proto/gen/telemetry';
import { KIND_NAMES, type KindCounts, kindCounts, rowEvents, rowStalls, STALLS } from './cells';
import { type HostTotalsRow, lossName, type SeriesTotalsRow } from './rows';
import { type HostWindowOut, type SeriesWindowOut, WIDTH_NAMES, WIDTHS_NS } from './windows';

type Num = number | { toString(): string } | null | undefined;
const n = (v: Num): number => (v === null || v === undefined ? 0 : Number(v.toString()));

function zero(): KindCounts {
  return { translation: 0, access: 0, permission: 0, other: 0 };
}

function addKinds(a: KindCounts, b: KindCounts): void {
  a.translation += b.translation;
  a.access += b.access;
  a.permission += b.permission;
  a.other += b.other;
}

/** Totals of one process (host x SSID) over its devices. */
export interface ProcessRow {
  host: string;
  ssid: number;
  events: number;
  kinds: KindCounts;
  stalls: number;
  /** Devices (SMMU x StreamID) with events for the process. */
  devices: number;
  /** Events per second in the host's last closed 10 s window (event time); null: none yet. */
  eventsPerSec: number | null;
}

/** Totals of one device (host x SMMU x StreamID) over its processes. */
export interface DeviceRow {
  host: string;
  smmu: string;
  streamId: number;
  events: number;
  kinds: KindCounts;
  stalls: number;
  processes: number;
}

/** The host rows added up: the host counts of HostTotalsRow, over the fleet. */
export type FleetSummary = Pick<
  HostTotalsRow,
  | 'batches'
  | 'events'
  | 'kinds'
  | 'stalls'
  | 'lost'
  | 'lostEvents'
  | 'replayedBatches'
  | 'late'
  | 'outOfRangeEvents'
  | 'conflictingBatches'
  | 'conflictingEvents'
> & {
  hosts: number;
  series: number;
  /** Always null: unknown (SMMU records do not carry stall durations). */
  stallTimeNs: null;
};

const byHostThen =
  <T extends { host: string; events: number }>(tie: (a: T, b: T) => number) =>
  (a: T, b: T) =>
    b.events - a.events || (a.host < b.host ? -1 : a.host > b.host ? 1 : tie(a, b));

/** Per-process rows, most events first. `rates`: host -> ssid -> events/s. */
export function processRows(
  series: readonly SeriesTotalsRow[],
  rates?: Map<string, Map<number, number>>,
): ProcessRow[] {
  const m = new Map<string, ProcessRow>();
  for (const s of series) {
    const k = `${s.host}\0${s.ssid}`;
    let r = m.get(k);
    if (!r) {
      r = { host: s.host, ssid: s.ssid, events: 0, kinds: zero(), stalls: 0, devices: 0, eventsPerSec: null };
      m.set(k, r);
    }
    r.events += s.events;
    addKinds(r.kinds, s.kinds);
    r.stalls += s.stalls;
    if (s.events > 0) r.devices++;
  }
  if (rates) {
    for (const r of m.values()) {
      const h = rates.get(r.host);
      if (h) r.eventsPerSec = h.get(r.ssid) ?? 0;
    }
  }
  return [...m.values()].sort(byHostThen((a, b) => a.ssid - b.ssid));
}

/** Per-device rows, most events first. */
export function deviceRows(series: readonly SeriesTotalsRow[]): DeviceRow[] {
  const m = new Map<string, DeviceRow>();
  for (const s of series) {
    const k = `${s.host}\0${s.smmu}\0${s.streamId}`;
    let r = m.get(k);
    if (!r) {
      r = {
        host: s.host,
        smmu: s.smmu,
        streamId: s.streamId,
        events: 0,
        kinds: zero(),
        stalls: 0,
        processes: 0,
      };
      m.set(k, r);
    }
    r.events += s.events;
    addKinds(r.kinds, s.kinds);
    r.stalls += s.stalls;
    if (s.events > 0) r.processes++;
  }
  return [...m.values()].sort(
    byHostThen((a, b) => (a.smmu < b.smmu ? -1 : a.smmu > b.smmu ? 1 : a.streamId - b.streamId)),
  );
}

/** Fleet summary from host rows (their events and kinds are the sums over their series). */
export function fleetSummary(hosts: readonly HostTotalsRow[]): FleetSummary {
  const out: FleetSummary = {
    hosts: hosts.length,
    series: 0,
    batches: 0,
    events: 0,
    kinds: zero(),
    stalls: 0,
    stallTimeNs: null,
    lost: {},
    lostEvents: 0,
    replayedBatches: 0,
    late: Object.fromEntries(WIDTH_NAMES.map((w) => [w, 0])),
    outOfRangeEvents: 0,
    conflictingBatches: 0,
    conflictingEvents: 0,
  };
  for (const h of hosts) {
    out.outOfRangeEvents += h.outOfRangeEvents;
    out.conflictingBatches += h.conflictingBatches;
    out.conflictingEvents += h.conflictingEvents;
    out.series += h.series;
    out.batches += h.batches;
    out.events += h.events;
    addKinds(out.kinds, h.kinds);
    out.stalls += h.stalls;
    out.replayedBatches += h.replayedBatches;
    out.lostEvents += h.lostEvents;
    for (const [r, c] of Object.entries(h.lost)) out.lost[r] = (out.lost[r] ?? 0) + c;
    for (const [w, c] of Object.entries(h.late)) out.late[w] = (out.late[w] ?? 0) + c;
  }
  return out;
}

// ---- Rows from totals-topic records ----

function kindsFromProto(list: readonly smmu.accounting.v1.KindCount.$Properties[] | null | undefined): {
  kinds: KindCounts;
  stalls: KindCounts;
} {
  const kinds = zero();
  const stalls = zero();
  for (const k of list ?? []) {
    const name = KIND_NAMES[(k.kind ?? 0) - 1];
    if (!name) continue;
    kinds[name] += n(k.events);
    stalls[name] += n(k.stalls);
  }
  return { kinds, stalls };
}

export function seriesRowFromProto(s: smmu.accounting.v1.SeriesTotals.$Properties): SeriesTotalsRow {
  const { kinds, stalls } = kindsFromProto(s.kinds);
  const other: Record<string, number> = {};
  for (const [id, c] of Object.entries(s.other_events ?? {})) other[eventName(Number(id))] = n(c);
  return {
    host: s.series?.host ?? '',
    smmu: s.series?.smmu ?? '',
    streamId: s.series?.stream_id ?? 0,
    ssid: s.series?.ssid ?? 0,
    events: n(s.events),
    kinds,
    stalls: n(s.stalls),
    stallsByKind: stalls,
    stallTimeNs: null,
    otherEvents: other,
    lastEventUnixNs: String(s.last_event_unix_ns ?? 0),
  };
}

export function hostRowFromProto(h: smmu.accounting.v1.HostTotals.$Properties): HostTotalsRow {
  const { kinds } = kindsFromProto(h.kinds);
  const lost: Record<string, number> = {};
  for (const l of h.lost ?? []) lost[lossName(l.reason ?? 0)] = n(l.count);
  const late: Record<string, number> = Object.fromEntries(WIDTH_NAMES.map((w) => [w, 0]));
  for (const l of h.late ?? []) {
    const k = WIDTHS_NS.indexOf(n(l.width_ns));
    if (k >= 0) late[WIDTH_NAMES[k]] = n(l.events);
  }
  return {
    host: h.host ?? '',
    batches: n(h.batches),
    events: n(h.events),
    kinds,
    stalls: kindsTotal(kindsFromProto(h.kinds).stalls),
    lost,
    lostEvents: n(h.lost_events),
    replayedBatches: n(h.replayed_batches),
    late,
    outOfRangeEvents: n(h.out_of_range_events),
    conflictingBatches: n(h.conflicting_batches),
    conflictingEvents: n(h.conflicting_events),
    firstEventUnixNs: String(h.first_event_unix_ns ?? 0),
    lastEventUnixNs: String(h.last_event_unix_ns ?? 0),
    series: h.series ?? 0,
  };
}

function kindsTotal(k: KindCounts): number {
  return k.translation + k.access + k.permission + k.other;
}

// ---- Windows as JSON ----

export interface WindowJson {
  host: string;
  /** Series windows only. */
  smmu?: string;
  streamId?: number;
  ssid?: number;
  width: string;
  /** ns since the Unix epoch, decimal. */
  startUnixNs: string;
  /** ISO 8601 (ms precision), for people. */
  start: string;
  /** false: still counting (the host's event time has not passed its end + grace). */
  closed: boolean;
  events: number;
  eventsPerSec: number;
  kinds: KindCounts;
  stalls: number;
  stallsByKind: KindCounts;
  stallTimeNs: null;
  otherEvents?: Record<string, number>;
  /** Host windows only. */
  batches?: number;
  lost?: Record<string, number>;
  lostEvents?: number;
  series?: number;
}

function windowBase(w: { width: number; index: number; cells: Float64Array }, closed: boolean) {
  const widthNs = WIDTHS_NS[w.width];
  const start = BigInt(w.index) * BigInt(widthNs);
  const c = w.cells;
  const events = rowEvents(c);
  return {
    width: WIDTH_NAMES[w.width],
    startUnixNs: String(start),
    start: new Date(Number(start / 1_000_000n)).toISOString(),
    closed,
    events,
    eventsPerSec: events / (widthNs / 1e9),
    kinds: kindCounts(c, 0),
    stalls: rowStalls(c),
    stallsByKind: kindCounts(c, STALLS),
    stallTimeNs: null,
  };
}

export function seriesWindowJson(w: SeriesWindowOut, closed: boolean): WindowJson {
  const other: Record<string, number> = {};
  for (const [id, c] of w.other ?? []) other[eventName(id)] = c;
  return {
    host: w.host,
    smmu: w.smmu,
    streamId: w.streamId,
    ssid: w.ssid,
    ...windowBase(w, closed),
    otherEvents: other,
  };
}

export function hostWindowJson(w: HostWindowOut, closed: boolean): WindowJson {
  const lost: Record<string, number> = {};
  let lostEvents = 0;
  for (const [r, c] of w.lost) {
    lost[lossName(r)] = c;
    lostEvents += c;
  }
  return {
    host: w.host,
    ...windowBase(w, closed),
    batches: w.batches,
    lost,
    lostEvents,
    series: w.series,
  };
}
