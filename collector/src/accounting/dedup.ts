// Replay filter for at-least-once delivery: remembers which (agent_id, epoch, sequence)
// triples were counted. Per agent epoch it keeps a watermark (every sequence up to it was
// seen) plus the seen sequences above it, so memory stays small while batches arrive in
// order. A gap that never fills (a batch the agent's spool dropped and reported as lost)
// is given up once more than `maxAhead` later batches wait behind it.
export class ReplayFilter {
  private epochs = new Map<string, { watermark: number; ahead: Set<number> }>();
  duplicates = 0;

  constructor(private readonly maxAhead = 4096) {}

  /** True the first time a triple is seen, false for a replay. */
  accept(agentId: string, epoch: number, sequence: number): boolean {
    const key = `${agentId}/${epoch}`;
    let e = this.epochs.get(key);
    if (!e) {
      e = { watermark: 0, ahead: new Set() };
      this.epochs.set(key, e);
    }
    if (sequence <= e.watermark || e.ahead.has(sequence)) {
      this.duplicates++;
      return false;
    }
    e.ahead.add(sequence);
    while (e.ahead.delete(e.watermark + 1)) e.watermark++;
    if (e.ahead.size > this.maxAhead) {
      e.watermark = Math.min(...e.ahead) - 1;
      while (e.ahead.delete(e.watermark + 1)) e.watermark++;
    }
    return true;
  }
}
