// What the readers of both EventColumns codings share (batch-codec.ts, field-columns.ts): the
// error that refuses a batch and the growing column a varint field is read into.
import { type ByteReader, readVarint, varint, WireError } from './wire';

/** Why a batch is refused; `reason` labels the collector's rejection metric. */
export class BatchDecodeError extends WireError {
  constructor(
    message: string,
    readonly reason: 'malformed' | 'lost_out_of_range' | 'loss_reason_out_of_range' = 'malformed',
  ) {
    super(message);
  }
}

/** Columns as read: packed or unpacked elements land in the same arrays, at most `cap` of them. */
export class Column {
  lo = new Uint32Array(0);
  hi = new Uint32Array(0);
  n = 0;
  cap = 0;
  constructor(cap: number) {
    this.reset(cap);
  }
  /** Empties the column for a message with room for `cap` elements, keeping its memory when it fits. */
  reset(cap: number): this {
    if (this.lo.length < cap) {
      this.lo = new Uint32Array(cap);
      this.hi = new Uint32Array(cap);
    }
    this.n = 0;
    this.cap = cap;
    return this;
  }
  /** Appends the elements of a packed field, buf[start, end): one-byte varints without a call. */
  pushPacked(buf: Uint8Array, start: number, end: number, field: string): void {
    const { lo, hi, cap } = this;
    let n = this.n;
    let p = start;
    while (p < end) {
      if (n >= cap) throw new BatchDecodeError(`${field} has more elements than count`);
      const b = buf[p];
      if (b < 0x80) {
        lo[n] = b;
        hi[n] = 0;
        p++;
      } else {
        p = readVarint(buf, p, end);
        lo[n] = varint.lo;
        hi[n] = varint.hi;
      }
      n++;
    }
    this.n = n;
  }
  push(r: ByteReader, field: string): void {
    if (this.n >= this.cap) throw new BatchDecodeError(`${field} has more elements than count`);
    r.varint64();
    this.lo[this.n] = r.lo;
    this.hi[this.n] = r.hi;
    this.n++;
  }
}
