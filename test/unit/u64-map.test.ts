// U64Map against a Map of bigint keys: the same values for keys that share either half, keys
// that collide in few slots, and across growth.
import assert from 'node:assert/strict';
import test from 'node:test';
import { U64Map } from '../../proto/u64-map';

test('U64Map gives what a Map gives, across growth and for keys sharing a half', () => {
  const m = new U64Map(4);
  const ref = new Map<bigint, number>();
  const key = (lo: number, hi: number) => (BigInt(hi) << 32n) | BigInt(lo);
  let x = 12345;
  const next = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x;
  };
  const keys: [number, number][] = [];
  for (let i = 0; i < 3000; i++) {
    // A third share the low half of an earlier key, a third its high half, the rest random;
    // 0 and 0xffffffff halves included.
    const pick = keys.length > 0 ? keys[next() % keys.length] : [0, 0];
    const r = next() % 3;
    const lo = r === 0 ? pick[0] : i % 97 === 0 ? 0xffffffff : next();
    const hi = r === 1 ? pick[1] : i % 89 === 0 ? 0 : next();
    const before = ref.get(key(lo, hi));
    assert.equal(m.get(lo, hi), before ?? -1, `key ${lo}:${hi} before adding`);
    if (before === undefined) {
      m.add(lo, hi, i);
      ref.set(key(lo, hi), i);
      keys.push([lo, hi]);
    }
  }
  assert.equal(m.size, ref.size);
  for (const [lo, hi] of keys) assert.equal(m.get(lo, hi), ref.get(key(lo, hi)));
  assert.equal(m.get(1, 2) === -1, !ref.has(key(1, 2)));
});
