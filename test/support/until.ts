// Polling for a condition in tests: bounded in time, and a timeout names what was awaited.
import { setTimeout as sleep } from 'node:timers/promises';

/** Waits until `ok()` holds, checking every `everyMs`; throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
