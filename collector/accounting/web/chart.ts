// Rates over time as an SVG line chart: one line per series, y from 0 to a round maximum,
// time along x. Drawn by hand (a few hundred bytes of code) instead of a charting library.
import { h, svg } from './dom.js';
import { clock, rate } from './format.js';

export interface Line {
  name: string;
  /** CSS colour class (c0..c7, or kind-<name>). */
  cls: string;
  /** [time in ms, value, still counting?], oldest first. */
  points: Array<[number, number, boolean?]>;
  /** Drawn dashed (e.g. the prefault host). */
  dashed?: boolean;
}

const W = 640;
const H = 200;
const PAD = { l: 48, r: 8, t: 8, b: 22 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function lineChart(title: string, unit: string, lines: Line[]): HTMLElement {
  const all = lines.flatMap((l) => l.points);
  const fig = h('figure', { class: 'chart' }, h('figcaption', {}, title));
  if (all.length === 0) {
    fig.append(h('p', { class: 'empty' }, 'No windows yet.'));
    return fig;
  }
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(t0 + 1, ...all.map((p) => p[0]));
  const ymax = niceMax(Math.max(...all.map((p) => p[1])));
  const x = (t: number) => PAD.l + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - (v / ymax) * (H - PAD.t - PAD.b);
  const latest = lines.map((l) => `${l.name} ${rate(l.points.at(-1)?.[1] ?? 0)} ${unit}`).join(', ');
  const plot = svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}; latest: ${latest}` },
    [0, 0.5, 1].map((f) => [
      svg('line', { class: 'grid', x1: PAD.l, x2: W - PAD.r, y1: y(f * ymax), y2: y(f * ymax) }),
      svg('text', { class: 'axis', x: PAD.l - 4, y: y(f * ymax) + 4, 'text-anchor': 'end' }, rate(f * ymax)),
    ]),
    svg('text', { class: 'axis', x: PAD.l, y: H - 6 }, clock(t0)),
    svg('text', { class: 'axis', x: W - PAD.r, y: H - 6, 'text-anchor': 'end' }, clock(t1)),
    lines.map((l) =>
      svg('polyline', {
        class: `line ${l.cls}${l.dashed ? ' dashed' : ''}`,
        points: l.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
      }),
    ),
    // A window still counting: its rate so far, drawn hollow (it can still grow).
    lines.flatMap((l) =>
      l.points
        .filter((p) => p[2])
        .map(([t, v]) =>
          svg('circle', { class: `open ${l.cls}`, cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 4 }),
        ),
    ),
  );
  const counting = lines.some((l) => l.points.some((p) => p[2]));
  fig.append(
    plot,
    h(
      'ul',
      { class: 'legend' },
      lines.map((l) =>
        h(
          'li',
          {},
          h('span', { class: `swatch ${l.cls}${l.dashed ? ' dashed' : ''}` }),
          `${l.name} `,
          h('small', {}, `${rate(l.points.at(-1)?.[1] ?? 0)} ${unit}`),
        ),
      ),
      counting ? h('li', { class: 'small' }, '○ window still counting') : null,
    ),
  );
  return fig;
}
