// Seeded fuzz of the parsers that read untrusted bytes: ring-buffer sub-buffers (PageCursor)
// and, through the replay source, whole captures. Each input is checked against the parser's
// stated invariant (agent/src/source/tracefs/page.ts) and bounded in time; the whole run is
// bounded in heap growth. Same seed, same inputs: a failure names the seed and case to rerun.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Rng } from '../../agent/src/source/model/rng';
import { type PageLayout, parseHeaderPage, withDataSize } from '../../agent/src/source/tracefs/format';
import { PageCursor } from '../../agent/src/source/tracefs/page';
import { tracefsFixture } from '../support/uprobe-records';

const SEED = Number(process.env.FUZZ_SEED ?? 12);
const PAGES = Number(process.env.FUZZ_PAGES ?? 6000);
/**
 * Per-input wall-time bound, ms: a hang shows as seconds, a GC pause on a loaded 2-core machine
 * as a few hundred ms. The work bound itself is structural (records per page, asserted below).
 */
const PER_INPUT_MS = 5000;

const layout4k = parseHeaderPage(readFileSync(tracefsFixture('header_page.4k'), 'utf8'));
const layout64k = parseHeaderPage(readFileSync(tracefsFixture('header_page.64k'), 'utf8'));
const seeds4k = ['smmu-4k.page', 'missed-4k.page', 'time-extend-4k.page'].map((f) =>
  readFileSync(tracefsFixture(f)),
);
const seed64k = readFileSync(tracefsFixture('smmu-64k.page'));

/** Words a hostile or corrupt page likes: top bits set, near-wrap, type/length boundaries. */
const NASTY = [
  0, 1, 3, 4, 7, 8, 0x1d, 0x1e, 0x1f, 0x20, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff, 0xffffffe0,
];

function mutate(rng: Rng, src: Buffer): Buffer {
  const b = Buffer.from(src);
  const kind = rng.int(4);
  const n = 1 + rng.int(8);
  for (let k = 0; k < n; k++) {
    const at = rng.int(b.length >>> 2) * 4;
    if (kind === 0) b[rng.int(b.length)] ^= 1 << rng.int(8);
    else if (kind === 1) b.writeUInt32LE(NASTY[rng.int(NASTY.length)], at);
    else if (kind === 2) b.writeUInt32LE(rng.u32(), at);
    else b.writeUInt32LE(((rng.u32() & ~31) | rng.int(32)) >>> 0, Math.min(at, 16 + rng.int(64) * 4));
  }
  return b;
}

function randomPage(rng: Rng, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4)
    b.writeUInt32LE(rng.int(3) === 0 ? NASTY[rng.int(NASTY.length)] : rng.u32(), i);
  // A plausible commit most of the time, so the record walk is reached.
  if (rng.int(4) !== 0) b.writeUInt32LE((rng.int(size - 16) | (rng.int(4) << 30)) >>> 0, 8);
  b.writeUInt32LE(0, 12);
  return b;
}

/** Walks one page and asserts the invariant; returns the records yielded. */
function checkPage(c: PageCursor, page: Buffer, length: number, what: string): number {
  const t0 = process.hrtime.bigint();
  const l = c.layout;
  if (!c.load(page, length)) {
    assert.ok(c.error, `${what}: load failed without a reason`);
    assert.equal(c.next(), false, `${what}: records from a rejected page`);
    return 0;
  }
  const lo = l.dataOffset;
  const hi = l.dataOffset + c.dataSize;
  assert.ok(hi <= length, `${what}: commit beyond the bytes read`);
  const most = Math.floor(c.dataSize / 8);
  let n = 0;
  while (c.next()) {
    n++;
    assert.ok(n <= most, `${what}: more than ${most} records`);
    assert.ok(c.offset >= lo + 4 && c.offset % 4 === 0, `${what}: record at ${c.offset}`);
    assert.ok(
      c.length >= 4 && c.offset + c.length <= hi,
      `${what}: record [${c.offset}, +${c.length}) outside`,
    );
  }
  const error = c.error;
  // Ended for good: a malformed record is reported once and ends the page.
  assert.equal(c.next(), false, `${what}: next() after the end`);
  assert.equal(c.error, error, `${what}: error changed after the end`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < PER_INPUT_MS, `${what}: ${ms} ms`);
  return n;
}

describe('fuzz: ring-buffer pages', () => {
  it('a length word with the top bit set ends the page instead of wrapping', () => {
    const c = new PageCursor(layout4k);
    for (const word of [0xfffffffc, 0x80000000, 0xffffffff, 0x80000008]) {
      const page = Buffer.alloc(4096);
      page.writeUInt32LE(64, 8); // 64 bytes committed
      page.writeUInt32LE(0, 16); // type_len 0: length in array[0]
      page.writeUInt32LE(word, 20);
      assert.equal(checkPage(c, page, page.length, `len ${word.toString(16)}`), 0);
      assert.match(c.error ?? '', /runs past the commit size/);
    }
  });

  it(`${PAGES} random and mutated pages keep the invariant (seed ${SEED})`, () => {
    const rng = new Rng(SEED, 'pages');
    const c4 = new PageCursor(layout4k);
    const c64 = new PageCursor(layout64k);
    const odd: PageLayout = withDataSize(layout4k, 4096 + 1000);
    const cOdd = new PageCursor(odd);
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = Date.now();
    let records = 0;
    let errors = 0;
    for (let i = 0; i < PAGES; i++) {
      const what = `seed ${SEED} page ${i}`;
      const pick = i % 5;
      let page: Buffer;
      let c = c4;
      if (pick === 0) page = randomPage(rng, 4096);
      else if (pick === 1) {
        page = mutate(rng, seed64k);
        c = c64;
      } else if (pick === 2) {
        page = randomPage(rng, odd.subbufSize);
        c = cOdd;
      } else page = mutate(rng, seeds4k[rng.int(seeds4k.length)]);
      // Short reads too: the reader hands over what read(2) returned.
      const length = rng.int(8) === 0 ? rng.int(page.length + 1) : page.length;
      records += checkPage(c, page, length, what);
      if (c.error !== undefined) errors++;
    }
    const grown = process.memoryUsage().heapUsed - heap0;
    assert.ok(grown < 64 << 20, `heap grew ${grown} bytes`);
    assert.ok(Date.now() - t0 < 60_000, 'fuzz run over a minute');
    // The mutations must reach both outcomes, or the fuzz proves nothing.
    assert.ok(records > PAGES, `only ${records} records yielded`);
    assert.ok(errors > PAGES / 10, `only ${errors} malformed pages`);
  });
});
