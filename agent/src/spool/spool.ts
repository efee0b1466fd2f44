// Stage 4: the spool holds every encoded batch from the moment it is numbered until the
// collector acknowledges it, so a reconnect or restart resends exactly what is unacknowledged.
// Guarantee: a batch leaves the spool only by acknowledgement or, when the budget is full, by
// an explicit drop whose events are reported upstream as lost (LOSS_REASON_SPOOL_FULL) in a
// later batch. The spool owns the agent's sequence space: (epoch, sequence) never repeats for
// different batches.

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
  /** How many of droppedUnreported() this batch reports in its lost counts. */
  reportsDropped: number;
}

export interface Spool {
  /** Sequence space of this spool; a new spool (new state directory) starts a new epoch. */
  readonly epoch: number;
  /** Sequence number the next appended batch must carry. */
  nextSequence(): number;
  /** sourceOffset of the last appended batch, 0 when none. */
  sourceOffset(): number;
  /**
   * Events in batches dropped for lack of space and not yet reported by an appended batch. A
   * dropped batch adds its own events and the drops it was reporting (that report is gone too).
   */
  droppedUnreported(): number;
  /** Stores a batch; may drop the oldest unacknowledged ones to stay within budget. */
  append(entry: SpoolEntry): Promise<void>;
  /** Unacknowledged batches, oldest first. */
  pending(): SpoolEntry[];
  /** How many batches are unacknowledged. */
  pendingCount(): number;
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
  close(): Promise<void>;
}
