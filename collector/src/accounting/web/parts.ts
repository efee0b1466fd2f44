// Pieces every view uses: cards of totals, count cells, kind columns, window rates as lines.
import type { Instance, WindowRow } from './api.js';
import type { Line } from './chart.js';
import { h } from './dom.js';
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

export function lossRows(host: string, lost: Record<string, Count>): Array<Array<string | Node>> {
  return Object.entries(lost)
    .filter(([, v]) => num(v) > 0)
    .map(([reason, v]) => [host, lossName(reason), n(v, 'lost')]);
}

const startMs = (w: WindowRow) => Number(BigInt(w.startUnixNs) / 1_000_000n);

/** Faults/s by kind over time: windows with the same start (several hosts or devices) add up. */
export function kindLines(windows: WindowRow[], widthS: number): Line[] {
  const byStart = new Map<number, number[]>();
  for (const w of windows) {
    const t = startMs(w);
    const c = byStart.get(t) ?? [0, 0, 0, 0];
    KINDS.forEach((k, i) => {
      c[i] += num(w.kinds[k]);
    });
    byStart.set(t, c);
  }
  const starts = [...byStart.keys()].sort((a, b) => a - b);
  return KINDS.map((k, i) => ({
    name: k,
    cls: `kind-${k}`,
    points: starts.map((t) => [t, byStart.get(t)![i] / widthS] as [number, number]),
  }));
}

/** Events/s over time, one line per host. */
export function hostLines(windows: WindowRow[], dashed: (host: string) => boolean): Line[] {
  const by = new Map<string, Array<[number, number]>>();
  for (const w of windows) {
    const pts = by.get(w.host) ?? [];
    pts.push([startMs(w), w.eventsPerSec]);
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

/** Closed windows only: an open one is still counting and would show a false dip. */
export function windowQuery(s: State, extra: Record<string, string | number | undefined> = {}) {
  return { width: s.width, open: 'false', limit: 5000, ...extra };
}
