// The SMMU model as an EventSource: one block per `chunkNs` of simulated time, released no
// earlier than that much wall-clock time after the start when a rate is set (so the
// configured events/s is what the pipeline sees), or as fast as the consumer pulls with
// rate 0. Timestamps always come from the simulated clock, never from the wall clock.
// Paced, the source wakes once per WAKE_EVENTS expected events (at least once per chunk, at
// most MAX_WAKE_NS apart) and hands over the chunks due by then as one block. Below about
// 16 k events/s that is every MAX_WAKE_NS: each wake-up runs the whole pipeline for a few
// events, about 0.6 ms of CPU on a small VM, so at low rates the agent's CPU is mostly
// wake-ups. A hand-over at most MAX_WAKE_NS late plus the default batch delay (500 ms) keeps
// an event's way to the collector under a second.
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import { concatBlocks, type EventBlock } from '../../../../proto/event-block';
import { SourceKind } from '../../../../proto/index';
import type { EventSource, SourceChunk } from '../source';
import type { ModelConfigInput } from './config';
import { SmmuModel } from './smmu-model';

/** The "group:event" recorded for model batches. */
export const MODEL_EVENT = 'model:smmu_evtq_event';

const WAKE_EVENTS = 4096;
const MAX_WAKE_NS = 250_000_000;

/** Simulated (= wall-clock) ns between a paced source's hand-overs at `rate` per second. */
export function wakeIntervalNs(rate: number, chunkNs: number): number {
  return Math.min(MAX_WAKE_NS, Math.max(chunkNs, (WAKE_EVENTS * 1e9) / rate));
}

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
    const { rate, chunkNs } = model.config;
    const paced = rate > 0;
    const wakeNs = paced ? wakeIntervalNs(rate, chunkNs) : 0;
    const wallStart = process.hrtime.bigint();
    const simStart = model.simulatedNs;
    let wokeNs = 0;
    const pending: EventBlock[] = [];
    while (!signal.aborted && !model.exhausted) {
      let events = model.nextBlock();
      if (paced) {
        const sim = Number(model.simulatedNs - simStart);
        if (sim - wokeNs < wakeNs && !model.exhausted) {
          pending.push(events);
          continue;
        }
        wokeNs = sim;
        if (pending.length > 0) {
          pending.push(events);
          events = concatBlocks(pending);
          pending.length = 0;
        }
        const due = sim - Number(process.hrtime.bigint() - wallStart);
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
    // Stopped between wake-ups: the chunks generated meanwhile still go out.
    if (pending.length > 0) yield { events: concatBlocks(pending) };
  }
}
