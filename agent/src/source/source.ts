// What every event source gives the pipeline: blocks of raw SMMU event records plus counts
// of events it knows it lost. The pipeline pulls, so a slow downstream slows the model down
// and, for tracefs, lets the kernel count overruns instead of the agent buffering without end.
import type { EventBlock } from '../../../proto/event-block';
import type { LossReason, SourceKind } from '../../../proto/index';

export interface SourceChunk {
  /** Events read since the previous chunk (may be empty). */
  events: EventBlock;
  /** "group:event" of these records when the source reads several events (default: the source's). */
  event?: string;
  /** Events lost since the previous chunk, by reason (absent or empty when none). */
  lost?: ReadonlyMap<LossReason, number>;
}

export interface EventSource {
  /** Recorded in every batch: how the events were obtained. */
  readonly kind: SourceKind;
  /** Recorded in every batch: "group:event" of the records. */
  readonly event: string;
  /**
   * True when the source can start after the first N events it would produce (a seeded
   * model): a restarted agent then continues where its spool ends. Kernel sources cannot.
   */
  readonly resumable?: boolean;
  /**
   * Yields chunks until `signal` aborts (then it finishes the chunk in hand and returns) or
   * the source is exhausted. Errors that make the source unusable are thrown with a message
   * that says what to do. A resumable source skips its first `resumeAt` events.
   */
  read(signal: AbortSignal, resumeAt?: number): AsyncIterable<SourceChunk>;
}
