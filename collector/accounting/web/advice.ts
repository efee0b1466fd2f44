// Prefault advice for one process: the ranges, what populating them would have saved, and a
// hint to copy into the program that maps them.
import type { Advice } from './api.js';
import { h, table } from './dom.js';
import { bytes, count, rate } from './format.js';
import { n } from './parts.js';

export function hintText(a: Advice): string {
  const lines = [
    `/* ${a.host} SSID ${a.ssid}: populate before the device touches it (Linux 5.14+ for MADV_POPULATE_*) */`,
  ];
  for (const r of a.ranges) {
    const len = `0x${(BigInt(r.end) - BigInt(r.start)).toString(16)}`;
    lines.push(
      `madvise((void *)${r.start}, ${len}, MADV_POPULATE_${r.populate.toUpperCase()}); /* ${bytes(r.bytes)}, ~${count(r.faults)} faults avoided */`,
    );
  }
  lines.push(
    `/* or, where these ranges are mapped: mmap(addr, len, ${a.ranges.some((r) => r.populate === 'write') ? 'PROT_READ | PROT_WRITE' : 'PROT_READ'}, flags | MAP_POPULATE, fd, off) */`,
  );
  return lines.join('\n');
}

export function adviceView(a: Advice | undefined): HTMLElement[] {
  if (!a)
    return [
      h(
        'p',
        { class: 'note', id: 'advice' },
        'No advice: no page has enough guaranteed faults to be worth populating.',
      ),
    ];
  const hint = hintText(a);
  const area = h(
    'textarea',
    {
      id: 'hint',
      readonly: true,
      rows: a.ranges.length + 2,
      'aria-label': 'Prefault hint (C)',
      spellcheck: 'false',
    },
    hint,
  );
  const status = h('span', { role: 'status', class: 'small' });
  const copy = h('button', { type: 'button', id: 'copy-hint' }, 'Copy hint');
  copy.addEventListener('click', () => {
    area.select();
    const done = () => {
      status.textContent = 'copied';
    };
    if (navigator.clipboard)
      navigator.clipboard.writeText(hint).then(done, () => document.execCommand('copy') && done());
    else if (document.execCommand('copy')) done();
  });
  return [
    h(
      'p',
      { id: 'advice' },
      `Populating ${a.ranges.length} range${a.ranges.length === 1 ? '' : 's'} would have avoided ${count(a.savedFaults)} faults (at least ${count(a.savedGuaranteedFaults)}) and ${count(a.savedStalls)} stalls over ${a.observedSeconds.toFixed(0)} s.`,
    ),
    table(
      'Address ranges worth populating',
      [
        'start',
        'end',
        'size',
        'hot pages',
        'faults avoided',
        'at least',
        'stalls avoided',
        'faults/s',
        'populate',
      ],
      a.ranges.map((r) => [
        h('code', {}, r.start),
        h('code', {}, r.end),
        bytes(r.bytes),
        n(r.hotPages),
        n(r.faults, 'faults'),
        n(r.guaranteedFaults),
        n(r.stalls),
        h('td', { class: 'n' }, rate(r.faultsPerSec)),
        r.populate,
      ]),
      { id: 'ranges' },
    ),
    h('div', { class: 'hint' }, area, h('div', {}, copy, ' ', status)),
  ];
}
