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
import { type Logger, rateLimitedWarn } from '../../../common/runtime/log';
import { LiveBatches } from './live-batches';
import { encodeRecordHeader, RECORD_HEADER_BYTES } from './segment-file';
import { SegmentFiles, SpooledBatch } from './segment-files';
import {
  addLosses,
  type Losses,
  losses,
  lossesWithin,
  type Spool,
  type SpoolEntry,
  totalLosses,
} from './spool';
import { ackedState, currentBootId, LEASE, resumePoint, type SpoolMeta, writeMeta } from './spool-meta';
import { SpoolOps } from './spool-ops';
import { recoverLog, recoverMeta, type SegmentName } from './spool-recovery';
import {
  emptyStats,
  type SegmentSpoolOptions,
  type SegmentSpoolStats,
  type SpoolSettings,
  spoolSettings,
} from './spool-settings';

export type { FsyncMode, SegmentSpoolOptions, SegmentSpoolStats } from './spool-settings';

export class SegmentSpool implements Spool {
  readonly epoch: number;
  readonly durable = true;
  readonly dir: string;
  readonly stats: SegmentSpoolStats = emptyStats();
  private readonly log: Logger;
  private readonly live: LiveBatches;
  private readonly files: SegmentFiles;
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
  /** Changes since the meta was last written are those with version > persisted. */
  private version = 0;
  private persisted = -1;
  private readonly ops: SpoolOps;
  private closed = false;
  private listeners: Array<() => void> = [];
  private lossListeners: Array<(l: Losses) => void> = [];
  private inFlight: (sequence: number) => boolean = () => false;
  private encodeReplacement: ((sequence: number, lost: Losses) => Uint8Array) | undefined;
  private readonly dropLog;
  private readonly failLog;

  private constructor(
    private readonly o: SpoolSettings,
    private readonly meta: SpoolMeta,
  ) {
    this.epoch = meta.epoch;
    this.dir = o.dir;
    this.log = o.logger;
    this.files = new SegmentFiles(o.dir, o.segmentBytes, o.fsync);
    this.live = new LiveBatches(o.memoryBytes);
    this.ops = new SpoolOps(o.logger);
    this.dropLog = rateLimitedWarn(o.logger, 'spool full: dropped the oldest unacknowledged batches');
    this.failLog = rateLimitedWarn(o.logger, 'spool write failed: batches counted as lost');
  }

  static async open(options: SegmentSpoolOptions): Promise<SegmentSpool> {
    const o = spoolSettings(options);
    const { meta, names, rebuilt, movedAside } = await recoverMeta(o);
    const s = new SegmentSpool(o, meta);
    try {
      await s.load(names, rebuilt);
      // What the files moved aside held beyond their readable headers is unknown.
      if (movedAside) s.stats.corruptUnsized++;
    } catch (err) {
      await s.files.closeAll();
      throw err;
    }
    return s;
  }

  /** Rebuilds the state from the log and the meta; accounts for damage (spool-recovery.ts). */
  private async load(names: SegmentName[], rebuilt: boolean): Promise<void> {
    const m = this.meta;
    const sync = this.o.fsync !== 'never';
    const r = await recoverLog(this.o.dir, names, m, rebuilt, sync, this.log, this.o.replaceDamaged);
    this.stats.truncatedSegments = r.cutFiles;
    this.stats.truncatedBytes = r.cutBytes;
    this.stats.corruptRecords = r.corrupt.records;
    this.stats.corruptRuns = r.corrupt.runs;
    this.stats.corruptEvents = r.corrupt.events;
    this.stats.corruptUnsized = r.corrupt.unsized;
    this.stats.gapEvents = r.gapEvents;
    for (const f of r.files) {
      const seg = await this.files.adopt(f.first, f.path, f.size);
      for (const x of f.live) {
        this.live.add(
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
      }
    }

    const bootId = currentBootId();
    const at = resumePoint(r, m, rebuilt, bootId);
    if (at.powerLoss)
      this.log.warn(
        { from: at.last - at.skipped + 1, through: at.last },
        'spool: possible power loss without fsync; skipping sequences that may have been sent',
      );
    this.stats.skippedSequences = at.skipped;
    this.durableLast = at.last;
    this.durableOffset = at.sourceOffset;
    this.durableCarried = at.carried;
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
      this.ops.every(this.o.fsyncIntervalMs, () => {
        if (this.files.hasUnsynced) this.ops.background(() => this.files.syncActive());
      });
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
      await this.ops.run(() => this.write(e));
    } catch (err) {
      // The disk refused the batch: it is owed as lost, the sequence stays spent (a hole the
      // collector never sees filled), and the agent goes on; the next append tries again.
      addLosses(this.inflightReports, e.reports, -1);
      this.durableOwed.writeFailed += e.events;
      this.stats.failedWrites++;
      this.noteLoss(losses({ writeFailed: e.events }));
      this.failLog(1, e.events, { err: (err as Error).message });
      this.version++;
      this.ops.background(() => this.flushMeta());
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
    return this.live.events;
  }

  oldestPending(): number | undefined {
    return this.live.oldest();
  }

  replaceDamagedWith(encode: (sequence: number, lost: Losses) => Uint8Array): void {
    this.encodeReplacement = encode;
  }

  /**
   * The unacknowledged batch with this sequence, its payload read back if needed. A payload
   * damaged on disk since open is not a crash: the batch's events are lost
   * (LOSS_REASON_SPOOL_CORRUPT), reported by its replacement (see replaceDamagedWith), or
   * owed when there is none.
   */
  entry(sequence: number): SpoolEntry | undefined {
    const b = this.live.get(sequence);
    if (!b || b.cached) return b;
    try {
      const { events, sourceOffset, reports } = b;
      return { sequence, bytes: b.bytes, events, sourceOffset, reports };
    } catch (err) {
      const encode = this.encodeReplacement;
      const fields = { sequence, events: b.events, err: (err as Error).message };
      if (!encode) {
        this.log.error(fields, 'spool: damaged record counted as lost');
        this.lose(b, 'corrupt');
        return undefined;
      }
      this.log.error(fields, 'spool: damaged record; sending a replacement that reports its events lost');
      return this.replaceDamaged(b, encode);
    }
  }

  /**
   * Puts the replacement of a damaged batch in its place: it reports the batch's events and
   * reports as lost, so dropping it later owes them all, and it stays in memory until acknowledged.
   */
  private replaceDamaged(
    b: SpooledBatch,
    encode: (sequence: number, lost: Losses) => Uint8Array,
  ): SpooledBatch {
    const lost = addLosses(losses({ corrupt: b.events }), b.reports);
    const bytes = encode(b.sequence, lost);
    const r = new SpooledBatch(
      b.sequence,
      0,
      b.sourceOffset,
      lost,
      b.carriedThrough,
      b.headerLength,
      bytes.length,
      b.segment,
      b.offset,
    );
    this.live.replace(r, bytes);
    this.stats.replacedRecords++;
    this.noteLoss(losses({ corrupt: b.events }));
    return r;
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
    if (b.segment.live === 0 && b.segment !== this.files.active) this.queueDeletion();
    else this.armMetaFlush();
  }

  bytes(): number {
    return this.live.bytes;
  }

  /** Bytes of the segment files. */
  diskBytes(): number {
    return this.files.diskBytes();
  }

  onAppend(cb: () => void): void {
    this.listeners.push(cb);
  }

  onLoss(cb: (l: Losses) => void): void {
    this.lossListeners.push(cb);
  }

  /** Persists acknowledgements now rather than within metaFlushMs (and frees drained files). */
  async flush(): Promise<void> {
    await this.ops.run(() => this.flushMeta());
  }

  private async flushMeta(): Promise<void> {
    if (this.version !== this.persisted) await this.persistMeta();
    await this.deleteDeadSegments(true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ops.stop();
    await this.ops
      .run(async () => {
        await this.files.syncActive();
        this.meta.clean = true;
        this.version++;
        await this.persistMeta();
      })
      .catch((err: Error) => this.log.error({ err: err.message }, 'spool: could not record a clean close'))
      .finally(() => this.files.closeAll());
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
    const carried = this.durableCarried + e.events + totalLosses(e.reports);
    const header = encodeRecordHeader({ ...e, carriedThrough: carried }, e.bytes);
    const { seg, at } = await this.files.append(e.sequence, header, e.bytes);

    this.durableLast = e.sequence;
    this.durableOffset = e.sourceOffset;
    this.durableCarried = carried;
    addLosses(this.durableOwed, e.reports, -1);
    addLosses(this.inflightReports, e.reports, -1);
    const { sequence, events, sourceOffset, reports } = e;
    this.live.add(
      new SpooledBatch(
        sequence,
        events,
        sourceOffset,
        reports,
        carried,
        RECORD_HEADER_BYTES,
        e.bytes.length,
        seg,
        at,
      ),
      e.bytes,
    );
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
    let disk = recordBytes + this.files.keptBytes();
    const diskLimit = this.o.budgetBytes + this.o.segmentBytes;
    let batches = 0;
    let events = 0;
    for (const b of this.live.values()) {
      const overBudget = this.live.bytes + payloadBytes > this.o.budgetBytes;
      if (!overBudget && disk <= diskLimit) break;
      if (this.inFlight(b.sequence)) continue;
      if (!overBudget) this.stats.droppedForDisk++;
      this.lose(b, 'full');
      if (b.segment.live === 0 && b.segment !== this.files.active) disk -= b.segment.size;
      batches++;
      events += b.events;
    }
    if (batches === 0) return false;
    this.stats.droppedBatches += batches;
    this.dropLog(batches, events, { heldBytes: this.live.bytes, budgetBytes: this.o.budgetBytes });
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

  private remove(b: SpooledBatch): void {
    this.live.remove(b);
    this.version++;
  }

  /**
   * Deletes the files whose batches are all gone, after the meta says they are; with `active`,
   * the one being appended to as well (the next record starts a new file, and the meta keeps
   * the sequence and offset its last record held).
   */
  private async deleteDeadSegments(active = false): Promise<void> {
    const dead = this.files.drained(active);
    if (dead.length === 0) return;
    if (this.version !== this.persisted) await this.persistMeta();
    await this.files.delete(dead);
  }

  private async persistMeta(): Promise<void> {
    const m = this.meta;
    const version = this.version;
    Object.assign(m, ackedState(this.live.values(), this.durableLast, this.durableCarried));
    m.owed = losses(this.durableOwed);
    m.reportedThrough = this.durableLast;
    m.lastSequence = this.durableLast;
    m.lastSourceOffset = this.durableOffset;
    m.carriedThrough = this.durableCarried;
    m.leaseThrough = this.leaseThrough;
    await writeMeta(this.o.dir, m, this.o.fsync !== 'never');
    this.persisted = version;
  }

  private armMetaFlush(): void {
    this.ops.once('meta', this.o.metaFlushMs, () => this.flushMeta());
  }

  private queueDeletion(): void {
    this.ops.once('delete', 0, () => this.deleteDeadSegments());
  }
}
