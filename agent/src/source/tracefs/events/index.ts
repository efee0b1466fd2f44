// The decoders of the trace-event families the tracefs source understands. Supporting a new
// event = one file implementing DecoderFamily, listed here; the readers stay unchanged.
import type { DecoderFamily } from './decoder';
import { intelPrq } from './intel-prq';
import { ioPageFault } from './io-page-fault';
import { smmuEvtq } from './smmu-evtq';

export type { DecoderFamily, RecordDecoder } from './decoder';

export const DECODER_FAMILIES: readonly DecoderFamily[] = [smmuEvtq, ioPageFault, intelPrq];

/** The SMMUv3 event-queue tracepoint: what the source reads by default. */
export const PRIMARY_EVENT = smmuEvtq.event;
/** Read instead when the primary event does not exist in the running kernel. */
export const FALLBACK_EVENTS: readonly string[] = [ioPageFault.event, intelPrq.event];

/** The family whose canonical "group:event" is `event`, if any. */
export function decoderFamily(event: string): DecoderFamily | undefined {
  return DECODER_FAMILIES.find((f) => f.event === event);
}
