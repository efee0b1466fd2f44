// EventColumns coding 2 ("field columns", telemetry.proto): each record split into its
// fields. The stream (SMMU, StreamID, SubstreamID) and the shape (event ID, SSV, the flags of
// word 1) come from two small per-batch dictionaries, so a whole 64-bit word that differs in
// one bit from its predecessor no longer costs a varint; addresses are delta-coded within
// their stream (an accelerator walks pages of one mapping, interleaved with other streams);
// timestamps in units of their deltas' common divisor (text captures hold microseconds).
// Lossless for any record: every bit of the four words lands in exactly one field.
import { BatchDecodeError, readRuns, unzigzag, VarintRun } from './batch-read';
import { type EventBlock, type EventBlockBuilder, WORDS_PER_RECORD } from './event-block';
import { U64Map } from './u64-map';
import { addDelta64, type ByteWriter, sum64, unzigzag64, WIRE_VARINT, writeDelta64 } from './wire';

export const FIELD_CODING = 2;

/** Field numbers of coding 2 in EventColumns (checked against the .proto by a unit test). */
export const FIELD_COLUMN_FIELDS = {
  coding: 9,
  timestamp_ns: 10,
  timestamp_unit_ns: 11,
  timestamp_delta_units: 12,
  stream_smmu: 13,
  stream_word0_hi: 14,
  stream_ssid: 15,
  stream_index: 16,
  shape_word0_lo: 17,
  shape_word1_hi: 18,
  shape_index: 19,
  stag: 20,
  addr_page_delta: 21,
  addr_offset: 22,
  evt3_delta: 23,
};
const F = FIELD_COLUMN_FIELDS;
const FIRST_COLUMN = F.timestamp_delta_units;
const LAST_COLUMN = F.evt3_delta;
const NAMES = Object.fromEntries(Object.entries(F).map(([k, v]) => [v, k])) as Record<number, string>;

const TWO32 = 0x100000000;
const TWO20 = 0x100000;
const TWO16 = 0x10000;

/** Scratch writers, one per repeated field (13..23) reused across calls: encoding is single-threaded. */
let scratch: ByteWriter[] | undefined;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Grows a per-stream state array. */
function grow<T extends Float64Array | Uint32Array>(a: T, need: number): T {
  if (need <= a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, a.length * 2));
  b.set(a);
  return b;
}

/** Writes coding 2's fields of `e` (count > 0) into `out`, after count and smmu_names. */
export function encodeFieldColumns(e: EventBlock, out: ByteWriter, newWriter: () => ByteWriter): void {
  scratch ??= Array.from({ length: LAST_COLUMN + 1 }, newWriter);
  for (const w of scratch) w.reset();
  const c = scratch;
  const n = e.count;
  const words = e.words;
  const off = e.offsetNs;
  out.tag(F.coding, WIRE_VARINT);
  out.uint(FIELD_CODING);
  out.tag(F.timestamp_ns, WIRE_VARINT);
  out.sint64(e.baseNs + BigInt(off[0]));
  let unit = 0;
  for (let i = 1; i < n && unit !== 1; i++) unit = gcd(unit, Math.abs(off[i] - off[i - 1]));
  unit ||= 1;
  out.tag(F.timestamp_unit_ns, WIRE_VARINT);
  out.uint(unit);

  // Streams: per SMMU a map from (StreamID, SSID) to the index.
  const streams = e.smmuNames.map(() => new U64Map());
  let pages = new Float64Array(64);
  let w3 = new Uint32Array(128);
  let streamCount = 0;
  // Shapes: word0 bits 11:0 and word1 bits 63:16, as (bits 11:0 | word1 bits 31:16 << 12, word1 bits 63:32).
  const shapes = new U64Map();
  const stags = new Int32Array(e.smmuNames.length);
  // The per-event columns, out of the array once (the loop writes seven varints per event).
  const [tsCol, streamCol, shapeCol, stagCol, pageCol, offsetCol, evt3Col] = [
    F.timestamp_delta_units,
    F.stream_index,
    F.shape_index,
    F.stag,
    F.addr_page_delta,
    F.addr_offset,
    F.evt3_delta,
  ].map((f) => c[f]);
  let lastSid = -1;
  let lastSsid = -1;
  let lastSmmu = -1;
  let lastStream = 0;
  let lastShapeLo = -1;
  let lastShapeHi = -1;
  let lastShape = 0;
  for (let i = 0; i < n; i++) {
    const w = i * WORDS_PER_RECORD;
    if (i > 0) tsCol.sint((off[i] - off[i - 1]) / unit);
    const smmu = e.smmuIndex[i];
    const a0 = words[w];
    const sid = words[w + 1];
    const ssid = a0 >>> 12;
    // Events come in runs from one stream and shape: look the map up only when they change.
    if (sid !== lastSid || ssid !== lastSsid || smmu !== lastSmmu) {
      let s = streams[smmu].get(sid, ssid);
      if (s < 0) {
        s = streamCount++;
        streams[smmu].add(sid, ssid, s);
        c[F.stream_smmu].uint(smmu);
        c[F.stream_word0_hi].uint(sid);
        c[F.stream_ssid].uint(ssid);
        pages = grow(pages, s + 1);
        w3 = grow(w3, 2 * s + 2);
        pages[s] = 0;
        w3[2 * s] = w3[2 * s + 1] = 0;
      }
      lastSid = sid;
      lastSsid = ssid;
      lastSmmu = smmu;
      lastStream = s;
    }
    const s = lastStream;
    streamCol.uint(s);
    const a1 = words[w + 2];
    const b1 = words[w + 3];
    const shapeLo = ((a0 & 0xfff) | ((a1 >>> 16) << 12)) >>> 0;
    if (shapeLo !== lastShapeLo || b1 !== lastShapeHi) {
      let h = shapes.get(shapeLo, b1);
      if (h < 0) {
        h = shapes.size;
        shapes.add(shapeLo, b1, h);
        c[F.shape_word0_lo].uint(a0 & 0xfff);
        c[F.shape_word1_hi].uint(b1 * TWO16 + (a1 >>> 16));
      }
      lastShapeLo = shapeLo;
      lastShapeHi = b1;
      lastShape = h;
    }
    shapeCol.uint(lastShape);
    const stag = a1 & 0xffff;
    if (stag === 0) stagCol.uint(0);
    else {
      const d = stag - stags[smmu];
      stagCol.uint(((d << 1) ^ (d >> 31)) + 1);
      stags[smmu] = stag;
    }
    const a2 = words[w + 4];
    const page = words[w + 5] * TWO20 + (a2 >>> 12);
    pageCol.sint(page - pages[s]);
    pages[s] = page;
    offsetCol.uint(a2 & 0xfff);
    const a3 = words[w + 6];
    const b3 = words[w + 7];
    writeDelta64(evt3Col, a3, b3, w3[2 * s], w3[2 * s + 1]);
    w3[2 * s] = a3;
    w3[2 * s + 1] = b3;
  }
  for (let f = FIRST_COLUMN; f <= LAST_COLUMN; f++) out.lenField(f, c[f]);
}

/** The runs of fields 12..23, reused by every read (reading is synchronous and keeps nothing in them). */
const runs: VarintRun[] = [];
for (let f = FIRST_COLUMN; f <= LAST_COLUMN; f++) runs[f] = new VarintRun(NAMES[f]);

/** Lets go of the message read (a refused one is held until the next read). */
function releaseRuns(): void {
  for (let f = FIRST_COLUMN; f <= LAST_COLUMN; f++) runs[f].reset();
}

/**
 * Reads a coding 2 EventColumns message, checking all of it: into `out`, or with `out` null
 * only the checks (the collector's). Throws BatchDecodeError when inconsistent.
 */
export function readFieldColumns(
  buf: Uint8Array,
  start: number,
  end: number,
  count: number,
  names: readonly string[],
  out: EventBlockBuilder | null,
): void {
  const ids = out ? names.map((n) => out.smmuId(n)) : [];
  let t0 = 0n;
  let unit = 0;
  readRuns(buf, start, end, runs, FIRST_COLUMN, LAST_COLUMN, (r, field, wire) => {
    if (wire !== WIRE_VARINT) return false;
    if (field === F.timestamp_ns) {
      r.varint64();
      t0 = unzigzag64(r.lo, r.hi);
    } else if (field === F.timestamp_unit_ns) unit = r.uint();
    else return false;
    return true;
  });
  if (count === 0) {
    for (let f = FIRST_COLUMN; f <= LAST_COLUMN; f++)
      if (runs[f].buf.length > 0) throw new BatchDecodeError(`${runs[f].field} has more elements than count`);
    releaseRuns();
    return;
  }
  if (unit < 1) throw new BatchDecodeError('timestamp_unit_ns missing or 0');
  runs[F.timestamp_delta_units].expect(count - 1, 'count - 1');
  for (const f of [F.stream_index, F.shape_index, F.stag, F.addr_page_delta, F.addr_offset, F.evt3_delta])
    runs[f].expect(count, 'count');
  // The dictionaries: their sizes bound the indexes, so they are counted first.
  const streams = runs[F.stream_smmu].countAtMost(count, 'count');
  const shapes = runs[F.shape_word0_lo].countAtMost(count, 'count');
  runs[F.stream_smmu].expect(streams, 'the number of streams');
  runs[F.stream_word0_hi].expect(streams, 'the number of streams');
  runs[F.stream_ssid].expect(streams, 'the number of streams');
  runs[F.shape_word0_lo].expect(shapes, 'the number of shapes');
  runs[F.shape_word1_hi].expect(shapes, 'the number of shapes');
  const smmuOf = new Uint16Array(streams);
  const sid = new Uint32Array(streams);
  const ssid = new Uint32Array(streams);
  for (let s = 0; s < streams; s++) {
    smmuOf[s] = runs[F.stream_smmu].nextBelow(names.length);
    sid[s] = runs[F.stream_word0_hi].nextBelow(TWO32);
    ssid[s] = runs[F.stream_ssid].nextBelow(TWO20);
  }
  const lo12 = new Uint32Array(shapes);
  const h1lo = new Uint32Array(shapes);
  const h1hi = new Uint32Array(shapes);
  for (let h = 0; h < shapes; h++) {
    lo12[h] = runs[F.shape_word0_lo].nextBelow(4096);
    h1lo[h] = runs[F.shape_word1_hi].next();
    h1hi[h] = runs[F.shape_word1_hi].hi;
    if (h1hi[h] >= TWO16) throw new BatchDecodeError('shape_word1_hi beyond 2^48');
  }
  for (let f = F.stream_smmu; f <= F.shape_word1_hi; f++) if (f !== F.stream_index) runs[f].end();
  out?.setBase(t0);
  const pages = new Float64Array(streams);
  const w3 = new Uint32Array(2 * streams);
  const stags = new Int32Array(names.length);
  const [ts, si, hi, st, pd, ao, d3] = [12, 16, 19, 20, 21, 22, 23].map((f) => runs[f]);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (i > 0) {
      ts.next();
      offset += unzigzag(ts.lo, ts.hi, 'timestamp delta') * unit;
      if (!Number.isSafeInteger(offset)) throw new BatchDecodeError('timestamp beyond 2^53 ns of event 0');
    }
    const s = si.nextBelow(streams);
    const h = hi.nextBelow(shapes);
    const smmu = smmuOf[s];
    let stag = 0;
    const z = st.next();
    if (st.hi !== 0 || z > 2 * TWO16) throw new BatchDecodeError(`stag ${z} out of range`);
    if (z !== 0) {
      stag = stags[smmu] + (((z - 1) >>> 1) ^ -((z - 1) & 1));
      if (stag < 1 || stag >= TWO16) throw new BatchDecodeError(`STAG ${stag} out of range`);
      stags[smmu] = stag;
    }
    pd.next();
    const page = pages[s] + unzigzag(pd.lo, pd.hi, 'addr_page_delta');
    if (page < 0 || page >= 2 ** 52) throw new BatchDecodeError(`address page ${page} out of range`);
    pages[s] = page;
    const offs = ao.nextBelow(4096);
    d3.next();
    if (out === null) continue;
    const w = out.appendOffset(offset, ids[smmu]);
    const words = out.wordArray;
    words[w] = ((ssid[s] << 12) | lo12[h]) >>> 0;
    words[w + 1] = sid[s];
    // shape_word1_hi = word1 bits 63:16: its low 16 bits go to word1 bits 31:16.
    words[w + 2] = (((h1lo[h] & 0xffff) << 16) | stag) >>> 0;
    words[w + 3] = ((h1lo[h] >>> 16) | (h1hi[h] << 16)) >>> 0;
    words[w + 4] = ((page % TWO20) * 4096 + offs) >>> 0;
    words[w + 5] = Math.floor(page / TWO20);
    addDelta64(d3.lo, d3.hi, w3[2 * s], w3[2 * s + 1]);
    words[w + 6] = w3[2 * s] = sum64.lo;
    words[w + 7] = w3[2 * s + 1] = sum64.hi;
  }
  for (const run of [ts, si, hi, st, pd, ao, d3]) run.end();
  releaseRuns();
}
