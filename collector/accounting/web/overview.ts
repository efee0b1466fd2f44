// The fleet overview: totals per kind, events/s per host and faults/s by kind over time, the
// hosts, and every lost event by host and reason.
import { get, type HostRow, type Summary, type WindowRow } from './api.js';
import { lineChart } from './chart.js';
import { h, table } from './dom.js';
import { num } from './format.js';
import {
  hostLines,
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

/** A host whose events include no translation faults: its memory is populated (prefaulted). */
export const prefaulted = (r: HostRow) => num(r.events) > 0 && num(r.kinds.translation) === 0;

export async function overview(s: State): Promise<HTMLElement[]> {
  const [sum, hosts, win] = await Promise.all([
    get<Summary>('summary'),
    get<{ hosts: HostRow[] }>('hosts'),
    get<{ windows: WindowRow[] }>('windows', windowQuery(s)),
  ]);
  const rows = hosts.hosts.sort((a, b) => (a.host < b.host ? -1 : 1));
  const pre = new Set(rows.filter(prefaulted).map((r) => r.host));
  const lastRate = new Map<string, number>();
  for (const w of win.windows) if (w.closed) lastRate.set(w.host, w.eventsPerSec);
  return [
    h('h1', {}, 'Fleet'),
    instancesNote(sum.instances),
    totalsCards(sum, [['hosts', sum.hosts]]),
    h(
      'div',
      { class: 'charts' },
      lineChart(
        `Events/s per host (${s.width} windows)`,
        '/s',
        hostLines(win.windows, (host) => pre.has(host)),
      ),
      kindChart(`Faults/s by kind, fleet`, s, win.windows),
    ),
    h('h2', {}, 'Hosts'),
    table(
      'Events per host since the aggregator began counting; events/s of the last closed window',
      ['host', 'events', 'events/s', ...KIND_HEAD, 'stalls', 'lost'],
      rows.map((r) => [
        h(
          'td',
          {},
          link({ host: r.host, width: s.width }, r.host),
          pre.has(r.host) ? h('span', { class: 'tag' }, 'prefaulted: no translation faults') : '',
        ),
        n(r.events, 'events'),
        h('td', { class: 'n' }, lastRate.has(r.host) ? lastRate.get(r.host)!.toFixed(1) : '–'),
        ...kindCells(r.kinds),
        n(r.stalls, 'stalls'),
        n(r.lostEvents, 'lostEvents'),
      ]),
      { id: 'hosts' },
    ),
    h('h2', {}, 'Lost events'),
    lostSection(
      rows,
      'Events the agents could not deliver, by host and reason',
      'No events lost: every event the agents read was counted.',
    ),
  ];
}
