// The batches a segment spool still owes the collector (neither acknowledged nor dropped), in
// sequence order, with the payload bytes and events they add up to (what the budget counts), and
// the newest payloads kept in memory up to memoryBytes; older ones are read back from their
// segment file when sent again.
import type { SpooledBatch } from './segment-files';

export class LiveBatches {
  /** Map keeps insertion order, which is sequence order. */
  private readonly batches = new Map<number, SpooledBatch>();
  /** The cached ones, oldest first. */
  private readonly cache = new Map<number, SpooledBatch>();
  private cachedBytes = 0;
  bytes = 0;
  events = 0;

  constructor(private readonly memoryBytes: number) {}

  get size(): number {
    return this.batches.size;
  }

  get(sequence: number): SpooledBatch | undefined {
    return this.batches.get(sequence);
  }

  /** Oldest first; removing while iterating is safe. */
  values(): IterableIterator<SpooledBatch> {
    return this.batches.values();
  }

  oldest(): number | undefined {
    return this.batches.keys().next().value;
  }

  /** Adds the newest batch; a payload given stays in memory until newer ones push it out. */
  add(b: SpooledBatch, payload?: Uint8Array): void {
    this.batches.set(b.sequence, b);
    this.bytes += b.length;
    this.events += b.events;
    b.segment.live++;
    if (!payload) return;
    b.cached = payload;
    this.cache.set(b.sequence, b);
    this.cachedBytes += b.length;
    for (const [sequence, old] of this.cache) {
      if (this.cachedBytes <= this.memoryBytes) break;
      this.cache.delete(sequence);
      this.cachedBytes -= old.length;
      old.cached = undefined;
    }
  }

  /**
   * Puts `next` where the batch of its sequence is, in the same place of the order. Its payload
   * stays in memory until it leaves (a damaged record's replacement: small, and not on disk).
   */
  replace(next: SpooledBatch, payload: Uint8Array): void {
    const old = this.batches.get(next.sequence);
    if (!old) return;
    this.batches.set(next.sequence, next);
    this.bytes += next.length - old.length;
    this.events += next.events - old.events;
    if (this.cache.delete(old.sequence)) this.cachedBytes -= old.length;
    next.cached = payload;
  }

  remove(b: SpooledBatch): void {
    this.batches.delete(b.sequence);
    this.bytes -= b.length;
    this.events -= b.events;
    b.segment.live--;
    if (this.cache.delete(b.sequence)) this.cachedBytes -= b.length;
  }
}
