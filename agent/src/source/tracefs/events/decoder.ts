// What a decoder of one trace-event family provides. The readers (raw pages, trace_pipe text)
// know nothing of event semantics: they find a record's decoder by its type id (binary) or
// event name (text) and hand it the record; the decoder appends one SMMU-format record to the
// block being built, or answers false for a record it cannot make sense of (counted as
// MALFORMED_RECORD by the reader).
import type { EventBlockBuilder } from '../../../../../proto/event-block';
import type { EventFormat } from '../format';

export interface RecordDecoder {
  /** "group:event" this decoder was created for. */
  readonly event: string;
  /**
   * Decodes the record whose payload is bytes[off, off + len) (`words` views the same memory
   * as u32; `off` is 4-byte aligned) and appends it to `out` at `offsetNs` after the
   * builder's base. Returns false, appending nothing, for a malformed record.
   */
  decodeBinary(
    bytes: Buffer,
    words: Uint32Array,
    off: number,
    len: number,
    out: EventBlockBuilder,
    offsetNs: number,
  ): boolean;
  /** Same for the text trace_pipe prints after "<event>: " (the event's print format). */
  decodeText(body: string, out: EventBlockBuilder, offsetNs: number): boolean;
  /** decodeText on the bytes body[start, end), for decoders on the text hot path. */
  decodeTextBytes?(
    body: Buffer,
    start: number,
    end: number,
    out: EventBlockBuilder,
    offsetNs: number,
  ): boolean;
}

export interface DecoderFamily {
  /** The canonical "group:event" of this family. */
  readonly event: string;
  /** What a kernel needs for the event to exist, for error hints. */
  readonly kernelSupport: string;
  /**
   * Builds a decoder from the event's format file (`event` may differ from the canonical
   * name, e.g. a probe event standing in for the tracepoint). Throws TracefsError BAD_FORMAT
   * when the format lacks a needed field.
   */
  create(format: EventFormat, event: string): RecordDecoder;
}
