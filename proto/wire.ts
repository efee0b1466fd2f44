// Minimal protobuf wire primitives for the hot path: varints from 32-bit halves, so 64-bit
// record words never become bigint or Long objects. The generated protobufjs code handles
// everything else; tests check both produce the same bytes.

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

const TWO32 = 0x100000000;

export class ByteWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  /** Unsigned varint of a non-negative integer below 2^53. */
  uint(v: number): void {
    if (v >= 0 && v < 0x80 && this.pos < this.buf.length) {
      this.buf[this.pos++] = v;
      return;
    }
    this.ensure(10);
    if (v < TWO32) {
      this.varint64(v >>> 0, 0);
    } else {
      this.varint64(v >>> 0, Math.floor(v / TWO32) >>> 0);
    }
  }

  /** Unsigned varint of the 64-bit value hi:lo. */
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (hi !== 0) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 0x7f) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  /** Zigzag varint (sint64) of a signed integer of magnitude below 2^53. */
  sint(v: number): void {
    if (v >= -0x40 && v < 0x40 && this.pos < this.buf.length) {
      this.buf[this.pos++] = (v << 1) ^ (v >> 31);
      return;
    }
    if (v >= -0x40000000 && v < 0x40000000) {
      this.varint64(((v << 1) ^ (v >> 31)) >>> 0, 0);
      return;
    }
    const neg = v < 0;
    const m = neg ? -v - 1 : v; // zigzag(v) = 2|v|-1 for negative v, 2v otherwise
    const lo = m >>> 0;
    const hi = Math.floor(m / TWO32) >>> 0;
    this.varint64(((lo << 1) | (neg ? 1 : 0)) >>> 0, ((hi << 1) | (lo >>> 31)) >>> 0);
  }

  /** Zigzag varint (sint64) of any signed 64-bit value (slow: for one value per message). */
  sint64(v: bigint): void {
    const z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    this.varint64(Number(z & 0xffffffffn), Number(z >> 32n));
  }

  tag(field: number, wire: number): void {
    this.uint(field * 8 + wire);
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** A length-delimited field holding what `inner` wrote so far. Skipped when empty. */
  lenField(field: number, inner: ByteWriter): void {
    if (inner.pos === 0) return;
    this.tag(field, WIRE_LEN);
    this.uint(inner.pos);
    this.bytes(inner.buf.subarray(0, inner.pos));
  }

  string(field: number, s: string): void {
    const data = Buffer.from(s, 'utf8');
    this.tag(field, WIRE_LEN);
    this.uint(data.length);
    this.bytes(data);
  }

  reset(): void {
    this.pos = 0;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** The signed 64-bit value of the zigzag varint hi:lo (ByteWriter.sint64's inverse). */
export function unzigzag64(lo: number, hi: number): bigint {
  const z = (BigInt(hi) << 32n) | BigInt(lo);
  return (z >> 1n) ^ -(z & 1n);
}

/** Where readVarint leaves the value it read (no allocation per call). */
export const varint = { lo: 0, hi: 0 };

/** Reads the varint at buf[p] (ending before `end`) into `varint`; returns the position after it. */
export function readVarint(buf: Uint8Array, p: number, end: number): number {
  let lo = 0;
  let hi = 0;
  let shift = 0;
  let byte: number;
  do {
    if (p >= end) throw new WireError('truncated varint');
    byte = buf[p++];
    if (shift < 28) {
      lo |= (byte & 0x7f) << shift;
    } else if (shift === 28) {
      lo |= (byte & 0x0f) << 28;
      hi |= (byte & 0x7f) >>> 4;
    } else if (shift < 64) {
      hi |= (byte & 0x7f) << (shift - 32);
    } else {
      throw new WireError('varint longer than 10 bytes');
    }
    shift += 7;
  } while (byte & 0x80);
  varint.lo = lo >>> 0;
  varint.hi = hi >>> 0;
  return p;
}

export class ByteReader {
  pos: number;
  /** Low and high halves of the last varint64() result. */
  lo = 0;
  hi = 0;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a varint into lo/hi. */
  varint64(): void {
    this.pos = readVarint(this.buf, this.pos, this.end);
    this.lo = varint.lo;
    this.hi = varint.hi;
  }

  /** Unsigned varint as a number; throws above 2^53. */
  uint(): number {
    this.varint64();
    if (this.hi >= 0x200000) throw new WireError('integer above 2^53');
    return this.hi * TWO32 + this.lo;
  }

  /** Zigzag varint as a signed number; throws beyond +-2^53. */
  sint(): number {
    this.varint64();
    const neg = this.lo & 1;
    const lo = ((this.lo >>> 1) | (this.hi << 31)) >>> 0;
    const hi = this.hi >>> 1;
    if (hi >= 0x200000) throw new WireError('integer beyond 2^53');
    const m = hi * TWO32 + lo;
    return neg ? -m - 1 : m;
  }

  /** Bounds of a length-delimited value; advances past it. */
  len(): [number, number] {
    const n = this.uint();
    const start = this.pos;
    if (start + n > this.end) throw new WireError('length-delimited field runs past the end');
    this.pos = start + n;
    return [start, start + n];
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_I64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.len();
        return;
      case WIRE_I32:
        this.pos += 4;
        break;
      default:
        throw new WireError(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new WireError('fixed-size field runs past the end');
  }
}

/** Writes zigzag(a - p) of two 64-bit values hi:lo (two's complement, modulo 2^64) as a varint. */
export function writeDelta64(out: ByteWriter, al: number, ah: number, pl: number, ph: number): void {
  let dl = al - pl;
  let dh = ah - ph;
  if (dl < 0) {
    dl += TWO32;
    dh -= 1;
  }
  dh >>>= 0;
  const sign = dh >>> 31; // zigzag: (d << 1) ^ (d >> 63)
  out.varint64(((dl << 1) ^ -sign) >>> 0, (((dh << 1) | (dl >>> 31)) ^ -sign) >>> 0);
}

/** Where addDelta64 leaves its result (no allocation per call). */
export const sum64 = { lo: 0, hi: 0 };

/** p + unzigzag(z) modulo 2^64, for the 64-bit values hi:lo; the result goes to sum64. */
export function addDelta64(zl: number, zh: number, pl: number, ph: number): void {
  const neg = zl & 1;
  const dl = (((zl >>> 1) | (zh << 31)) ^ -neg) >>> 0;
  const dh = ((zh >>> 1) ^ -neg) >>> 0;
  const sl = pl + dl;
  sum64.lo = sl >>> 0;
  sum64.hi = (ph + dh + (sl >= TWO32 ? 1 : 0)) >>> 0;
}
