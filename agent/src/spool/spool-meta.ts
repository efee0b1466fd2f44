// The segment spool's meta file: the state that its log of records cannot hold. It is small JSON,
// replaced atomically (write a temporary file, fsync, rename over, fsync the directory), so after
// any crash it is either the previous or the next version, never a mix.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const META_FILE = 'spool.meta';
const TEMP_FILE = 'spool.meta.tmp';

export interface SpoolMeta {
  format: 1;
  /** Sequence space of this directory: chosen once when it is created, kept forever after. */
  epoch: number;
  /** Every sequence up to this one is acknowledged or dropped. */
  ackedThrough: number;
  /** Acknowledged or dropped sequences above ackedThrough, as inclusive [from, to] ranges. */
  ackedRanges: Array<[number, number]>;
  /** droppedUnreported() once the reportsDropped of every record up to reportedThrough is subtracted. */
  droppedUnreported: number;
  /** Records after this one may report drops that droppedUnreported does not yet reflect. */
  reportedThrough: number;
  /** The last durable record when this was written: sequences never go back below it. */
  lastSequence: number;
  lastSourceOffset: number;
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
    format: 1,
    epoch,
    ackedThrough: 0,
    ackedRanges: [],
    droppedUnreported: 0,
    reportedThrough: 0,
    lastSequence: 0,
    lastSourceOffset: 0,
    leaseThrough: 0,
    bootId: currentBootId(),
    clean: false,
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
  'droppedUnreported',
  'reportedThrough',
  'lastSequence',
  'lastSourceOffset',
  'leaseThrough',
] as const;

function check(m: SpoolMeta, file: string): SpoolMeta {
  const bad = (why: string) => new Error(`${file}: ${why}`);
  if (m === null || typeof m !== 'object' || m.format !== 1) throw bad('not a spool meta file of format 1');
  for (const k of counters) if (!Number.isSafeInteger(m[k]) || m[k] < 0) throw bad(`${k} is not a count`);
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
  let parsed: SpoolMeta;
  try {
    parsed = JSON.parse(text) as SpoolMeta;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return check(parsed, file);
}

/** Replaces the meta file atomically; `sync` makes the new version durable before returning. */
export async function writeMeta(dir: string, meta: SpoolMeta, sync: boolean): Promise<void> {
  const tmp = join(dir, TEMP_FILE);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(`${JSON.stringify(meta)}\n`);
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
