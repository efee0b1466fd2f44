// The end of an in-process agent run in the integration tests: the source ran out, every batch
// was acknowledged, nothing was lost, and every event of the source was read.
import assert from 'node:assert/strict';
import type { AgentPipeline } from '../../agent/src/pipeline';

export async function finishDrained(pipeline: AgentPipeline, host: string, events: number): Promise<void> {
  await pipeline.done();
  assert.deepEqual(
    await pipeline.stop(),
    { drained: true, unackedBatches: 0, lostEvents: 0 },
    `${host}: every batch acknowledged`,
  );
  assert.equal(pipeline.totals.events, events);
}
