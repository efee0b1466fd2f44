// Bounded reading of a trace.dat: every offset and size the file states is checked against
// the file's size (or the enclosing buffer's length) before it is used, in plain arithmetic on
// numbers below 2^53, so a truncated or garbled file ends with a DatError naming what was cut,
// never a huge allocation, a read past the end or a loop that does not advance.
import { readSync } from 'node:fs';

/** Largest metadata block read into memory (header page, formats, options, one chunk). */
export const MAX_BLOCK_BYTES = 64 << 20;

export class DatError extends Error {}

/** A little-endian cursor over bytes of the file; every read is range-checked. */
export class ByteCursor {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    /** File offset of buf[0], for messages (-1: decompressed data). */
    private readonly base: number,
    private readonly what: string,
  ) {}

  get left(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): number {
    if (n > this.left) {
      const at = this.base >= 0 ? `file offset ${this.base + this.pos}` : `offset ${this.pos}`;
      throw new DatError(`${this.what}: ${field} (${n} bytes) at ${at} runs past the end`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u16(field: string): number {
    return this.buf.readUInt16LE(this.need(2, field));
  }

  u32(field: string): number {
    return this.buf.readUInt32LE(this.need(4, field));
  }

  /** A u64 that must fit a JS number exactly (offsets, sizes: files are far below 2^53). */
  u64(field: string): number {
    const v = this.buf.readBigUInt64LE(this.need(8, field));
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new DatError(`${this.what}: ${field} ${v} is out of range`);
    return Number(v);
  }

  bytes(n: number, field: string): Buffer {
    const at = this.need(n, field);
    return this.buf.subarray(at, at + n);
  }

  /** A NUL-terminated string (the NUL is consumed). */
  cstring(field: string): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new DatError(`${this.what}: ${field} has no terminating NUL`);
    const s = this.buf.toString('latin1', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  /** Skips `n` bytes (checked). */
  skip(n: number, field: string): void {
    this.need(n, field);
  }
}

/** The file: an fd and its size; reads whole blocks after checking them against the size. */
export class DatFile {
  constructor(
    readonly fd: number,
    readonly size: number,
    readonly path: string,
  ) {}

  /** Checks that [offset, offset + length) lies inside the file. */
  check(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      throw new DatError(`${this.path}: ${what}: offset ${offset} / size ${length} invalid`);
    if (offset > this.size || length > this.size - offset)
      throw new DatError(
        `${this.path}: ${what} at offset ${offset}, ${length} bytes, ends past the end of the ` +
          `${this.size}-byte file (truncated?)`,
      );
  }

  /** Bytes [offset, offset + length) of the file, at most MAX_BLOCK_BYTES. */
  read(offset: number, length: number, what: string): Buffer {
    this.check(offset, length, what);
    if (length > MAX_BLOCK_BYTES) throw new DatError(`${this.path}: ${what}: ${length} bytes is too large`);
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n <= 0) throw new DatError(`${this.path}: ${what}: file ended while reading`);
      done += n;
    }
    return buf;
  }

  /** A cursor over bytes [offset, min(offset + length, size)). */
  cursor(offset: number, length: number, what: string): ByteCursor {
    const n = Math.max(0, Math.min(length, this.size - offset));
    return new ByteCursor(this.read(offset, n, what), offset, `${this.path}: ${what}`);
  }
}
