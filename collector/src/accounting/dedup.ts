// Replay filter for at-least-once delivery: remembers which (agent_id, epoch, sequence)
// triples were counted. Per agent epoch it keeps a watermark (every sequence up to it was
// seen) plus the seen sequences above it, so memory stays small while batches arrive in
// order. A gap that never fills (a batch the agent's spool dropped and reported as lost)
// is given up once more than `maxAhead` later batches wait behind it.
//
// The state is a pure function of the triples offered, in order, so a snapshot taken with
// the counts it guards (see checkpoint.ts) restores to exactly the same decisions.

/** The filter state of one agent epoch. */
export interface ReplayEpochState {
  agentId: string;
  epoch: number;
  watermark: number;
  /** Seen sequences above the watermark, ascending. */
  ahead: number[];
}

export class ReplayFilter {
  private epochs = new Map<
    string,
    { agentId: string; epoch: number; watermark: number; ahead: Set<number> }
  >();
  duplicates = 0;

  constructor(private readonly maxAhead = 4096) {}

  /** True the first time a triple is seen, false for a replay. */
  accept(agentId: string, epoch: number, sequence: number): boolean {
    const key = `${agentId}/${epoch}`;
    let e = this.epochs.get(key);
    if (!e) {
      e = { agentId, epoch, watermark: 0, ahead: new Set() };
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

  /** Agent epochs known. */
  get size(): number {
    return this.epochs.size;
  }

  /** The state, for a checkpoint. */
  snapshot(): ReplayEpochState[] {
    return [...this.epochs.values()].map((e) => ({
      agentId: e.agentId,
      epoch: e.epoch,
      watermark: e.watermark,
      ahead: [...e.ahead].sort((a, b) => a - b),
    }));
  }

  /** Replaces the state with a snapshot. */
  restore(states: readonly ReplayEpochState[], duplicates: number): void {
    this.epochs = new Map();
    for (const s of states) {
      this.epochs.set(`${s.agentId}/${s.epoch}`, {
        agentId: s.agentId,
        epoch: s.epoch,
        watermark: s.watermark,
        ahead: new Set(s.ahead),
      });
    }
    this.duplicates = duplicates;
  }
}
