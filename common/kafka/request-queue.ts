// kafkajs 2.2.4 polls every idle connection once a millisecond: its request queue re-arms
// setTimeout(throttledUntil - Date.now()) after every check, and throttledUntil is -1 unless a
// broker throttled, so with nothing pending the timer fires at the 1 ms minimum for ever
// (tulios/kafkajs#1556 and #1704; the fix, PR #1667/#1768, is not in a release). On a 2-core VM
// that was most of an idle collector's CPU. Patched here, on import, the way those PRs fix it:
// with nothing pending and no throttle to wait out, no timer is armed. Nothing is lost by it:
// push() arms a check itself whenever it queues a request, and queued requests are still
// checked every 10 ms, or at the throttle's end, exactly as before.
import { createRequire } from 'node:module';

/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL. */
const CHECK_PENDING_MS = 10;

/** The parts of kafkajs's (untyped, internal) RequestQueue that the patch touches. */
export interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
  destroy(): void;
}

const kafkajsRequire = createRequire(require.resolve('kafkajs'));

/** kafkajs's RequestQueue class, from the installed package's sources. */
export function requestQueueClass(): new (options: object) => RequestQueue {
  return kafkajsRequire('./src/network/requestQueue');
}

/** True when the queue of the installed kafkajs was patched (the version this fix is for). */
export const requestQueuePatched = patch();

function patch(): boolean {
  if ((kafkajsRequire('./package.json') as { version: string }).version !== '2.2.4') return false;
  const proto = requestQueueClass().prototype;
  proto.scheduleCheckPendingRequests = function (this: RequestQueue) {
    if (this.throttleCheckTimeoutId) return;
    const untilThrottleEnds = this.throttledUntil - Date.now();
    if (this.pending.length === 0 && untilThrottleEnds <= 0) return;
    const delay = untilThrottleEnds > 0 ? untilThrottleEnds : CHECK_PENDING_MS;
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, delay);
  };
  return true;
}
