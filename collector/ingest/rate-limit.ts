// Per-host token bucket for batches: a host may send `perSecond` batches per second on
// average and a burst of one second's worth. take() never refuses; it says how long the
// caller should stop reading from that host so the average holds.
export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `key`; returns the milliseconds to pause (0: none). */
  take(key: string): number {
    if (this.perSecond <= 0) return 0;
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.perSecond, at: t };
    b.tokens = Math.min(this.perSecond, b.tokens + ((t - b.at) / 1000) * this.perSecond) - 1;
    b.at = t;
    this.buckets.set(key, b);
    return b.tokens >= 0 ? 0 : (-b.tokens / this.perSecond) * 1000;
  }
}
