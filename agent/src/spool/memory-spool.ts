// A spool in memory, bounded by a byte budget; drops the oldest batches when full. It does
// not survive a restart (each start is a new epoch): the segment spool does.
import type { Spool, SpoolEntry } from './spool';

export class MemorySpool implements Spool {
  readonly epoch: number;
  private entries = new Map<number, SpoolEntry>();
  private held = 0;
  private dropped = 0;
  private next = 1;
  private offset = 0;
  private listeners: Array<() => void> = [];

  constructor(
    private readonly budgetBytes: number,
    epoch = Date.now(),
  ) {
    this.epoch = epoch;
  }

  nextSequence(): number {
    return this.next;
  }

  sourceOffset(): number {
    return this.offset;
  }

  droppedUnreported(): number {
    return this.dropped;
  }

  async append(e: SpoolEntry): Promise<void> {
    if (e.sequence !== this.next) throw new Error(`spool expected sequence ${this.next}, got ${e.sequence}`);
    if (e.reportsDropped > this.dropped)
      throw new Error(`batch reports ${e.reportsDropped} dropped events, only ${this.dropped} unreported`);
    this.next++;
    this.offset = e.sourceOffset;
    this.dropped -= e.reportsDropped;
    this.entries.set(e.sequence, e);
    this.held += e.bytes.length;
    // Map iteration is insertion order: the first entries are the oldest.
    for (const [seq, old] of this.entries) {
      if (this.held <= this.budgetBytes || seq === e.sequence) break;
      this.entries.delete(seq);
      this.held -= old.bytes.length;
      // Its events are lost, and so is its report of earlier losses: both are owed again.
      this.dropped += old.events + old.reportsDropped;
    }
    for (const cb of this.listeners) cb();
  }

  pendingCount(): number {
    return this.entries.size;
  }

  oldestPending(): number | undefined {
    return this.entries.keys().next().value;
  }

  entry(sequence: number): SpoolEntry | undefined {
    return this.entries.get(sequence);
  }

  pending(): SpoolEntry[] {
    return [...this.entries.values()];
  }

  ack(sequence: number): void {
    const e = this.entries.get(sequence);
    if (!e) return;
    this.entries.delete(sequence);
    this.held -= e.bytes.length;
  }

  bytes(): number {
    return this.held;
  }

  onAppend(cb: () => void): void {
    this.listeners.push(cb);
  }

  async close(): Promise<void> {}
}
