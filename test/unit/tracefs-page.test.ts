import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  findField,
  type PageLayout,
  parseEventFormat,
  parseHeaderPage,
} from '../../agent/src/source/tracefs/format';
import { PageCursor, recordTimestamp } from '../../agent/src/source/tracefs/page';
import { expectedName, expectedRecord, tracefsFixture } from '../support/uprobe-records';

const layout4k = parseHeaderPage(readFileSync(tracefsFixture('header_page.4k'), 'utf8'));
const layout64k = parseHeaderPage(readFileSync(tracefsFixture('header_page.64k'), 'utf8'));
const format = parseEventFormat(readFileSync(tracefsFixture('smmu_evtq_event.uprobe.format'), 'utf8'));

interface Rec {
  ts: bigint;
  typeId: number;
  words: bigint[];
  name: string;
}

/** Walks a page, decoding the uprobe stand-in's fields by hand (independently of the decoders). */
function walk(c: PageCursor): Rec[] {
  const out: Rec[] = [];
  const evt0 = findField(format, 'evt0')?.offset ?? -1;
  const loc = findField(format, 'iommu')?.offset ?? -1;
  while (c.next()) {
    const b = c.bytes;
    const words = [0, 1, 2, 3].map((i) => b.readBigUInt64LE(c.offset + evt0 + 8 * i));
    const d = b.readUInt32LE(c.offset + loc);
    const name = b.toString('latin1', c.offset + (d & 0xffff), c.offset + (d & 0xffff) + (d >>> 16) - 1);
    out.push({ ts: recordTimestamp(c), typeId: c.typeId, words, name });
  }
  return out;
}

function loadFixture(name: string, layout: PageLayout): PageCursor {
  const c = new PageCursor(layout);
  assert.ok(c.load(readFileSync(tracefsFixture(name))), c.error);
  return c;
}

/** Builds sub-buffers by hand, for the cases the kernel would not produce on demand. */
class PageWriter {
  readonly buf: Buffer;
  pos = 16;
  constructor(size = 4096, ts = 1_000_000n) {
    this.buf = Buffer.alloc(size);
    this.buf.writeBigUInt64LE(ts, 0);
  }
  private header(type: number, delta: number): void {
    this.buf.writeUInt32LE((type | (delta << 5)) >>> 0, this.pos);
    this.pos += 4;
  }
  /** A data record with type id `typeId` and `len` payload bytes (len % 4 == 0 unless long). */
  data(delta: number, typeId: number, len: number, long = false): void {
    if (len <= 112 && !long) {
      this.header(len / 4, delta);
    } else {
      this.header(0, delta);
      this.buf.writeUInt32LE(len + 4, this.pos);
      this.pos += 4;
    }
    this.buf.writeUInt16LE(typeId, this.pos);
    if (len >= 8) this.buf.writeUInt32LE(0xabcd0000 + len, this.pos + 4);
    this.pos += (len + 3) & ~3;
  }
  padding(delta: number, bytes: number): void {
    this.header(29, delta);
    this.buf.writeUInt32LE(bytes, this.pos); // array[0]: bytes after the header, itself included
    this.pos += bytes;
  }
  extend(delta: bigint): void {
    this.header(30, Number(delta & 0x7ffffffn));
    this.buf.writeUInt32LE(Number(delta >> 27n), this.pos);
    this.pos += 4;
  }
  absolute(ts: bigint): void {
    this.header(31, Number(ts & 0x7ffffffn));
    this.buf.writeUInt32LE(Number((ts >> 27n) & 0xffffffffn), this.pos);
    this.pos += 4;
  }
  finish(missed?: { count?: number }): Buffer {
    let commit = this.pos - 16;
    if (missed) {
      commit |= 0x80000000;
      if (missed.count !== undefined) {
        commit |= 0x40000000;
        this.buf.writeBigUInt64LE(BigInt(missed.count), this.pos);
      }
      // The kernel adds the flags to a long: the high word becomes all ones.
      this.buf.writeUInt32LE(0xffffffff, 12);
    }
    this.buf.writeUInt32LE(commit >>> 0, 8);
    return this.buf;
  }
}

describe('ring-buffer page parser on pages captured from this kernel', () => {
  it('reads every record of a 4 KiB page: words, __data_loc names, timestamps', () => {
    const c = loadFixture('smmu-4k.page', layout4k);
    assert.equal(c.missedEvents, false);
    const recs = walk(c);
    assert.equal(c.error, undefined);
    assert.equal(recs.length, 20);
    for (const [i, r] of recs.entries()) {
      assert.equal(r.typeId, format.id);
      assert.deepEqual(r.words, expectedRecord(i, 0x100n), `record ${i}`);
      assert.equal(r.name, expectedName(i, 'smmu0,arm-smmu-v3.1.auto,x'));
      if (i > 0) assert.ok(r.ts >= recs[i - 1].ts);
    }
    assert.ok(recs[0].ts >= c.timestamp);
  });

  it('applies time extends (records 200 ms apart)', () => {
    const c = loadFixture('time-extend-4k.page', layout4k);
    const recs = walk(c);
    assert.equal(recs.length, 4);
    for (let i = 1; i < 4; i++) {
      const gap = recs[i].ts - recs[i - 1].ts;
      assert.ok(gap > 200_000_000n && gap < 400_000_000n, `gap ${gap}`);
      assert.deepEqual(recs[i].words, expectedRecord(i, 0x200n));
    }
  });

  it('reports missed events with their stored count (overrun of a tiny buffer)', () => {
    const c = loadFixture('missed-4k.page', layout4k);
    assert.equal(c.missedEvents, true);
    const stats = readFileSync(tracefsFixture('missed-4k.stats.txt'), 'utf8');
    assert.equal(c.missedCount, Number(/^overrun: (\d+)/m.exec(stats)?.[1]));
    const recs = walk(c);
    // The page holds the records that followed the overwritten ones.
    const first = Number(recs[0].words[1] & 0xffffn);
    assert.equal(first, c.missedCount);
    assert.equal(recs.length, Math.floor(c.dataSize / 64));
    for (const [k, r] of recs.entries()) assert.deepEqual(r.words, expectedRecord(first + k, 0x300n));
  });

  it('reads a full 64 KiB sub-buffer', () => {
    const c = loadFixture('smmu-64k.page', layout64k);
    assert.equal(c.dataSize > 60000, true);
    const recs = walk(c);
    assert.equal(c.error, undefined);
    assert.ok(recs.length > 900);
    for (const [i, r] of recs.entries()) {
      assert.deepEqual(r.words, expectedRecord(i, 0x500n));
      assert.equal(r.name, expectedName(i, 'smmu0,arm-smmu-v3.1.auto'));
    }
  });

  it('parses an unaligned Buffer view the same way', () => {
    const page = readFileSync(tracefsFixture('smmu-4k.page'));
    const shifted = Buffer.alloc(page.length + 1).subarray(1);
    page.copy(shifted);
    const c = new PageCursor(layout4k);
    assert.ok(c.load(shifted));
    assert.deepEqual(
      walk(c).map((r) => r.words),
      walk(loadFixture('smmu-4k.page', layout4k)).map((r) => r.words),
    );
  });
});

describe('ring-buffer page parser on hand-built pages', () => {
  function records(buf: Buffer, layout = layout4k) {
    const c = new PageCursor(layout);
    assert.ok(c.load(buf), c.error);
    const out: [number, number, number][] = [];
    while (c.next()) out.push([c.typeId, c.length, c.delta]);
    return { out, c };
  }

  it('skips padding: a discarded event keeps its delta, end-of-page filler (delta 1) does not', () => {
    const w = new PageWriter();
    w.data(10, 5, 8);
    w.padding(7, 20); // discarded event
    w.data(3, 5, 8);
    w.padding(1, 12); // filler
    w.data(4, 6, 12);
    const { out, c } = records(w.finish());
    assert.equal(c.error, undefined);
    assert.deepEqual(out, [
      [5, 8, 10],
      [5, 8, 20],
      [6, 12, 24],
    ]);
  });

  it('stops at a null padding (delta 0): the rest of the page is empty', () => {
    const w = new PageWriter();
    w.data(1, 5, 8);
    w.padding(0, 8);
    w.data(1, 5, 8);
    assert.deepEqual(records(w.finish()).out, [[5, 8, 1]]);
  });

  it('applies time extends and absolute time stamps (with the top 5 bits restored)', () => {
    const base = (0x1fn << 59n) | 123_000n; // a clock with its 5 MSBs set
    const w = new PageWriter(4096, base);
    w.data(100, 5, 8);
    w.extend(5n << 30n);
    w.data(0, 5, 8);
    w.absolute(base + 10_000_000_000n);
    w.data(7, 5, 8);
    const { out, c } = records(w.finish());
    assert.deepEqual(
      out.map((r) => r[2]),
      [100, 100 + 5 * 2 ** 30, 10_000_000_007],
    );
    assert.equal(c.timestamp, base);
  });

  it('an absolute time stamp that wrapped its 59 bits moves forward', () => {
    const base = (1n << 60n) + (1n << 59n) - 10n; // top bits 0b00010, low 59 bits about to wrap
    const target = (1n << 60n) + (1n << 59n) + 5n;
    const w = new PageWriter(4096, base);
    w.absolute(target); // stored as its low 59 bits: 5
    w.data(0, 5, 8);
    const c = new PageCursor(layout4k);
    c.load(w.finish());
    assert.ok(c.next());
    assert.equal(recordTimestamp(c), target);
  });

  it('reads long records (type_len 0, length in array[0]) and rounds their length to words', () => {
    const w = new PageWriter();
    w.data(2, 9, 200);
    w.data(3, 9, 16, true);
    w.data(4, 9, 10, true);
    w.data(5, 8, 4);
    assert.deepEqual(records(w.finish()).out, [
      [9, 200, 2],
      [9, 16, 5],
      [9, 10, 9],
      [8, 4, 14],
    ]);
  });

  it('reports missed events without a stored count as -1', () => {
    const w = new PageWriter();
    w.data(1, 5, 8);
    const { out, c } = records(w.finish({}));
    assert.equal(c.missedEvents, true);
    assert.equal(c.missedCount, -1);
    assert.equal(out.length, 1);
    const w2 = new PageWriter();
    w2.data(1, 5, 8);
    const r2 = records(w2.finish({ count: 123456789012 }));
    assert.equal(r2.c.missedCount, 123456789012);
  });

  it('works for any sub-buffer size (16 KiB, layout from the read length)', () => {
    const w = new PageWriter(16384);
    for (let i = 0; i < 600; i++) w.data(1, 5, 20);
    const { out } = records(w.finish(), { ...layout4k, dataSize: 16368, subbufSize: 16384 });
    assert.equal(out.length, 600);
  });

  it('stops with an error, never throws, on malformed pages and records', () => {
    const c = new PageCursor(layout4k);
    assert.equal(c.load(Buffer.alloc(8)), false);
    assert.match(c.error ?? '', /shorter than its 16-byte header/);

    const big = new PageWriter();
    big.data(1, 5, 8);
    const b = big.finish();
    b.writeUInt32LE(5000, 8);
    assert.equal(c.load(b), false);
    assert.match(c.error ?? '', /exceeds/);

    const past = new PageWriter();
    past.data(1, 5, 8);
    const p = past.finish();
    p.writeUInt32LE(28 | (1 << 5), 16 + 12); // claims 112 bytes where 0 remain
    p.writeUInt32LE(16, 8);
    assert.ok(c.load(p));
    assert.ok(c.next());
    assert.equal(c.next(), false);
    assert.match(c.error ?? '', /past the commit size/);

    const small = new PageWriter();
    small.data(1, 5, 8);
    const s = small.finish();
    s.writeUInt32LE(0, 16); // type_len 0 ...
    s.writeUInt32LE(2, 20); // ... with a length word smaller than itself
    assert.ok(c.load(s));
    assert.equal(c.next(), false);
    assert.match(c.error ?? '', /too small/);

    const pad = new PageWriter();
    pad.padding(3, 100);
    const pb = pad.finish();
    pb.writeUInt32LE(5000, 20);
    assert.ok(c.load(pb));
    assert.equal(c.next(), false);
    assert.match(c.error ?? '', /padding/);
  });
});
