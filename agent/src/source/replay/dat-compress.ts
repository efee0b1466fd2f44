// trace.dat v7 compression (trace-cmd lib/trace-cmd/trace-compress.c): the file header names
// the algorithm ("zstd", "zlib" or "none"). A compressed metadata section holds one block
// (u32 compressed size, u32 uncompressed size, data); a compressed flyrecord CPU range holds
// u32 chunk count, then per chunk the same two sizes and the data. Chunks are inflated one at a
// time into a temporary file (as trace-cmd does), so memory stays bounded by one chunk and the
// page replay reads it like uncompressed data.
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflate } from 'node:zlib';
import { decompress as zstdDecompress } from '@mongodb-js/zstd';
import { ByteCursor, DatError, type DatFile, MAX_BLOCK_BYTES } from './dat-bytes';
import { zstdFrame } from './zstd-frame';

const inflateAsync = promisify(inflate);

/**
 * Most a zstd block may inflate to by its block headers (the binding has no output limit, so this
 * is checked first). Twice the largest block: a compressed block counts as its 128 KiB maximum.
 */
const MAX_ZSTD_BOUND = 2 * MAX_BLOCK_BYTES;

export type Compression = 'none' | 'zlib' | 'zstd';

export function compressionKind(name: string): Compression {
  if (name === 'none' || name === 'zlib' || name === 'zstd') return name;
  throw new DatError(`compression "${name}" is not supported (zstd, zlib or none)`);
}

/** Inflates `data` and checks it is exactly `expected` bytes (the size the file states). */
export async function inflateBlock(
  kind: Compression,
  data: Buffer,
  expected: number,
  what: string,
): Promise<Buffer> {
  if (expected > MAX_BLOCK_BYTES) throw new DatError(`${what}: uncompressed size ${expected} is too large`);
  let out: Buffer;
  try {
    if (kind === 'zstd') {
      const frame = zstdFrame(data, what);
      if (frame.contentSize !== undefined && frame.contentSize !== expected)
        throw new DatError(
          `${what}: zstd frame states ${frame.contentSize} bytes, the file states ${expected}`,
        );
      if (frame.maxOutput > MAX_ZSTD_BOUND)
        throw new DatError(
          `${what}: zstd blocks could inflate to ${frame.maxOutput} bytes, above ${MAX_ZSTD_BOUND}`,
        );
      out = await zstdDecompress(data);
    } else if (kind === 'zlib') out = await inflateAsync(data, { maxOutputLength: Math.max(1, expected) });
    else throw new DatError(`${what}: marked compressed but the file names no compression`);
  } catch (err) {
    if (err instanceof DatError) throw err;
    throw new DatError(`${what}: ${kind} data does not decompress: ${(err as Error).message}`);
  }
  if (out.length !== expected)
    throw new DatError(`${what}: decompressed to ${out.length} bytes, the file states ${expected}`);
  return out;
}

/** A compressed section body (one block) at `cursor`, inflated. */
export async function readBlock(kind: Compression, cursor: ByteCursor, what: string): Promise<ByteCursor> {
  const zsize = cursor.u32('compressed size');
  const size = cursor.u32('uncompressed size');
  const out = await inflateBlock(kind, cursor.bytes(zsize, 'compressed data'), size, what);
  return new ByteCursor(out, -1, `${what} (decompressed)`);
}

/** Uncompressed CPU data in a temporary file; remove() closes and deletes it. */
export interface InflatedCpu {
  fd: number;
  size: number;
  remove(): void;
}

/** Inflates the chunks of a CPU's range [offset, offset + size) into a temporary file. */
export async function inflateCpuData(
  file: DatFile,
  kind: Compression,
  offset: number,
  size: number,
  what: string,
): Promise<InflatedCpu> {
  // trace-cmd 3.1 states the size without the leading 4-byte chunk count (its reader only
  // follows the chunk headers); the range read is [offset, offset + 4 + size), inside the file.
  file.check(offset, size + 4, what);
  const dir = mkdtempSync(join(tmpdir(), 'smmu-tracedat-'));
  const fd = openSync(join(dir, 'cpu'), 'w+');
  const remove = () => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let pos = offset;
    const end = offset + 4 + size;
    const head = (n: number, field: string) => {
      if (n > end - pos) throw new DatError(`${file.path}: ${what}: ${field} runs past the CPU data`);
      const c = file.cursor(pos, n, what);
      pos += n;
      return c;
    };
    const count = head(4, 'chunk count').u32('chunk count');
    let total = 0;
    for (let i = 0; i < count; i++) {
      const h = head(8, `chunk ${i} header`);
      const zsize = h.u32('compressed size');
      const usize = h.u32('uncompressed size');
      const data = head(zsize, `chunk ${i}`).buf;
      const out = await inflateBlock(kind, data, usize, `${file.path}: ${what} chunk ${i}`);
      let done = 0;
      while (done < out.length) done += writeSync(fd, out, done, out.length - done, total + done);
      total += out.length;
    }
    return { fd, size: total, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
