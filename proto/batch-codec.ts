// EventBatch <-> bytes. The envelope (identity, source, losses) goes through the generated
// protobufjs classes; the event columns, which are nearly all of the bytes, are written and
// read here directly from 32-bit word halves (see EventColumns in telemetry.proto for the
// delta/XOR coding). test/unit/batch-codec.test.ts checks the bytes against the generated code.
import Long from 'long';
import { BatchDecodeError, Column } from './batch-read';
import { type EventBlock, EventBlockBuilder, WORDS_PER_RECORD } from './event-block';
import { decodeFieldColumns, encodeFieldColumns, FIELD_CODING } from './field-columns';
import { type LossReason, type SourceKind, v1 } from './index';
import {
  addDelta64,
  ByteReader,
  ByteWriter,
  sum64,
  WIRE_LEN,
  WIRE_VARINT,
  WireError,
  writeDelta64,
} from './wire';

/**
 * A uint64 of the envelope kept exactly: a number up to 2^53 - 1, a bigint above (the decoder
 * gives a bigint only where a number would round).
 */
export type U64 = number | bigint;

/** A batch as the pipeline stages see it. */
export interface Batch {
  host: string;
  agentId: string;
  epoch: U64;
  sequence: U64;
  sourceKind: SourceKind;
  sourceEvent: string;
  /** Lost events by reason since the previous batch. */
  lost: Map<LossReason, number>;
  events: EventBlock;
  createdUnixNs: bigint;
}

/** Field numbers of EventBatch and EventColumns (checked against the .proto by a unit test). */
export const BATCH_FIELDS = { agent: 1, sequence: 2, source: 3, lost: 4, events: 5, created_unix_ns: 6 };
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

export interface DecodeLimits {
  /** Most events a batch may hold. */
  maxEvents: number;
  /**
   * Check the event columns' structure (count, element counts, SMMU indexes, timestamp deltas)
   * as a full decode does, without rebuilding the events: `events` then has `count` and
   * `smmuNames` but empty per-event arrays. For relays that pass the bytes on (the collector).
   */
  structureOnly?: boolean;
}

/**
 * Most events a batch may report lost for one reason (telemetry.proto, LostEvents.count): far
 * above any real loss between two batches, low enough that sums of them stay exact.
 */
export const MAX_LOST_PER_REASON = 2 ** 32 - 1;
/** Highest loss reason accepted: unknown reasons up to it are kept, so a host has at most 256. */
export const MAX_LOSS_REASON = 255;

/** A uint64 as protobufjs writes it (bigints go through Long, exactly). */
export function u64Long(v: U64): number | Long {
  return typeof v === 'bigint' ? Long.fromString(v.toString(), true) : v;
}

/** The uint64 hi:lo as a U64. */
function exactU64(lo: number, hi: number): U64 {
  return hi < 0x200000 ? hi * TWO32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
}

function longU64(v: number | Long): U64 {
  return Long.isLong(v) ? exactU64(v.low >>> 0, v.high >>> 0) : v;
}

const TWO32 = 0x100000000;

/** EventColumns codings (telemetry.proto, EventColumns.coding): 0 word columns, 2 field columns. */
export const WORD_CODING = 0;
export type ColumnCoding = typeof WORD_CODING | typeof FIELD_CODING;
export { BatchDecodeError, FIELD_CODING };

/** `coding`: how the events are coded; field columns unless the readers know only word columns. */
export function encodeBatch(b: Batch, coding: ColumnCoding = FIELD_CODING): Uint8Array {
  // Fields 1-4 through the generated code, then 5 and 6 here, in field order: the result is
  // byte-identical to what the generated EventBatch.encode writes for the same message.
  const envelope = v1.EventBatch.encode({
    agent: { host: b.host, agent_id: b.agentId, epoch: u64Long(b.epoch) },
    sequence: u64Long(b.sequence),
    source: { kind: b.sourceKind, event: b.sourceEvent },
    lost: [...b.lost].filter(([, n]) => n > 0).map(([reason, count]) => ({ reason, count })),
  }).finish();
  const out = new ByteWriter(envelope.length + b.events.count * 14 + 64);
  out.bytes(envelope);
  out.lenField(BATCH_FIELDS.events, encodeColumns(b.events, coding));
  if (b.createdUnixNs !== 0n) {
    out.tag(BATCH_FIELDS.created_unix_ns, WIRE_VARINT);
    out.varint64(Number(b.createdUnixNs & 0xffffffffn), Number((b.createdUnixNs >> 32n) & 0xffffffffn));
  }
  return out.finish();
}

/** Scratch writers reused across calls: encoding is single-threaded. */
const col = Array.from({ length: 9 }, () => new ByteWriter(4096));

export function encodeColumns(e: EventBlock, coding: ColumnCoding = FIELD_CODING): ByteWriter {
  for (const w of col) w.reset();
  const out = col[0];
  const n = e.count;
  if (n === 0) return out;
  out.tag(COLUMN_FIELDS.count, WIRE_VARINT);
  out.uint(n);
  for (const name of e.smmuNames) out.string(COLUMN_FIELDS.smmu_names, name);
  if (coding === FIELD_CODING) {
    encodeFieldColumns(e, out, () => new ByteWriter(4096));
    return out;
  }

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
  return out;
}

function writeSint64(w: ByteWriter, v: bigint): void {
  const z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  w.varint64(Number(z & 0xffffffffn), Number(z >> 32n));
}

/** Decodes and validates a batch; throws BatchDecodeError saying what is wrong. */
export function decodeBatch(bytes: Uint8Array, limits: DecodeLimits = { maxEvents: 1 << 20 }): Batch {
  const r = new ByteReader(bytes);
  const b: Batch = {
    host: '',
    agentId: '',
    epoch: 0,
    sequence: 0,
    sourceKind: 0,
    sourceEvent: '',
    lost: new Map(),
    events: new EventBlockBuilder(1).finish(),
    createdUnixNs: 0n,
  };
  try {
    while (!r.done) {
      const key = r.uint();
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (field === BATCH_FIELDS.sequence && wire === WIRE_VARINT) {
        r.varint64();
        b.sequence = exactU64(r.lo, r.hi);
      } else if (field === BATCH_FIELDS.created_unix_ns && wire === WIRE_VARINT) {
        r.varint64();
        b.createdUnixNs = (BigInt(r.hi) << 32n) | BigInt(r.lo);
      } else if (wire === WIRE_LEN && field >= 1 && field <= 5) {
        const [s, e] = r.len();
        const sub = bytes.subarray(s, e);
        if (field === BATCH_FIELDS.agent) {
          const a = v1.AgentIdentity.decode(sub);
          b.host = a.host;
          b.agentId = a.agent_id;
          b.epoch = longU64(a.epoch);
        } else if (field === BATCH_FIELDS.source) {
          const src = v1.Source.decode(sub);
          b.sourceKind = src.kind;
          b.sourceEvent = src.event;
        } else if (field === BATCH_FIELDS.lost) {
          const l = v1.LostEvents.decode(sub);
          addLost(b.lost, l.reason, longU64(l.count));
        } else if (field === BATCH_FIELDS.events) {
          b.events = limits.structureOnly
            ? checkColumns(bytes, s, e, limits)
            : decodeColumns(bytes, s, e, limits);
        } else {
          throw new BatchDecodeError(`field ${field} has the wrong wire type`);
        }
      } else {
        r.skip(wire);
      }
    }
  } catch (err) {
    if (err instanceof BatchDecodeError) throw err;
    throw new BatchDecodeError(`malformed EventBatch: ${(err as Error).message}`);
  }
  if (!b.agentId || !b.host) throw new BatchDecodeError('EventBatch without agent host and agent_id');
  if (b.sequence < 1) throw new BatchDecodeError('EventBatch sequence must be >= 1');
  return b;
}

/** Adds a LostEvents entry; refuses counts no accounting could sum exactly. */
function addLost(lost: Map<LossReason, number>, reason: number, count: U64): void {
  if (!Number.isInteger(reason) || reason < 0 || reason > MAX_LOSS_REASON) {
    throw new BatchDecodeError(
      `loss reason ${reason} outside 0..${MAX_LOSS_REASON}`,
      'loss_reason_out_of_range',
    );
  }
  const sum = (lost.get(reason) ?? 0) + Number(count);
  if (typeof count === 'bigint' || sum > MAX_LOST_PER_REASON) {
    throw new BatchDecodeError(
      `${count} events lost for reason ${reason} exceed the limit of ${MAX_LOST_PER_REASON} per batch`,
      'lost_out_of_range',
    );
  }
  lost.set(reason, sum);
}

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

/** count, smmu_names and coding of an EventColumns message, checked against the limits. */
function columnHeader(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: DecodeLimits,
): [number, string[], number] {
  // Read count first: it sizes everything else (fields may come in any order).
  let count = 0;
  let coding = WORD_CODING;
  const names: string[] = [];
  const scan = new ByteReader(buf, start, end);
  while (!scan.done) {
    const key = scan.uint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === COLUMN_FIELDS.count && wire === WIRE_VARINT) count = scan.uint();
    else if (field === COLUMN_FIELDS.coding && wire === WIRE_VARINT) coding = scan.uint();
    else if (field === COLUMN_FIELDS.smmu_names && wire === WIRE_LEN) {
      const [s, e] = scan.len();
      names.push(Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('utf8'));
    } else scan.skip(wire);
  }
  if (count > limits.maxEvents)
    throw new BatchDecodeError(`${count} events exceed the limit of ${limits.maxEvents}`);
  if (count > 0 && names.length === 0) throw new BatchDecodeError('events without smmu_names');
  if (names.length > 0xffff) throw new BatchDecodeError('more than 65535 smmu_names');
  if (coding !== WORD_CODING && coding !== FIELD_CODING)
    throw new BatchDecodeError(`EventColumns coding ${coding} unknown (this reader knows 0 and 2)`);
  return [count, names, coding];
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
 * decodeColumns' checks without its output: element counts come from counting varint ends,
 * and only smmu_index and timestamp_delta_ns (whose values are checked) are decoded.
 */
function checkColumns(buf: Uint8Array, start: number, end: number, limits: DecodeLimits): EventBlock {
  const [count, names, coding] = columnHeader(buf, start, end, limits);
  if (coding === FIELD_CODING) {
    // No cheaper check of the field columns yet: decode, keep count and names only.
    decodeFieldColumns(buf, start, end, count, names);
    return headerOnly(count, names);
  }
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
  return headerOnly(count, names);
}

/** A block with `count` and `smmuNames` but empty per-event arrays (structure-only decoding). */
function headerOnly(count: number, names: string[]): EventBlock {
  return {
    count,
    baseNs: 0n,
    offsetNs: new Float64Array(0),
    words: new Uint32Array(0),
    smmuIndex: new Uint16Array(0),
    smmuNames: names,
  };
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

function decodeColumns(buf: Uint8Array, start: number, end: number, limits: DecodeLimits): EventBlock {
  const [count, names, coding] = columnHeader(buf, start, end, limits);
  if (coding === FIELD_CODING) return decodeFieldColumns(buf, start, end, count, names);
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
        const inner = new ByteReader(buf, s, e);
        while (!inner.done) c.push(inner, COLUMN_NAMES[field]);
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
