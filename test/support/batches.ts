// A batch as a model agent makes it, for tests and benchmarks that feed later stages directly.
import { MODEL_EVENT } from '../../agent/src/source/model';
import type { Batch } from '../../proto/batch-codec';
import type { EventBlock } from '../../proto/event-block';
import { SourceKind } from '../../proto/index';

/** Agent `<host>-agent`, epoch 1, no losses, no creation time, unless `more` says otherwise. */
export function modelBatch(
  host: string,
  sequence: number,
  events: EventBlock,
  more: Partial<Batch> = {},
): Batch {
  return {
    host,
    agentId: `${host}-agent`,
    epoch: 1,
    sequence,
    sourceKind: SourceKind.SOURCE_KIND_MODEL,
    sourceEvent: MODEL_EVENT,
    lost: new Map(),
    events,
    createdUnixNs: 0n,
    ...more,
  };
}
