// The tracefs source: SMMU fault records from the kernel's tracing ring buffer.
// See README.md in this folder.
export { type ClockOffset, measureMonoToWall } from './clock';
export { TracefsError, type TracefsErrorCode } from './errors';
export type { DecoderFamily, RecordDecoder } from './events/index';
export { DECODER_FAMILIES, decoderFamily, FALLBACK_EVENTS, PRIMARY_EVENT } from './events/index';
export {
  type EventFormat,
  type FormatField,
  type PageLayout,
  parseEventFormat,
  parseHeaderPage,
  withDataSize,
} from './format';
export { eventExists, parseCpuStats, readEventFormat, TracefsInstance } from './instance';
export { findTracefs, isTracefsRoot, type TracefsMount, tracefsMountPoints, unmountTracefs } from './mount';
export { PageCursor } from './page';
export type { TracefsLog } from './reader';
export { parseLostLine, parseTraceLine } from './text-reader';
export { type TracefsEventSpec, TracefsSource, type TracefsSourceOptions } from './tracefs-source';
