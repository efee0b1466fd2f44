// EventBatch <-> bytes. The envelope (identity, source, losses) goes through the generated
// protobufjs classes; the event columns, which are nearly all of the bytes, are written and
// read here directly from 32-bit word halves (see EventColumns in telemetry.proto for the
// delta/XOR coding). test/unit/batch-codec.test.ts checks the bytes against the generated code.
import Long from 'long';
import { BatchDecodeError } from './batch-read';
import { type EventBlock, EventBlockBuilder } from './event-block';
import { encodeFieldColumns, FIELD_CODING, readFieldColumns } from './field-columns';
import { type LossReason, type SourceKind, v1 } from './index';
import { ByteReader, ByteWriter, WIRE_LEN, WIRE_VARINT } from './wire';
import { COLUMN_FIELDS, encodeWordColumns, readWordColumns, WORD_CODING } from './word-columns';

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
  /** Stands in for the damaged batch of this sequence (telemetry.proto, replaces_damaged). */
  replacesDamaged?: boolean;
}

/** Field numbers of EventBatch and EventColumns (checked against the .proto by a unit test). */
export const BATCH_FIELDS = {
  agent: 1,
  sequence: 2,
  source: 3,
  lost: 4,
  events: 5,
  created_unix_ns: 6,
  replaces_damaged: 7,
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
export type ColumnCoding = typeof WORD_CODING | typeof FIELD_CODING;
export { BatchDecodeError, COLUMN_FIELDS, FIELD_CODING, WORD_CODING };

/** `coding`: how the events are coded; field columns unless the readers know only word columns. */
export function encodeBatch(b: Batch, coding: ColumnCoding = FIELD_CODING): Uint8Array {
  // Fields 1-4 through the generated code, then 5 to 7 here, in field order: the result is
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
  if (b.replacesDamaged) {
    out.tag(BATCH_FIELDS.replaces_damaged, WIRE_VARINT);
    out.uint(1);
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

  encodeWordColumns(e, col);
  return out;
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
      } else if (field === BATCH_FIELDS.replaces_damaged && wire === WIRE_VARINT) {
        r.varint64();
        b.replacesDamaged = r.lo !== 0 || r.hi !== 0;
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

/** count, smmu_names and coding of an EventColumns message, checked against the limits. */
function columnHeader(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: DecodeLimits,
): [number, string[], ColumnCoding] {
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
  return [count, names, coding as ColumnCoding];
}

/** The reader of each coding; it checks all of a message, and fills `out` unless it is null. */
const READERS = { [WORD_CODING]: readWordColumns, [FIELD_CODING]: readFieldColumns };

/** decodeColumns' checks without building its events. */
function checkColumns(buf: Uint8Array, start: number, end: number, limits: DecodeLimits): EventBlock {
  const [count, names, coding] = columnHeader(buf, start, end, limits);
  READERS[coding](buf, start, end, count, names, null);
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

function decodeColumns(buf: Uint8Array, start: number, end: number, limits: DecodeLimits): EventBlock {
  const [count, names, coding] = columnHeader(buf, start, end, limits);
  const out = new EventBlockBuilder(count);
  READERS[coding](buf, start, end, count, names, out);
  return out.finish();
}
