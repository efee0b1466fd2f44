// Field access shared by the decoders: resolving a field from a format file into something
// the hot path can read without lookups, and turning string fields into strings without
// allocating for names already seen (SMMU / device names repeat in nearly every record).
import { TracefsError } from '../errors';
import { type EventFormat, type FormatField, findField } from '../format';

/** A u64 field, readable as two u32 words when 4-byte aligned in the payload. */
export interface U64Field {
  readonly offset: number;
  /** offset / 4 when the field is 4-byte aligned, else -1 (read bytewise). */
  readonly word: number;
}

export function u64Field(format: EventFormat, event: string, name: string): U64Field {
  const f = requireField(format, event, name);
  if (f.size !== 8 || f.dataLoc || f.relLoc) {
    throw badFormat(event, `field ${name} is ${f.type} of ${f.size} bytes, expected a 64-bit integer`);
  }
  return { offset: f.offset, word: f.offset % 4 === 0 ? f.offset / 4 : -1 };
}

/** An integer field of 1, 2, 4 or 8 bytes (read as a number; 8-byte values lose bits above 2^53). */
export function intField(format: EventFormat, event: string, name: string): FormatField {
  const f = requireField(format, event, name);
  if (![1, 2, 4, 8].includes(f.size) || f.dataLoc || f.relLoc || f.arrayLength !== undefined) {
    throw badFormat(event, `field ${name} is ${f.type} of ${f.size} bytes, expected an integer`);
  }
  return f;
}

export function readInt(bytes: Buffer, at: number, f: FormatField): number {
  switch (f.size) {
    case 1:
      return f.signed ? bytes.readInt8(at) : bytes[at];
    case 2:
      return f.signed ? bytes.readInt16LE(at) : bytes.readUInt16LE(at);
    case 4:
      return f.signed ? bytes.readInt32LE(at) : bytes.readUInt32LE(at);
    default:
      return Number(f.signed ? bytes.readBigInt64LE(at) : bytes.readBigUInt64LE(at));
  }
}

/** Copies a u64 field of the record at `rec` into dst[w], dst[w + 1] (low, high word). */
export function copyU64(
  bytes: Buffer,
  words: Uint32Array,
  rec: number,
  f: U64Field,
  dst: Uint32Array,
  w: number,
): void {
  if (f.word >= 0) {
    const i = (rec >>> 2) + f.word;
    dst[w] = words[i];
    dst[w + 1] = words[i + 1];
  } else {
    dst[w] = bytes.readUInt32LE(rec + f.offset);
    dst[w + 1] = bytes.readUInt32LE(rec + f.offset + 4);
  }
}

/** Where a string field's bytes are: a __data_loc / __rel_loc descriptor or a fixed char array. */
export interface StringField {
  readonly name: string;
  readonly kind: 'dataLoc' | 'relLoc' | 'fixed';
  readonly offset: number;
  readonly size: number;
}

export function stringField(format: EventFormat, event: string, name: string): StringField {
  const f = requireField(format, event, name);
  if (f.dataLoc || f.relLoc) {
    if (f.size !== 4)
      throw badFormat(event, `string field ${name} has a ${f.size}-byte descriptor, expected 4`);
    return { name, kind: f.dataLoc ? 'dataLoc' : 'relLoc', offset: f.offset, size: 4 };
  }
  if (f.isString) return { name, kind: 'fixed', offset: f.offset, size: f.size };
  throw badFormat(event, `field ${name} is ${f.type}, expected a string (__data_loc char[] or char[N])`);
}

/**
 * Byte range [start, end) of the string of the record at `rec` (payload `len` bytes), without
 * the terminating NUL; writes it to `range` and returns false when the descriptor points
 * outside the record.
 */
export function stringRange(
  bytes: Buffer,
  rec: number,
  len: number,
  f: StringField,
  range: { start: number; end: number },
): boolean {
  let start: number;
  let size: number;
  if (f.kind === 'fixed') {
    start = rec + f.offset;
    size = f.size;
  } else {
    if (f.offset + 4 > len) return false;
    const loc = bytes.readUInt32LE(rec + f.offset);
    size = loc >>> 16;
    start = rec + (loc & 0xffff) + (f.kind === 'relLoc' ? f.offset + 4 : 0);
  }
  const recEnd = rec + len;
  if (start < rec || start + size > recEnd) return false;
  let end = start;
  const limit = start + size;
  while (end < limit && bytes[end] !== 0) end++;
  range.start = start;
  range.end = end;
  return true;
}

interface CachedName<T> {
  bytes: Uint8Array;
  name: string;
  value: T;
}

/**
 * Strings seen recently, matched by their bytes: a record's name costs a short byte compare,
 * and only a new name allocates a string. `derive` computes a per-name value once (e.g. a
 * requester id parsed from a PCI device name).
 */
export class NameCache<T = undefined> {
  private entries: CachedName<T>[] = [];
  /** Name and derived value of the last lookup. */
  name = '';
  value!: T;

  constructor(
    private readonly derive: (name: string) => T,
    private readonly capacity = 64,
  ) {}

  /** Looks up bytes[start, end); sets `name` and `value`. */
  lookup(bytes: Buffer, start: number, end: number): void {
    const n = end - start;
    const entries = this.entries;
    outer: for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const b = e.bytes;
      if (b.length !== n) continue;
      for (let k = 0; k < n; k++) if (b[k] !== bytes[start + k]) continue outer;
      this.name = e.name;
      this.value = e.value;
      return;
    }
    const name = bytes.toString('utf8', start, end);
    this.add(name, Uint8Array.prototype.slice.call(bytes, start, end));
  }

  /** Looks up a name given as a string (text input). */
  lookupString(name: string): void {
    for (const e of this.entries) {
      if (e.name === name) {
        this.name = e.name;
        this.value = e.value;
        return;
      }
    }
    this.add(name, Buffer.from(name, 'utf8'));
  }

  private add(name: string, bytes: Uint8Array): void {
    const value = this.derive(name);
    if (this.entries.length >= this.capacity) this.entries.shift();
    this.entries.push({ bytes, name, value });
    this.name = name;
    this.value = value;
  }
}

/** Splits a hex string of up to 16 digits (with or without 0x) into u32 words; false if not hex. */
export function parseHex64(s: string, out: { lo: number; hi: number }): boolean {
  const h = s.startsWith('0x') || s.startsWith('0X') ? s.slice(2) : s;
  if (h.length === 0 || h.length > 16 || !/^[0-9a-fA-F]+$/.test(h)) return false;
  out.lo = Number.parseInt(h.length > 8 ? h.slice(-8) : h, 16) >>> 0;
  out.hi = h.length > 8 ? Number.parseInt(h.slice(0, -8), 16) >>> 0 : 0;
  return true;
}

function requireField(format: EventFormat, event: string, name: string): FormatField {
  const f = findField(format, name);
  if (!f) throw badFormat(event, `no field ${name}`);
  return f;
}

export function badFormat(event: string, why: string): TracefsError {
  return new TracefsError(
    'BAD_FORMAT',
    `the format of trace event ${event} does not fit its decoder: ${why}`,
    'this kernel declares the event differently from the layout the decoder was written for; ' +
      'compare events/<group>/<event>/format with the decoder in agent/src/source/tracefs/events/',
  );
}
