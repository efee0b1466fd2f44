// The lower levels of the drill-down: one device (its processes) and one process (its devices,
// faults/s by kind, hot pages as an address-space picture, prefault advice).

import { addressMap } from './addrmap.js';
import { adviceView } from './advice.js';
import { type Advice, ApiError, get, type HotPages, type SeriesRow, type WindowRow } from './api.js';
import { h, table } from './dom.js';
import { hostInfo } from './host.js';
import {
  breadcrumbs,
  instancesNote,
  KIND_HEAD,
  kindCells,
  kindChart,
  link,
  n,
  windowQuery,
} from './parts.js';
import type { State } from './state.js';

const stallCells = (r: SeriesRow) => [
  n(r.stalls, 'stalls'),
  n(r.stallsByKind.translation),
  n(r.stallsByKind.permission),
];
const STALL_HEAD = ['stalls', 'stalled translation', 'stalled permission'];

/** The series of one device (a row per process) or of one process (a row per device). */
function seriesTable(s: State & { host: string }, rows: SeriesRow[], per: 'process' | 'device'): HTMLElement {
  const first = (r: SeriesRow) =>
    per === 'process'
      ? [link({ host: s.host, ssid: String(r.ssid), width: s.width }, String(r.ssid))]
      : [
          r.smmu,
          link(
            { host: s.host, smmu: r.smmu, sid: String(r.streamId), width: s.width },
            `0x${r.streamId.toString(16)}`,
          ),
        ];
  return table(
    per === 'process'
      ? 'Events per process (SSID) on this device'
      : 'Events per device (SMMU x StreamID) of this process',
    [...(per === 'process' ? ['SSID'] : ['SMMU', 'StreamID']), 'events', ...KIND_HEAD, ...STALL_HEAD],
    rows.map((r) => [...first(r), n(r.events, 'events'), ...kindCells(r.kinds), ...stallCells(r)]),
    { id: 'series' },
  );
}

export async function deviceView(
  s: State & { host: string; smmu: string; sid: string },
): Promise<HTMLElement[]> {
  const q = { host: s.host, smmu: s.smmu, streamId: s.sid };
  const [info, series, win] = await Promise.all([
    hostInfo(s.host),
    get<{ series: SeriesRow[] }>('series', q),
    get<{ windows: WindowRow[] }>('windows', windowQuery(s, q)),
  ]);
  if (series.series.length === 0)
    throw new ApiError(
      404,
      `no device ${s.smmu} StreamID ${s.sid} on host ${JSON.stringify(s.host)} in the fleet`,
    );
  const name = `${s.smmu} StreamID 0x${Number(s.sid).toString(16)}`;
  return [
    breadcrumbs([{ width: s.width }, 'Fleet'], [{ host: s.host, width: s.width }, `host ${s.host}`], name),
    h('h1', {}, `Device ${name} on ${s.host}`),
    instancesNote(info.instances),
    kindChart(`Faults/s by kind on this device`, s, win.windows),
    h('h2', {}, 'Processes using this device'),
    seriesTable(s, series.series, 'process'),
  ];
}

export async function processView(s: State & { host: string; ssid: string }): Promise<HTMLElement[]> {
  const q = { host: s.host, ssid: s.ssid };
  const [info, series, win, hot, adv] = await Promise.all([
    hostInfo(s.host),
    get<{ series: SeriesRow[] }>('series', q),
    get<{ windows: WindowRow[] }>('windows', windowQuery(s, q)),
    get<{ processes: HotPages[] }>('hotpages', { ...q, limit: 128 }),
    get<{ advice: Advice[] }>('advice', q),
  ]);
  if (series.series.length === 0)
    throw new ApiError(404, `no process with SSID ${s.ssid} on host ${JSON.stringify(s.host)} in the fleet`);
  const pages = hot.processes[0];
  const advice = adv.advice[0];
  return [
    breadcrumbs(
      [{ width: s.width }, 'Fleet'],
      [{ host: s.host, width: s.width }, `host ${s.host}`],
      `SSID ${s.ssid}`,
    ),
    h('h1', {}, `Process SSID ${s.ssid} on ${s.host}`),
    instancesNote(info.instances),
    kindChart(`Faults/s by kind of this process`, s, win.windows),
    h('h2', {}, 'Devices this process uses'),
    seriesTable(s, series.series, 'device'),
    h('h2', {}, 'Where the faults land'),
    pages
      ? addressMap(pages.pages, pages.hotPageShift, advice?.ranges ?? [])
      : h('p', { class: 'note' }, 'No hot pages.'),
    h('h2', {}, 'Prefault advice'),
    ...adviceView(advice),
  ];
}
