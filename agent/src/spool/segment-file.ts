// Record format of the segment spool's log. A segment file holds consecutive records, each a
// little-endian header followed by the payload (one encoded EventBatch). Format 2 (written):
//    0 u32 magic "SMSP"     4 u16 format version (2)   6 u16 header length (72)
//    8 u32 payload length  12 u32 events              16 u64 sequence
//   24 u64 sourceOffset    32 u64 carriedThrough: events + reports of every recorded batch of
//                                 the epoch up to this one (sizes a run of lost records)
//   40 u64 reports full    48 u64 reports corrupt     56 u64 reports writeFailed
//   64 u32 CRC-32 of the payload
//   68 u32 CRC-32 of header bytes 0..67
// The header has its own CRC so that a record whose payload is damaged still tells its sequence
// and counts (its events are reported lost, not guessed), and so that a reader that meets
// damage finds the next good record by scanning for a header that checks. Format 1 (read only,
// 48-byte header: ... 32 u64 reportsDropped, 40 u32 reserved, 44 u32 CRC of header 0..43 and
// payload) has one CRC over everything: a damaged format-1 record is skipped as a whole.
// Files are named after their first record's sequence, zero-padded so names sort in order.
import { readSync } from 'node:fs';
import { crc32 } from './crc32';
import { type Losses, losses } from './spool';

export const RECORD_HEADER_BYTES = 72;
const V1_HEADER_BYTES = 48;
const MAGIC = 0x50534d53; // "SMSP" read little-endian
const MAGIC_BYTES = Buffer.from('SMSP', 'latin1');
const PAYLOAD_CRC_AT = 64;
const HEADER_CRC_AT = 68;
const SEGMENT_SUFFIX = '.seg';

/** What a record says about its batch, besides the payload. */
export interface RecordFields {
  sequence: number;
  events: number;
  sourceOffset: number;
  /** Losses this batch reports (owed by the spool when it was written). */
  reports: Losses;
  /** Events + reports of every recorded batch of the epoch up to this one; undefined in format 1. */
  carriedThrough?: number;
}

export interface ScannedRecord extends RecordFields {
  /** Offset of the record's header in the file. */
  offset: number;
  headerLength: number;
  payloadLength: number;
  /** False when the header checks but the payload does not (damaged or cut short). */
  intact: boolean;
}

export interface ScanResult {
  /** Every record whose header checks, in file order, intact or not. */
  records: ScannedRecord[];
  /** Bytes that belong to no checking header (damage, or a torn write at the end). */
  badBytes: number;
  /** End of the last intact record: anything after it is damage or a torn write. */
  validBytes: number;
  /** What the first problem was, if any. */
  problem?: string;
}

function putU64(b: Buffer, at: number, v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new Error(`spool record: ${name} ${v} is not a non-negative safe integer`);
  b.writeBigUInt64LE(BigInt(v), at);
}

/** The header for a record of `payload`, CRCs included. */
export function encodeRecordHeader(r: Required<RecordFields>, payload: Uint8Array): Buffer {
  if (!Number.isInteger(r.events) || r.events < 0 || r.events > 0xffffffff)
    throw new Error(`spool record: events ${r.events} out of range`);
  if (payload.length > 0xffffffff)
    throw new Error(`spool record: payload of ${payload.length} bytes too large`);
  const h = Buffer.alloc(RECORD_HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(RECORD_HEADER_BYTES, 6);
  h.writeUInt32LE(payload.length, 8);
  h.writeUInt32LE(r.events, 12);
  putU64(h, 16, r.sequence, 'sequence');
  putU64(h, 24, r.sourceOffset, 'sourceOffset');
  putU64(h, 32, r.carriedThrough, 'carriedThrough');
  putU64(h, 40, r.reports.full, 'reports.full');
  putU64(h, 48, r.reports.corrupt, 'reports.corrupt');
  putU64(h, 56, r.reports.writeFailed, 'reports.writeFailed');
  h.writeUInt32LE(crc32(payload), PAYLOAD_CRC_AT);
  h.writeUInt32LE(crc32(h.subarray(0, HEADER_CRC_AT)), HEADER_CRC_AT);
  return h;
}

/**
 * Decodes the record at `at`: a string says why there is no checking header there; a record
 * with intact false has a good header and a bad or missing payload.
 */
function decodeRecord(buf: Buffer, at: number): ScannedRecord | string {
  const left = buf.length - at;
  if (left < V1_HEADER_BYTES) return `torn header (${left} bytes)`;
  if (buf.readUInt32LE(at) !== MAGIC) return 'bad magic';
  const version = buf.readUInt16LE(at + 4);
  const headerLength = buf.readUInt16LE(at + 6);
  if (version === 1 && headerLength === V1_HEADER_BYTES) return decodeV1(buf, at);
  if (version !== 2 || headerLength !== RECORD_HEADER_BYTES) return 'unknown record version';
  if (left < RECORD_HEADER_BYTES) return `torn header (${left} of ${RECORD_HEADER_BYTES} bytes)`;
  if (crc32(buf.subarray(at, at + HEADER_CRC_AT)) !== buf.readUInt32LE(at + HEADER_CRC_AT))
    return 'header CRC mismatch';
  const u64 = (o: number) => Number(buf.readBigUInt64LE(at + o));
  const payloadLength = buf.readUInt32LE(at + 8);
  const r: ScannedRecord = {
    offset: at,
    headerLength,
    payloadLength,
    events: buf.readUInt32LE(at + 12),
    sequence: u64(16),
    sourceOffset: u64(24),
    carriedThrough: u64(32),
    reports: losses({ full: u64(40), corrupt: u64(48), writeFailed: u64(56) }),
    intact: false,
  };
  const counts = [r.sequence, r.sourceOffset, r.carriedThrough ?? 0, r.reports.full, r.reports.corrupt];
  if (![...counts, r.reports.writeFailed].every(Number.isSafeInteger)) return 'field out of range';
  const start = at + RECORD_HEADER_BYTES;
  r.intact =
    left - RECORD_HEADER_BYTES >= payloadLength &&
    crc32(buf.subarray(start, start + payloadLength)) === buf.readUInt32LE(at + PAYLOAD_CRC_AT);
  return r;
}

/** A format-1 record: one CRC over header and payload, so it is either whole or not there. */
function decodeV1(buf: Buffer, at: number): ScannedRecord | string {
  const payloadLength = buf.readUInt32LE(at + 8);
  const end = at + V1_HEADER_BYTES + payloadLength;
  if (end > buf.length) return 'torn format-1 record';
  const crc = crc32(buf.subarray(at + V1_HEADER_BYTES, end), crc32(buf.subarray(at, at + 44)));
  if (crc !== buf.readUInt32LE(at + 44)) return 'format-1 CRC mismatch';
  const u64 = (o: number) => Number(buf.readBigUInt64LE(at + o));
  const r: ScannedRecord = {
    offset: at,
    headerLength: V1_HEADER_BYTES,
    payloadLength,
    events: buf.readUInt32LE(at + 12),
    sequence: u64(16),
    sourceOffset: u64(24),
    reports: losses({ full: u64(32) }),
    intact: true,
  };
  if (![r.sequence, r.sourceOffset, r.reports.full].every(Number.isSafeInteger)) return 'field out of range';
  return r;
}

/**
 * Every record of a segment file's contents whose header checks, resynchronising after damage
 * on the next offset where one does.
 */
export function scanRecords(buf: Buffer): ScanResult {
  const records: ScannedRecord[] = [];
  let at = 0;
  let badBytes = 0;
  let validBytes = 0;
  let problem: string | undefined;
  while (at < buf.length) {
    const r = decodeRecord(buf, at);
    if (typeof r === 'string') {
      problem ??= `${r} at byte ${at}`;
      let next = buf.indexOf(MAGIC_BYTES, at + 1);
      while (next >= 0 && typeof decodeRecord(buf, next) === 'string')
        next = buf.indexOf(MAGIC_BYTES, next + 1);
      const to = next < 0 ? buf.length : next;
      badBytes += to - at;
      at = to;
      continue;
    }
    if (!r.intact) problem ??= `payload of record ${r.sequence} damaged or cut short at byte ${at}`;
    records.push(r);
    at = Math.min(buf.length, at + r.headerLength + r.payloadLength);
    if (r.intact) validBytes = at;
  }
  return { records, badBytes, validBytes, problem };
}

/** Reads one record's payload back (synchronously: pending() hands out entries, not promises). */
export function readRecordPayload(
  fd: number,
  offset: number,
  headerLength: number,
  payloadLength: number,
  sequence: number,
): Buffer {
  const buf = Buffer.allocUnsafe(headerLength + payloadLength);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  const r = decodeRecord(buf.subarray(0, got), 0);
  if (typeof r === 'string' || !r.intact || r.sequence !== sequence || r.payloadLength !== payloadLength)
    throw new Error(
      `spool record ${sequence} unreadable: ${typeof r === 'string' ? r : r.intact ? 'a different record' : 'payload CRC mismatch'}`,
    );
  return buf.subarray(headerLength);
}

export function segmentFileName(firstSequence: number): string {
  return `${String(firstSequence).padStart(16, '0')}${SEGMENT_SUFFIX}`;
}

/** The first sequence a segment file name stands for, undefined for other files. */
export function segmentFirstSequence(name: string): number | undefined {
  const m = /^(\d{16})\.seg$/.exec(name);
  return m ? Number(m[1]) : undefined;
}
