// The segment spool's meta file: the state that its log of records cannot hold. It is small JSON,
// replaced atomically (write a temporary file, fsync, rename over, fsync the directory), so after
// any crash it is either the previous or the next version, never a mix. Format 2 carries a CRC-32
// of the rest of its text ("crc", last): a file damaged on disk, even into other valid JSON,
// is refused (readMeta throws) and the spool rebuilds what it can from the segments.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from './crc32';
import { type Losses, losses, totalLosses } from './spool';

export const META_FILE = 'spool.meta';
const TEMP_FILE = 'spool.meta.tmp';

export interface SpoolMeta {
  format: 2;
  /** Sequence space of this directory: chosen once when it is created, kept forever after. */
  epoch: number;
  /** Every sequence up to this one is acknowledged or dropped. */
  ackedThrough: number;
  /** Acknowledged or dropped sequences above ackedThrough, as inclusive [from, to] ranges. */
  ackedRanges: Array<[number, number]>;
  /**
   * carriedThrough (segment-file.ts) at ackedThrough, and before/through each acked range: what
   * done records weigh, so that a run of unreadable records that mixes done and owed ones is
   * counted exactly. Absent when written by format 1.
   */
  ackedThroughCarried?: number;
  ackedRangesCarried?: Array<[number, number]>;
  /** owed() once the reports of every record up to reportedThrough are subtracted. */
  owed: Losses;
  /** Records after this one may carry reports that owed does not yet reflect. */
  reportedThrough: number;
  /** The last durable record when this was written: sequences never go back below it. */
  lastSequence: number;
  lastSourceOffset: number;
  /** carriedThrough of that record (see segment-file.ts); undefined when read from format 1. */
  carriedThrough?: number;
  /**
   * Sequences up to here may have been handed out (fsync 'interval'/'never' only): after a
   * possible power loss the spool continues above it rather than reuse a number.
   */
  leaseThrough: number;
  /** Kernel boot id at the last write, to tell a process crash from a reboot. */
  bootId: string;
  /** True only when written by close(). */
  clean: boolean;
}

export function freshMeta(epoch: number): SpoolMeta {
  return {
    format: 2,
    epoch,
    ackedThrough: 0,
    ackedRanges: [],
    ackedThroughCarried: 0,
    ackedRangesCarried: [],
    owed: losses(),
    reportedThrough: 0,
    lastSequence: 0,
    lastSourceOffset: 0,
    carriedThrough: 0,
    leaseThrough: 0,
    bootId: currentBootId(),
    clean: false,
  };
}

/** How many sequence numbers one lease covers (fsync 'interval'/'never'). */
export const LEASE = 256;

/** Where a reopened spool continues: its last sequence, with that record's offset and carriedThrough. */
export interface ResumePoint {
  last: number;
  sourceOffset: number;
  carried: number;
  /** Sequences skipped rather than reused because they may have been handed out. */
  skipped: number;
  /** True when the skip is for a possible power loss without fsync (a reboot after an unclean stop). */
  powerLoss: boolean;
}

/**
 * The resume point from the log's last intact record (`log`) and the meta: never below a sequence
 * the meta saw or acknowledged; after a rebuilt meta a lease's worth above the log, and after an
 * unclean stop and a reboot above the meta's lease (records not yet synced may have been sent).
 */
export function resumePoint(
  log: { last: number; lastOffset: number; lastCarried: number | undefined },
  m: SpoolMeta,
  rebuilt: boolean,
  bootId: string,
): ResumePoint {
  let last = log.last;
  let sourceOffset = log.lastOffset;
  let carried = log.lastCarried ?? 0;
  if (m.lastSequence > last) {
    // Records the meta had seen are gone: acknowledged and deleted, lost without fsync, or
    // damaged (then counted by recoverLog).
    last = m.lastSequence;
    sourceOffset = m.lastSourceOffset;
    carried = m.carriedThrough ?? carried;
  }
  last = Math.max(last, m.ackedThrough, m.ackedRanges.at(-1)?.[1] ?? 0);
  // Sequences after the last record may have been handed out (a batch the disk refused, a
  // record not yet synced): skip a lease's worth rather than reuse one.
  if (rebuilt) return { last: last + LEASE, sourceOffset, carried, skipped: LEASE, powerLoss: false };
  if (!m.clean && m.leaseThrough > last && (bootId === '' || bootId !== m.bootId))
    return { last: m.leaseThrough, sourceOffset, carried, skipped: m.leaseThrough - last, powerLoss: true };
  return { last, sourceOffset, carried, skipped: 0, powerLoss: false };
}

/** What the meta needs to know of each unacknowledged batch, oldest first. */
export interface LiveRecord {
  readonly sequence: number;
  readonly events: number;
  readonly reports: Losses;
  readonly carriedThrough: number | undefined;
}

/**
 * The acknowledged part of the log, given the batches still live and the last durable record
 * (`last`, its carriedThrough `carried`): everything that is not live is acknowledged or dropped.
 * Format-1 records (an upgraded spool) have no carriedThrough: then the weights are left out.
 */
export function ackedState(
  live: Iterable<LiveRecord>,
  last: number,
  carried: number,
): Pick<SpoolMeta, 'ackedThrough' | 'ackedThroughCarried' | 'ackedRanges' | 'ackedRangesCarried'> {
  let known = true;
  const before = (b: LiveRecord) => {
    if (b.carriedThrough === undefined) known = false;
    return (b.carriedThrough ?? 0) - b.events - totalLosses(b.reports);
  };
  const it = live[Symbol.iterator]();
  const first = it.next();
  const ackedThrough = first.done ? last : first.value.sequence - 1;
  let weight = first.done ? carried : before(first.value);
  const ackedThroughCarried = weight;
  const ranges: Array<[number, number]> = [];
  const weights: Array<[number, number]> = [];
  let prev = ackedThrough;
  for (let r = first; !r.done; r = it.next()) {
    const b = r.value;
    if (b.sequence > prev + 1) {
      ranges.push([prev + 1, b.sequence - 1]);
      weights.push([weight, before(b)]);
    }
    prev = b.sequence;
    weight = b.carriedThrough ?? 0;
  }
  if (prev < last) {
    ranges.push([prev + 1, last]);
    weights.push([weight, carried]);
  }
  return {
    ackedThrough,
    ackedThroughCarried: known ? ackedThroughCarried : undefined,
    ackedRanges: ranges,
    ackedRangesCarried: known ? weights : undefined,
  };
}

/** A random epoch in [1, 2^53): unique per spool directory with overwhelming probability. */
export function newEpoch(): number {
  const n = Number(randomBytes(8).readBigUInt64LE() & ((1n << 53n) - 1n));
  return n === 0 ? 1 : n;
}

/** The kernel's boot id ('' where there is none: then every unclean stop counts as a reboot). */
export function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

const counters = [
  'epoch',
  'ackedThrough',
  'reportedThrough',
  'lastSequence',
  'lastSourceOffset',
  'leaseThrough',
] as const;

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A parsed meta file of format 1 (no CRC, one drop count) or 2, as format 2; throws when damaged. */
function check(raw: Record<string, unknown>, text: string, file: string): SpoolMeta {
  const bad = (why: string) => new Error(`${file}: ${why}`);
  if (raw === null || typeof raw !== 'object') throw bad('not a spool meta file');
  if (raw.format === 2) {
    const { crc, ...rest } = raw;
    if (crc !== crc32(Buffer.from(JSON.stringify(rest))) || `${JSON.stringify(raw)}\n` !== text)
      throw bad('CRC mismatch');
    const o = rest.owed as Losses;
    if (!o || typeof o !== 'object' || ![o.full, o.corrupt, o.writeFailed].every(isCount))
      throw bad('owed is not a set of counts');
    if (rest.carriedThrough !== undefined && !isCount(rest.carriedThrough))
      throw bad('carriedThrough is not a count');
  } else if (raw.format === 1) {
    if (!isCount(raw.droppedUnreported)) throw bad('droppedUnreported is not a count');
    raw.owed = losses({ full: raw.droppedUnreported });
    raw.format = 2;
    delete raw.droppedUnreported;
    delete raw.carriedThrough;
    delete raw.ackedThroughCarried;
    delete raw.ackedRangesCarried;
  } else throw bad('not a spool meta file of format 1 or 2');
  const m = raw as unknown as SpoolMeta;
  for (const k of counters) if (!isCount(m[k])) throw bad(`${k} is not a count`);
  if (m.epoch === 0) throw bad('epoch 0');
  if (!Array.isArray(m.ackedRanges)) throw bad('ackedRanges is not a list');
  let prev = m.ackedThrough;
  for (const r of m.ackedRanges) {
    if (
      !Array.isArray(r) ||
      !Number.isSafeInteger(r[0]) ||
      !Number.isSafeInteger(r[1]) ||
      r[0] <= prev ||
      r[1] < r[0]
    )
      throw bad('ackedRanges not ascending');
    prev = r[1];
  }
  if (prev > Math.max(m.lastSequence, m.leaseThrough)) throw bad('acknowledged beyond the last sequence');
  if (typeof m.bootId !== 'string' || typeof m.clean !== 'boolean') throw bad('bootId/clean missing');
  return m;
}

/** The meta file of `dir`, undefined when there is none; throws when it is unreadable. */
export async function readMeta(dir: string): Promise<SpoolMeta | undefined> {
  const file = join(dir, META_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return check(parsed, text, file);
}

/** Replaces the meta file atomically; `sync` makes the new version durable before returning. */
export async function writeMeta(dir: string, meta: SpoolMeta, sync: boolean): Promise<void> {
  const tmp = join(dir, TEMP_FILE);
  const fh = await open(tmp, 'w');
  try {
    const { crc: _, ...rest } = meta as SpoolMeta & { crc?: number };
    const body = JSON.stringify(rest);
    await fh.writeFile(`${body.slice(0, -1)},"crc":${crc32(Buffer.from(body))}}\n`);
    if (sync) await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, META_FILE));
  if (sync) await syncDir(dir);
}

/** Removes what a crash in the middle of writeMeta left behind. */
export async function removeMetaTemp(dir: string): Promise<void> {
  await rm(join(dir, TEMP_FILE), { force: true });
}

/** Makes entries created, renamed or removed in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
