// Shared by the benchmarks: repeat a measurement and report the median, print key: value lines.

/** The median of xs (the upper one of an even count). */
export function medianOf(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1];
}

/** Runs fn `runs` times (after one warm-up) and returns the median of its results. */
export function median(runs: number, fn: () => number): number {
  fn();
  return medianOf(Array.from({ length: runs }, fn));
}

/** Events per second of `work(n)` processing n events, timed with hrtime. */
export function rate(n: number, work: () => void): number {
  const t0 = process.hrtime.bigint();
  work();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

export function report(key: string, value: number, digits = 0): void {
  const v = Math.abs(value) >= 1e5 ? value.toExponential(3) : value.toFixed(digits);
  process.stdout.write(`${key}: ${v}\n`);
}
