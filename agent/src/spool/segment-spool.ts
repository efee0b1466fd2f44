// The durable spool: MemorySpool's semantics (see spool.ts) kept in a state directory, as an
// append-only log of segment files (format in segment-file.ts) plus a small checksummed meta file
// (spool-meta.ts).
// Guarantee, with fsync 'always': append() resolves, and the transport hears of the batch, only
// once its record is on stable storage; after kill -9 or a power loss, open() removes a torn
// tail, continues the sequence after the last durable record (never reusing one), resumes
// sourceOffset() from it, and restores owed() exactly: a loss is persisted before the append that
// caused it resolves, and the reports of records newer than the meta are subtracted again from
// the log. Damage on disk costs only the damaged records, each owed as LOSS_REASON_SPOOL_CORRUPT
// (spool-recovery.ts); a damaged meta is rebuilt from the log. With 'interval' or 'never' a
// process crash loses nothing either (written data is in the page cache), but a power loss may
// lose the last interval's records; the sequences leased in the meta are then skipped rather
// than reused ('never' does not fsync the lease either: no power-loss guarantee at all).
// A write the disk refuses (full, quota, I/O error) does not stop the spool: that batch is owed
// as LOSS_REASON_SPOOL_WRITE_FAILED and the next append tries again.
// Acknowledgements are persisted lazily (within metaFlushMs, before a file is deleted, on close),
// so a batch acknowledged just before a crash, in order or not, may be sent again (at-least-once).
// Drops are per batch, oldest first, exactly as MemorySpool. A segment file is deleted once every
// batch in it is acknowledged or dropped; the one being appended to with the next meta flush
// (the next record starts a new file), so a drained spool gives its space back. Besides the payload budget, the
// oldest batches are also dropped while the segment files would exceed budgetBytes +
// segmentBytes, and room is made before a record is written, so disk use stays within that at
// every moment, a crash included (plus the meta file; a lone record larger than the bound is
// still kept). Headers and acknowledged records that share a file with an unacknowledged one
// count there: this binds before the payload budget only when they add up to more than a segment
// while the payloads are near the budget (4 KiB batches: headers are 1.8%).
import { type FileHandle, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, silentLogger } from '../../../common/runtime/log';
import { encodeRecordHeader, RECORD_HEADER_BYTES, readRecordPayload, segmentFileName } from './segment-file';
import {
  addLosses,
  type Losses,
  losses,
  lossesWithin,
  type Spool,
  type SpoolEntry,
  totalLosses,
} from './spool';
import {
  currentBootId,
  freshMeta,
  META_FILE,
  newEpoch,
  readMeta,
  removeMetaTemp,
  type SpoolMeta,
  syncDir,
  writeMeta,
} from './spool-meta';
import { epochFromLog, moveAside, recoverLog, type SegmentName, segmentNames } from './spool-recovery';

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
  logger?: Logger;
}

export interface SegmentSpoolStats {
  /** Segment files cut (or removed) on open after their last intact record. */
  truncatedSegments: number;
  /** Bytes removed by those cuts. */
  truncatedBytes: number;
  /** Damaged records (header intact) found on open and counted as lost. */
  corruptRecords: number;
  /** Runs of records with no readable header found on open and counted as lost. */
  corruptRuns: number;
  /** Events (and reports) in those, owed as LOSS_REASON_SPOOL_CORRUPT. */
  corruptEvents: number;
  /** Runs lost whose size nothing tells (logged as errors; only without a usable meta or format-1 records). */
  corruptUnsized: number;
  /** Batches dropped since open (their events went to owed().full). */
  droppedBatches: number;
  /** Of those, dropped because the files (not the payloads) reached their bound. */
  droppedForDisk: number;
  /** Appends the disk refused since open (their events went to owed().writeFailed). */
  failedWrites: number;
  /** Sequence numbers skipped on open after a possible power loss or a rebuilt meta. */
  skippedSequences: number;
}

/** How many sequence numbers one lease covers (fsync 'interval'/'never'). */
const LEASE = 256;
const DROP_LOG_MS = 10_000;

interface Segment {
  readonly first: number;
  readonly path: string;
  readonly fh: FileHandle;
  size: number;
  /** Batches in the file still unacknowledged and not dropped. */
  live: number;
}

/** A spooled batch; its payload is kept in memory while that fits, else read back when used. */
class SpooledBatch implements SpoolEntry {
  public cached: Uint8Array | undefined;

  constructor(
    readonly sequence: number,
    readonly events: number,
    readonly sourceOffset: number,
    readonly reports: Losses,
    /** From the record header (undefined for format-1 records, which have none). */
    readonly carriedThrough: number | undefined,
    readonly headerLength: number,
    readonly length: number,
    readonly segment: Segment,
    readonly offset: number,
  ) {}

  get bytes(): Uint8Array {
    return (
      this.cached ??
      readRecordPayload(this.segment.fh.fd, this.offset, this.headerLength, this.length, this.sequence)
    );
  }
}

type Settings = Required<Omit<SegmentSpoolOptions, 'logger'>> & { logger: Logger };

export class SegmentSpool implements Spool {
  readonly epoch: number;
  readonly durable = true;
  readonly dir: string;
  readonly stats: SegmentSpoolStats = {
    truncatedSegments: 0,
    truncatedBytes: 0,
    corruptRecords: 0,
    corruptRuns: 0,
    corruptEvents: 0,
    corruptUnsized: 0,
    droppedBatches: 0,
    droppedForDisk: 0,
    failedWrites: 0,
    skippedSequences: 0,
  };
  private readonly log: Logger;
  /** Unacknowledged, undropped batches in sequence order (Map keeps insertion order). */
  private readonly live = new Map<number, SpooledBatch>();
  private segments: Segment[] = [];
  private active: Segment | undefined;
  private held = 0;
  private heldEvents = 0;
  /** The caller's view, advanced when append is called (so a second caller sees the next number). */
  private next = 1;
  private offset = 0;
  private readonly inflightReports = losses();
  /** State of the durable log: what a restart would find. */
  private durableLast = 0;
  private durableOffset = 0;
  private durableCarried = 0;
  private durableOwed = losses();
  private leaseThrough = 0;
  /** Payloads held in memory, oldest first. */
  private readonly cache = new Map<number, SpooledBatch>();
  private cachedBytes = 0;
  /** Changes since the meta was last written are those with version > persisted. */
  private version = 0;
  private persisted = -1;
  /** Every file operation runs in this chain, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private unsynced = false;
  private deletionQueued = false;
  private metaTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private listeners: Array<() => void> = [];
  private lossListeners: Array<(l: Losses) => void> = [];
  private inFlight: (sequence: number) => boolean = () => false;
  private dropLog = { batches: 0, events: 0, at: 0 };
  private failLog = { batches: 0, events: 0, at: 0 };

  private constructor(
    private readonly o: Settings,
    private readonly meta: SpoolMeta,
  ) {
    this.epoch = meta.epoch;
    this.dir = o.dir;
    this.log = o.logger;
  }

  static async open(options: SegmentSpoolOptions): Promise<SegmentSpool> {
    const o: Settings = {
      dir: options.dir,
      budgetBytes: options.budgetBytes,
      segmentBytes: options.segmentBytes ?? 8 << 20,
      fsync: options.fsync ?? 'always',
      fsyncIntervalMs: options.fsyncIntervalMs ?? 200,
      metaFlushMs: options.metaFlushMs ?? 1000,
      memoryBytes: options.memoryBytes ?? Math.min(options.budgetBytes, 32 << 20),
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
    if (!meta && names.length > 0) {
      // The meta is lost or wrong: rebuild it from the log (the epoch is in every batch), resend
      // everything on disk (consumers de-duplicate) rather than guess what was acknowledged.
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
    const s = new SegmentSpool(o, meta);
    try {
      await s.load(names, rebuilt);
    } catch (err) {
      await s.closeFiles();
      throw err;
    }
    return s;
  }

  /** Rebuilds the state from the log and the meta; accounts for damage (spool-recovery.ts). */
  private async load(names: SegmentName[], rebuilt: boolean): Promise<void> {
    const m = this.meta;
    const r = await recoverLog(this.o.dir, names, m, rebuilt, this.o.fsync !== 'never', this.log);
    this.stats.truncatedSegments = r.cutFiles;
    this.stats.truncatedBytes = r.cutBytes;
    this.stats.corruptRecords = r.corrupt.records;
    this.stats.corruptRuns = r.corrupt.runs;
    this.stats.corruptEvents = r.corrupt.events;
    this.stats.corruptUnsized = r.corrupt.unsized;
    for (const f of r.files) {
      const seg: Segment = {
        first: f.first,
        path: f.path,
        fh: await open(f.path, 'a+'),
        size: f.size,
        live: 0,
      };
      this.segments.push(seg);
      for (const x of f.live) {
        this.live.set(
          x.sequence,
          new SpooledBatch(
            x.sequence,
            x.events,
            x.sourceOffset,
            x.reports,
            x.carriedThrough,
            x.headerLength,
            x.payloadLength,
            seg,
            x.offset,
          ),
        );
        this.held += x.payloadLength;
        this.heldEvents += x.events;
        seg.live++;
      }
    }
    this.active = this.segments[this.segments.length - 1];

    this.durableLast = r.last;
    this.durableOffset = r.lastOffset;
    this.durableCarried = r.lastCarried ?? 0;
    if (m.lastSequence > r.last) {
      // Records the meta had seen are gone: acknowledged and deleted, lost without fsync, or
      // damaged (then counted by recoverLog).
      this.durableLast = m.lastSequence;
      this.durableOffset = m.lastSourceOffset;
      this.durableCarried = m.carriedThrough ?? this.durableCarried;
    }
    this.durableLast = Math.max(this.durableLast, m.ackedThrough, m.ackedRanges.at(-1)?.[1] ?? 0);
    const bootId = currentBootId();
    if (rebuilt) {
      // Sequences after the last record may have been handed out (a batch the disk refused, a
      // record not yet synced): skip a lease's worth rather than reuse one.
      this.stats.skippedSequences = LEASE;
      this.durableLast += LEASE;
    } else if (!m.clean && m.leaseThrough > this.durableLast && (bootId === '' || bootId !== m.bootId)) {
      this.stats.skippedSequences = m.leaseThrough - this.durableLast;
      this.log.warn(
        { from: this.durableLast + 1, through: m.leaseThrough },
        'spool: possible power loss without fsync; skipping sequences that may have been sent',
      );
      this.durableLast = m.leaseThrough;
    }
    this.leaseThrough = Math.max(m.leaseThrough, this.durableLast);
    this.durableOwed = r.owed;
    this.next = this.durableLast + 1;
    this.offset = this.durableOffset;
    m.bootId = bootId;
    m.clean = false;
    this.version++;
    await this.persistMeta();
    await this.deleteDeadSegments(true);
    if (this.o.fsync === 'interval') {
      this.syncTimer = setInterval(() => this.syncSoon(), this.o.fsyncIntervalMs);
      this.syncTimer.unref();
    }
  }

  nextSequence(): number {
    return this.next;
  }

  sourceOffset(): number {
    return this.offset;
  }

  owed(): Losses {
    return addLosses(losses(this.durableOwed), this.inflightReports, -1);
  }

  async append(e: SpoolEntry): Promise<void> {
    if (this.closed) throw new Error('spool is closed');
    if (e.sequence !== this.next) throw new Error(`spool expected sequence ${this.next}, got ${e.sequence}`);
    const owed = this.owed();
    if (!lossesWithin(e.reports, owed))
      throw new Error(
        `batch reports ${JSON.stringify(e.reports)} lost events, only ${JSON.stringify(owed)} owed`,
      );
    if (!Number.isInteger(e.events) || e.events < 0 || e.events > 0xffffffff)
      throw new Error(`spool record: events ${e.events} out of range`);
    this.next++;
    this.offset = e.sourceOffset;
    addLosses(this.inflightReports, e.reports);
    try {
      await this.run(() => this.write(e));
    } catch (err) {
      // The disk refused the batch: it is owed as lost, the sequence stays spent (a hole the
      // collector never sees filled), and the agent goes on; the next append tries again.
      addLosses(this.inflightReports, e.reports, -1);
      this.durableOwed.writeFailed += e.events;
      this.stats.failedWrites++;
      this.noteLoss(losses({ writeFailed: e.events }));
      this.rateLog(
        this.failLog,
        1,
        e.events,
        { err: (err as Error).message },
        'spool write failed: batches counted as lost',
      );
      this.version++;
      this.background(() => this.flushMeta());
      return;
    }
    for (const cb of this.listeners) cb();
  }

  protect(inFlight: (sequence: number) => boolean): void {
    this.inFlight = inFlight;
  }

  pendingCount(): number {
    return this.live.size;
  }

  pendingEvents(): number {
    return this.heldEvents;
  }

  oldestPending(): number | undefined {
    return this.live.keys().next().value;
  }

  /**
   * The unacknowledged batch with this sequence, its payload read back if needed; a payload
   * damaged on disk since open makes the batch a loss (LOSS_REASON_SPOOL_CORRUPT), not a crash.
   */
  entry(sequence: number): SpoolEntry | undefined {
    const b = this.live.get(sequence);
    if (!b || b.cached) return b;
    try {
      const { events, sourceOffset, reports } = b;
      return { sequence, bytes: b.bytes, events, sourceOffset, reports };
    } catch (err) {
      this.log.error({ sequence, err: (err as Error).message }, 'spool: damaged record counted as lost');
      this.lose(b, 'corrupt');
      return undefined;
    }
  }

  pending(): SpoolEntry[] {
    return [...this.live.values()];
  }

  ack(sequence: number): void {
    const b = this.live.get(sequence);
    if (!b) return;
    this.remove(b);
    if (this.closed) return;
    // A drained active file goes with the next meta flush, not at once: when every batch is
    // acknowledged right after its append, deleting it each time would cost a file per batch.
    if (b.segment.live === 0 && b.segment !== this.active) this.queueDeletion();
    else this.armMetaFlush();
  }

  bytes(): number {
    return this.held;
  }

  /** Bytes of the segment files. */
  diskBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  onAppend(cb: () => void): void {
    this.listeners.push(cb);
  }

  onLoss(cb: (l: Losses) => void): void {
    this.lossListeners.push(cb);
  }

  /** Persists acknowledgements now rather than within metaFlushMs (and frees drained files). */
  async flush(): Promise<void> {
    await this.run(() => this.flushMeta());
  }

  private async flushMeta(): Promise<void> {
    if (this.version !== this.persisted) await this.persistMeta();
    await this.deleteDeadSegments(true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.metaTimer);
    clearInterval(this.syncTimer);
    await this.run(async () => {
      await this.syncActive();
      this.meta.clean = true;
      this.version++;
      await this.persistMeta();
    })
      .catch((err: Error) => this.log.error({ err: err.message }, 'spool: could not record a clean close'))
      .finally(() => this.closeFiles());
  }

  /**
   * Makes room first (drops, persisted, and deletion of files left with nothing), then writes one
   * record: the files never exceed their bound, not even in the middle of an append.
   */
  private async write(e: SpoolEntry): Promise<void> {
    if (this.o.fsync !== 'always' && e.sequence > this.leaseThrough) {
      const lease = this.leaseThrough;
      this.leaseThrough = e.sequence + LEASE - 1;
      this.version++;
      await this.persistMeta().catch((err) => {
        this.leaseThrough = lease;
        throw err;
      });
    }
    const length = RECORD_HEADER_BYTES + e.bytes.length;
    if (this.dropOldest(e.bytes.length, length)) await this.persistMeta();
    await this.deleteDeadSegments();
    let seg = this.active;
    if (seg && seg.size > 0 && seg.size + length > this.o.segmentBytes) {
      await this.syncActive();
      this.active = seg = undefined;
    }
    if (!seg) seg = await this.newSegment(e.sequence);
    const carried = this.durableCarried + e.events + totalLosses(e.reports);
    const header = encodeRecordHeader({ ...e, carriedThrough: carried }, e.bytes);
    const at = seg.size;
    try {
      const { bytesWritten } = await seg.fh.writev([header, e.bytes]);
      if (bytesWritten !== length)
        throw new Error(`short write to ${seg.path}: ${bytesWritten} of ${length} bytes`);
      if (this.o.fsync === 'always') await seg.fh.datasync();
      else this.unsynced = true;
    } catch (err) {
      // Take back what part of the record reached the file; if even that fails, the file is
      // written no more (the next record starts a new one; open() skips the torn bytes).
      await seg.fh.truncate(at).catch(() => {
        if (this.active === seg) this.active = undefined;
      });
      throw err;
    }
    seg.size += length;

    this.durableLast = e.sequence;
    this.durableOffset = e.sourceOffset;
    this.durableCarried = carried;
    addLosses(this.durableOwed, e.reports, -1);
    addLosses(this.inflightReports, e.reports, -1);
    const b = new SpooledBatch(
      e.sequence,
      e.events,
      e.sourceOffset,
      e.reports,
      carried,
      RECORD_HEADER_BYTES,
      e.bytes.length,
      seg,
      at,
    );
    b.cached = e.bytes;
    this.live.set(b.sequence, b);
    this.held += b.length;
    this.heldEvents += b.events;
    seg.live++;
    this.cache.set(b.sequence, b);
    this.cachedBytes += b.length;
    for (const [seq, old] of this.cache) {
      if (this.cachedBytes <= this.o.memoryBytes) break;
      this.cache.delete(seq);
      this.cachedBytes -= old.length;
      old.cached = undefined;
    }
    this.version++;
    // A rotation may have left the previous file with nothing live: it goes now (the meta,
    // written first, keeps the sequence and offset it held).
    await this.deleteDeadSegments();
    if (this.version !== this.persisted) this.armMetaFlush();
  }

  /**
   * MemorySpool's rule (drop the oldest until the payloads, the coming one included, fit the
   * budget) plus the file bound, for a record of `recordBytes` about to be written. True if
   * anything was dropped.
   */
  private dropOldest(payloadBytes: number, recordBytes: number): boolean {
    let disk = recordBytes;
    for (const s of this.segments) if (s.live > 0 || s === this.active) disk += s.size;
    const diskLimit = this.o.budgetBytes + this.o.segmentBytes;
    let batches = 0;
    let events = 0;
    for (const b of this.live.values()) {
      const overBudget = this.held + payloadBytes > this.o.budgetBytes;
      if (!overBudget && disk <= diskLimit) break;
      if (this.inFlight(b.sequence)) continue;
      if (!overBudget) this.stats.droppedForDisk++;
      this.lose(b, 'full');
      if (b.segment.live === 0 && b.segment !== this.active) disk -= b.segment.size;
      batches++;
      events += b.events;
    }
    if (batches === 0) return false;
    this.stats.droppedBatches += batches;
    this.rateLog(
      this.dropLog,
      batches,
      events,
      { heldBytes: this.held, budgetBytes: this.o.budgetBytes },
      'spool full: dropped the oldest unacknowledged batches',
    );
    return true;
  }

  /** Gives up a batch: its events are owed under `reason`, the reports it carried under theirs. */
  private lose(b: SpooledBatch, reason: keyof Losses): void {
    this.remove(b);
    this.durableOwed[reason] += b.events;
    addLosses(this.durableOwed, b.reports);
    this.noteLoss(losses({ [reason]: b.events }));
  }

  private noteLoss(l: Losses): void {
    for (const cb of this.lossListeners) cb(l);
  }

  /** Logs at most every DROP_LOG_MS, with the totals since the last line. */
  private rateLog(
    d: { batches: number; events: number; at: number },
    batches: number,
    events: number,
    fields: object,
    message: string,
  ): void {
    d.batches += batches;
    d.events += events;
    const now = Date.now();
    if (now - d.at < DROP_LOG_MS) return;
    this.log.warn({ batches: d.batches, events: d.events, ...fields }, message);
    d.batches = 0;
    d.events = 0;
    d.at = now;
  }

  private remove(b: SpooledBatch): void {
    this.live.delete(b.sequence);
    this.held -= b.length;
    this.heldEvents -= b.events;
    b.segment.live--;
    if (this.cache.delete(b.sequence)) this.cachedBytes -= b.length;
    this.version++;
  }

  private async newSegment(first: number): Promise<Segment> {
    const path = join(this.o.dir, segmentFileName(first));
    const seg: Segment = { first, path, fh: await open(path, 'a+'), size: 0, live: 0 };
    this.segments.push(seg);
    this.active = seg;
    if (this.o.fsync !== 'never') await syncDir(this.o.dir);
    return seg;
  }

  /**
   * Deletes the files whose batches are all gone, after the meta says they are; with `active`,
   * the one being appended to as well (the next record starts a new file, and the meta keeps
   * the sequence and offset its last record held).
   */
  private async deleteDeadSegments(active = false): Promise<void> {
    const dead = this.segments.filter((s) => s.live === 0 && (s !== this.active || (active && s.size > 0)));
    if (dead.length === 0) return;
    if (this.version !== this.persisted) await this.persistMeta();
    for (const s of dead) {
      this.segments = this.segments.filter((x) => x !== s);
      if (this.active === s) {
        await this.syncActive();
        this.active = undefined;
      }
      await s.fh.close();
      await unlink(s.path);
    }
  }

  private async persistMeta(): Promise<void> {
    const m = this.meta;
    const version = this.version;
    const first = this.live.values().next();
    // Format-1 records (an upgraded spool) have no carriedThrough: then the weights are left out.
    let known = true;
    const before = (b: SpooledBatch) => {
      if (b.carriedThrough === undefined) known = false;
      return (b.carriedThrough ?? 0) - b.events - totalLosses(b.reports);
    };
    m.ackedThrough = first.done ? this.durableLast : first.value.sequence - 1;
    let carried = first.done ? this.durableCarried : before(first.value);
    const acked: Array<[number, number]> = [];
    const weights: Array<[number, number]> = [];
    m.ackedThroughCarried = carried;
    let prev = m.ackedThrough;
    for (const b of this.live.values()) {
      if (b.sequence > prev + 1) {
        acked.push([prev + 1, b.sequence - 1]);
        weights.push([carried, before(b)]);
      }
      prev = b.sequence;
      carried = b.carriedThrough ?? 0;
    }
    if (prev < this.durableLast) {
      acked.push([prev + 1, this.durableLast]);
      weights.push([carried, this.durableCarried]);
    }
    m.ackedRanges = acked;
    m.ackedRangesCarried = known ? weights : undefined;
    if (!known) m.ackedThroughCarried = undefined;
    m.owed = losses(this.durableOwed);
    m.reportedThrough = this.durableLast;
    m.lastSequence = this.durableLast;
    m.lastSourceOffset = this.durableOffset;
    m.carriedThrough = this.durableCarried;
    m.leaseThrough = this.leaseThrough;
    await writeMeta(this.o.dir, m, this.o.fsync !== 'never');
    this.persisted = version;
  }

  private async syncActive(): Promise<void> {
    if (!this.unsynced || !this.active) return;
    this.unsynced = false;
    await this.active.fh.datasync();
  }

  private syncSoon(): void {
    if (this.unsynced) this.background(() => this.syncActive());
  }

  private armMetaFlush(): void {
    if (this.metaTimer || this.closed) return;
    this.metaTimer = setTimeout(() => {
      this.metaTimer = undefined;
      this.background(() => this.flushMeta());
    }, this.o.metaFlushMs);
    this.metaTimer.unref();
  }

  private queueDeletion(): void {
    if (this.deletionQueued) return;
    this.deletionQueued = true;
    this.background(async () => {
      this.deletionQueued = false;
      await this.deleteDeadSegments();
    });
  }

  /** Runs housekeeping in the chain; its failure is logged (the next append or close retries it). */
  private background(op: () => Promise<void>): void {
    if (this.closed) return;
    this.run(op).catch((err: Error) => this.log.error({ err }, 'spool housekeeping failed'));
  }

  private run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.queue.then(op);
    this.queue = p.catch(() => {});
    return p;
  }

  private async closeFiles(): Promise<void> {
    for (const s of this.segments) await s.fh.close().catch(() => {});
  }
}
