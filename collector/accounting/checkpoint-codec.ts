// The accounting state of a partition as a PartitionCheckpoint (proto/smmu/accounting/v1) and
// back. Guarantee: fromCheckpoint(toCheckpoint(st)) counts every later batch exactly as st
// would have (totals, open windows, sketches, replay filter, dirty marks cleared), and a
// checkpoint taken with other window or sketch settings is refused, never half-applied.
import Long from 'long';
import type { smmu } from '../../proto/gen/telemetry';
import { type AccountOptions, AccountState } from './aggregate';
import { rowEvents, STRIDE } from './cells';
import { SpaceSaving } from './hotpages';
import { SSID_SPAN } from './series';

export type CheckpointProps = smmu.accounting.v1.PartitionCheckpoint.$Properties;

function u64(v: bigint): Long {
  return Long.fromString(v.toString(), true);
}

function num(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function big(v: number | Long | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  return BigInt(v.toString());
}

function numMap(m: { [k: string]: number | Long } | null | undefined): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, v] of Object.entries(m ?? {})) out.set(Number(k), num(v));
  return out;
}

/** The whole state as a PartitionCheckpoint (the caller adds group, topic and partition). */
export function toCheckpoint(st: AccountState): CheckpointProps {
  const t = st.table;
  const hosts = st.allHosts();
  const hostState = hosts.map((h) => ({
    host: h.name,
    batches: h.batches,
    events: h.events,
    lost: Object.fromEntries(h.lost),
    replayed_batches: h.replayed,
    late: [...h.late],
    first_event_unix_ns: u64(h.firstNs),
    last_event_unix_ns: u64(h.lastNs),
    closed_through: [...h.closedThrough],
    out_of_range_events: h.outOfRange,
    conflicting_batches: h.conflicts,
    conflicting_events: h.conflictEvents,
  }));
  const series: smmu.accounting.v1.SeriesState.$Properties[] = [];
  for (let s = 0; s < t.n; s++) {
    series.push({
      host: t.host[s],
      smmu: t.smmu[s],
      stream_id: t.sid[s],
      ssid: t.ssid[s],
      cells: Array.from(t.cellsOf(s)),
      other_events: Object.fromEntries(t.otherOf(s)),
      last_event_unix_ns: u64(t.lastNs[s]),
    });
  }
  const sketches: smmu.accounting.v1.SketchState.$Properties[] = [];
  const windows: smmu.accounting.v1.OpenWindowState.$Properties[] = [];
  for (const h of hosts) {
    for (const [ssid, sk] of h.sketches) {
      const snap = sk.snapshot();
      sketches.push({
        host: h.index,
        ssid,
        pages: snap.pages,
        counts: snap.counts,
        errors: snap.errors,
        stalls: snap.stalls,
        kinds: snap.kinds,
        offered: snap.offered,
        cursor: snap.cursor,
        min_count: snap.minCount,
        first_event_unix_ns: u64(snap.firstNs),
        last_event_unix_ns: u64(snap.lastNs),
      });
    }
    h.open.forEach((m, k) => {
      for (const w of m.values()) {
        const ids: number[] = [];
        const cells: number[] = [];
        const nLocal = Math.min(h.series.length, w.cells.length / STRIDE);
        for (let l = 0; l < nLocal; l++) {
          const o = l * STRIDE;
          if (rowEvents(w.cells, o) === 0) continue;
          ids.push(h.series[l]);
          for (let j = 0; j < STRIDE; j++) cells.push(w.cells[o + j]);
        }
        const other: number[] = [];
        for (const [lk, c] of w.other ?? []) other.push(h.series[Math.floor(lk / 256)], lk % 256, c);
        windows.push({
          host: h.index,
          width: k,
          index: w.index,
          batches: w.batches,
          lost: Object.fromEntries(w.lost),
          series: ids,
          cells,
          other_events: other,
        });
      }
    });
  }
  return {
    next_offset: Math.max(0, st.nextOffset),
    hosts: hostState,
    series,
    replays: st.replays.snapshot().map((r) => ({
      agent_id: r.agentId,
      epoch: u64(r.epoch),
      watermark: u64(r.watermark),
      ahead: r.ahead.map(u64),
      recent: r.recent.map((x) => ({ sequence: u64(x.sequence), digest: u64(x.digest) })),
    })),
    sketches,
    windows,
    malformed: st.malformed,
    page_shift: st.opts.hotPageShift,
    sketch_slots: st.opts.sketchSlots,
    window_grace_ns: st.opts.windowGraceNs,
    replay_duplicates: st.replays.duplicates,
    replay_conflicts: st.replays.conflicts,
  };
}

/** A state restored from a checkpoint; throws when it was taken with other settings. */
export function fromCheckpoint(c: CheckpointProps, opts: Partial<AccountOptions> = {}): AccountState {
  const st = new AccountState(opts);
  const o = st.opts;
  if (
    c.page_shift !== o.hotPageShift ||
    c.sketch_slots !== o.sketchSlots ||
    num(c.window_grace_ns) !== o.windowGraceNs
  ) {
    throw new Error(
      `checkpoint taken with hotPageShift ${c.page_shift}, sketchSlots ${c.sketch_slots}, windowGraceNs ${num(c.window_grace_ns)}; ` +
        `this aggregator runs with ${o.hotPageShift}, ${o.sketchSlots}, ${o.windowGraceNs}: use the same settings or a new group`,
    );
  }
  const t = st.table;
  const hosts = st.allHosts();
  st.nextOffset = num(c.next_offset);
  st.malformed = num(c.malformed);
  for (const hs of c.hosts ?? []) {
    const h = st.host(hs.host ?? '');
    h.batches = num(hs.batches);
    h.events = num(hs.events);
    for (const [r, v] of numMap(hs.lost)) h.lost.set(r, v);
    h.replayed = num(hs.replayed_batches);
    (hs.late ?? []).forEach((v, k) => {
      if (k < h.late.length) h.late[k] = num(v);
    });
    h.firstNs = big(hs.first_event_unix_ns);
    h.lastNs = big(hs.last_event_unix_ns);
    h.outOfRange = num(hs.out_of_range_events);
    h.conflicts = num(hs.conflicting_batches);
    h.conflictEvents = num(hs.conflicting_events);
    h.hasEvents = h.events > h.outOfRange;
    (hs.closed_through ?? []).forEach((v, k) => {
      if (k < h.closedThrough.length) h.closedThrough[k] = num(v);
    });
  }
  for (const ss of c.series ?? []) {
    const h = hosts[ss.host ?? 0];
    const sid = ss.stream_id ?? 0;
    const ssid = ss.ssid ?? 0;
    const m = h.smmuMap(ss.smmu ?? '');
    const s = t.add(h, ss.smmu ?? '', sid, ssid, m, sid * SSID_SPAN + ssid);
    (ss.cells ?? []).forEach((v, j) => {
      t.cells[s * STRIDE + j] = num(v);
    });
    for (const [id, v] of numMap(ss.other_events)) t.other.set(s * 256 + id, v);
    t.lastNs[s] = big(ss.last_event_unix_ns);
  }
  st.replays.restore(
    (c.replays ?? []).map((r) => ({
      agentId: r.agent_id ?? '',
      epoch: big(r.epoch),
      watermark: big(r.watermark),
      ahead: (r.ahead ?? []).map(big),
      recent: (r.recent ?? []).map((x) => ({ sequence: big(x.sequence), digest: big(x.digest) })),
    })),
    num(c.replay_duplicates),
    num(c.replay_conflicts),
  );
  for (const k of c.sketches ?? []) {
    const h = hosts[k.host ?? 0];
    h.sketches.set(
      k.ssid ?? 0,
      SpaceSaving.restore(o.sketchSlots, {
        pages: (k.pages ?? []).map(num),
        counts: (k.counts ?? []).map(num),
        errors: (k.errors ?? []).map(num),
        stalls: (k.stalls ?? []).map(num),
        kinds: (k.kinds ?? []).map(num),
        offered: num(k.offered),
        cursor: k.cursor ?? 0,
        minCount: num(k.min_count),
        firstNs: big(k.first_event_unix_ns),
        lastNs: big(k.last_event_unix_ns),
      }),
    );
  }
  for (const ws of c.windows ?? []) {
    const h = hosts[ws.host ?? 0];
    const w = h.window(ws.width ?? 0, num(ws.index));
    w.batches = num(ws.batches);
    for (const [r, v] of numMap(ws.lost)) w.lost.set(r, v);
    const cells = (ws.cells ?? []).map(num);
    (ws.series ?? []).forEach((s, i) => {
      const l = t.local[s];
      w.ensure(l);
      w.cells.set(cells.slice(i * STRIDE, (i + 1) * STRIDE), l * STRIDE);
    });
    const other = (ws.other_events ?? []).map(num);
    for (let i = 0; i + 2 < other.length; i += 3) {
      w.other ??= new Map();
      w.other.set(t.local[other[i]] * 256 + other[i + 1], other[i + 2]);
    }
  }
  st.clearDirty();
  return st;
}
