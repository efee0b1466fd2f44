// EventColumns coding 0 (word columns; telemetry.proto): each record word as its own column,
// XOR- or delta-coded against the previous event's, timestamps as deltas in ns. Readers of today
// still take it; agents send it with --column-coding words. Coding 2 is field-columns.ts.
import { BatchDecodeError, Column } from './batch-read';
import { type EventBlock, EventBlockBuilder, WORDS_PER_RECORD } from './event-block';
import {
  addDelta64,
  ByteReader,
  type ByteWriter,
  sum64,
  WIRE_LEN,
  WIRE_VARINT,
  WireError,
  writeDelta64,
} from './wire';

export const WORD_CODING = 0;

/** Field numbers of EventColumns (checked against the .proto by a unit test). */
export const COLUMN_FIELDS = {
  count: 1,
  smmu_names: 2,
  smmu_index: 3,
  timestamp_delta_ns: 4,
  evt0_xor: 5,
  evt1_xor: 6,
  evt2_delta: 7,
  evt3_xor: 8,
  coding: 9,
};

const TWO32 = 0x100000000;

const COLUMN_NAMES = [
  '',
  '',
  '',
  'smmu_index',
  'timestamp_delta_ns',
  'evt0_xor',
  'evt1_xor',
  'evt2_delta',
  'evt3_xor',
];

/** Writes the word columns of `e` after its count and names (scratch: nine reusable writers). */
export function encodeWordColumns(e: EventBlock, col: ByteWriter[]): void {
  const out = col[0];
  const n = e.count;
  const [, smmu, ts, x0, x1, d2, x3] = col;
  const words = e.words;
  const multiSmmu = e.smmuNames.length > 1;
  // Event 0 is coded against zero; its timestamp is absolute.
  writeSint64(ts, e.baseNs + BigInt(e.offsetNs[0]));
  let p0l = 0,
    p0h = 0,
    p1l = 0,
    p1h = 0,
    p2l = 0,
    p2h = 0,
    p3l = 0,
    p3h = 0;
  for (let i = 0; i < n; i++) {
    const w = i * WORDS_PER_RECORD;
    if (multiSmmu) smmu.uint(e.smmuIndex[i]);
    if (i > 0) ts.sint(e.offsetNs[i] - e.offsetNs[i - 1]);
    const a0 = words[w],
      b0 = words[w + 1],
      a1 = words[w + 2],
      b1 = words[w + 3];
    const a2 = words[w + 4],
      b2 = words[w + 5],
      a3 = words[w + 6],
      b3 = words[w + 7];
    x0.varint64((a0 ^ p0l) >>> 0, (b0 ^ p0h) >>> 0);
    x1.varint64((a1 ^ p1l) >>> 0, (b1 ^ p1h) >>> 0);
    writeDelta64(d2, a2, b2, p2l, p2h);
    x3.varint64((a3 ^ p3l) >>> 0, (b3 ^ p3h) >>> 0);
    p0l = a0;
    p0h = b0;
    p1l = a1;
    p1h = b1;
    p2l = a2;
    p2h = b2;
    p3l = a3;
    p3h = b3;
  }
  out.lenField(COLUMN_FIELDS.smmu_index, smmu);
  out.lenField(COLUMN_FIELDS.timestamp_delta_ns, ts);
  out.lenField(COLUMN_FIELDS.evt0_xor, x0);
  out.lenField(COLUMN_FIELDS.evt1_xor, x1);
  out.lenField(COLUMN_FIELDS.evt2_delta, d2);
  out.lenField(COLUMN_FIELDS.evt3_xor, x3);
}

function writeSint64(w: ByteWriter, v: bigint): void {
  const z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  w.varint64(Number(z & 0xffffffffn), Number(z >> 32n));
}

/** Throws unless every column has `count` elements (smmu_index: also none, with one name). */
function checkElementCounts(n: readonly number[], count: number, names: readonly string[]): void {
  for (let f = COLUMN_FIELDS.timestamp_delta_ns; f <= COLUMN_FIELDS.evt3_xor; f++) {
    if (n[f] !== count) {
      throw new BatchDecodeError(`${COLUMN_NAMES[f]} has ${n[f]} elements, count is ${count}`);
    }
  }
  const smmu = n[COLUMN_FIELDS.smmu_index];
  if (smmu !== 0 && smmu !== count) {
    throw new BatchDecodeError(`smmu_index has ${smmu} elements, count is ${count}`);
  }
  if (smmu === 0 && names.length > 1) throw new BatchDecodeError('several smmu_names but no smmu_index');
}

function checkSmmuIndex(lo: number, hi: number, names: readonly string[]): void {
  if (hi !== 0 || lo >= names.length) {
    throw new BatchDecodeError(`smmu_index ${lo} out of range (${names.length} names)`);
  }
}

/**
 * decodeWordColumns' checks without its output: element counts come from counting varint ends,
 * and only smmu_index and timestamp_delta_ns (whose values are checked) are decoded.
 */
export function checkWordColumns(
  buf: Uint8Array,
  start: number,
  end: number,
  count: number,
  names: string[],
): void {
  const n = COLUMN_NAMES.map(() => 0);
  const r = new ByteReader(buf, start, end);
  const element = (inner: ByteReader, field: number) => {
    if (n[field] >= count) throw new BatchDecodeError(`${COLUMN_NAMES[field]} has more elements than count`);
    inner.varint64();
    if (field === COLUMN_FIELDS.smmu_index) checkSmmuIndex(inner.lo, inner.hi, names);
    else if (n[field] > 0) unzigzag(inner.lo, inner.hi);
    n[field]++;
  };
  while (!r.done) {
    const key = r.uint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field >= COLUMN_FIELDS.smmu_index && field <= COLUMN_FIELDS.evt3_xor) {
      const valued = field <= COLUMN_FIELDS.timestamp_delta_ns;
      if (wire === WIRE_LEN) {
        const [s, e] = r.len();
        if (valued) {
          const inner = new ByteReader(buf, s, e);
          while (!inner.done) element(inner, field);
        } else {
          n[field] += countVarints(buf, s, e);
          if (n[field] > count)
            throw new BatchDecodeError(`${COLUMN_NAMES[field]} has more elements than count`);
        }
      } else if (wire === WIRE_VARINT) {
        if (valued) element(r, field);
        else {
          r.varint64();
          if (++n[field] > count)
            throw new BatchDecodeError(`${COLUMN_NAMES[field]} has more elements than count`);
        }
      } else throw new BatchDecodeError(`${COLUMN_NAMES[field]} has the wrong wire type`);
    } else r.skip(wire);
  }
  checkElementCounts(n, count, names);
}

/** Number of varints in a packed field, throwing where ByteReader.varint64 would. */
function countVarints(buf: Uint8Array, start: number, end: number): number {
  let n = 0;
  let run = 0;
  for (let p = start; p < end; p++) {
    if (buf[p] & 0x80) {
      if (++run >= 10) throw new WireError('varint longer than 10 bytes');
    } else {
      n++;
      run = 0;
    }
  }
  if (run > 0) throw new WireError('truncated varint');
  return n;
}

export function decodeWordColumns(
  buf: Uint8Array,
  start: number,
  end: number,
  count: number,
  names: string[],
): EventBlock {
  const cols = COLUMN_NAMES.map(() => new Column(count));
  const r = new ByteReader(buf, start, end);
  while (!r.done) {
    const key = r.uint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field >= COLUMN_FIELDS.smmu_index && field <= COLUMN_FIELDS.evt3_xor) {
      const c = cols[field];
      if (wire === WIRE_LEN) {
        const [s, e] = r.len();
        c.pushPacked(buf, s, e, COLUMN_NAMES[field]);
      } else if (wire === WIRE_VARINT) {
        c.push(r, COLUMN_NAMES[field]);
      } else throw new BatchDecodeError(`${COLUMN_NAMES[field]} has the wrong wire type`);
    } else r.skip(wire);
  }
  checkElementCounts(
    cols.map((c) => c.n),
    count,
    names,
  );
  const smmu = cols[COLUMN_FIELDS.smmu_index];

  const out = new EventBlockBuilder(count);
  const ids = names.map((n) => out.smmuId(n));
  if (count === 0) return out.finish();
  const ts = cols[COLUMN_FIELDS.timestamp_delta_ns];
  const z0 = (BigInt(ts.hi[0]) << 32n) | BigInt(ts.lo[0]);
  out.setBase((z0 >> 1n) ^ -(z0 & 1n));
  const [x0, x1, d2, x3] = [5, 6, 7, 8].map((f) => cols[f]);
  let offset = 0;
  let p0l = 0,
    p0h = 0,
    p1l = 0,
    p1h = 0,
    p2l = 0,
    p2h = 0,
    p3l = 0,
    p3h = 0;
  for (let i = 0; i < count; i++) {
    if (i > 0) offset += unzigzag(ts.lo[i], ts.hi[i]);
    const si = smmu.n ? smmu.lo[i] : 0;
    checkSmmuIndex(si, smmu.hi[i], names);
    const w = out.appendOffset(offset, ids[si]);
    const words = out.wordArray;
    p0l = (p0l ^ x0.lo[i]) >>> 0;
    p0h = (p0h ^ x0.hi[i]) >>> 0;
    p1l = (p1l ^ x1.lo[i]) >>> 0;
    p1h = (p1h ^ x1.hi[i]) >>> 0;
    addDelta64(d2.lo[i], d2.hi[i], p2l, p2h);
    p2l = sum64.lo;
    p2h = sum64.hi;
    p3l = (p3l ^ x3.lo[i]) >>> 0;
    p3h = (p3h ^ x3.hi[i]) >>> 0;
    words[w] = p0l;
    words[w + 1] = p0h;
    words[w + 2] = p1l;
    words[w + 3] = p1h;
    words[w + 4] = p2l;
    words[w + 5] = p2h;
    words[w + 6] = p3l;
    words[w + 7] = p3h;
  }
  return out.finish();
}

function unzigzag(lo: number, hi: number): number {
  const neg = lo & 1;
  const l = ((lo >>> 1) | (hi << 31)) >>> 0;
  const h = hi >>> 1;
  if (h >= 0x200000) throw new BatchDecodeError('timestamp delta beyond 2^53 ns');
  const m = h * TWO32 + l;
  return neg ? -m - 1 : m;
}
