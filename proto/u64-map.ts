// A map from 64-bit keys, given as two uint32 halves, to non-negative integers: open addressing
// in typed arrays. The hot loops that look a stream or a shape up per event use it instead of a
// Map, whose keys above 2^31 are heap numbers, hashed and compared as such on every lookup.

export class U64Map {
  /** Per slot: the key's halves and its value + 1 (0: empty). */
  private lo: Uint32Array;
  private hi: Uint32Array;
  private val: Float64Array;
  private mask: number;
  size = 0;

  constructor(capacity = 64) {
    let n = 16;
    while (n < 2 * capacity) n *= 2;
    this.lo = new Uint32Array(n);
    this.hi = new Uint32Array(n);
    this.val = new Float64Array(n);
    this.mask = n - 1;
  }

  /** The value of key hi:lo, or -1 when absent. */
  get(lo: number, hi: number): number {
    let i = slot(lo, hi) & this.mask;
    for (;;) {
      const v = this.val[i];
      if (v === 0) return -1;
      if (this.lo[i] === lo && this.hi[i] === hi) return v - 1;
      i = (i + 1) & this.mask;
    }
  }

  /** Sets key hi:lo (absent: get() returned -1) to `value`. */
  add(lo: number, hi: number, value: number): void {
    if (2 * (this.size + 1) > this.val.length) this.grow();
    let i = slot(lo, hi) & this.mask;
    while (this.val[i] !== 0) i = (i + 1) & this.mask;
    this.lo[i] = lo;
    this.hi[i] = hi;
    this.val[i] = value + 1;
    this.size++;
  }

  private grow(): void {
    const { lo, hi, val } = this;
    const n = val.length * 2;
    this.lo = new Uint32Array(n);
    this.hi = new Uint32Array(n);
    this.val = new Float64Array(n);
    this.mask = n - 1;
    this.size = 0;
    for (let i = 0; i < val.length; i++) if (val[i] !== 0) this.add(lo[i], hi[i], val[i] - 1);
  }
}

/** A slot hash of hi:lo (Murmur3's finaliser over both halves). */
function slot(lo: number, hi: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
