// The in-memory form of a run of SMMUv3 event-queue records, shared by every stage.
//
// Records are kept as they are on the wire of the SMMU: 32 bytes, four little-endian u64
// words. `words` holds them as eight u32 per event (evt0.lo, evt0.hi, evt1.lo, ... evt3.hi),
// so field extraction stays in 32-bit integer arithmetic and a Buffer of raw records can be
// viewed without copying. Timestamps are a bigint base plus a float64 offset per event: exact
// to the nanosecond for offsets below 2^53 ns (104 days), far beyond any batch.

/** Words (u32) per record. */
export const WORDS_PER_RECORD = 8;
/** Bytes per record. */
export const RECORD_BYTES = 32;

export interface EventBlock {
  /** Number of events. */
  readonly count: number;
  /** Wall-clock time base, ns since the Unix epoch. */
  readonly baseNs: bigint;
  /** Per event: ns after baseNs (integers, >= 0 not required). */
  readonly offsetNs: Float64Array;
  /** Per event: eight u32, the record's little-endian 64-bit words split low/high. */
  readonly words: Uint32Array;
  /** Per event: index into smmuNames. */
  readonly smmuIndex: Uint16Array;
  /** SMMU instance names (kernel dev_name). */
  readonly smmuNames: readonly string[];
}

/** Timestamp of event i in ns since the Unix epoch. */
export function timestampNs(b: EventBlock, i: number): bigint {
  return b.baseNs + BigInt(b.offsetNs[i]);
}

/** 64-bit word w (0..3) of event i as a bigint (for display and tests, not hot paths). */
export function word64(b: EventBlock, i: number, w: number): bigint {
  const o = i * WORDS_PER_RECORD + w * 2;
  return (BigInt(b.words[o + 1]) << 32n) | BigInt(b.words[o]);
}

/**
 * Appends events one by one into growing arrays; `finish()` returns a block and starts a new
 * one. Used by sources (model, tracefs) and by the wire decoder.
 */
export class EventBlockBuilder {
  private cap: number;
  private n = 0;
  private base: bigint | undefined;
  private offsets: Float64Array;
  private words: Uint32Array;
  private smmu: Uint16Array;
  private names: string[] = [];
  private nameIndex = new Map<string, number>();

  constructor(initialCapacity = 1024) {
    this.cap = Math.max(1, initialCapacity);
    this.offsets = new Float64Array(this.cap);
    this.words = new Uint32Array(this.cap * WORDS_PER_RECORD);
    this.smmu = new Uint16Array(this.cap);
  }

  get count(): number {
    return this.n;
  }

  /** Index of an SMMU name in this block's dictionary (added if new). */
  smmuId(name: string): number {
    let id = this.nameIndex.get(name);
    if (id === undefined) {
      if (this.names.length >= 0xffff) throw new RangeError('more than 65535 SMMU names in one block');
      id = this.names.length;
      this.names.push(name);
      this.nameIndex.set(name, id);
    }
    return id;
  }

  /**
   * Appends one event and returns the index of its first word in the words array, which the
   * caller fills (the builder zeroes it). `tsNs` is ns since the Unix epoch.
   */
  append(tsNs: bigint, smmuId: number): number {
    if (this.n === this.cap) this.grow();
    if (this.base === undefined) this.base = tsNs;
    this.offsets[this.n] = Number(tsNs - this.base);
    this.smmu[this.n] = smmuId;
    const w = this.n * WORDS_PER_RECORD;
    this.words.fill(0, w, w + WORDS_PER_RECORD);
    this.n++;
    return w;
  }

  /** Like append, with the timestamp given as ns after a base the caller fixed by `setBase`. */
  appendOffset(offsetNs: number, smmuId: number): number {
    if (this.n === this.cap) this.grow();
    this.offsets[this.n] = offsetNs;
    this.smmu[this.n] = smmuId;
    const w = this.n * WORDS_PER_RECORD;
    this.words.fill(0, w, w + WORDS_PER_RECORD);
    this.n++;
    return w;
  }

  /** Fixes the time base of an empty builder (needed before appendOffset). */
  setBase(baseNs: bigint): void {
    if (this.n !== 0) throw new Error('setBase on a non-empty builder');
    this.base = baseNs;
  }

  /** The raw word array being filled (valid until the next append). */
  get wordArray(): Uint32Array {
    return this.words;
  }

  /** Appends one event from its four 64-bit words. Convenience for tests and slow paths. */
  push(tsNs: bigint, smmu: string, evt: readonly [bigint, bigint, bigint, bigint]): void {
    const w = this.append(tsNs, this.smmuId(smmu));
    for (let k = 0; k < 4; k++) {
      this.words[w + 2 * k] = Number(evt[k] & 0xffffffffn);
      this.words[w + 2 * k + 1] = Number((evt[k] >> 32n) & 0xffffffffn);
    }
  }

  finish(): EventBlock {
    const block: EventBlock = {
      count: this.n,
      baseNs: this.base ?? 0n,
      offsetNs: this.offsets.slice(0, this.n),
      words: this.words.slice(0, this.n * WORDS_PER_RECORD),
      smmuIndex: this.smmu.slice(0, this.n),
      smmuNames: this.names,
    };
    this.n = 0;
    this.base = undefined;
    this.names = [];
    this.nameIndex = new Map();
    return block;
  }

  private grow(): void {
    this.cap *= 2;
    const o = new Float64Array(this.cap);
    o.set(this.offsets);
    this.offsets = o;
    const w = new Uint32Array(this.cap * WORDS_PER_RECORD);
    w.set(this.words);
    this.words = w;
    const s = new Uint16Array(this.cap);
    s.set(this.smmu);
    this.smmu = s;
  }
}

/**
 * Concatenates blocks into one (renumbering SMMU names), based at the first event's timestamp.
 * Block by block, not event by event: the batcher joins every source chunk this way.
 */
export function concatBlocks(blocks: readonly EventBlock[]): EventBlock {
  const count = blocks.reduce((s, b) => s + b.count, 0);
  const offsetNs = new Float64Array(count);
  const words = new Uint32Array(count * WORDS_PER_RECORD);
  const smmuIndex = new Uint16Array(count);
  // The names go through a builder's dictionary (same numbering and limit as appending).
  const dict = new EventBlockBuilder(1);
  let base: bigint | undefined;
  let n = 0;
  for (const b of blocks) {
    const ids = b.smmuNames.map((name) => dict.smmuId(name));
    if (b.count === 0) continue;
    base ??= b.baseNs + BigInt(b.offsetNs[0]);
    // Offsets are whole ns below 2^53, so the float sum is exact.
    const shift = Number(b.baseNs - base);
    for (let i = 0; i < b.count; i++) {
      offsetNs[n + i] = b.offsetNs[i] + shift;
      smmuIndex[n + i] = ids[b.smmuIndex[i]];
    }
    words.set(b.words.subarray(0, b.count * WORDS_PER_RECORD), n * WORDS_PER_RECORD);
    n += b.count;
  }
  return { count, baseNs: base ?? 0n, offsetNs, words, smmuIndex, smmuNames: dict.finish().smmuNames };
}

/** Events [start, end) of a block as a new block (copies). */
export function sliceBlock(b: EventBlock, start: number, end: number): EventBlock {
  return {
    count: end - start,
    baseNs: b.baseNs,
    offsetNs: b.offsetNs.slice(start, end),
    words: b.words.slice(start * WORDS_PER_RECORD, end * WORDS_PER_RECORD),
    smmuIndex: b.smmuIndex.slice(start, end),
    smmuNames: b.smmuNames,
  };
}
