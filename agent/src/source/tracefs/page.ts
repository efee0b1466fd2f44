// Parser of one ring-buffer sub-buffer as read from per_cpu/cpuN/trace_pipe_raw, in the
// manner of libtraceevent's kbuffer-parse.c: no I/O, layout from `events/header_page`,
// a cursor that walks the records without allocating.
//
// Sub-buffer: u64 timestamp, then `commit` (a long: data size in bits 26:0, bit 31 = events
// were missed before this page, bit 30 = their count is stored as a long right after the
// data), then the records. Each record starts with a u32 `type_len:5 | time_delta:27`:
//   1..28  data, payload of type_len * 4 bytes follows
//   0      data, array[0] = payload length + 4, payload follows array[0]
//   29     padding: time_delta 0 = nothing more on this page; else array[0] + 4 bytes to skip.
//          A discarded event keeps its delta (counted); end-of-page filler has delta 1 (not).
//   30     time extend: delta = array[0] << 27 | time_delta, added to the running time
//   31     absolute time stamp: array[0] << 27 | time_delta, 59 bits; the top 5 bits come
//          from the running time (kernel/trace/ring_buffer.c, rb_fix_abs_ts)
// Little-endian kernels only (x86-64, arm64 LE).
//
// Invariant, for any bytes at all: load() + next() until false visits each 4-byte word of
// [header, commit) at most once (every step advances by >= 4 bytes, checked before use, in
// plain arithmetic: no bitwise rounding of a length word that could wrap), so the work per
// page is bounded by the page size; every record yielded lies inside [header, commit), so a
// page yields at most dataSize / 8 records; the first malformed record sets `error` and ends
// the page (counted once by the reader).
import type { PageLayout } from './format';

export const TYPE_DATA_MAX = 28;
export const TYPE_PADDING = 29;
export const TYPE_TIME_EXTEND = 30;
export const TYPE_TIME_STAMP = 31;

const COMMIT_MASK = (1 << 27) - 1;
const TS_SHIFT_MUL = 2 ** 27;
const TS_MSB = 0xf8n << 56n;
const ABS_TS_MASK = (1n << 59n) - 1n;

export class PageCursor {
  /** Page timestamp (trace clock, ns). Valid after a successful load(). */
  timestamp = 0n;
  /** Bytes of record data on the page (commit & COMMIT_MASK). */
  dataSize = 0;
  /** Events were lost between the previous page of this CPU and this one. */
  missedEvents = false;
  /** How many, when the kernel stored the count; -1 when it did not (count unknown). */
  missedCount = 0;
  /** Why parsing stopped early (malformed page or record), undefined when it did not. */
  error: string | undefined;

  /** Current record: byte offset of its payload in `bytes` (starts with u16 common_type). */
  offset = 0;
  /** Current record: payload length in bytes. */
  length = 0;
  /** Current record: ns after `timestamp` (exact below 2^53 ns). */
  delta = 0;
  /** Current record: its type id (common_type, the event's `ID:`). */
  typeId = 0;

  /** The loaded page: `words` views the same bytes as u32 (payloads are 4-byte aligned). */
  bytes: Buffer = Buffer.alloc(0);
  words: Uint32Array = new Uint32Array(0);

  private pos = 0;
  private end = 0;
  private scratch: Buffer | undefined;

  constructor(readonly layout: PageLayout) {}

  /**
   * Loads a sub-buffer (`length` bytes of `page`, default all). Returns false (and sets
   * `error`) when the header is unusable; the page then yields no records.
   */
  load(page: Buffer, length = page.length): boolean {
    const l = this.layout;
    this.error = undefined;
    this.pos = this.end = 0;
    this.missedEvents = false;
    this.missedCount = 0;
    this.dataSize = 0;
    if (length < l.dataOffset || length > page.length) {
      this.error = `page of ${length} bytes is shorter than its ${l.dataOffset}-byte header`;
      return false;
    }
    if ((page.byteOffset & 3) === 0) {
      this.bytes = page;
      if (
        this.words.buffer !== page.buffer ||
        this.words.byteOffset !== page.byteOffset ||
        this.words.length !== page.length >>> 2
      ) {
        this.words = new Uint32Array(page.buffer, page.byteOffset, page.length >>> 2);
      }
    } else {
      // Unaligned view (e.g. a slice of a pooled Buffer): copy once into aligned memory.
      if (!this.scratch || this.scratch.length < length) this.scratch = Buffer.allocUnsafeSlow(length + 3);
      page.copy(this.scratch, 0, 0, length);
      this.bytes = this.scratch;
      this.words = new Uint32Array(this.scratch.buffer, this.scratch.byteOffset, this.scratch.length >>> 2);
    }
    const w = this.words;
    const t = l.timestampOffset >>> 2;
    this.timestamp = (BigInt(w[t + 1]) << 32n) | BigInt(w[t]);
    const commit = w[l.commitOffset >>> 2];
    const size = commit & COMMIT_MASK;
    if (l.dataOffset + size > length) {
      this.error = `commit size ${size} exceeds the ${length - l.dataOffset} data bytes read`;
      return false;
    }
    this.dataSize = size;
    this.missedEvents = (commit & 0x80000000) !== 0;
    if (this.missedEvents) {
      this.missedCount = -1;
      if (commit & 0x40000000) {
        const at = l.dataOffset + size;
        if (at + l.commitSize <= length && (at & 3) === 0) {
          const lo = w[at >>> 2];
          this.missedCount = l.commitSize === 8 ? lo + w[(at >>> 2) + 1] * 2 ** 32 : lo;
        }
      }
    }
    this.pos = l.dataOffset;
    this.end = l.dataOffset + size;
    this.delta = 0;
    return true;
  }

  /** Advances to the next data record; false at the end of the page or on a malformed record. */
  next(): boolean {
    const w = this.words;
    const end = this.end;
    let pos = this.pos;
    while (pos < end) {
      if (pos + 4 > end) return this.fail(pos, 'truncated record header');
      const h = w[pos >>> 2];
      const type = h & 31;
      const d = h >>> 5;
      if (type <= TYPE_DATA_MAX) {
        let payload: number;
        let len: number;
        let next: number;
        if (type === 0) {
          if (pos + 8 > end) return this.fail(pos, 'truncated length word');
          const a = w[(pos >>> 2) + 1];
          // array[0] counts itself: at least 4 + the u16 common_type rounded to a word.
          if (a < 8) return this.fail(pos, `data length word ${a} too small`);
          payload = pos + 8;
          len = a - 4;
          // Range check before rounding: `a` is any u32, the page is small.
          if (len > end - payload) return this.fail(pos, 'record runs past the commit size');
          next = payload + Math.ceil(len / 4) * 4;
        } else {
          payload = pos + 4;
          len = type * 4;
          next = payload + len;
        }
        if (next > end) return this.fail(pos, 'record runs past the commit size');
        this.delta += d;
        this.offset = payload;
        this.length = len;
        this.typeId = w[payload >>> 2] & 0xffff;
        this.pos = next;
        return true;
      }
      if (type === TYPE_PADDING) {
        if (d === 0) {
          pos = end; // null event: the rest of the page holds nothing
          break;
        }
        if (pos + 8 > end) return this.fail(pos, 'truncated padding');
        const skip = w[(pos >>> 2) + 1];
        if (skip > end - pos - 4) return this.fail(pos, 'padding runs past the commit size');
        if (skip < 4 || skip % 4 !== 0) return this.fail(pos, `padding length ${skip} not a whole word`);
        const next = pos + 4 + skip;
        if (d !== 1) this.delta += d; // a discarded event: its delta still counts
        pos = next;
      } else if (type === TYPE_TIME_EXTEND) {
        if (pos + 8 > end) return this.fail(pos, 'truncated time extend');
        this.delta += w[(pos >>> 2) + 1] * TS_SHIFT_MUL + d;
        pos += 8;
      } else {
        if (pos + 8 > end) return this.fail(pos, 'truncated absolute time stamp');
        const now = this.timestamp + BigInt(this.delta);
        let abs = ((BigInt(w[(pos >>> 2) + 1]) << 27n) + BigInt(d)) & ABS_TS_MASK;
        if (now & TS_MSB) {
          abs |= now & TS_MSB;
          if (abs < now) abs += 1n << 59n;
        }
        this.delta = Number(abs - this.timestamp);
        pos += 8;
      }
    }
    this.pos = end;
    return false;
  }

  private fail(pos: number, why: string): false {
    this.error = `${why} at page offset ${pos}`;
    this.pos = this.end;
    return false;
  }
}

/** Timestamp (trace clock ns) of the cursor's current record. Allocates: not for hot paths. */
export function recordTimestamp(c: PageCursor): bigint {
  return c.timestamp + BigInt(c.delta);
}
