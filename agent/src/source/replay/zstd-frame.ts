// What a zstd frame can inflate to, read from its headers before anything is inflated (RFC 8878
// section 3.1.1). The zstd binding inflates a whole buffer with no output limit, so a few KiB of
// crafted trace.dat could otherwise ask for gigabytes: RLE blocks of 128 KiB cost 4 bytes each.
// Walking the block headers bounds the output exactly for raw and RLE blocks and by the
// 128 KiB block maximum for compressed ones. A frame may state its content size (trace-cmd's
// one-shot ZSTD_compress2 does; streaming encoders, such as the binding's own, do not).
import { DatError } from './dat-bytes';

const MAGIC = 0xfd2fb528;
/** Block_Maximum_Size: no block inflates to more. */
export const ZSTD_BLOCK_MAX = 128 << 10;

export interface ZstdFrame {
  /** Frame_Content_Size from the header; undefined when the frame does not state it. */
  contentSize: number | undefined;
  /** Most bytes the frame's blocks can inflate to. */
  maxOutput: number;
}

/** The header and block bounds of `data`, which must be exactly one zstd frame. */
export function zstdFrame(data: Uint8Array, what: string): ZstdFrame {
  const fail = (why: string): never => {
    throw new DatError(`${what}: zstd data ${why}`);
  };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 6 || view.getUint32(0, true) !== MAGIC) fail('does not start with a zstd frame');
  const fhd = data[4];
  if (fhd & 0x08) fail('sets the reserved bit of its frame header');
  const singleSegment = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  const fcsBytes = [singleSegment, 2, 4, 8][fcsFlag];
  let p = 5 + (singleSegment ? 0 : 1) + dictBytes;
  if (p + fcsBytes > data.length) fail('ends inside its frame header');
  let contentSize: number | undefined;
  if (fcsBytes === 0) contentSize = undefined;
  else if (fcsBytes === 1) contentSize = data[p];
  else if (fcsBytes === 2) contentSize = view.getUint16(p, true) + 256;
  else if (fcsBytes === 4) contentSize = view.getUint32(p, true);
  else contentSize = view.getUint32(p + 4, true) * 2 ** 32 + view.getUint32(p, true);
  p += fcsBytes;
  let maxOutput = 0;
  for (let last = false; !last; ) {
    if (p + 3 > data.length) fail('ends inside a block header');
    const header = data[p] | (data[p + 1] << 8) | (data[p + 2] << 16);
    p += 3;
    last = (header & 1) === 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) fail('has a block of the reserved type');
    if (size > ZSTD_BLOCK_MAX) fail(`has a block of ${size} bytes, above the ${ZSTD_BLOCK_MAX} maximum`);
    if (type === 0) {
      maxOutput += size;
      p += size;
    } else if (type === 1) {
      maxOutput += size;
      p += 1;
    } else {
      maxOutput += ZSTD_BLOCK_MAX;
      p += size;
    }
  }
  if (fhd & 0x04) p += 4; // Content_Checksum
  if (p !== data.length) fail(p > data.length ? 'ends inside a block' : 'goes on after its one frame');
  return { contentSize, maxOutput };
}
