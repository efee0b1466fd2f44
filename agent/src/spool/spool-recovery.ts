// How a segment spool reads its files back on open: which records are still owed to the
// collector, where the sequence and the source continue, and what damage cost. Damage costs only
// the damaged records: the scan resynchronises on the next record whose header checks
// (segment-file.ts). Every record that cannot be read and was neither acknowledged nor dropped
// is owed as LOSS_REASON_SPOOL_CORRUPT: its events when its header survived (and the reports it
// carried, under their own reasons), else the run of missing sequences sized by carriedThrough.
// With `keepDamaged`, a damaged record whose header survived and that an intact record follows in
// its file stays pending instead: its first send replaces it (segment-spool.ts).
// A record or a run is lost at most once: it is not live afterwards, so the next meta written
// marks it done. A record cut short at the very end that the meta never saw is a torn write, not
// a loss: that append never resolved, and a resumable source produces those events again.
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../common/runtime/log';
import { decodeBatch } from '../../../proto/batch-codec';
import { type ScannedRecord, scanRecords, segmentFirstSequence } from './segment-file';
import { addLosses, type Losses, losses, totalLosses } from './spool';
import {
  freshMeta,
  META_FILE,
  newEpoch,
  readMeta,
  removeMetaTemp,
  type SpoolMeta,
  writeMeta,
} from './spool-meta';
import type { SpoolSettings } from './spool-settings';

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
  /**
   * Damage found: records (header intact; kept pending with `keepDamaged` where they can be),
   * runs, the events owed for them (already in owed), runs whose size nothing tells.
   */
  corrupt: { records: number; runs: number; events: number; unsized: number };
  /**
   * Events of runs missing between two files, the meta lost and no damage found elsewhere: taken
   * for a file deleted once acknowledged, not owed (logged; see recoverLog).
   */
  gapEvents: number;
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
  /** Index in names, -1 before the first record. */
  file: number;
}

/**
 * Reads every segment file, cuts what follows the last intact record of each (it is accounted
 * for, or a torn write), removes files left without one, and works out what is owed.
 * `rebuilt`: the meta was lost, so nothing is known to be acknowledged: every intact record is
 * sent again and every unreadable one after the first readable record is counted as lost (a
 * file deleted because all of it was acknowledged out of order would be counted too: an
 * over-count, logged, never a silent loss). A run between the clean end of one file and the
 * start of the next is counted when damage shows anywhere in the log, else taken for a deleted
 * file (logged, and in gapEvents).
 */
export async function recoverLog(
  dir: string,
  names: SegmentName[],
  m: SpoolMeta,
  rebuilt: boolean,
  sync: boolean,
  log: Logger,
  keepDamaged = false,
): Promise<Recovery> {
  const done = (seq: number): boolean => {
    if (seq <= m.ackedThrough) return true;
    let lo = 0;
    let hi = m.ackedRanges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = m.ackedRanges[mid];
      if (b < seq) lo = mid + 1;
      else if (a > seq) hi = mid - 1;
      else return true;
    }
    return false;
  };
  const allDone = (from: number, to: number): boolean => {
    let s = Math.max(from, m.ackedThrough + 1);
    for (const [a, b] of m.ackedRanges) {
      if (s > to || a > s) break;
      if (b >= s) s = b + 1;
    }
    return s > to;
  };
  const r: Recovery = {
    files: [],
    owed: losses(m.owed),
    corrupt: { records: 0, runs: 0, events: 0, unsized: 0 },
    gapEvents: 0,
    last: 0,
    lastOffset: 0,
    lastCarried: 0,
    cutFiles: 0,
    cutBytes: 0,
  };
  let prev: Position = { sequence: 0, carried: 0, sourceOffset: 0, file: -1 };
  /** Per file: whether anything but whole records follows its last readable header. */
  const dirtyTail: boolean[] = [];
  /** Without the meta: runs missing between the clean end of a file and the start of the next. */
  const gaps: Array<{ from: number; to: number; events: number; file?: string }> = [];
  let damageSeen = false;

  /** Events + reports of the done (acknowledged or dropped) records among f..t, when the meta knows. */
  const doneWeight = (f: number, t: number, before: number, through: number): number | undefined => {
    const w = m.ackedRangesCarried;
    const done: Array<[number, number, number | undefined, number | undefined]> = [
      [1, m.ackedThrough, 0, m.ackedThroughCarried],
      ...m.ackedRanges.map((x, k): [number, number, number | undefined, number | undefined] => [
        x[0],
        x[1],
        w?.[k][0],
        w?.[k][1],
      ]),
    ];
    let sum = 0;
    for (const [a, b, ca, cb] of done) {
      if (b < f || a > t || b < a) continue;
      const lo = a <= f ? before : ca;
      const hi = b >= t ? through : cb;
      if (lo === undefined || hi === undefined) return undefined;
      sum += hi - lo;
    }
    return sum;
  };

  /** A run of sequences with no readable header between prev and `to` (exclusive). */
  const missingRun = (to: number, carriedBefore: number | undefined, offsetBefore: number, at: number) => {
    const file = names[at] as SegmentName | undefined;
    const from = prev.sequence + 1;
    if (to <= from || allDone(from, to - 1)) return;
    // Without the meta, a run may be files deleted once acknowledged: it counts when it must lie
    // in files still there (the one holding sequence 1, the damaged end of the file before, a
    // file in between). Between the clean end of one file and the start of the next it may be
    // either a deleted file or the file before cut at a record boundary: sized here, decided
    // once the whole log is read (gaps).
    const between = rebuilt && prev.file >= 0 && at - prev.file === 1 && !dirtyTail[prev.file];
    const adjacent =
      !rebuilt ||
      (prev.file < 0
        ? names[0]?.first === 1
        : prev.file === at || dirtyTail[prev.file] || at - prev.file > 1);
    if (!adjacent && !(between && file !== undefined && file.first >= to)) {
      // Presumably whole files deleted once acknowledged; a damaged start of this file is a
      // loss of unknown size.
      if (file && file.first < to) {
        r.corrupt.unsized++;
        log.error(
          { from: file.first, to: to - 1, file: file.name },
          'spool: records lost to damage, their size unknown',
        );
      }
      return;
    }
    let events: number | undefined;
    let weightOfDone: number | undefined;
    if (carriedBefore !== undefined && prev.carried !== undefined) {
      events = carriedBefore - prev.carried;
      weightOfDone = doneWeight(from, to - 1, prev.carried, carriedBefore);
    } else if (offsetBefore > 0 && prev.sourceOffset > 0) events = offsetBefore - prev.sourceOffset;
    if (events === undefined || events < 0 || !Number.isSafeInteger(events)) {
      r.corrupt.unsized++;
      log.error({ from, to: to - 1, file: file?.name }, 'spool: records lost to damage, their size unknown');
      return;
    }
    if (weightOfDone === undefined && !rebuilt) {
      for (let s = from; s < to; s++)
        if (done(s)) {
          log.warn(
            { from, to: to - 1 },
            'spool: lost run includes delivered records of unknown size: may over-count',
          );
          break;
        }
    }
    events -= weightOfDone ?? 0;
    if (!adjacent) {
      gaps.push({ from, to: to - 1, events, file: file?.name });
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
    const tail = records.at(-1);
    dirtyTail[i] = !tail || tail.offset + tail.headerLength + tail.payloadLength !== buf.length;
    let lastIntact = records.length - 1;
    while (lastIntact >= 0 && !records[lastIntact].intact) lastIntact--;
    const lastFile = i === names.length - 1;
    const file: RecoveredFile = { name, first, path, size: scan.validBytes, live: [] };
    for (let j = 0; j < records.length; j++) {
      const x = records[j];
      if (x.sequence <= prev.sequence) continue;
      // A torn write: cut short after the last intact record of the newest file, unseen by the
      // meta. Without the meta nothing can be told apart from damage, so all of it counts.
      const cutShort = x.offset + x.headerLength + x.payloadLength > buf.length;
      if (!rebuilt && lastFile && j > lastIntact && x.sequence > m.lastSequence && cutShort) break;
      const own = x.events + totalLosses(x.reports);
      missingRun(
        x.sequence,
        x.carriedThrough === undefined ? undefined : x.carriedThrough - own,
        x.sourceOffset - x.events,
        i,
      );
      if (x.sequence > m.reportedThrough) addLosses(r.owed, x.reports, -1);
      if (!x.intact && !done(x.sequence)) {
        r.corrupt.records++;
        const where = { sequence: x.sequence, events: x.events, file: name, at: x.offset };
        if (keepDamaged && j < lastIntact) {
          // Its bytes stay where they are (the file is cut only after its last intact record).
          file.live.push(x);
          log.error(where, 'spool: damaged record found; its first send will be its replacement');
        } else {
          r.owed.corrupt += x.events;
          addLosses(r.owed, x.reports);
          r.corrupt.events += x.events;
          log.error(where, 'spool: damaged record counted as lost');
        }
      } else if (x.intact && !done(x.sequence)) file.live.push(x);
      prev = { sequence: x.sequence, carried: x.carriedThrough, sourceOffset: x.sourceOffset, file: i };
    }
    if (scan.problem || dirtyTail[i]) damageSeen = true;
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
    missingRun(m.lastSequence + 1, m.carriedThrough, m.lastSourceOffset, names.length);
  else if (rebuilt && names.length > 0 && (dirtyTail[names.length - 1] || prev.file < names.length - 1)) {
    r.corrupt.unsized++;
    log.error(
      { after: prev.sequence, file: names[names.length - 1].name },
      'spool: the newest records are unreadable and the meta is lost: their number is unknown',
    );
  }
  // Damage found anywhere makes a cut at a record boundary likely: such runs are owed (an
  // over-count if one was a file deleted once acknowledged). With the log otherwise intact they are
  // taken for deleted files (if one was a clean cut instead, its events are lost uncounted: logged).
  damageSeen ||= r.cutFiles > 0 || r.corrupt.records + r.corrupt.runs + r.corrupt.unsized > 0;
  for (const g of gaps) {
    if (damageSeen) {
      r.owed.corrupt += g.events;
      r.corrupt.runs++;
      r.corrupt.events += g.events;
      log.error(
        g,
        'spool: records missing between two files (meta lost, damage found): counted as lost; an over-count if a file between them was deleted once acknowledged',
      );
    } else {
      r.gapEvents += g.events;
      log.warn(
        g,
        'spool: records missing between two files (meta lost, no damage found): taken for a file deleted once acknowledged; if the file before was cut at a record boundary they are lost uncounted',
      );
    }
  }
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

/**
 * The epoch written in the first intact record of the log that is a batch, undefined when none
 * is; `firstOnly` looks at the first intact record alone (a cheap check on every open).
 */
export async function epochFromLog(
  dir: string,
  names: SegmentName[],
  firstOnly = false,
): Promise<number | undefined> {
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
      if (firstOnly) return undefined;
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

/**
 * The meta to open with: the one on disk if it is readable and names the segments' epoch; else
 * one rebuilt from the segments (`rebuilt`: everything on disk is sent again, consumers
 * de-duplicate, rather than guess what was acknowledged); else, with no readable record, the
 * files moved aside and a new epoch whose meta owes what they held.
 */
export async function recoverMeta(
  o: SpoolSettings,
): Promise<{ meta: SpoolMeta; names: SegmentName[]; rebuilt: boolean; movedAside: boolean }> {
  await mkdir(o.dir, { recursive: true });
  await removeMetaTemp(o.dir);
  let names = await segmentNames(o.dir);
  let meta: SpoolMeta | undefined;
  let damage: string | undefined;
  try {
    meta = await readMeta(o.dir);
  } catch (err) {
    damage = (err as Error).message;
  }
  if (meta && names.length > 0) {
    const epoch = await epochFromLog(o.dir, names, true);
    if (epoch !== undefined && epoch !== meta.epoch) {
      damage = `${META_FILE} says epoch ${meta.epoch}, the segments ${epoch}`;
      meta = undefined;
    }
  }
  let rebuilt = false;
  let movedAside = false;
  if (!meta && names.length > 0) {
    const epoch = await epochFromLog(o.dir, names);
    damage ??= `segment files without ${META_FILE}`;
    if (epoch !== undefined) {
      meta = freshMeta(epoch);
      meta.reportedThrough = Number.MAX_SAFE_INTEGER;
      rebuilt = true;
      o.logger.error(
        { dir: o.dir, epoch, problem: damage },
        'spool meta unusable: rebuilt from the segments; every batch on disk is sent again, losses it owed are unknown',
      );
    } else {
      const aside = await moveAside(o.dir, names);
      movedAside = true;
      names = [];
      meta = freshMeta(newEpoch());
      meta.owed.corrupt = aside.events;
      await writeMeta(o.dir, meta, o.fsync !== 'never');
      o.logger.error(
        { dir: o.dir, movedTo: aside.to, lostEvents: aside.events, epoch: meta.epoch, problem: damage },
        'spool meta unusable and no readable record: state moved aside, new epoch',
      );
    }
  } else if (damage) {
    o.logger.error({ dir: o.dir, problem: damage }, 'spool meta unusable and no segments: new epoch');
  }
  if (!meta) {
    meta = freshMeta(newEpoch());
    await writeMeta(o.dir, meta, o.fsync !== 'never');
    o.logger.info({ dir: o.dir, epoch: meta.epoch }, 'new spool directory: new epoch');
  }
  return { meta, names, rebuilt, movedAside };
}
