// Seeded fuzz of the parsers that read untrusted bytes: ring-buffer sub-buffers (PageCursor)
// and, through the replay source, whole trace.dat captures. Each input is checked against the parser's
// stated invariant (agent/src/source/tracefs/page.ts) and bounded in time; the whole run is
// bounded in heap growth. Same seed, same inputs: a failure names the seed and case to rerun.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Rng } from '../../agent/src/source/model/rng';
import { ReplaySource } from '../../agent/src/source/replay';
import { type PageLayout, parseHeaderPage, withDataSize } from '../../agent/src/source/tracefs/format';
import { PageCursor } from '../../agent/src/source/tracefs/page';
import { fixtureDatSpec, writeTraceDat } from '../support/trace-dat-writer';
import { tracefsFixture } from '../support/uprobe-records';

const SEED = Number(process.env.FUZZ_SEED ?? 12);
const PAGES = Number(process.env.FUZZ_PAGES ?? 6000);
const DATS = Number(process.env.FUZZ_DATS ?? 600);
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

/** Mutates a whole file: flips, nasty u32 / huge u64 values (mostly in the metadata), or a cut. */
function mutateFile(rng: Rng, src: Buffer, metaBytes: number): Buffer {
  if (rng.int(6) === 0) return src.subarray(0, rng.int(src.length));
  const b = Buffer.from(src);
  const n = 1 + rng.int(4);
  for (let k = 0; k < n; k++) {
    const span = rng.int(4) === 0 ? b.length : Math.min(metaBytes, b.length);
    const at = rng.int(Math.max(1, span - 8));
    const kind = rng.int(4);
    if (kind === 0) b[at] ^= 1 << rng.int(8);
    else if (kind === 1) b.writeUInt32LE(NASTY[rng.int(NASTY.length)], at);
    else if (kind === 2) b.writeBigUInt64LE(BigInt(rng.u32()) << BigInt(rng.int(33)), at);
    else b.writeUInt32LE(rng.int(1 << (1 + rng.int(24))), at);
  }
  return b;
}

/** Outcome of replaying one file within PER_INPUT_MS: records and losses, or the error. */
async function replayFile(path: string): Promise<{ records: number; losses: number; error?: unknown }> {
  const out = { records: 0, losses: 0, error: undefined as unknown };
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const run = (async () => {
    try {
      for await (const c of new ReplaySource({ input: path }).read(ac.signal)) {
        out.records += c.events.count;
        for (const [, n] of c.lost ?? []) out.losses += n;
      }
    } catch (err) {
      out.error = err;
    }
  })();
  const late = new Promise<'late'>((res) => {
    timer = setTimeout(() => res('late'), PER_INPUT_MS);
  });
  const r = await Promise.race([run.then(() => 'done' as const), late]);
  clearTimeout(timer);
  if (r === 'late') {
    ac.abort();
    throw new Error(`${path}: no result within ${PER_INPUT_MS} ms`);
  }
  return out;
}

describe('fuzz: trace.dat files', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'smmu-dat-fuzz-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const leftovers = () => readdirSync(tmpdir()).filter((f) => f.startsWith('smmu-tracedat-')).length;

  it(`${DATS} mutated v6 / v7 / zlib / zstd files: a result or a clear error, bounded (seed ${SEED})`, async (t) => {
    const spec = fixtureDatSpec([Buffer.concat(seeds4k.slice(0, 2)), seeds4k[2]]);
    const dataBytes = spec.cpus.reduce((a, c) => a + c.length, 0);
    const seeds = await Promise.all(
      [
        { version: 6 as const },
        { version: 7 as const, compression: 'none' as const },
        { version: 7 as const, compression: 'zlib' as const },
        { version: 7 as const, compression: 'zstd' as const },
      ].map((k) => writeTraceDat({ ...spec, ...k })),
    );
    const rng = new Rng(SEED, 'trace.dat');
    const before = leftovers();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = Date.now();
    let ok = 0;
    let errors = 0;
    for (let i = 0; i < DATS; i++) {
      const seed = seeds[i % seeds.length];
      const file = join(tmp, `case-${i}.dat`);
      const bytes = mutateFile(rng, seed, seed.length - dataBytes / 2);
      writeFileSync(file, bytes);
      const what = `seed ${SEED} case ${i} (${file})`;
      const got = await replayFile(file);
      if (got.error !== undefined) {
        // A clear error: an Error naming the file, not a TypeError/RangeError from deep inside.
        assert.ok(got.error instanceof Error, `${what}: threw ${String(got.error)}`);
        assert.ok(
          got.error.constructor === Error && got.error.message.startsWith(file),
          `${what}: ${got.error.constructor.name}: ${got.error.message}`,
        );
        errors++;
      } else {
        // At most one record per 8 bytes of page data (the page parser's invariant).
        assert.ok(got.records <= (dataBytes + bytes.length) / 8, `${what}: ${got.records} records`);
        ok++;
      }
      rmSync(file);
    }
    assert.equal(leftovers(), before, 'temporary inflate files left behind');
    const grown = process.memoryUsage().heapUsed - heap0;
    assert.ok(grown < 64 << 20, `heap grew ${grown} bytes`);
    assert.ok(Date.now() - t0 < 120_000, 'fuzz run over two minutes');
    // Both outcomes must be reached, or the mutations prove nothing.
    assert.ok(ok > DATS / 10 && errors > DATS / 10, `${ok} read, ${errors} refused`);
    t.diagnostic(`${ok} files read, ${errors} refused with a clear error, in ${Date.now() - t0} ms`);
  });
});
