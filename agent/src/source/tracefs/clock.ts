// Kernel trace timestamps -> wall clock.
//
// The agent sets its instance's trace_clock to "mono" (ktime_get_mono_fast_ns, i.e.
// CLOCK_MONOTONIC), the clock process.hrtime.bigint() reads too. So a trace timestamp maps
// to the wall clock by adding one offset, CLOCK_REALTIME - CLOCK_MONOTONIC, which Node can
// only observe through Date.now() (1 ms resolution). To do better than 1 ms, the offset is
// taken at a millisecond edge: spin until Date.now() ticks and bracket the tick between two
// hrtime readings. Precision: the bracket width, typically well under 1 us (reported as
// `uncertaintyNs`). The offset changes when the wall clock is stepped or slewed (NTP), so the
// reader re-checks it cheaply and re-measures when it drifted by more than a millisecond.

export interface ClockOffset {
  /** CLOCK_REALTIME - CLOCK_MONOTONIC in ns. */
  readonly offsetNs: bigint;
  /** Half-width of the bracket the offset was taken in, ns. */
  readonly uncertaintyNs: number;
}

/** Measures CLOCK_REALTIME - CLOCK_MONOTONIC. Busy-waits up to ~`tries` ms. */
export function measureMonoToWall(tries = 3): ClockOffset {
  let best: ClockOffset | undefined;
  for (let t = 0; t < tries; t++) {
    const m = measureOnce();
    if (m && (!best || m.uncertaintyNs < best.uncertaintyNs)) best = m;
  }
  if (best) return best;
  // No edge seen (a very slow or descheduled process): fall back to a plain pairing.
  const mono = process.hrtime.bigint();
  return { offsetNs: BigInt(Date.now()) * 1_000_000n - mono, uncertaintyNs: 1_000_000 };
}

function measureOnce(): ClockOffset | undefined {
  const deadline = process.hrtime.bigint() + 3_000_000n;
  let prevStart = process.hrtime.bigint();
  let last = Date.now();
  for (;;) {
    const start = process.hrtime.bigint();
    const now = Date.now();
    const end = process.hrtime.bigint();
    if (now !== last) {
      // The wall clock crossed `now` ms between prevStart and end.
      if (now !== last + 1) return undefined; // stepped or descheduled: try again
      const mid = (prevStart + end) / 2n;
      return { offsetNs: BigInt(now) * 1_000_000n - mid, uncertaintyNs: Number(end - prevStart) / 2 };
    }
    if (end > deadline) return undefined;
    prevStart = start;
    last = now;
  }
}

/** True when the wall clock moved away from `offset` by more than `toleranceNs`. */
export function offsetDrifted(offset: ClockOffset, toleranceNs = 2_000_000): boolean {
  const mono = process.hrtime.bigint();
  const wallNs = BigInt(Date.now()) * 1_000_000n;
  const predicted = mono + offset.offsetNs;
  // Date.now() floors to the millisecond: the prediction may be up to 1 ms ahead.
  const diff = Number(predicted - wallNs);
  return diff < -toleranceNs || diff > toleranceNs + 1_000_000;
}
