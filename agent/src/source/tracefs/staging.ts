// Per-event accumulation of decoded records between yields, and the ordering of a chunk.
//
// The raw reader reads CPU after CPU, so one round's records interleave in time. Chunks are
// handed out in timestamp order: a round's records are sorted (a no-op in the common case of
// one busy CPU), and records newer than a cutoff are held back for the next round, because a
// CPU read earlier in the round may still commit an older record after it was read.
import { type EventBlock, EventBlockBuilder, WORDS_PER_RECORD } from '../../../../proto/event-block';

export class EventStaging {
  readonly builder = new EventBlockBuilder(1024);
  private carried: EventBlock | undefined;

  constructor(readonly event: string) {}

  /** Starts a round with time base `baseNs`, re-adding records held back last time. */
  begin(baseNs: bigint): void {
    this.builder.setBase(baseNs);
    const c = this.carried;
    if (!c) return;
    this.carried = undefined;
    const shift = Number(c.baseNs - baseNs);
    appendAll(this.builder, c, shift, range(0, c.count));
  }

  /** Records currently staged (this round plus held back). */
  get count(): number {
    return this.builder.count + (this.carried?.count ?? 0);
  }

  /**
   * Ends the round: returns the records with offsets below `cutoffOffsetNs` in timestamp
   * order (undefined when none) and keeps the others for the next round.
   */
  take(cutoffOffsetNs = Number.POSITIVE_INFINITY): EventBlock | undefined {
    const block = this.builder.finish();
    if (block.count === 0) return undefined;
    const { ready, rest } = splitOrdered(block, cutoffOffsetNs);
    this.carried = rest;
    return ready;
  }
}

/**
 * Splits a block into the records before `cutoff` (sorted by time, stable) and the rest.
 * Returns the block itself when it is sorted and entirely before the cutoff.
 */
export function splitOrdered(
  block: EventBlock,
  cutoff: number,
): { ready: EventBlock | undefined; rest: EventBlock | undefined } {
  const off = block.offsetNs;
  const n = block.count;
  let sorted = true;
  let allBefore = true;
  for (let i = 0; i < n; i++) {
    if (i > 0 && off[i] < off[i - 1]) sorted = false;
    if (!(off[i] < cutoff)) allBefore = false;
  }
  if (sorted && allBefore) return { ready: block, rest: undefined };
  if (sorted) {
    // Common under load: in order, with the newest few records held back.
    let k = 0;
    while (k < n && off[k] < cutoff) k++;
    const ready = block.smmuNames.length === 1 ? head(block, k) : rebuild(block, range(0, k));
    return { ready, rest: rebuild(block, range(k, n)) };
  }
  const order = range(0, n);
  order.sort((a, b) => off[a] - off[b] || a - b);
  let k = 0;
  while (k < n && off[order[k]] < cutoff) k++;
  return { ready: rebuild(block, order.slice(0, k)), rest: rebuild(block, order.slice(k)) };
}

/** The first k records of a block, as views (same name dictionary). */
function head(block: EventBlock, k: number): EventBlock | undefined {
  if (k === 0) return undefined;
  return {
    count: k,
    baseNs: block.baseNs,
    offsetNs: block.offsetNs.subarray(0, k),
    words: block.words.subarray(0, k * WORDS_PER_RECORD),
    smmuIndex: block.smmuIndex.subarray(0, k),
    smmuNames: block.smmuNames,
  };
}

function range(from: number, to: number): number[] {
  const a = new Array<number>(to - from);
  for (let i = from; i < to; i++) a[i - from] = i;
  return a;
}

function rebuild(block: EventBlock, order: number[]): EventBlock | undefined {
  if (order.length === 0) return undefined;
  const b = new EventBlockBuilder(order.length);
  b.setBase(block.baseNs);
  appendAll(b, block, 0, order);
  return b.finish();
}

function appendAll(b: EventBlockBuilder, src: EventBlock, shift: number, order: number[]): void {
  const ids = new Array<number | undefined>(src.smmuNames.length);
  for (const i of order) {
    const s = src.smmuIndex[i];
    let id = ids[s];
    if (id === undefined) id = ids[s] = b.smmuId(src.smmuNames[s]);
    const w = b.appendOffset(src.offsetNs[i] + shift, id);
    b.wordArray.set(src.words.subarray(i * WORDS_PER_RECORD, (i + 1) * WORDS_PER_RECORD), w);
  }
}
