// One host: its totals, faults/s by kind, its devices (SMMU x StreamID) and processes (SSID).
import { type DeviceRow, get, type HostRow, type Instance, type ProcessRow, type WindowRow } from './api.js';
import { h, table } from './dom.js';
import {
  breadcrumbs,
  instancesNote,
  KIND_HEAD,
  kindCells,
  kindChart,
  link,
  lostSection,
  n,
  totalsCards,
  windowQuery,
} from './parts.js';
import type { State } from './state.js';

export interface HostAnswer {
  host: HostRow;
  devices: DeviceRow[];
  processes: ProcessRow[];
  instances: Instance[];
}

export const hostInfo = (host: string) => get<HostAnswer>(`hosts/${encodeURIComponent(host)}`);

export async function hostView(s: State & { host: string }): Promise<HTMLElement[]> {
  const [info, win] = await Promise.all([
    hostInfo(s.host),
    get<{ windows: WindowRow[] }>('windows', windowQuery(s, { host: s.host })),
  ]);
  const r = info.host;
  return [
    breadcrumbs([{ width: s.width }, 'Fleet'], `host ${r.host}`),
    h('h1', {}, `Host ${r.host}`),
    instancesNote(info.instances),
    totalsCards(r),
    kindChart(`Faults/s by kind on ${r.host}`, s, win.windows),
    h('h2', {}, 'Devices'),
    table(
      'Devices (SMMU x StreamID) on this host',
      ['SMMU', 'StreamID', 'events', ...KIND_HEAD, 'stalls', 'processes'],
      info.devices.map((d) => [
        d.smmu,
        link(
          { host: r.host, smmu: d.smmu, sid: String(d.streamId), width: s.width },
          `0x${d.streamId.toString(16)}`,
        ),
        n(d.events, 'events'),
        ...kindCells(d.kinds),
        n(d.stalls, 'stalls'),
        n(d.processes),
      ]),
      { id: 'devices' },
    ),
    h('h2', {}, 'Processes'),
    table(
      'Processes (SSID / PASID) on this host; events/s of the host’s last closed 10 s window',
      ['SSID', 'events', 'events/s', ...KIND_HEAD, 'stalls', 'devices'],
      info.processes.map((p) => [
        link({ host: r.host, ssid: String(p.ssid), width: s.width }, String(p.ssid)),
        n(p.events, 'events'),
        h('td', { class: 'n' }, p.eventsPerSec === null ? '–' : p.eventsPerSec.toFixed(1)),
        ...kindCells(p.kinds),
        n(p.stalls, 'stalls'),
        n(p.devices),
      ]),
      { id: 'processes' },
    ),
    h('h2', {}, 'Lost events'),
    lostSection([r], 'Events this host’s agent could not deliver, by reason', 'No events lost on this host.'),
  ];
}
