// The zstd frame check that runs before trace.dat replay inflates anything: a real frame passes
// with its bounds, and crafted frames (a decompression bomb of RLE blocks, a second frame, a cut
// frame, a stated size other than the file's) are refused with a DatError before inflating.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compress } from '@mongodb-js/zstd';
import { DatError } from '../../agent/src/source/replay/dat-bytes';
import { inflateBlock } from '../../agent/src/source/replay/dat-compress';
import { ZSTD_BLOCK_MAX, zstdFrame } from '../../agent/src/source/replay/zstd-frame';

/** A frame of `blocks` RLE blocks of 128 KiB stating `contentSize` (single segment, 4-byte size). */
function rleFrame(contentSize: number, blocks: number): Buffer {
  const out = Buffer.alloc(9 + 4 * blocks);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = (2 << 6) | (1 << 5);
  out.writeUInt32LE(contentSize, 5);
  for (let i = 0; i < blocks; i++) {
    const header = (ZSTD_BLOCK_MAX << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0);
    out.writeUIntLE(header, 9 + 4 * i, 3);
    out[9 + 4 * i + 3] = 0x41;
  }
  return out;
}

test('a frame of the zstd binding passes with a bound of at least its size; RLE blocks bound exactly', async () => {
  const data = Buffer.alloc(300_000, 'abc');
  const z = await compress(data);
  const f = zstdFrame(z, 'x');
  assert.equal(f.contentSize, undefined); // a streaming encoder does not state it
  assert.ok(f.maxOutput >= 300_000 && f.maxOutput <= 300_000 + 3 * ZSTD_BLOCK_MAX, String(f.maxOutput));
  assert.deepEqual(await inflateBlock('zstd', z, 300_000, 'x'), data);
  // Two RLE blocks: the bound is exact, and the binding inflates it.
  const rle = rleFrame(2 * ZSTD_BLOCK_MAX, 2);
  assert.deepEqual(zstdFrame(rle, 'x'), { contentSize: 2 * ZSTD_BLOCK_MAX, maxOutput: 2 * ZSTD_BLOCK_MAX });
  assert.deepEqual(
    await inflateBlock('zstd', rle, 2 * ZSTD_BLOCK_MAX, 'x'),
    Buffer.alloc(2 * ZSTD_BLOCK_MAX, 0x41),
  );
});

test('a decompression bomb is refused before inflating: 8 KiB of RLE blocks asking for 256 MiB', async () => {
  const bomb = rleFrame(100, 2048);
  assert.equal(bomb.length, 8201);
  assert.equal(zstdFrame(bomb, 'x').maxOutput, 2048 * ZSTD_BLOCK_MAX);
  await assert.rejects(
    inflateBlock('zstd', bomb, 100, 'cpu 0 chunk 1'),
    new DatError('cpu 0 chunk 1: zstd blocks could inflate to 268435456 bytes, above 134217728'),
  );
});

test('frames that go on after the frame, are cut, or state another size than the file are refused', async () => {
  const z = await compress(Buffer.alloc(1000, 7));
  assert.throws(
    () => zstdFrame(Buffer.concat([z, z]), 'x'),
    new DatError('x: zstd data goes on after its one frame'),
  );
  assert.throws(() => zstdFrame(z.subarray(0, z.length - 1), 'x'), /zstd data ends inside/);
  assert.throws(
    () => zstdFrame(Buffer.from('not zstd'), 'x'),
    new DatError('x: zstd data does not start with a zstd frame'),
  );
  const stated = rleFrame(2 * ZSTD_BLOCK_MAX, 2);
  await assert.rejects(
    inflateBlock('zstd', stated, 1000, 'x'),
    new DatError('x: zstd frame states 262144 bytes, the file states 1000'),
  );
});
