// Where in the address space a process's faults land: its hot pages, grouped into regions of
// nearby pages (one row each, start address on the left), one cell per page, darker = more
// faults; the advice ranges are outlined. Far-apart regions (heap, mmaps, stacks) would be
// invisible on one linear axis, so each region gets its own row and gaps are stated in bytes.
import type { AdviceRange, HotPage } from './api.js';
import { h, svg } from './dom.js';
import { bytes, count, num } from './format.js';

/** Pages closer than this stay in one row. */
const JOIN_PAGES = 32;
const CELL = 10;

interface Region {
  first: number;
  last: number;
  pages: HotPage[];
}

function regions(pages: HotPage[]): Region[] {
  const sorted = [...pages].sort((a, b) => a.page - b.page);
  const out: Region[] = [];
  for (const p of sorted) {
    const r = out.at(-1);
    if (r && p.page - r.last <= JOIN_PAGES) {
      r.last = p.page;
      r.pages.push(p);
    } else out.push({ first: p.page, last: p.page, pages: [p] });
  }
  return out;
}

const hex = (page: number, shift: number) => `0x${(BigInt(page) << BigInt(shift)).toString(16)}`;

export function addressMap(pages: HotPage[], shift: number, advice: AdviceRange[]): HTMLElement {
  if (pages.length === 0) return h('p', { class: 'note' }, 'No page faults recorded for this process.');
  const max = Math.max(...pages.map((p) => num(p.faults)));
  const rows = regions(pages);
  const pageBytes = 2 ** shift;
  const body: HTMLElement[] = [];
  rows.forEach((r, i) => {
    if (i > 0)
      body.push(
        h(
          'li',
          { class: 'gap' },
          `… ${bytes((r.first - rows[i - 1].last - 1) * pageBytes)} without hot pages …`,
        ),
      );
    const cells = r.last - r.first + 1;
    const pic = svg(
      'svg',
      {
        viewBox: `0 0 ${cells * CELL} ${CELL * 2}`,
        width: cells * CELL,
        height: CELL * 2,
        role: 'img',
        'aria-label': `${r.pages.length} hot pages from ${hex(r.first, shift)}`,
      },
      advice
        .filter((a) => a.endPage > r.first && a.startPage <= r.last)
        .map((a) => {
          const s = Math.max(a.startPage, r.first) - r.first;
          const e = Math.min(a.endPage, r.last + 1) - r.first;
          return svg('rect', {
            class: 'advised',
            x: s * CELL,
            y: CELL * 1.3,
            width: (e - s) * CELL,
            height: CELL * 0.5,
          });
        }),
      r.pages.map((p) =>
        svg(
          'rect',
          {
            class: num(p.permission) > 0 ? 'page write' : 'page',
            x: (p.page - r.first) * CELL,
            y: 0,
            width: CELL - 1,
            height: CELL,
            'fill-opacity': (0.15 + 0.85 * (num(p.faults) / max)).toFixed(2),
          },
          svg(
            'title',
            {},
            `${p.address}: ${count(p.faults)} faults (at least ${count(p.guaranteed)}), ${count(p.stalls)} stalls`,
          ),
        ),
      ),
    );
    body.push(
      h(
        'li',
        {},
        h('code', {}, hex(r.first, shift)),
        ' ',
        h('span', { class: 'pic' }, pic),
        ' ',
        h(
          'small',
          {},
          `${r.pages.length} hot page${r.pages.length === 1 ? '' : 's'} in ${bytes(cells * pageBytes)}`,
        ),
      ),
    );
  });
  return h(
    'figure',
    { class: 'addrmap' },
    h(
      'figcaption',
      {},
      `Hot pages (${bytes(pageBytes)} each) by address: darker = more faults, orange = permission (write) faults, green bar = advised range`,
    ),
    h('ul', {}, body),
  );
}
