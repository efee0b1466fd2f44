// CRC-32 (IEEE 802.3, as zlib and gzip compute it) of the segment spool's records. Node >= 20.15
// has a native zlib.crc32; older 20.x releases get the table-driven version, same results.
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, value?: number) => number;

let table: Uint32Array | undefined;

/** Table-driven CRC-32; `value` continues a previous result, as zlib.crc32 does. */
export function tableCrc32(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = (value ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const native = (zlib as { crc32?: Crc32 }).crc32;

export const crc32: Crc32 = typeof native === 'function' ? native : tableCrc32;
