// The segment files of one spool directory and the batches recorded in them: the file being
// appended to, rotation at segmentBytes, the fsync policy, and deletion of drained files.
// A record is either wholly in its file or not at all: a failed write is truncated away (and if
// even that fails, the file takes no more records; open() skips the torn bytes).
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readRecordPayload, segmentFileName } from './segment-file';
import type { Losses, SpoolEntry } from './spool';
import { syncDir } from './spool-meta';
import type { FsyncMode } from './spool-settings';

export interface Segment {
  readonly first: number;
  readonly path: string;
  readonly fh: FileHandle;
  size: number;
  /** Batches in the file still unacknowledged and not dropped. */
  live: number;
}

/** A spooled batch; its payload is kept in memory while that fits, else read back when used. */
export class SpooledBatch implements SpoolEntry {
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

export class SegmentFiles {
  /** Oldest first; the last is usually the active one. */
  private segments: Segment[] = [];
  /** The file records are appended to; undefined until the next record starts a new one. */
  active: Segment | undefined;
  private unsynced = false;

  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private readonly fsync: FsyncMode,
  ) {}

  /** Takes over a file found on open; the last one adopted becomes the active file. */
  async adopt(first: number, path: string, size: number): Promise<Segment> {
    const seg: Segment = { first, path, fh: await open(path, 'a+'), size, live: 0 };
    this.segments.push(seg);
    this.active = seg;
    return seg;
  }

  /** Bytes of all segment files. */
  diskBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  /** Bytes of the files that will still be on disk after deleting the drained ones. */
  keptBytes(): number {
    let n = 0;
    for (const s of this.segments) if (s.live > 0 || s === this.active) n += s.size;
    return n;
  }

  /**
   * Appends one record (header and payload) to the active file, starting a new file when this
   * one would grow past segmentBytes; synced before returning with fsync 'always'.
   */
  async append(
    first: number,
    header: Uint8Array,
    payload: Uint8Array,
  ): Promise<{ seg: Segment; at: number }> {
    const length = header.length + payload.length;
    let seg = this.active;
    if (seg && seg.size > 0 && seg.size + length > this.segmentBytes) {
      await this.syncActive();
      this.active = seg = undefined;
    }
    if (!seg) seg = await this.create(first);
    const at = seg.size;
    try {
      const { bytesWritten } = await seg.fh.writev([header, payload]);
      if (bytesWritten !== length)
        throw new Error(`short write to ${seg.path}: ${bytesWritten} of ${length} bytes`);
      if (this.fsync === 'always') await seg.fh.datasync();
      else this.unsynced = true;
    } catch (err) {
      const torn = seg;
      await torn.fh.truncate(at).catch(() => {
        if (this.active === torn) this.active = undefined;
      });
      throw err;
    }
    seg.size += length;
    return { seg, at };
  }

  /** The files whose batches are all gone; with `active`, the active one too if it has records. */
  drained(active: boolean): Segment[] {
    return this.segments.filter((s) => s.live === 0 && (s !== this.active || (active && s.size > 0)));
  }

  /** Deletes these files (the caller has recorded first that their batches are gone). */
  async delete(files: Segment[]): Promise<void> {
    for (const s of files) {
      this.segments = this.segments.filter((x) => x !== s);
      if (this.active === s) {
        await this.syncActive();
        this.active = undefined;
      }
      await s.fh.close();
      await unlink(s.path);
    }
  }

  get hasUnsynced(): boolean {
    return this.unsynced;
  }

  async syncActive(): Promise<void> {
    if (!this.unsynced || !this.active) return;
    this.unsynced = false;
    await this.active.fh.datasync();
  }

  async closeAll(): Promise<void> {
    for (const s of this.segments) await s.fh.close().catch(() => {});
  }

  private async create(first: number): Promise<Segment> {
    const path = join(this.dir, segmentFileName(first));
    const seg: Segment = { first, path, fh: await open(path, 'a+'), size: 0, live: 0 };
    this.segments.push(seg);
    this.active = seg;
    if (this.fsync !== 'never') await syncDir(this.dir);
    return seg;
  }
}
