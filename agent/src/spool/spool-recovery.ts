// How a segment spool reads its files back on open: which records are still owed to the
// collector, where the sequence and the source continue, and what damage cost. Damage costs only
// the damaged records: the scan resynchronises on the next record whose header checks
// (segment-file.ts). Every record that cannot be read and was neither acknowledged nor dropped
// is owed as LOSS_REASON_SPOOL_CORRUPT: its events when its header survived (and the reports it
// carried, under their own reasons), else the run of missing sequences sized by carriedThrough.
// A record or a run is lost at most once: it is not live afterwards, so the next meta written
// marks it done. What a torn write at the very end left (sequences the meta never saw) is not a
// loss: that append never resolved, and a resumable source produces those events again.
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeBatch } from '../../../proto/batch-codec';
import type { Logger } from '../runtime/log';
import { type ScannedRecord, scanRecords, segmentFirstSequence } from './segment-file';
import { addLosses, type Losses, losses, totalLosses } from './spool';
import type { SpoolMeta } from './spool-meta';

export interface SegmentName {
  name: string;
  first: number;
}

export interface RecoveredFile extends SegmentName {
  path: string;
  /** Bytes kept: the file is cut after its last intact record. */
  size: number;
  /** Its intact records that are neither acknowledged nor dropped. */
  live: ScannedRecord[];
}

export interface Recovery {
  /** Files that still hold an intact record, in order. */
  files: RecoveredFile[];
  /** The meta's owed losses, corrected by the log and increased by what damage cost. */
  owed: Losses;
  /** Lost to damage now (already included in owed). */
  corrupt: { records: number; runs: number; events: number };
  /** The last record the log holds (header intact), with its source offset and carriedThrough. */
  last: number;
  lastOffset: number;
  lastCarried: number | undefined;
  cutFiles: number;
  cutBytes: number;
}

interface Position {
  sequence: number;
  carried: number | undefined;
  sourceOffset: number;
  file: string;
}

/**
 * Reads every segment file, cuts what follows the last intact record of each (it is accounted
 * for, or a torn write), removes files left without one, and works out what is owed.
 * `rebuilt`: the meta was lost, so nothing is known to be acknowledged and a missing run is
 * sized only where its neighbours are known to be adjacent (whole acknowledged files are
 * deleted in normal operation and leave gaps that are no loss).
 */
export async function recoverLog(
  dir: string,
  names: SegmentName[],
  m: SpoolMeta,
  rebuilt: boolean,
  sync: boolean,
  log: Logger,
): Promise<Recovery> {
  let ranges = 0;
  const done = (seq: number): boolean => {
    if (seq <= m.ackedThrough) return true;
    while (ranges < m.ackedRanges.length && m.ackedRanges[ranges][1] < seq) ranges++;
    return ranges < m.ackedRanges.length && m.ackedRanges[ranges][0] <= seq;
  };
  const allDone = (from: number, to: number): boolean => {
    for (let s = from; s <= to; s++) if (!done(s)) return false;
    return true;
  };
  const r: Recovery = {
    files: [],
    owed: losses(m.owed),
    corrupt: { records: 0, runs: 0, events: 0 },
    last: 0,
    lastOffset: 0,
    lastCarried: 0,
    cutFiles: 0,
    cutBytes: 0,
  };
  let prev: Position = { sequence: 0, carried: 0, sourceOffset: 0, file: '' };

  /** A run of sequences with no readable header between prev and `to` (exclusive). */
  const missingRun = (
    to: number,
    carriedBefore: number | undefined,
    offsetBefore: number,
    file: SegmentName | undefined,
  ) => {
    const from = prev.sequence + 1;
    if (to <= from || allDone(from, to - 1)) return;
    const adjacent = !rebuilt || prev.file === file?.name || prev.sequence === (file?.first ?? 0) - 1;
    let events: number | undefined;
    if (adjacent && carriedBefore !== undefined && prev.carried !== undefined)
      events = carriedBefore - prev.carried;
    else if (adjacent && offsetBefore > 0 && prev.sourceOffset > 0) events = offsetBefore - prev.sourceOffset;
    if (events === undefined || events < 0 || !Number.isSafeInteger(events)) {
      log.error({ from, to: to - 1, file: file?.name }, 'spool: records lost to damage, their size unknown');
      return;
    }
    r.owed.corrupt += events;
    r.corrupt.runs++;
    r.corrupt.events += events;
    log.error({ from, to: to - 1, events, file: file?.name }, 'spool: unreadable records counted as lost');
  };

  for (let i = 0; i < names.length; i++) {
    const { name, first } = names[i];
    const path = join(dir, name);
    const buf = await readFile(path);
    const scan = scanRecords(buf);
    // Headers out of order can only be damage that happens to check (or a foreign file): skipped.
    const records = scan.records.filter(
      (x, j, a) => x.sequence >= first && (j === 0 || x.sequence > a[j - 1].sequence),
    );
    let lastIntact = records.length - 1;
    while (lastIntact >= 0 && !records[lastIntact].intact) lastIntact--;
    const lastFile = i === names.length - 1;
    const file: RecoveredFile = { name, first, path, size: scan.validBytes, live: [] };
    for (let j = 0; j < records.length; j++) {
      const x = records[j];
      if (x.sequence <= prev.sequence) continue;
      // A torn write: after the last intact record of the newest file, unseen by the meta.
      if (lastFile && j > lastIntact && x.sequence > m.lastSequence) break;
      const own = x.events + totalLosses(x.reports);
      missingRun(
        x.sequence,
        x.carriedThrough === undefined ? undefined : x.carriedThrough - own,
        x.sourceOffset - x.events,
        names[i],
      );
      if (x.sequence > m.reportedThrough) addLosses(r.owed, x.reports, -1);
      if (!x.intact && !done(x.sequence)) {
        r.owed.corrupt += x.events;
        addLosses(r.owed, x.reports);
        r.corrupt.records++;
        r.corrupt.events += x.events;
        log.error(
          { sequence: x.sequence, events: x.events, file: name, at: x.offset },
          'spool: damaged record counted as lost',
        );
      } else if (x.intact && !done(x.sequence)) file.live.push(x);
      prev = { sequence: x.sequence, carried: x.carriedThrough, sourceOffset: x.sourceOffset, file: name };
    }
    if (scan.problem)
      log.error(
        { segment: name, problem: scan.problem, badBytes: scan.badBytes },
        'spool: damage found in a segment',
      );
    if (lastIntact < 0) {
      await unlink(path);
      if (buf.length > 0) {
        r.cutFiles++;
        r.cutBytes += buf.length;
      }
      continue;
    }
    if (scan.validBytes < buf.length) {
      const fh = await open(path, 'r+');
      try {
        await fh.truncate(scan.validBytes);
        if (sync) await fh.datasync();
      } finally {
        await fh.close();
      }
      r.cutFiles++;
      r.cutBytes += buf.length - scan.validBytes;
    }
    r.files.push(file);
  }
  if (m.lastSequence > prev.sequence)
    missingRun(m.lastSequence + 1, m.carriedThrough, m.lastSourceOffset, undefined);
  r.last = prev.sequence;
  r.lastOffset = prev.sourceOffset;
  r.lastCarried = prev.carried;
  for (const k of ['full', 'corrupt', 'writeFailed'] as const)
    if (r.owed[k] < 0) {
      log.error({ reason: k, owed: r.owed[k] }, 'spool: log reports more losses than owed');
      r.owed[k] = 0;
    }
  return r;
}

/** The epoch written in the first intact record of the log, undefined when none is readable. */
export async function epochFromLog(dir: string, names: SegmentName[]): Promise<number | undefined> {
  for (const { name } of names) {
    const buf = await readFile(join(dir, name));
    for (const x of scanRecords(buf).records) {
      if (!x.intact) continue;
      const at = x.offset + x.headerLength;
      try {
        const b = decodeBatch(buf.subarray(at, at + x.payloadLength));
        if (b.sequence === x.sequence && typeof b.epoch === 'number' && b.epoch > 0) return b.epoch;
      } catch {
        // Not a batch: look further.
      }
    }
  }
  return undefined;
}

/**
 * Moves unreadable segment files into a fresh `damaged-<time>` directory (kept for inspection,
 * never read again); returns it and the events (and reports) their surviving headers name.
 */
export async function moveAside(dir: string, names: SegmentName[]): Promise<{ to: string; events: number }> {
  const to = join(dir, `damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(to, { recursive: true });
  let events = 0;
  for (const { name } of names) {
    for (const x of scanRecords(await readFile(join(dir, name))).records)
      events += x.events + totalLosses(x.reports);
    await rename(join(dir, name), join(to, name));
  }
  return { to, events };
}

/** The segment files of `dir`, in sequence order. */
export async function segmentNames(dir: string): Promise<SegmentName[]> {
  return (await readdir(dir))
    .map((name) => ({ name, first: segmentFirstSequence(name) }))
    .filter((s): s is SegmentName => s.first !== undefined)
    .sort((a, b) => a.first - b.first);
}
