// A spool's file operations run one at a time, in the order asked, so that a meta written and a
// file deleted can never interleave with an append. Housekeeping (meta flushes, deletion of
// drained files, fsync on an interval) runs in the same chain, in the background: a failure is
// logged, and the next append or close does that work again.
import type { Logger } from '../../../common/runtime/log';

export class SpoolOps {
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly armed = new Map<string, NodeJS.Timeout | undefined>();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly log: Logger) {}

  /** Runs op after every operation asked before it; its result or error is the caller's. */
  run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.queue.then(op);
    this.queue = p.catch(() => {});
    return p;
  }

  /** Runs op in the chain, unless stopped; a failure is logged. */
  background(op: () => Promise<void>): void {
    if (this.stopped) return;
    this.run(op).catch((err: Error) => this.log.error({ err }, 'spool housekeeping failed'));
  }

  /** Runs op in the background after ms (at once when 0), unless one of this kind is already waiting. */
  once(kind: string, ms: number, op: () => Promise<void>): void {
    if (this.stopped || this.armed.has(kind)) return;
    const go = () => {
      this.armed.delete(kind);
      return op();
    };
    if (ms === 0) {
      this.armed.set(kind, undefined);
      this.background(go);
      return;
    }
    const t = setTimeout(() => this.background(go), ms);
    t.unref();
    this.armed.set(kind, t);
  }

  /** Runs op in the background every ms until stop(). */
  every(ms: number, op: () => void): void {
    const t = setInterval(op, ms);
    t.unref();
    this.timers.push(t);
  }

  /** No more background work; run() still works (for the close itself). */
  stop(): void {
    this.stopped = true;
    for (const t of this.armed.values()) clearTimeout(t);
    for (const t of this.timers) clearInterval(t);
  }
}
