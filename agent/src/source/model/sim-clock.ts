// The model's simulated clock: event slots ('work' pace: page touches) at exponential gaps of
// mean 1e9/rate ns, shorter by the burst multiplier inside fault storms. Time is epochNs (a
// BigInt, changed only when rebasing) plus a float offset kept inside the exact-integer range of
// a double, so the per-slot arithmetic stays on doubles.
import type { BurstConfig } from './config';
import type { Rng } from './rng';

/** Keep the float clock well inside the exact-integer range of a double. */
const REBASE_NS = 2 ** 50;

export class SimClock {
  epochNs: bigint;
  /** Offset of the next slot from epochNs. */
  now = 0;
  /** Offset where the next block's time window starts. */
  windowStart = 0;
  private stormStart = -1;
  private stormEnd = -1;
  private nextStorm = Number.POSITIVE_INFINITY;

  constructor(
    startNs: bigint,
    private readonly meanGapNs: number,
    private readonly bursts: BurstConfig | null,
    /** The clock's own random stream: event content does not depend on timing. */
    private readonly rng: Rng,
  ) {
    this.epochNs = startNs;
    if (bursts) this.nextStorm = rng.exp(bursts.meanIntervalMs * 1e6);
  }

  /** Moves to the next slot. */
  advance(): void {
    let mult = 1;
    const b = this.bursts;
    if (b) {
      while (this.now >= this.nextStorm) {
        this.stormStart = this.nextStorm;
        this.stormEnd = this.stormStart + b.durationMs * 1e6;
        this.nextStorm = this.stormEnd + this.rng.exp(b.meanIntervalMs * 1e6);
      }
      if (this.now >= this.stormStart && this.now < this.stormEnd) mult = b.rateMultiplier;
    }
    this.now += this.rng.exp(this.meanGapNs / mult);
  }

  /** An integer offset for a block's base; moves epochNs forward first when it is far ahead. */
  rebase(offset: number): number {
    if (offset < REBASE_NS) return offset;
    const shift = Math.floor(offset);
    this.epochNs += BigInt(shift);
    this.now -= shift;
    this.windowStart -= shift;
    this.stormStart -= shift;
    this.stormEnd -= shift;
    this.nextStorm -= shift;
    return offset - shift;
  }
}
