// What the readers of both EventColumns codings share (batch-codec.ts, field-columns.ts,
// word-columns.ts): the error that refuses a batch, the run of varints a repeated field is read
// from in place, and the loop that gathers a message's fields into their runs.
import { ByteReader, readVarint, varint, WIRE_LEN, WIRE_VARINT, WireError } from './wire';

/** Why a batch is refused; `reason` labels the collector's rejection metric. */
export class BatchDecodeError extends WireError {
  constructor(
    message: string,
    readonly reason: 'malformed' | 'lost_out_of_range' | 'loss_reason_out_of_range' = 'malformed',
  ) {
    super(message);
  }
}

const NO_BYTES = new Uint8Array(0);

/**
 * The elements of one repeated varint field, read in place in order with next(). A field comes
 * as one packed piece from every encoder we know, and is then read where it lies; it may also
 * come unpacked or in several pieces (protobuf allows both), which are joined into one run first.
 * Elements are not counted up front: a run read `expected` times must end exactly there
 * (next() refuses reading past its end, end() refuses elements left over).
 */
export class VarintRun {
  /** The run's varints; the last one is complete (checked by seal()). */
  buf: Uint8Array = NO_BYTES;
  p = 0;
  /** Halves of the element the last next() read. */
  lo = 0;
  hi = 0;
  private expected = 0;
  private what = '';
  private readonly pieces: number[] = [];
  constructor(readonly field: string) {}

  /** Forgets the message before (holding no reference to its bytes). */
  reset(): this {
    this.pieces.length = 0;
    this.buf = NO_BYTES;
    return this;
  }
  /** Adds msg[start, end): a packed piece, or the bytes of one unpacked element. */
  add(start: number, end: number): void {
    this.pieces.push(start, end);
  }
  /** Joins the pieces of `msg` into the run and rewinds. */
  seal(msg: Uint8Array): void {
    const pieces = this.pieces;
    let total = 0;
    for (let k = 0; k < pieces.length; k += 2) {
      const s = pieces[k];
      const e = pieces[k + 1];
      if (e > s && msg[e - 1] >= 0x80) throw new BatchDecodeError(`${this.field}: truncated varint`);
      total += e - s;
    }
    if (pieces.length === 2) this.buf = msg.subarray(pieces[0], pieces[1]);
    else if (pieces.length === 0) this.buf = NO_BYTES;
    else {
      const joined = new Uint8Array(total);
      for (let k = 0, at = 0; k < pieces.length; at += pieces[k + 1] - pieces[k], k += 2)
        joined.set(msg.subarray(pieces[k], pieces[k + 1]), at);
      this.buf = joined;
    }
    this.p = 0;
  }
  /** How many elements the run holds: its bytes below 0x80 (a scan; branch-free). */
  count(): number {
    const b = this.buf;
    const len = b.length;
    let n = 0;
    for (let p = 0; p < len; p++) n += (b[p] >>> 7) ^ 1;
    return n;
  }
  /** count(), refused above `cap` (`what`: where that bound comes from). */
  countAtMost(cap: number, what: string): number {
    const n = this.count();
    if (n > cap) throw new BatchDecodeError(`${this.field} has more elements than ${what}`);
    return n;
  }
  /** Says how many elements the run must hold (`what`: where that number comes from). */
  expect(n: number, what: string): this {
    this.expected = n;
    this.what = what;
    return this;
  }
  /** The next element: its low half, returned and in `lo`; the high half in `hi`. */
  next(): number {
    const b = this.buf[this.p];
    if (b < 0x80) {
      this.p++;
      this.lo = b;
      this.hi = 0;
      return b;
    }
    const b1 = this.buf[this.p + 1];
    if (b1 < 0x80) {
      this.p += 2;
      this.lo = (b & 0x7f) | (b1 << 7);
      this.hi = 0;
      return this.lo;
    }
    if (this.p >= this.buf.length) throw this.mismatch();
    this.p = readVarint(this.buf, this.p, this.buf.length);
    this.lo = varint.lo;
    this.hi = varint.hi;
    return varint.lo;
  }
  /** The next element, refused unless below `size`. */
  nextBelow(size: number): number {
    const v = this.next();
    if (this.hi !== 0 || v >= size)
      throw new BatchDecodeError(`${this.field} ${v} out of range (${size} entries)`);
    return v;
  }
  /** Refuses elements left after the expected number was read. */
  end(): void {
    if (this.p !== this.buf.length) throw this.mismatch();
  }
  private mismatch(): BatchDecodeError {
    return new BatchDecodeError(
      `${this.field} has ${this.count()} elements, ${this.what} is ${this.expected}`,
    );
  }
}

/**
 * Reads the fields of message buf[start, end): fields first..last, packed or not, into
 * runs[field] (then sealed); any other field goes to `other`, which reads it from `r` and returns
 * true, or returns false to have it skipped.
 */
export function readRuns(
  buf: Uint8Array,
  start: number,
  end: number,
  runs: readonly VarintRun[],
  first: number,
  last: number,
  other: (r: ByteReader, field: number, wire: number) => boolean = () => false,
): void {
  for (let f = first; f <= last; f++) runs[f].reset();
  const r = new ByteReader(buf, start, end);
  while (!r.done) {
    const key = r.uint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field >= first && field <= last) {
      if (wire === WIRE_LEN) {
        const [s, e] = r.len();
        runs[field].add(s, e);
      } else if (wire === WIRE_VARINT) {
        const s = r.pos;
        r.varint64();
        runs[field].add(s, r.pos);
      } else throw new BatchDecodeError(`${runs[field].field} has the wrong wire type`);
    } else if (!other(r, field, wire)) r.skip(wire);
  }
  for (let f = first; f <= last; f++) runs[f].seal(buf);
}

const TWO32 = 0x100000000;

/** A zigzag-coded sint64 as a number, refused beyond 2^53 (`what` names it in the error). */
export function unzigzag(lo: number, hi: number, what: string): number {
  const neg = lo & 1;
  const l = ((lo >>> 1) | (hi << 31)) >>> 0;
  const h = hi >>> 1;
  if (h >= 0x200000) throw new BatchDecodeError(`${what} beyond 2^53`);
  const m = h * TWO32 + l;
  return neg ? -m - 1 : m;
}
