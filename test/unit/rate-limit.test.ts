import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from '../../collector/ingest/rate-limit';

test('token bucket: a burst of one second, then the sustained rate, per host', () => {
  let now = 0;
  const r = new RateLimiter(10, () => now);
  const waits = Array.from({ length: 12 }, () => r.take('a'));
  assert.deepEqual(waits.slice(0, 10), Array(10).fill(0));
  assert.deepEqual(waits.slice(10).map(Math.round), [100, 200]);
  assert.equal(r.take('b'), 0, 'other hosts have their own bucket');
  now = 1000;
  assert.equal(r.take('a'), 0, 'refilled after a second');
  assert.equal(new RateLimiter(0).take('a'), 0, '0 means unlimited');
});
