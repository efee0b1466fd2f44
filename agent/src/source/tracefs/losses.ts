// Counting what the kernel lost, from two places:
// - the pages themselves (trace_pipe_raw: the missed-events flag and stored count of a
//   sub-buffer; trace_pipe: "CPU:N [LOST n EVENTS]" lines): exact and on time, but a page can
//   say "some were missed" without a count, and non-overwrite drops never show up there;
// - per_cpu/cpuN/stats (overrun + commit overrun + dropped events), cumulative per CPU
//   since the instance's buffer was reset, polled now and then.
// Both are lower bounds of the same cumulative loss and converge to it, so the loss reported
// so far is the larger of the two; each call of take() returns what is new since the last.
import { LossReason } from '../../../../proto/index';
import type { CpuStats } from './instance';

export class LossCounter {
  private fromPages = 0;
  private fromStats = 0;
  private reported = 0;
  private malformed = 0;
  private readonly statsBase = new Map<number, number>();
  private readonly statsLast = new Map<number, number>();
  /** True once a page flagged missed events without a count. */
  unknownCountSeen = false;

  constructor(
    /** Counted for a missed-events flag without a count (0 live: the per-CPU stats tell). */
    private readonly unknownMissed = 0,
  ) {}

  /** A page (or LOST line) said events were missed; count -1 = unknown. */
  addMissed(count: number): void {
    if (count < 0) {
      this.unknownCountSeen = true;
      this.fromPages += this.unknownMissed;
    } else this.fromPages += count;
  }

  /** Records that could not be decoded. */
  addMalformed(count = 1): void {
    this.malformed += count;
  }

  /** Takes a CPU's stats; the first call per CPU sets its baseline. */
  updateStats(cpu: number, s: CpuStats): void {
    const lost = s.overrun + s.commitOverrun + s.dropped;
    if (!this.statsBase.has(cpu)) this.statsBase.set(cpu, lost);
    this.statsLast.set(cpu, lost);
    let total = 0;
    for (const [c, v] of this.statsLast) total += Math.max(0, v - (this.statsBase.get(c) ?? v));
    this.fromStats = total;
  }

  /** Losses not reported yet, by reason (undefined when none); marks them reported. */
  take(): Map<LossReason, number> | undefined {
    const total = Math.max(this.fromPages, this.fromStats);
    const overrun = total - this.reported;
    this.reported = total;
    const malformed = this.malformed;
    this.malformed = 0;
    if (overrun <= 0 && malformed === 0) return undefined;
    const m = new Map<LossReason, number>();
    if (overrun > 0) m.set(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, overrun);
    if (malformed > 0) m.set(LossReason.LOSS_REASON_MALFORMED_RECORD, malformed);
    return m;
  }
}
