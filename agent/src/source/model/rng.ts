// The model's own deterministic PRNG (sfc32: small, fast in 32-bit JS arithmetic, passes
// PractRand) and a 32-bit hash. Never Math.random: the same seed must give the same stream.

/** murmur3's 32-bit finaliser: a good avalanche for hashing small integers. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds v into hash h (order-sensitive). */
export function hashCombine(h: number, v: number): number {
  return fmix32((h ^ Math.imul(v | 0, 0x9e3779b1)) + 0x7f4a7c15);
}

/** 32-bit seed from a number or string (FNV-1a over the string form, then mixed). */
export function seedHash(seed: number | string, label = ''): number {
  const s = `${typeof seed === 'number' ? `n${seed}` : `s${seed}`}/${label}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string, label = '') {
    const h = seedHash(seed, label);
    this.a = h;
    this.b = fmix32(h ^ 0x9e3779b9);
    this.c = fmix32(h ^ 0x243f6a88);
    this.d = 1;
    for (let i = 0; i < 15; i++) this.u32();
  }

  /** Uniform integer in [0, 2^32). */
  u32(): number {
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const t = (((a + b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    const r = (c << 21) | (c >>> 11);
    this.c = (r + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n), n <= 2^32. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Exponential variate with the given mean. */
  exp(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }

  /** Index into cumulative weights (last element = total). */
  pick(cumulative: Float64Array | readonly number[]): number {
    const x = this.float() * cumulative[cumulative.length - 1];
    let i = 0;
    while (i < cumulative.length - 1 && x >= cumulative[i]) i++;
    return i;
  }
}

/** Cumulative sums of weights, for Rng.pick. */
export function cumulative(weights: readonly number[]): Float64Array {
  const out = new Float64Array(weights.length);
  let s = 0;
  for (let i = 0; i < weights.length; i++) {
    s += weights[i];
    out[i] = s;
  }
  return out;
}
