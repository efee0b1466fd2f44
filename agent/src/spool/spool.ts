// Stage 4: the spool holds every encoded batch from the moment it is numbered until the
// collector acknowledges it, so a reconnect or restart resends exactly what is unacknowledged.
// Guarantee: a batch leaves the spool only by acknowledgement or, when the budget is full, by
// an explicit drop whose events are reported upstream as lost (LOSS_REASON_SPOOL_FULL).

export interface SpoolEntry {
  sequence: number;
  /** Encoded EventBatch. */
  bytes: Uint8Array;
  /** Events in the batch (for loss accounting when dropped). */
  events: number;
}

export interface Spool {
  /** Sequence number the next appended batch must carry. */
  nextSequence(): number;
  /** Stores a batch; may drop the oldest unacknowledged ones to stay within budget. */
  append(entry: SpoolEntry): Promise<void>;
  /** Unacknowledged batches, oldest first. */
  pending(): SpoolEntry[];
  /** Marks a batch acknowledged; unknown or repeated sequences are ignored. */
  ack(sequence: number): void;
  /** Events dropped for lack of space since the previous call. */
  takeDropped(): number;
  /** Bytes held. */
  bytes(): number;
  /** Registers a callback run after every append. */
  onAppend(cb: () => void): void;
  close(): Promise<void>;
}
