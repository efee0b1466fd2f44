// What the two readers (binary per-CPU pages, trace_pipe text) share: where decoded records
// go, how losses are counted, and how a read round is reported to the source.
import type { RecordDecoder } from './events/index';
import type { TracefsInstance } from './instance';
import type { LossCounter } from './losses';
import type { EventStaging } from './staging';

/** Minimal logger (pino's Logger fits). */
export interface TracefsLog {
  info(msg: string): void;
  warn(msg: string): void;
}

/** One enabled event: its type id, decoder and the staging its records go to. */
export interface DecodeTarget {
  /** "group:event". */
  readonly event: string;
  /** The event's type id (`ID:` of its format). */
  readonly typeId: number;
  readonly decoder: RecordDecoder;
  readonly staging: EventStaging;
}

export interface ReadContext {
  readonly instance: TracefsInstance;
  readonly targets: readonly DecodeTarget[];
  readonly losses: LossCounter;
  /** Wall-clock ns = trace-clock ns + clockOffsetNs (updated by the source when it drifts). */
  clockOffsetNs: bigint;
  /** Logs a warning once per key (malformed records, unknown types, failing CPUs). */
  warnOnce(key: string, msg: string): void;
}

export interface RoundResult {
  /** Records decoded this round. */
  records: number;
  /** False when some input was left unread because the round's budget ran out. */
  drained: boolean;
  /**
   * Records at or after this offset (ns after the round's base) may still be preceded by
   * records not read yet; the source holds them back.
   */
  cutoffOffsetNs: number;
}

export interface TracefsReader {
  readonly mode: 'raw' | 'text';
  /** Opens the instance's files. */
  open(): void;
  /** Picks up CPUs that appeared since open (raw reader; no-op for text). */
  refreshCpus(): void;
  /**
   * Reads what is available without blocking, decoding into the targets' stagings with
   * offsets relative to `baseNs` (wall clock). `settledWallNs`: records before this wall time
   * are complete on every CPU (undefined: no hold-back).
   */
  round(baseNs: bigint, settledWallNs: bigint | undefined): RoundResult;
  /** CPUs read (for stats). */
  cpus(): readonly number[];
  close(): void;
}
