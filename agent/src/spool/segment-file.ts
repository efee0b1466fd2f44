// Record format of the segment spool's log. A segment file holds consecutive records, each a
// 48-byte little-endian header followed by the payload (one encoded EventBatch):
//    0 u32 magic "SMSP"     4 u16 format version (1)   6 u16 header length (48)
//    8 u32 payload length  12 u32 events              16 u64 sequence
//   24 u64 sourceOffset    32 u64 reportsDropped      40 u32 reserved (0)
//   44 u32 CRC-32 of header bytes 0..43 followed by the payload
// The CRC covers everything, so a record cut short by a crash or damaged on disk never passes
// for a good one: recovery keeps the records before the first bad one and cuts the file there.
// Files are named after their first record's sequence, zero-padded so names sort in order.
import { readSync } from 'node:fs';
import { crc32 } from './crc32';

export const RECORD_HEADER_BYTES = 48;
const MAGIC = 0x50534d53; // "SMSP" read little-endian
const VERSION = 1;
const CRC_AT = 44;
const SEGMENT_SUFFIX = '.seg';

/** What a record says about its batch, besides the payload. */
export interface RecordFields {
  sequence: number;
  events: number;
  sourceOffset: number;
  reportsDropped: number;
}

export interface ScannedRecord extends RecordFields {
  /** Offset of the record's header in the file. */
  offset: number;
  payloadLength: number;
}

export interface ScanResult {
  records: ScannedRecord[];
  /** Length of the good prefix: the file is cut here when it is longer. */
  validBytes: number;
  /** Why the scan stopped before the end of the data, if it did. */
  problem?: string;
}

function putU64(b: Buffer, at: number, v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new Error(`spool record: ${name} ${v} is not a non-negative safe integer`);
  b.writeBigUInt64LE(BigInt(v), at);
}

/** The header for a record of `payload`, CRC included. */
export function encodeRecordHeader(r: RecordFields, payload: Uint8Array): Buffer {
  if (!Number.isInteger(r.events) || r.events < 0 || r.events > 0xffffffff)
    throw new Error(`spool record: events ${r.events} out of range`);
  if (payload.length > 0xffffffff)
    throw new Error(`spool record: payload of ${payload.length} bytes too large`);
  const h = Buffer.alloc(RECORD_HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt16LE(VERSION, 4);
  h.writeUInt16LE(RECORD_HEADER_BYTES, 6);
  h.writeUInt32LE(payload.length, 8);
  h.writeUInt32LE(r.events, 12);
  putU64(h, 16, r.sequence, 'sequence');
  putU64(h, 24, r.sourceOffset, 'sourceOffset');
  putU64(h, 32, r.reportsDropped, 'reportsDropped');
  h.writeUInt32LE(crc32(payload, crc32(h.subarray(0, CRC_AT))), CRC_AT);
  return h;
}

/** Decodes and checks the record at `at`; a string says why it is not a good record. */
function decodeRecord(buf: Buffer, at: number): ScannedRecord | string {
  const left = buf.length - at;
  if (left < RECORD_HEADER_BYTES) return `torn header (${left} of ${RECORD_HEADER_BYTES} bytes)`;
  if (buf.readUInt32LE(at) !== MAGIC) return 'bad magic';
  if (buf.readUInt16LE(at + 4) !== VERSION || buf.readUInt16LE(at + 6) !== RECORD_HEADER_BYTES)
    return 'unknown record version';
  const payloadLength = buf.readUInt32LE(at + 8);
  if (left - RECORD_HEADER_BYTES < payloadLength)
    return `torn payload (${left - RECORD_HEADER_BYTES} of ${payloadLength} bytes)`;
  const end = at + RECORD_HEADER_BYTES + payloadLength;
  const crc = crc32(buf.subarray(at + RECORD_HEADER_BYTES, end), crc32(buf.subarray(at, at + CRC_AT)));
  if (crc !== buf.readUInt32LE(at + CRC_AT)) return 'CRC mismatch';
  const u64 = (o: number) => Number(buf.readBigUInt64LE(at + o));
  const r = {
    offset: at,
    payloadLength,
    events: buf.readUInt32LE(at + 12),
    sequence: u64(16),
    sourceOffset: u64(24),
    reportsDropped: u64(32),
  };
  if (![r.sequence, r.sourceOffset, r.reportsDropped].every(Number.isSafeInteger))
    return 'field out of range';
  return r;
}

/** The good records at the start of a segment file's contents, up to the first bad one. */
export function scanRecords(buf: Buffer): ScanResult {
  const records: ScannedRecord[] = [];
  let at = 0;
  while (at < buf.length) {
    const r = decodeRecord(buf, at);
    if (typeof r === 'string') return { records, validBytes: at, problem: r };
    records.push(r);
    at += RECORD_HEADER_BYTES + r.payloadLength;
  }
  return { records, validBytes: at };
}

/** Reads one record's payload back (synchronously: pending() hands out entries, not promises). */
export function readRecordPayload(
  fd: number,
  offset: number,
  payloadLength: number,
  sequence: number,
): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payloadLength);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  const r = decodeRecord(buf.subarray(0, got), 0);
  if (typeof r === 'string' || r.sequence !== sequence || r.payloadLength !== payloadLength)
    throw new Error(
      `spool record ${sequence} unreadable: ${typeof r === 'string' ? r : 'a different record'}`,
    );
  return buf.subarray(RECORD_HEADER_BYTES);
}

export function segmentFileName(firstSequence: number): string {
  return `${String(firstSequence).padStart(16, '0')}${SEGMENT_SUFFIX}`;
}

/** The first sequence a segment file name stands for, undefined for other files. */
export function segmentFirstSequence(name: string): number | undefined {
  const m = /^(\d{16})\.seg$/.exec(name);
  return m ? Number(m[1]) : undefined;
}
