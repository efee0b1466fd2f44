// Pieces every view uses: cards of totals, count cells, kind columns, window rates as lines.
import type { HostRow, Instance, Summary, WindowRow } from './api.js';
import { type Line, lineChart } from './chart.js';
import { h, table } from './dom.js';
import { type Count, count, KINDS, type Kinds, lossName, num } from './format.js';
import { href, type State } from './state.js';

/** A count cell; `key` lets the browser test find it (data-k). */
export function n(v: Count | null | undefined, key?: string): HTMLTableCellElement {
  return h('td', { class: 'n', 'data-k': key }, count(v));
}

export function kindCells(k: Kinds): HTMLTableCellElement[] {
  return KINDS.map((kind) => n(k[kind], kind));
}

export const KIND_HEAD = ['translation', 'access', 'permission', 'other'];

export function link(s: Partial<State>, text: string): HTMLAnchorElement {
  const a = h('a', { href: href(s) }, text);
  a.dataset.nav = '';
  return a;
}

export function cards(items: Array<[string, Count | number, string?]>): HTMLElement {
  return h(
    'dl',
    { class: 'cards' },
    items.map(([label, v, cls]) =>
      h('div', { class: cls }, h('dt', {}, label), h('dd', { 'data-k': label }, count(v))),
    ),
  );
}

export function breadcrumbs(...parts: Array<[Partial<State>, string] | string>): HTMLElement {
  return h(
    'nav',
    { class: 'crumbs', 'aria-label': 'Breadcrumbs' },
    parts.map((p, i) => [
      i > 0 ? ' › ' : '',
      typeof p === 'string' ? h('span', { 'aria-current': 'page' }, p) : link(p[0], p[1]),
    ]),
  );
}

/** Which instances answered; a missing one is shown as a warning: its hosts are not in view. */
export function instancesNote(instances: Instance[]): HTMLElement {
  const down = instances.filter((i) => !i.ok);
  const parts = (i: Instance) => (i.partitions ? ` (partitions ${i.partitions.join(', ') || 'none'})` : '');
  return h(
    'p',
    { class: down.length ? 'warn' : 'note', role: down.length ? 'alert' : undefined },
    down.length
      ? `Incomplete fleet: ${down.map((i) => `${i.url} did not answer (${i.error})`).join('; ')}. `
      : '',
    `Fleet merged from ${instances.length} aggregator instance${instances.length === 1 ? '' : 's'}: `,
    instances.map((i) => `${i.url === 'self' ? 'this one' : i.url}${parts(i)}`).join(', '),
    '.',
  );
}

/** The cards of a host's or the fleet's totals; `first`: cards before them (the fleet's host count). */
export function totalsCards(t: HostRow | Summary, first: Array<[string, Count]> = []): HTMLElement {
  return cards([
    ...first,
    ['events', t.events],
    ...KINDS.map((k): [string, Count, string] => [k, t.kinds[k], `kind-${k}`]),
    ['stalls', t.stalls],
    ['batches', t.batches],
    ['lost events', t.lostEvents, num(t.lostEvents) > 0 ? 'bad' : ''],
    ['replayed batches', t.replayedBatches],
  ]);
}

/** Lost events by host and reason, or a note that nothing was lost. */
export function lostSection(hosts: HostRow[], caption: string, none: string): HTMLElement {
  const rows = hosts.flatMap((r) =>
    Object.entries(r.lost)
      .filter(([, v]) => num(v) > 0)
      .map(([reason, v]) => [r.host, lossName(reason), n(v, 'lost')]),
  );
  return rows.length
    ? table(caption, ['host', 'reason', 'events'], rows, { id: 'lost' })
    : h('p', { id: 'lost', class: 'note' }, none);
}

const startMs = (w: WindowRow) => Number(BigInt(w.startUnixNs) / 1_000_000n);

/** Faults/s by kind over time: windows with the same start (several hosts or devices) add up. */
export function kindLines(windows: WindowRow[], widthS: number): Line[] {
  const byStart = new Map<number, number[]>();
  const open = new Set<number>();
  for (const w of windows) {
    const t = startMs(w);
    const c = byStart.get(t) ?? [0, 0, 0, 0];
    KINDS.forEach((k, i) => {
      c[i] += num(w.kinds[k]);
    });
    byStart.set(t, c);
    if (!w.closed) open.add(t);
  }
  const starts = [...byStart.keys()].sort((a, b) => a - b);
  return KINDS.map((k, i) => ({
    name: k,
    cls: `kind-${k}`,
    points: starts.map((t) => [t, byStart.get(t)![i] / widthS, open.has(t)] as [number, number, boolean]),
  }));
}

/** Events/s over time, one line per host. */
export function hostLines(windows: WindowRow[], dashed: (host: string) => boolean): Line[] {
  const by = new Map<string, Array<[number, number, boolean]>>();
  for (const w of windows) {
    const pts = by.get(w.host) ?? [];
    pts.push([startMs(w), w.eventsPerSec, !w.closed]);
    by.set(w.host, pts);
  }
  return [...by.keys()].sort().map((host, i) => ({
    name: host,
    cls: `c${i % 8}`,
    dashed: dashed(host),
    points: by.get(host)!.sort((a, b) => a[0] - b[0]),
  }));
}

export const WIDTH_S: Record<string, number> = { '10s': 10, '1m': 60 };

/**
 * Closed windows and the open ones (still counting, drawn hollow): a host that stopped sending
 * keeps its last window open, and its faults belong in the picture.
 */
export function windowQuery(s: State, extra: Record<string, string | number | undefined> = {}) {
  return { width: s.width, limit: 5000, ...extra };
}

/** Faults/s by kind over time, from windows of the width the URL asks for. */
export function kindChart(title: string, s: State, windows: WindowRow[]): HTMLElement {
  return lineChart(`${title} (${s.width} windows)`, '/s', kindLines(windows, WIDTH_S[s.width] ?? 10));
}
