// The SMMU model as an EventSource: one block per `chunkNs` of simulated time, released no
// earlier than that much wall-clock time after the start when a rate is set (so the
// configured events/s is what the pipeline sees), or as fast as the consumer pulls with
// rate 0. Timestamps always come from the simulated clock, never from the wall clock.
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import { SourceKind } from '../../../../proto/index';
import type { EventSource, SourceChunk } from '../source';
import type { ModelConfigInput } from './config';
import { SmmuModel } from './smmu-model';

/** The "group:event" recorded for model batches. */
export const MODEL_EVENT = 'model:smmu_evtq_event';

export class SmmuModelSource implements EventSource {
  readonly kind = SourceKind.SOURCE_KIND_MODEL;
  readonly event = MODEL_EVENT;
  /** Seeded and deterministic: a restarted agent can continue after the events it spooled. */
  readonly resumable = true;
  readonly model: SmmuModel;

  /** Throws ModelConfigError for a bad configuration. */
  constructor(config: ModelConfigInput | SmmuModel = {}) {
    this.model = config instanceof SmmuModel ? config : new SmmuModel(config);
  }

  async *read(signal: AbortSignal, resumeAt = 0): AsyncIterable<SourceChunk> {
    const model = this.model;
    // Replays the stream up to resumeAt without emitting it: same seed, same events.
    for (let left = resumeAt - model.stats.events; left > 0 && !model.exhausted && !signal.aborted; ) {
      left -= model.generate(Math.min(left, 65536)).count;
      await yieldToLoop();
    }
    const paced = model.config.rate > 0;
    const wallStart = process.hrtime.bigint();
    const simStart = model.simulatedNs;
    while (!signal.aborted && !model.exhausted) {
      const events = model.nextBlock();
      if (paced) {
        const due = Number(model.simulatedNs - simStart) - Number(process.hrtime.bigint() - wallStart);
        if (due > 0) {
          try {
            await sleep(due / 1e6, undefined, { signal });
          } catch {
            // Aborted while waiting: hand over the chunk in hand, then stop.
          }
        }
      } else {
        // Let timers and I/O run between chunks even when the consumer never waits.
        await yieldToLoop();
      }
      yield { events };
    }
  }
}
