// Stage 3: groups source chunks into batches. A batch closes when it holds maxEvents events
// or when its first event (or first loss) has waited maxDelayMs, whichever comes first, so
// end-to-end latency stays bounded at low rates and batches stay large at high rates.
// Guarantee: every event and every loss count handed to add() goes into exactly one flush.
import { concatBlocks, type EventBlock, sliceBlock } from '../../../proto/event-block';
import type { LossReason } from '../../../proto/index';

export interface BatcherOptions {
  /** Most events per batch. */
  maxEvents: number;
  /** Longest time (ms) an event waits in the batcher. */
  maxDelayMs: number;
}

/**
 * The agent's defaults: large batches at high rates (the per-batch costs of gRPC, the collector
 * and Kafka amortised over 16 k events), and an event delivered within about a second at low
 * rates (half of it here, the rest the source's hand-over and the transport).
 */
export const defaultBatchOptions: Readonly<BatcherOptions> = { maxEvents: 16384, maxDelayMs: 500 };

export interface ClosedBatch {
  /** "group:event" of the records. */
  event: string;
  events: EventBlock;
  lost: Map<LossReason, number>;
}

interface Open {
  blocks: EventBlock[];
  count: number;
  lost: Map<LossReason, number>;
  since: number;
}

export class Batcher {
  private open = new Map<string, Open>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: BatcherOptions,
    private readonly flushTo: (b: ClosedBatch) => Promise<void>,
    /** Errors of flushes started by the timer (add/flush callers get theirs directly). */
    private readonly onError: (err: Error) => void,
  ) {}

  /** Adds a chunk of one source event; resolves once any batch it filled was handed on. */
  async add(event: string, events: EventBlock, lost?: ReadonlyMap<LossReason, number>): Promise<void> {
    let o = this.open.get(event);
    const hasLoss = lost !== undefined && [...lost.values()].some((n) => n > 0);
    if (events.count === 0 && !hasLoss) return;
    if (!o) {
      o = { blocks: [], count: 0, lost: new Map(), since: Date.now() };
      this.open.set(event, o);
      this.arm();
    }
    if (lost) for (const [r, n] of lost) if (n > 0) o.lost.set(r, (o.lost.get(r) ?? 0) + n);
    let start = 0;
    while (start < events.count) {
      const take = Math.min(events.count - start, this.opts.maxEvents - o.count);
      o.blocks.push(take === events.count ? events : sliceBlock(events, start, start + take));
      o.count += take;
      start += take;
      if (o.count >= this.opts.maxEvents) {
        await this.close(event);
        if (start < events.count) {
          o = { blocks: [], count: 0, lost: new Map(), since: Date.now() };
          this.open.set(event, o);
          this.arm();
        }
      }
    }
  }

  /** Closes every open batch (shutdown, tests). */
  async flush(): Promise<void> {
    for (const event of [...this.open.keys()]) await this.close(event);
  }

  /** Closes the batches whose first content has waited long enough. */
  private async flushDue(): Promise<void> {
    const now = Date.now();
    for (const [event, o] of [...this.open])
      if (now - o.since >= this.opts.maxDelayMs) await this.close(event);
  }

  private async close(event: string): Promise<void> {
    const o = this.open.get(event);
    if (!o) return;
    this.open.delete(event);
    const events = o.blocks.length === 1 ? o.blocks[0] : concatBlocks(o.blocks);
    await this.flushTo({ event, events, lost: o.lost });
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushDue()
        .catch((err: Error) => this.onError(err))
        .finally(() => {
          if (this.open.size > 0) this.arm();
        });
    }, this.nextDue());
  }

  private nextDue(): number {
    let first = Number.POSITIVE_INFINITY;
    for (const o of this.open.values()) first = Math.min(first, o.since);
    return Math.max(1, first + this.opts.maxDelayMs - Date.now());
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
