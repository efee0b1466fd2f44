// The request-queue patch of common/kafka/request-queue.ts, on kafkajs's own RequestQueue class:
// an idle queue arms no timer (kafkajs 2.2.4 armed a 1 ms one for ever); a queue with a request
// waiting, or one throttled by the broker, is still checked when it should be.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RequestQueue, requestQueueClass, requestQueuePatched } from '../../common/kafka/request-queue';

function queue(): RequestQueue {
  const RequestQueue = requestQueueClass();
  const logger = { debug() {}, info() {}, warn() {}, error() {} };
  return new RequestQueue({
    maxInFlightRequests: 1,
    requestTimeout: 1000,
    clientId: 't',
    broker: 'b',
    logger,
  });
}

/** Armed timer's delay in ms (Node's Timeout keeps it as _idleTimeout). */
const delayOf = (t: NodeJS.Timeout | null) => (t as unknown as { _idleTimeout: number } | null)?._idleTimeout;

test('the installed kafkajs is the version the patch is for, and it is applied', () => {
  assert.equal(requestQueuePatched, true);
});

test('an idle, unthrottled queue arms no timer after a check', () => {
  const q = queue();
  q.checkPendingRequests();
  assert.equal(q.throttleCheckTimeoutId, null);
  q.destroy();
});

test('a waiting request is checked again in 10 ms; a throttled queue at the throttle end', () => {
  const q = queue();
  q.pending.push({});
  q.scheduleCheckPendingRequests();
  assert.equal(delayOf(q.throttleCheckTimeoutId), 10);
  clearTimeout(q.throttleCheckTimeoutId as NodeJS.Timeout);
  q.throttleCheckTimeoutId = null;

  q.pending.length = 0;
  q.throttledUntil = Date.now() + 5000;
  q.scheduleCheckPendingRequests();
  const d = delayOf(q.throttleCheckTimeoutId) ?? 0;
  assert.ok(d > 4000 && d <= 5000, `armed for ${d} ms`);
  q.destroy();
});
