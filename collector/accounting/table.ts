// Tables for a person: the fleet table (one row per host x SMMU x device x process x event
// type), the vmstat-style `top` frame (one row per process, rates between two frames) and the
// prefault advice.
import { FAULT_KIND_BY_ID, FAULT_KIND_NAMES } from '../../common/smmu/event-ids';
import type { KindCounts } from './cells';
import type { FleetTotals } from './fleet-totals';
import type { FleetSummary, ProcessRow } from './query';

export function formatFleetTable(t: FleetTotals, maxRows = 40): string {
  const rows = t.rows();
  const hosts = t.hostRows();
  const lines: string[] = [];
  const total = hosts.reduce((s, h) => s + h.events, 0);
  const lost = hosts.reduce((s, h) => s + h.lost, 0);
  lines.push(
    `fleet: ${hosts.length} hosts, ${total} events, ${lost} lost, ${t.replays.duplicates} replayed batches dropped`,
  );
  // Per host by fault kind first: the at-a-glance answer (e.g. what prefaulting removed).
  const kinds = new Map<string, number[]>();
  for (const r of rows) {
    let k = kinds.get(r.host);
    if (!k) {
      k = [0, 0, 0, 0];
      kinds.set(r.host, k);
    }
    k[FAULT_KIND_BY_ID[r.eventId]] += r.count;
  }
  const num = (n: number, w = 12) => String(n).padStart(w);
  lines.push(
    `${'HOST'.padEnd(16)}${['EVENTS', ...FAULT_KIND_NAMES.map((n) => n.toUpperCase()), 'LOST'].map((h) => h.padStart(12)).join('')}`,
  );
  for (const h of hosts) {
    const k = kinds.get(h.host) ?? [0, 0, 0, 0];
    lines.push(`${h.host.padEnd(16)}${num(h.events)}${k.map((n) => num(n)).join('')}${num(h.lost)}`);
  }
  lines.push('');
  lines.push(
    `${'HOST'.padEnd(16)} ${'SMMU'.padEnd(20)} ${'SID'.padStart(6)} ${'SSID'.padStart(6)} ${'EVENT'.padEnd(18)} ${'COUNT'.padStart(10)}`,
  );
  for (const r of rows.slice(0, maxRows)) {
    lines.push(
      `${r.host.padEnd(16)} ${r.smmu.padEnd(20)} ${String(r.streamId).padStart(6)} ${String(r.ssid).padStart(6)} ${r.event.padEnd(18)} ${String(r.count).padStart(10)}`,
    );
  }
  if (rows.length > maxRows) lines.push(`... ${rows.length - maxRows} more rows`);
  for (const l of t.lostRows()) lines.push(`lost on ${l.host}: ${l.count} (${l.reason})`);
  return lines.join('\n');
}

/** One `top` row: a process's totals and its rates since the previous frame (null: first frame). */
export interface TopRow extends ProcessRow {
  ratePerSec: number | null;
  kindRatesPerSec: KindCounts | null;
  stallsPerSec: number | null;
}

export interface TopFrame {
  /** ISO time of the sample. */
  at: string;
  source: string;
  summary: FleetSummary;
  processes: TopRow[];
}

/** Rows with rates against the previous sample, sorted by fault rate (then by total). */
export function topRows(now: ProcessRow[], prev: ProcessRow[] | undefined, seconds: number): TopRow[] {
  const before = new Map((prev ?? []).map((r) => [`${r.host}\0${r.ssid}`, r]));
  const rows = now.map((r): TopRow => {
    const p = before.get(`${r.host}\0${r.ssid}`);
    if (prev === undefined || seconds <= 0)
      return { ...r, ratePerSec: null, kindRatesPerSec: null, stallsPerSec: null };
    const d = (a: number, b: number | undefined) => (a - (b ?? 0)) / seconds;
    return {
      ...r,
      ratePerSec: d(r.events, p?.events),
      kindRatesPerSec: {
        translation: d(r.kinds.translation, p?.kinds.translation),
        access: d(r.kinds.access, p?.kinds.access),
        permission: d(r.kinds.permission, p?.kinds.permission),
        other: d(r.kinds.other, p?.kinds.other),
      },
      stallsPerSec: d(r.stalls, p?.stalls),
    };
  });
  return rows.sort(
    (a, b) =>
      (b.ratePerSec ?? -1) - (a.ratePerSec ?? -1) ||
      b.events - a.events ||
      (a.host < b.host ? -1 : a.host > b.host ? 1 : a.ssid - b.ssid),
  );
}

const rate = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(1));

export function formatTop(f: TopFrame, maxRows: number): string {
  const s = f.summary;
  const lost = Object.entries(s.lost)
    .map(([r, c]) => `${r.replace(/^LOSS_REASON_/, '').toLowerCase()} ${c}`)
    .join(', ');
  const lines = [
    `${f.at}  ${f.source}`,
    `fleet: ${s.hosts} hosts, ${s.series} series, ${s.events} faults (translation ${s.kinds.translation}, access ${s.kinds.access}, permission ${s.kinds.permission}, other ${s.kinds.other}), ${s.stalls} stalls, ${s.lostEvents} lost${lost ? ` (${lost})` : ''}, ${s.replayedBatches} replayed batches dropped`,
  ];
  const header = [
    'HOST',
    'SSID',
    'faults/s',
    'trans/s',
    'access/s',
    'perm/s',
    'other/s',
    'stalls/s',
    'faults',
    'stalls',
    'devs',
  ];
  const cells = f.processes
    .slice(0, maxRows)
    .map((r) => [
      r.host,
      String(r.ssid),
      rate(r.ratePerSec),
      rate(r.kindRatesPerSec?.translation),
      rate(r.kindRatesPerSec?.access),
      rate(r.kindRatesPerSec?.permission),
      rate(r.kindRatesPerSec?.other),
      rate(r.stallsPerSec),
      String(r.events),
      String(r.stalls),
      String(r.devices),
    ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const fmt = (c: string[]) =>
    c
      .map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  lines.push(fmt(header), ...cells.map(fmt));
  if (f.processes.length > maxRows) lines.push(`... ${f.processes.length - maxRows} more processes`);
  return lines.join('\n');
}

/** Advice as returned by /v1/advice (the fields the table shows). */
export interface AdviceLike {
  host: string;
  ssid: number;
  observedSeconds: number;
  savedFaults: number;
  savedStalls: number;
  ranges: Array<{
    start: string;
    end: string;
    bytes: number;
    hotPages: number;
    faults: number;
    guaranteedFaults: number;
    stalls: number;
    faultsPerSec: number | null;
    populate: string;
  }>;
}

function size(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

export function formatAdvice(advice: AdviceLike[], maxRows: number): string {
  if (advice.length === 0) return 'no prefault advice: no page faulted often enough yet';
  const header = ['HOST', 'SSID', 'RANGE', 'SIZE', 'HOT', 'FAULTS', '>=', 'STALLS', 'faults/s', 'POPULATE'];
  const cells: string[][] = [];
  for (const a of advice) {
    for (const r of a.ranges) {
      cells.push([
        a.host,
        String(a.ssid),
        `${r.start}-${r.end}`,
        size(r.bytes),
        String(r.hotPages),
        String(r.faults),
        String(r.guaranteedFaults),
        String(r.stalls),
        rate(r.faultsPerSec),
        r.populate === 'write' ? 'MADV_POPULATE_WRITE' : 'MADV_POPULATE_READ',
      ]);
    }
  }
  const shown = cells.slice(0, maxRows);
  const widths = header.map((h, i) => Math.max(h.length, ...shown.map((c) => c[i].length)));
  const fmt = (c: string[]) =>
    c
      .map((x, i) => (i === 0 || i === 2 || i === 9 ? x.padEnd(widths[i]) : x.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const saved = advice.reduce((s, a) => s + a.savedFaults, 0);
  const stalls = advice.reduce((s, a) => s + a.savedStalls, 0);
  const lines = [
    `prefault advice: populating these ranges would have saved up to ${saved} faults (${stalls} of them stalled the device); stall time unknown`,
    fmt(header),
    ...shown.map(fmt),
  ];
  if (cells.length > maxRows) lines.push(`... ${cells.length - maxRows} more ranges`);
  return lines.join('\n');
}
