// EventColumns coding 0 (word columns; telemetry.proto): each record word as its own column,
// XOR- or delta-coded against the previous event's, timestamps as deltas in ns. Readers of today
// still take it; agents send it with --column-coding words. Coding 2 is field-columns.ts.
import { BatchDecodeError, readRuns, unzigzag, VarintRun } from './batch-read';
import { type EventBlock, type EventBlockBuilder, WORDS_PER_RECORD } from './event-block';
import { addDelta64, type ByteWriter, sum64, unzigzag64, writeDelta64 } from './wire';

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
  ts.sint64(e.baseNs + BigInt(e.offsetNs[0]));
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

/** The runs of fields 3..8, reused by every read (reading is synchronous and keeps nothing in them). */
const runs = COLUMN_NAMES.map((name) => new VarintRun(name));

/**
 * Reads a coding 0 EventColumns message, checking all of it: into `out`, or with `out` null
 * only the checks (the collector's). Throws BatchDecodeError when inconsistent.
 */
export function readWordColumns(
  buf: Uint8Array,
  start: number,
  end: number,
  count: number,
  names: readonly string[],
  out: EventBlockBuilder | null,
): void {
  const ids = out ? names.map((n) => out.smmuId(n)) : [];
  readRuns(buf, start, end, runs, COLUMN_FIELDS.smmu_index, COLUMN_FIELDS.evt3_xor);
  const [smmu, ts, x0, x1, d2, x3] = runs.slice(COLUMN_FIELDS.smmu_index);
  // smmu_index is left out when the batch has a single SMMU.
  const multiSmmu = smmu.buf.length > 0;
  if (!multiSmmu && names.length > 1) throw new BatchDecodeError('several smmu_names but no smmu_index');
  smmu.expect(multiSmmu ? count : 0, 'count');
  for (const run of [ts, x0, x1, d2, x3]) run.expect(count, 'count');
  if (count > 0) {
    ts.next();
    out?.setBase(unzigzag64(ts.lo, ts.hi));
  }
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
    if (i > 0) {
      ts.next();
      offset += unzigzag(ts.lo, ts.hi, 'timestamp_delta_ns');
    }
    const si = multiSmmu ? smmu.nextBelow(names.length) : 0;
    p0l = (p0l ^ x0.next()) >>> 0;
    p0h = (p0h ^ x0.hi) >>> 0;
    p1l = (p1l ^ x1.next()) >>> 0;
    p1h = (p1h ^ x1.hi) >>> 0;
    addDelta64(d2.next(), d2.hi, p2l, p2h);
    p2l = sum64.lo;
    p2h = sum64.hi;
    p3l = (p3l ^ x3.next()) >>> 0;
    p3h = (p3h ^ x3.hi) >>> 0;
    if (out === null) continue;
    const w = out.appendOffset(offset, ids[si]);
    const words = out.wordArray;
    words[w] = p0l;
    words[w + 1] = p0h;
    words[w + 2] = p1l;
    words[w + 3] = p1h;
    words[w + 4] = p2l;
    words[w + 5] = p2h;
    words[w + 6] = p3l;
    words[w + 7] = p3h;
  }
  for (const run of [smmu, ts, x0, x1, d2, x3]) run.end();
  for (const run of runs) run.reset();
}
