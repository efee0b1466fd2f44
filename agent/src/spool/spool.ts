// Stage 4: the spool holds every encoded batch from the moment it is numbered until the
// collector acknowledges it, so a reconnect or restart resends exactly what is unacknowledged.
// Guarantee: a batch leaves the spool only by acknowledgement or as a loss the spool owes:
// dropped when the budget is full (LOSS_REASON_SPOOL_FULL), found damaged on disk
// (LOSS_REASON_SPOOL_CORRUPT) or not written because the disk refused (LOSS_REASON_SPOOL_WRITE_FAILED).
// Owed losses are reported upstream by a later batch (SpoolEntry.reports). The spool owns the
// agent's sequence space: (epoch, sequence) never repeats for different batches.
import { LossReason } from '../../../proto/index';

/** Events the spool lost and has not yet had reported, by reason. */
export interface Losses {
  /** Dropped to stay within the budget (LOSS_REASON_SPOOL_FULL). */
  full: number;
  /** In records found unreadable on disk (LOSS_REASON_SPOOL_CORRUPT). */
  corrupt: number;
  /** In batches the disk refused to take (LOSS_REASON_SPOOL_WRITE_FAILED). */
  writeFailed: number;
}

export const LOSS_KEYS = ['full', 'corrupt', 'writeFailed'] as const;

/** The wire reason of each kind of spool loss. */
export const LOSS_REASONS: Record<keyof Losses, LossReason> = {
  full: LossReason.LOSS_REASON_SPOOL_FULL,
  corrupt: LossReason.LOSS_REASON_SPOOL_CORRUPT,
  writeFailed: LossReason.LOSS_REASON_SPOOL_WRITE_FAILED,
};

export function losses(l: Partial<Losses> = {}): Losses {
  return { full: l.full ?? 0, corrupt: l.corrupt ?? 0, writeFailed: l.writeFailed ?? 0 };
}

export function totalLosses(l: Losses): number {
  return l.full + l.corrupt + l.writeFailed;
}

/** Adds `b` times `sign` to `a`, in place. */
export function addLosses(a: Losses, b: Losses, sign = 1): Losses {
  for (const k of LOSS_KEYS) a[k] += sign * b[k];
  return a;
}

/** True when every count of `a` is at most that of `b`. */
export function lossesWithin(a: Losses, b: Losses): boolean {
  return LOSS_KEYS.every((k) => a[k] <= b[k]);
}

export interface SpoolEntry {
  /** Batch sequence number: must equal nextSequence() when appended. */
  sequence: number;
  /** Encoded EventBatch. */
  bytes: Uint8Array;
  /** Events in the batch (for loss accounting when dropped). */
  events: number;
  /**
   * Position of a resumable source after this batch's last event (events it produced so far),
   * so a restarted agent continues after what it spooled; 0 for sources that cannot resume.
   */
  sourceOffset: number;
  /** How much of owed() this batch reports in its lost counts. */
  reports: Losses;
}

export interface Spool {
  /** Sequence space of this spool; a new spool (new state directory) starts a new epoch. */
  readonly epoch: number;
  /** True when what it holds outlives the process (then nothing is lost by stopping). */
  readonly durable: boolean;
  /** Sequence number the next appended batch must carry. */
  nextSequence(): number;
  /** sourceOffset of the last appended batch, 0 when none. */
  sourceOffset(): number;
  /**
   * Losses not yet reported by an appended batch. A batch lost from the spool adds its own
   * events (under the reason it was lost for) and the reports it carried (under theirs: that
   * report is gone too).
   */
  owed(): Losses;
  /**
   * Stores a batch; may drop the oldest unacknowledged ones to stay within budget. When the
   * disk refuses the batch, it resolves all the same and the batch's events (and reports) are
   * owed as LOSS_REASON_SPOOL_WRITE_FAILED: the agent keeps running and writes again later.
   */
  append(entry: SpoolEntry): Promise<void>;
  /** Unacknowledged batches, oldest first. */
  pending(): SpoolEntry[];
  /** How many batches are unacknowledged. */
  pendingCount(): number;
  /** Events in the unacknowledged batches (what an exit now would lose from a memory spool). */
  pendingEvents(): number;
  /** Sequence of the oldest unacknowledged batch, if any. */
  oldestPending(): number | undefined;
  /** The unacknowledged batch with this sequence, if any (the transport walks sequences with it). */
  entry(sequence: number): SpoolEntry | undefined;
  /** Marks a batch acknowledged; unknown or repeated sequences are ignored. */
  ack(sequence: number): void;
  /** Bytes held. */
  bytes(): number;
  /** Registers a callback run after every append. */
  onAppend(cb: () => void): void;
  /** Registers a callback run with the events of every batch the spool loses, by reason. */
  onLoss(cb: (l: Losses) => void): void;
  /**
   * Names the batches the budget must not drop: those sent on any stream and not acknowledged.
   * The collector may have published such a batch (its stream can break between the publish and
   * the ack), so counting it lost could count its events twice; the spool may exceed its budget
   * by the transport's window instead.
   */
  protect(inFlight: (sequence: number) => boolean): void;
  /**
   * How to encode the batch that takes the place of one found damaged when it is read back to be
   * sent (telemetry.proto, EventBatch.replaces_damaged): same sequence, no events, reporting
   * `lost` (the damaged batch's events as `corrupt`, plus what it reported). Its collector may
   * have published the damaged batch before the stream broke; owing its events instead would
   * count them twice, the replacement lets consumers count one of the two. Without it, a damaged
   * batch is owed as lost.
   */
  replaceDamagedWith(encode: (sequence: number, lost: Losses) => Uint8Array): void;
  close(): Promise<void>;
}
