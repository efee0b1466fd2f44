// The segment spool's options, their defaults and checks, and the counters it keeps.
import { type Logger, silentLogger } from '../../../common/runtime/log';

export type FsyncMode = 'always' | 'interval' | 'never';

export interface SegmentSpoolOptions {
  /** State directory, created if missing; one spool (one epoch) per directory. */
  dir: string;
  /** Most payload bytes of unacknowledged batches held (as MemorySpool's budget). */
  budgetBytes: number;
  /** A new segment file starts when the current one would grow past this. Default 8 MiB. */
  segmentBytes?: number;
  /** When records reach stable storage: before append resolves, on a timer, or never. Default 'always'. */
  fsync?: FsyncMode;
  /** Period of the 'interval' fsync. Default 200 ms. */
  fsyncIntervalMs?: number;
  /** Longest time an acknowledgement waits to be persisted. Default 1000 ms. */
  metaFlushMs?: number;
  /** Payload bytes kept in memory; older payloads are read back from disk when sent. Default min(budget, 32 MiB). */
  memoryBytes?: number;
  /**
   * A damaged record found on open stays pending instead of being owed at once, when it can (an
   * intact record follows it in its file, so its place is never cut or written over): the first
   * send then finds it damaged and sends its replacement (Spool.replaceDamagedWith), which
   * consumers can match with the original should a collector have published it before the
   * restart. Without a replacement encoder it is owed then. Default false.
   */
  replaceDamaged?: boolean;
  logger?: Logger;
}

export interface SegmentSpoolStats {
  /** Segment files cut (or removed) on open after their last intact record. */
  truncatedSegments: number;
  /** Bytes removed by those cuts. */
  truncatedBytes: number;
  /** Damaged records (header intact) found on open: owed, or kept to be replaced (replaceDamaged). */
  corruptRecords: number;
  /** Runs of records with no readable header found on open and counted as lost. */
  corruptRuns: number;
  /** Events (and reports) in those and in the runs, owed as LOSS_REASON_SPOOL_CORRUPT. */
  corruptEvents: number;
  /** Runs lost whose size nothing tells (logged as errors; only without a usable meta or format-1 records). */
  corruptUnsized: number;
  /**
   * Events of runs missing between two files, found with the meta lost and no damage elsewhere:
   * taken for files deleted once acknowledged, not owed (logged as warnings).
   */
  gapEvents: number;
  /** Records found damaged when read back to be sent, since open, and sent as a replacement. */
  replacedRecords: number;
  /** Batches dropped since open (their events went to owed().full). */
  droppedBatches: number;
  /** Of those, dropped because the files (not the payloads) reached their bound. */
  droppedForDisk: number;
  /** Appends the disk refused since open (their events went to owed().writeFailed). */
  failedWrites: number;
  /** Sequence numbers skipped on open after a possible power loss or a rebuilt meta. */
  skippedSequences: number;
}

export type SpoolSettings = Required<Omit<SegmentSpoolOptions, 'logger'>> & { logger: Logger };

/** The options with their defaults; a clear error for a value out of range. */
export function spoolSettings(options: SegmentSpoolOptions): SpoolSettings {
  const o: SpoolSettings = {
    dir: options.dir,
    budgetBytes: options.budgetBytes,
    segmentBytes: options.segmentBytes ?? 8 << 20,
    fsync: options.fsync ?? 'always',
    fsyncIntervalMs: options.fsyncIntervalMs ?? 200,
    metaFlushMs: options.metaFlushMs ?? 1000,
    memoryBytes: options.memoryBytes ?? Math.min(options.budgetBytes, 32 << 20),
    replaceDamaged: options.replaceDamaged ?? false,
    logger: options.logger ?? silentLogger,
  };
  const positive = ['budgetBytes', 'segmentBytes', 'fsyncIntervalMs', 'metaFlushMs'] as const;
  for (const k of positive)
    if (!Number.isSafeInteger(o[k]) || o[k] <= 0)
      throw new Error(`segment spool: ${k} must be a positive integer`);
  if (!Number.isSafeInteger(o.memoryBytes) || o.memoryBytes < 0)
    throw new Error('segment spool: memoryBytes must be a non-negative integer');
  if (!['always', 'interval', 'never'].includes(o.fsync))
    throw new Error(`segment spool: fsync must be always, interval or never, not ${o.fsync}`);
  return o;
}

export function emptyStats(): SegmentSpoolStats {
  return {
    truncatedSegments: 0,
    truncatedBytes: 0,
    corruptRecords: 0,
    corruptRuns: 0,
    corruptEvents: 0,
    corruptUnsized: 0,
    gapEvents: 0,
    replacedRecords: 0,
    droppedBatches: 0,
    droppedForDisk: 0,
    failedWrites: 0,
    skippedSequences: 0,
  };
}
