// A spool in memory, bounded by a byte budget; drops the oldest batches when full. It does
// not survive a restart: the durable segment-log spool does.
import type { Spool, SpoolEntry } from './spool';

export class MemorySpool implements Spool {
  private entries = new Map<number, SpoolEntry>();
  private held = 0;
  private dropped = 0;
  private next: number;
  private listeners: Array<() => void> = [];

  constructor(
    private readonly budgetBytes: number,
    firstSequence = 1,
  ) {
    this.next = firstSequence;
  }

  nextSequence(): number {
    return this.next;
  }

  async append(e: SpoolEntry): Promise<void> {
    if (e.sequence !== this.next) throw new Error(`spool expected sequence ${this.next}, got ${e.sequence}`);
    this.next++;
    this.entries.set(e.sequence, e);
    this.held += e.bytes.length;
    // Map iteration is insertion order: the first entries are the oldest.
    for (const [seq, old] of this.entries) {
      if (this.held <= this.budgetBytes || seq === e.sequence) break;
      this.entries.delete(seq);
      this.held -= old.bytes.length;
      this.dropped += old.events;
    }
    for (const cb of this.listeners) cb();
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

  takeDropped(): number {
    const n = this.dropped;
    this.dropped = 0;
    return n;
  }

  bytes(): number {
    return this.held;
  }

  onAppend(cb: () => void): void {
    this.listeners.push(cb);
  }

  async close(): Promise<void> {}
}
