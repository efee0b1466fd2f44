// Shared by the benchmarks: repeat a measurement and report the median, print key: value lines.

/** Runs fn `runs` times (after one warm-up) and returns the median of its results. */
export function median(runs: number, fn: () => number): number {
  fn();
  const xs = Array.from({ length: runs }, fn).sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)];
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
