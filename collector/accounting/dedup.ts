// Replay filter for at-least-once delivery: remembers which (agent_id, epoch, sequence)
// triples were counted. Per agent epoch it keeps a watermark (every sequence up to it was
// seen) plus the seen sequences above it, so memory stays small while batches arrive in
// order. A gap that never fills (a batch the agent's spool dropped and reported as lost)
// is given up once more than `maxAhead` later batches wait behind it. Epochs and sequences
// are bigints: the whole uint64 range is told apart exactly.
//
// Conflicts: a resent batch is byte-for-byte the batch first sent, so a triple seen again with
// different content is not a replay but a second sender (two agents sharing one state
// directory, a reset spool). To tell them apart the filter keeps the content digest of the
// latest `recentDigests` sequences of each agent epoch (8 bytes each); a repeat of an older
// sequence is a replay without comparison, and so is any repeat of a triple offered without a
// digest (the aggregator offers an agent's replacement for a damaged batch that way).
//
// The state is a pure function of the triples offered, in order, so a snapshot taken with
// the counts it guards (see checkpoint.ts) restores to exactly the same decisions.
import { createHash } from 'node:crypto';
import type { Batch, U64 } from '../../proto/batch-codec';

/** What a batch is to the filter. */
export type ReplayVerdict = 'new' | 'replay' | 'conflict';

/** The filter state of one agent epoch. */
export interface ReplayEpochState {
  agentId: string;
  epoch: bigint;
  watermark: bigint;
  /** Seen sequences above the watermark, ascending. */
  ahead: bigint[];
  /** The latest sequences seen and their content digests, oldest first. */
  recent: Array<{ sequence: bigint; digest: bigint }>;
}

interface EpochFilter {
  agentId: string;
  epoch: bigint;
  watermark: bigint;
  ahead: Set<bigint>;
  /** sequence -> digest, in the order seen. */
  recent: Map<bigint, bigint>;
}

/** Digests of the latest sequences kept per agent epoch. */
export const RECENT_DIGESTS = 256;

export class ReplayFilter {
  private epochs = new Map<string, EpochFilter>();
  duplicates = 0;
  conflicts = 0;

  constructor(
    private readonly maxAhead = 4096,
    private readonly recentDigests = RECENT_DIGESTS,
  ) {}

  /** True the first time a triple is seen, false for a replay or a conflict. */
  accept(agentId: string, epoch: U64, sequence: U64, digest?: bigint): boolean {
    return this.offer(agentId, epoch, sequence, digest) === 'new';
  }

  /** Records a triple (with the digest of its content, when known) and says what it is. */
  offer(agentId: string, epoch: U64, sequence: U64, digest?: bigint): ReplayVerdict {
    const ep = BigInt(epoch);
    const seq = BigInt(sequence);
    const key = `${agentId}/${ep}`;
    let e = this.epochs.get(key);
    if (!e) {
      e = { agentId, epoch: ep, watermark: 0n, ahead: new Set(), recent: new Map() };
      this.epochs.set(key, e);
    }
    if (seq <= e.watermark || e.ahead.has(seq)) {
      const seen = e.recent.get(seq);
      if (digest !== undefined && seen !== undefined && seen !== digest) {
        this.conflicts++;
        return 'conflict';
      }
      this.duplicates++;
      return 'replay';
    }
    e.ahead.add(seq);
    while (e.ahead.delete(e.watermark + 1n)) e.watermark++;
    if (e.ahead.size > this.maxAhead) {
      let min = seq;
      for (const s of e.ahead) if (s < min) min = s;
      e.watermark = min - 1n;
      while (e.ahead.delete(e.watermark + 1n)) e.watermark++;
    }
    if (digest !== undefined) {
      e.recent.set(seq, digest);
      if (e.recent.size > this.recentDigests) e.recent.delete(e.recent.keys().next().value as bigint);
    }
    return 'new';
  }

  /** Agent epochs known. */
  get size(): number {
    return this.epochs.size;
  }

  /** The state, for a checkpoint. */
  snapshot(): ReplayEpochState[] {
    return [...this.epochs.values()].map((e) => ({
      agentId: e.agentId,
      epoch: e.epoch,
      watermark: e.watermark,
      ahead: [...e.ahead].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      recent: [...e.recent].map(([sequence, digest]) => ({ sequence, digest })),
    }));
  }

  /** Replaces the state with a snapshot. */
  restore(states: readonly ReplayEpochState[], duplicates: number, conflicts = 0): void {
    this.epochs = new Map();
    for (const s of states) {
      this.epochs.set(`${s.agentId}/${s.epoch}`, {
        agentId: s.agentId,
        epoch: s.epoch,
        watermark: s.watermark,
        ahead: new Set(s.ahead),
        recent: new Map(s.recent.map((r) => [r.sequence, r.digest])),
      });
    }
    this.duplicates = duplicates;
    this.conflicts = conflicts;
  }
}

/** 64 bits of a SHA-1 of a raw message: what the aggregator uses (the wire form is the smallest). */
export function bytesDigest(bytes: Uint8Array): bigint {
  return createHash('sha1').update(bytes).digest().readBigUInt64BE(0);
}

/**
 * For batches handed over decoded (one-shot totals, tests): 64 bits of a SHA-1 over everything a batch says (identity, source, losses, creation time and
 * every event): equal for a resent batch, different for a different batch under the same triple.
 */
export function batchDigest(b: Batch): bigint {
  const h = createHash('sha1');
  const e = b.events;
  const lost = [...b.lost].sort(([x], [y]) => x - y);
  h.update(JSON.stringify([b.host, b.agentId, b.sourceKind, b.sourceEvent, lost, String(b.createdUnixNs)]));
  h.update(JSON.stringify([e.count, String(e.baseNs), e.smmuNames]));
  const view = (a: ArrayBufferView, n: number) => new Uint8Array(a.buffer, a.byteOffset, n);
  h.update(view(e.offsetNs, e.count * 8));
  h.update(view(e.words, e.count * 32));
  h.update(view(e.smmuIndex, e.count * 2));
  return h.digest().readBigUInt64BE(0);
}
