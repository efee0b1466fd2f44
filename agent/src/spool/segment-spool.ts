// The durable spool: MemorySpool's semantics (see spool.ts) kept in a state directory, as an
// append-only log of segment files (format in segment-file.ts) plus a small meta file
// (spool-meta.ts).
// Guarantee, with fsync 'always': append() resolves, and the transport hears of the batch, only
// once its record is on stable storage; after kill -9 or a power loss, open() cuts a torn or
// corrupt tail at the first record whose CRC fails, continues the sequence after the last durable
// record (never reusing one), resumes sourceOffset() from it, and restores droppedUnreported()
// exactly: a drop is persisted before the append that caused it resolves, and the reports of
// records newer than the meta are subtracted again from the log. With 'interval' or 'never' a
// process crash loses nothing either (written data is in the page cache), but a power loss may
// lose the last interval's records; the sequences leased in the meta are then skipped rather
// than reused ('never' does not fsync the lease either: no power-loss guarantee at all).
// Acknowledgements are persisted lazily (within metaFlushMs, before a file is deleted, on close),
// so a batch acknowledged just before a crash, in order or not, may be sent again (at-least-once).
// Drops are per batch, oldest first, exactly as MemorySpool. A segment file is deleted once every
// batch in it is acknowledged or dropped (never the one being appended to, which keeps the last
// record). Besides the payload budget, the oldest batches are also dropped while the segment
// files would exceed budgetBytes + segmentBytes, and room is made before a record is written, so
// disk use stays within that at every moment, a crash included (plus the meta file; a lone record
// larger than the bound is still kept). Headers and acknowledged records that share a file with
// an unacknowledged one count there: this binds before the payload budget only when they add up
// to more than a segment while the payloads are near the budget (4 KiB batches: headers are 1.2%).
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, silentLogger } from '../runtime/log';
import {
  encodeRecordHeader,
  RECORD_HEADER_BYTES,
  readRecordPayload,
  scanRecords,
  segmentFileName,
  segmentFirstSequence,
} from './segment-file';
import type { Spool, SpoolEntry } from './spool';
import {
  currentBootId,
  freshMeta,
  newEpoch,
  readMeta,
  removeMetaTemp,
  type SpoolMeta,
  syncDir,
  writeMeta,
} from './spool-meta';

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
  /** Segment files cut on open at a torn or corrupt record. */
  truncatedSegments: number;
  /** Bytes removed by those cuts. */
  truncatedBytes: number;
  /** Batches dropped since open (their events went to droppedUnreported). */
  droppedBatches: number;
  /** Of those, dropped because the files (not the payloads) reached their bound. */
  droppedForDisk: number;
  /** Sequence numbers skipped on open after a possible power loss. */
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
  constructor(
    readonly sequence: number,
    readonly events: number,
    readonly sourceOffset: number,
    readonly reportsDropped: number,
    readonly length: number,
    readonly segment: Segment,
    readonly offset: number,
    public cached: Uint8Array | undefined,
  ) {}

  get bytes(): Uint8Array {
    return this.cached ?? readRecordPayload(this.segment.fh.fd, this.offset, this.length, this.sequence);
  }
}

type Settings = Required<Omit<SegmentSpoolOptions, 'logger'>> & { logger: Logger };

export class SegmentSpool implements Spool {
  readonly epoch: number;
  readonly dir: string;
  readonly stats: SegmentSpoolStats = {
    truncatedSegments: 0,
    truncatedBytes: 0,
    droppedBatches: 0,
    droppedForDisk: 0,
    skippedSequences: 0,
  };
  private readonly log: Logger;
  /** Unacknowledged, undropped batches in sequence order (Map keeps insertion order). */
  private readonly live = new Map<number, SpooledBatch>();
  private segments: Segment[] = [];
  private active: Segment | undefined;
  private held = 0;
  /** The caller's view, advanced when append is called (so a second caller sees the next number). */
  private next = 1;
  private offset = 0;
  private inflightReports = 0;
  /** State of the durable log: what a restart would find. */
  private durableLast = 0;
  private durableOffset = 0;
  private durableDropped = 0;
  private leaseThrough = 0;
  /** Payloads held in memory, oldest first. */
  private readonly cache = new Map<number, SpooledBatch>();
  private cachedBytes = 0;
  /** Changes since the meta was last written are those with version > persisted. */
  private version = 0;
  private persisted = -1;
  /** Every file operation runs in this chain, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private closed = false;
  private unsynced = false;
  private deletionQueued = false;
  private metaTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private listeners: Array<() => void> = [];
  private dropLog = { batches: 0, events: 0, at: 0 };

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
    const names = (await readdir(o.dir))
      .map((name) => ({ name, first: segmentFirstSequence(name) }))
      .filter((s): s is { name: string; first: number } => s.first !== undefined)
      .sort((a, b) => a.first - b.first);
    let meta = await readMeta(o.dir);
    if (!meta) {
      if (names.length > 0)
        throw new Error(`${o.dir}: segment files without spool.meta; refusing to guess the epoch`);
      meta = freshMeta(newEpoch());
      await writeMeta(o.dir, meta, o.fsync !== 'never');
      o.logger.info({ dir: o.dir, epoch: meta.epoch }, 'new spool directory: new epoch');
    }
    const s = new SegmentSpool(o, meta);
    try {
      await s.load(names);
    } catch (err) {
      await s.closeFiles();
      throw err;
    }
    return s;
  }

  /** Rebuilds the state from the log and the meta; cuts torn or corrupt records. */
  private async load(names: Array<{ name: string; first: number }>): Promise<void> {
    const m = this.meta;
    let ranges = 0;
    const done = (seq: number): boolean => {
      if (seq <= m.ackedThrough) return true;
      while (ranges < m.ackedRanges.length && m.ackedRanges[ranges][1] < seq) ranges++;
      return ranges < m.ackedRanges.length && m.ackedRanges[ranges][0] <= seq;
    };
    let last = 0;
    let lastOffset = 0;
    let unsubtracted = 0;
    for (const { name, first } of names) {
      const path = join(this.o.dir, name);
      const buf = await readFile(path);
      const scan = scanRecords(buf);
      let keep = 0;
      let problem = scan.problem;
      for (const r of scan.records) {
        if (r.sequence !== first + keep || r.sequence <= last) {
          problem = `sequence ${r.sequence} out of order`;
          break;
        }
        keep++;
      }
      const records = scan.records.slice(0, keep);
      const validBytes = keep < scan.records.length ? scan.records[keep].offset : scan.validBytes;
      if (validBytes < buf.length) {
        const fh = await open(path, 'r+');
        try {
          await fh.truncate(validBytes);
          if (this.o.fsync !== 'never') await fh.datasync();
        } finally {
          await fh.close();
        }
        this.stats.truncatedSegments++;
        this.stats.truncatedBytes += buf.length - validBytes;
        const tail = name === names[names.length - 1].name;
        this.log[tail ? 'warn' : 'error'](
          { segment: name, at: validBytes, bytes: buf.length - validBytes, problem },
          tail
            ? 'spool: cut a torn or corrupt tail record'
            : 'spool: cut a corrupt record in an older segment',
        );
      }
      if (records.length === 0) {
        await unlink(path);
        continue;
      }
      const seg: Segment = { first, path, fh: await open(path, 'a+'), size: validBytes, live: 0 };
      this.segments.push(seg);
      for (const r of records) {
        last = r.sequence;
        lastOffset = r.sourceOffset;
        if (r.sequence > m.reportedThrough) unsubtracted += r.reportsDropped;
        if (done(r.sequence)) continue;
        this.live.set(
          r.sequence,
          new SpooledBatch(
            r.sequence,
            r.events,
            r.sourceOffset,
            r.reportsDropped,
            r.payloadLength,
            seg,
            r.offset,
            undefined,
          ),
        );
        this.held += r.payloadLength;
        seg.live++;
      }
    }
    this.active = this.segments[this.segments.length - 1];

    if (last >= m.lastSequence) {
      this.durableLast = last;
      this.durableOffset = lastOffset;
    } else {
      // Only without fsync (or with damaged files): records the meta had seen are gone.
      this.log.error({ logEndsAt: last, metaSaw: m.lastSequence }, 'spool: records missing from the log');
      this.durableLast = m.lastSequence;
      this.durableOffset = m.lastSourceOffset;
    }
    this.durableLast = Math.max(this.durableLast, m.ackedThrough, m.ackedRanges.at(-1)?.[1] ?? 0);
    const bootId = currentBootId();
    if (!m.clean && m.leaseThrough > this.durableLast && (bootId === '' || bootId !== m.bootId)) {
      this.stats.skippedSequences = m.leaseThrough - this.durableLast;
      this.log.warn(
        { from: this.durableLast + 1, through: m.leaseThrough },
        'spool: possible power loss without fsync; skipping sequences that may have been sent',
      );
      this.durableLast = m.leaseThrough;
    }
    this.leaseThrough = Math.max(m.leaseThrough, this.durableLast);
    this.durableDropped = m.droppedUnreported - unsubtracted;
    if (this.durableDropped < 0) {
      this.log.error(
        { meta: m.droppedUnreported, reported: unsubtracted },
        'spool: log reports more drops than owed',
      );
      this.durableDropped = 0;
    }
    this.next = this.durableLast + 1;
    this.offset = this.durableOffset;
    m.bootId = bootId;
    m.clean = false;
    this.version++;
    await this.persistMeta();
    await this.deleteDeadSegments();
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

  droppedUnreported(): number {
    return this.durableDropped - this.inflightReports;
  }

  async append(e: SpoolEntry): Promise<void> {
    if (this.closed) throw new Error('spool is closed');
    if (this.failure) throw new Error(`spool failed earlier: ${this.failure.message}`);
    if (e.sequence !== this.next) throw new Error(`spool expected sequence ${this.next}, got ${e.sequence}`);
    const owed = this.droppedUnreported();
    if (e.reportsDropped > owed)
      throw new Error(`batch reports ${e.reportsDropped} dropped events, only ${owed} unreported`);
    const header = encodeRecordHeader(e, e.bytes);
    this.next++;
    this.offset = e.sourceOffset;
    this.inflightReports += e.reportsDropped;
    try {
      await this.run(() => this.write(e, header));
    } catch (err) {
      // The sequence is spent and later appends may be queued behind it: stop here.
      this.failure ??= err as Error;
      throw err;
    }
    for (const cb of this.listeners) cb();
  }

  pendingCount(): number {
    return this.live.size;
  }

  oldestPending(): number | undefined {
    return this.live.keys().next().value;
  }

  entry(sequence: number): SpoolEntry | undefined {
    return this.live.get(sequence);
  }

  pending(): SpoolEntry[] {
    return [...this.live.values()];
  }

  ack(sequence: number): void {
    const b = this.live.get(sequence);
    if (!b) return;
    this.remove(b);
    if (this.closed) return;
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

  /** Persists acknowledgements now rather than within metaFlushMs. */
  async flush(): Promise<void> {
    await this.run(async () => {
      if (this.version !== this.persisted) await this.persistMeta();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.metaTimer);
    clearInterval(this.syncTimer);
    await this.run(async () => {
      if (!this.failure) {
        await this.syncActive();
        this.meta.clean = true;
        this.version++;
        await this.persistMeta();
      }
    }).finally(() => this.closeFiles());
  }

  /**
   * Makes room first (drops, persisted, and deletion of files left with nothing), then writes one
   * record: the files never exceed their bound, not even in the middle of an append.
   */
  private async write(e: SpoolEntry, header: Buffer): Promise<void> {
    if (this.o.fsync !== 'always' && e.sequence > this.leaseThrough) {
      this.leaseThrough = e.sequence + LEASE - 1;
      this.version++;
      await this.persistMeta();
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
    const at = seg.size;
    try {
      const { bytesWritten } = await seg.fh.writev([header, e.bytes]);
      if (bytesWritten !== length)
        throw new Error(`short write to ${seg.path}: ${bytesWritten} of ${length} bytes`);
      if (this.o.fsync === 'always') await seg.fh.datasync();
      else this.unsynced = true;
    } catch (err) {
      await seg.fh.truncate(at).catch(() => {});
      throw err;
    }
    seg.size += length;

    this.durableLast = e.sequence;
    this.durableOffset = e.sourceOffset;
    this.durableDropped -= e.reportsDropped;
    this.inflightReports -= e.reportsDropped;
    const b = new SpooledBatch(
      e.sequence,
      e.events,
      e.sourceOffset,
      e.reportsDropped,
      e.bytes.length,
      seg,
      at,
      e.bytes,
    );
    this.live.set(b.sequence, b);
    this.held += b.length;
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
      if (!overBudget) this.stats.droppedForDisk++;
      this.remove(b);
      // As MemorySpool: its events are owed, and so is the report of earlier drops it carried.
      this.durableDropped += b.events + b.reportsDropped;
      if (b.segment.live === 0 && b.segment !== this.active) disk -= b.segment.size;
      batches++;
      events += b.events;
    }
    if (batches === 0) return false;
    this.stats.droppedBatches += batches;
    const d = this.dropLog;
    d.batches += batches;
    d.events += events;
    const now = Date.now();
    if (now - d.at >= DROP_LOG_MS) {
      this.log.warn(
        { batches: d.batches, events: d.events, heldBytes: this.held, budgetBytes: this.o.budgetBytes },
        'spool full: dropped the oldest unacknowledged batches',
      );
      this.dropLog = { batches: 0, events: 0, at: now };
    }
    return true;
  }

  private remove(b: SpooledBatch): void {
    this.live.delete(b.sequence);
    this.held -= b.length;
    b.segment.live--;
    if (this.cache.delete(b.sequence)) this.cachedBytes -= b.length;
    this.version++;
  }

  private async newSegment(first: number): Promise<Segment> {
    const path = join(this.o.dir, segmentFileName(first));
    const seg: Segment = { first, path, fh: await open(path, 'a+'), size: 0, live: 0 };
    if (this.o.fsync !== 'never') await syncDir(this.o.dir);
    this.segments.push(seg);
    this.active = seg;
    return seg;
  }

  /** Deletes the files whose batches are all gone, after the meta says they are. */
  private async deleteDeadSegments(): Promise<void> {
    const dead = this.segments.filter((s) => s.live === 0 && s !== this.active);
    if (dead.length === 0) return;
    if (this.version !== this.persisted) await this.persistMeta();
    for (const s of dead) {
      this.segments = this.segments.filter((x) => x !== s);
      await s.fh.close();
      await unlink(s.path);
    }
  }

  private async persistMeta(): Promise<void> {
    const m = this.meta;
    const version = this.version;
    const first = this.live.keys().next();
    m.ackedThrough = first.done ? this.durableLast : first.value - 1;
    m.ackedRanges = [];
    let prev = m.ackedThrough;
    for (const seq of this.live.keys()) {
      if (seq > prev + 1) m.ackedRanges.push([prev + 1, seq - 1]);
      prev = seq;
    }
    if (prev < this.durableLast) m.ackedRanges.push([prev + 1, this.durableLast]);
    m.droppedUnreported = this.durableDropped;
    m.reportedThrough = this.durableLast;
    m.lastSequence = this.durableLast;
    m.lastSourceOffset = this.durableOffset;
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
      this.background(async () => {
        if (this.version !== this.persisted) await this.persistMeta();
      });
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
    if (this.closed || this.failure) return;
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
