// The accounting state as JSON rows: series and host totals the HTTP API, the CLI and the
// tests read. Read-only over the state; numbers beyond 2^53 (event times) are decimal strings.
import { eventName } from '../../common/smmu/event-ids';
import { LossReason } from '../../proto/index';
import type { AccountState } from './aggregate';
import { type KindCounts, kindCounts, rowEvents, rowStalls, STALLS } from './cells';
import type { HostAccount } from './host';
import { WIDTH_NAMES } from './windows';

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

export function seriesRow(st: AccountState, s: number): SeriesTotalsRow {
  const c = st.seriesCells(s);
  const other: Record<string, number> = {};
  for (const [id, n] of st.seriesOther(s)) other[eventName(id)] = n;
  return {
    ...st.seriesKey(s),
    events: rowEvents(c),
    kinds: kindCounts(c, 0),
    stalls: rowStalls(c),
    stallsByKind: kindCounts(c, STALLS),
    stallTimeNs: null,
    otherEvents: other,
    lastEventUnixNs: String(st.seriesLastNs(s)),
  };
}

export function seriesRows(st: AccountState): SeriesTotalsRow[] {
  const out: SeriesTotalsRow[] = [];
  for (let s = 0; s < st.seriesCount; s++) out.push(seriesRow(st, s));
  return out;
}

export function hostRow(st: AccountState, h: HostAccount): HostTotalsRow {
  const c = st.hostCells(h);
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
    stalls: rowStalls(c),
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

/** Host rows sorted by host name. */
export function hostRows(st: AccountState): HostTotalsRow[] {
  return st
    .allHosts()
    .map((h) => hostRow(st, h))
    .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}
