// A spool in memory, bounded by a byte budget; drops the oldest batches when full. It does
// not survive a restart (each start is a new epoch): the segment spool does.
import { addLosses, type Losses, losses, lossesWithin, type Spool, type SpoolEntry } from './spool';

export class MemorySpool implements Spool {
  readonly epoch: number;
  readonly durable = false;
  private inFlight: (sequence: number) => boolean = () => false;
  private entries = new Map<number, SpoolEntry>();
  private held = 0;
  private heldEvents = 0;
  private readonly owing = losses();
  private next = 1;
  private offset = 0;
  private listeners: Array<() => void> = [];
  private lossListeners: Array<(l: Losses) => void> = [];

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

  owed(): Losses {
    return losses(this.owing);
  }

  async append(e: SpoolEntry): Promise<void> {
    if (e.sequence !== this.next) throw new Error(`spool expected sequence ${this.next}, got ${e.sequence}`);
    if (!lossesWithin(e.reports, this.owing))
      throw new Error(
        `batch reports ${JSON.stringify(e.reports)} lost events, only ${JSON.stringify(this.owing)} owed`,
      );
    this.next++;
    this.offset = e.sourceOffset;
    addLosses(this.owing, e.reports, -1);
    this.entries.set(e.sequence, e);
    this.held += e.bytes.length;
    this.heldEvents += e.events;
    // Map iteration is insertion order: the first entries are the oldest.
    for (const [seq, old] of this.entries) {
      if (this.held <= this.budgetBytes || seq === e.sequence) break;
      if (this.inFlight(seq)) continue;
      this.remove(old);
      // Its events are lost, and so is its report of earlier losses: both are owed again.
      this.owing.full += old.events;
      addLosses(this.owing, old.reports);
      for (const cb of this.lossListeners) cb(losses({ full: old.events }));
    }
    for (const cb of this.listeners) cb();
  }

  protect(inFlight: (sequence: number) => boolean): void {
    this.inFlight = inFlight;
  }

  /** Payloads never leave memory here, so none is ever found damaged. */
  replaceDamagedWith(): void {}

  pendingCount(): number {
    return this.entries.size;
  }

  pendingEvents(): number {
    return this.heldEvents;
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
    if (e) this.remove(e);
  }

  private remove(e: SpoolEntry): void {
    this.entries.delete(e.sequence);
    this.held -= e.bytes.length;
    this.heldEvents -= e.events;
  }

  bytes(): number {
    return this.held;
  }

  onAppend(cb: () => void): void {
    this.listeners.push(cb);
  }

  onLoss(cb: (l: Losses) => void): void {
    this.lossListeners.push(cb);
  }

  async close(): Promise<void> {}
}
