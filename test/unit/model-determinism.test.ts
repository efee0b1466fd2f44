import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ModelConfigInput, SmmuModel } from '../../agent/src/source/model';
import { timestampNs } from '../../proto/event-block';
import { digest, run } from '../support/model-stream';

test('same seed and config give a byte-identical stream', () => {
  const cfg: ModelConfigInput = {
    seed: 42,
    rate: 50_000,
    rareEvents: { F_WALK_EABT: 0.01, C_BAD_SUBSTREAMID: 0.01 },
  };
  const a = run(cfg);
  assert.ok(a.reduce((s, b) => s + b.count, 0) > 5000);
  assert.equal(digest(run(cfg)), digest(a));
  assert.equal(digest(run({ ...cfg, seed: 42 })), digest(a));
});

test('different seeds give different streams', () => {
  const a = digest(run({ seed: 1 }));
  assert.notEqual(digest(run({ seed: 2 })), a);
  assert.notEqual(digest(run({ seed: '1' })), a, 'string and number seeds are distinct');
});

test('the rate changes only the timestamps, not the records', () => {
  const words = (cfg: ModelConfigInput) => {
    const b = new SmmuModel(cfg).generate(5000);
    return Buffer.from(b.words.buffer, 0, b.words.byteLength).toString('hex');
  };
  const offsets = (cfg: ModelConfigInput) => [...new SmmuModel(cfg).generate(5000).offsetNs];
  assert.equal(words({ seed: 9, rate: 1000 }), words({ seed: 9, rate: 0 }));
  assert.notDeepEqual(offsets({ seed: 9, rate: 1000 }), offsets({ seed: 9, rate: 0 }));
});

test('timestamps come from the configured start and the rate, never the wall clock', () => {
  const start = 1_000_000_000_000_000_000n;
  const m = new SmmuModel({ seed: 3, rate: 100_000, startTimeNs: start, bursts: null });
  const b = m.generate(20_000);
  assert.ok(b.baseNs >= start && b.baseNs < start + 1_000_000n);
  let prev = -1;
  for (let i = 0; i < b.count; i++) {
    assert.ok(Number.isInteger(b.offsetNs[i]) && b.offsetNs[i] >= prev, 'integer, non-decreasing');
    prev = b.offsetNs[i];
  }
  // 20k events at 100k/s: ~200 ms of simulated time (exponential gaps).
  const spanMs = (b.offsetNs[b.count - 1] - b.offsetNs[0]) / 1e6;
  assert.ok(spanMs > 180 && spanMs < 220, `span ${spanMs} ms`);
});

test('long simulated runs keep exact, non-decreasing timestamps past 2^50 ns', () => {
  // One event per ~1000 s: 1500 events span ~17 days, beyond the clock's rebase point.
  const m = new SmmuModel({ seed: 3, rate: 0.001, bursts: null });
  let prev = -1n;
  for (let k = 0; k < 6; k++) {
    const b = k % 2 ? m.generate(500) : m.nextBlock();
    for (let i = 0; i < b.count; i++) {
      const t = timestampNs(b, i);
      assert.ok(t >= prev);
      prev = t;
    }
  }
  assert.ok(m.simulatedNs > 2n ** 50n, `${m.simulatedNs}`);
  assert.ok(prev - m.config.startTimeNs > 2n ** 50n);
});
