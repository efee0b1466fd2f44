// The event stream of the end-to-end benchmark, in the forms each path takes: the model's
// blocks (what an unpaced model agent with the same settings produces), trace_pipe text lines
// of the same events (what `kcat -P` ships), a digest of the events (to check that each one
// arrived exactly once), and the stream's entropy bound (its columns compressed with xz -9).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { type ModelConfigInput, SmmuModel } from '../../agent/src/source/model';
import { formatTraceLine } from '../../common/smmu/format';
import { type EventBlock, timestampNs, WORDS_PER_RECORD } from '../../proto/event-block';

/** The model settings an agent gets from `--seed 3 --rate 0 --max-events n` and a config file {startTimeNs}. */
export function modelConfig(events: number, startTimeNs: bigint): ModelConfigInput {
  return { seed: 3, rate: 0, maxEvents: events, startTimeNs };
}

export function modelBlocks(config: ModelConfigInput): EventBlock[] {
  const m = new SmmuModel(config);
  const out: EventBlock[] = [];
  while (!m.exhausted) out.push(m.nextBlock());
  return out.filter((b) => b.count > 0);
}

/** trace_pipe lines ("<comm>-<pid> [cpu] flags secs.usecs: event: body\n") of every event. */
export function traceText(blocks: readonly EventBlock[]): Buffer {
  const parts: string[] = [];
  for (const b of blocks) {
    for (let i = 0; i < b.count; i++)
      parts.push(`    kworker/u8:1-97      [000] ..... ${formatTraceLine(b, i)}\n`);
  }
  return Buffer.from(parts.join(''));
}

/** Order-sensitive digest of events: timestamp, SMMU name and the four record words of each. */
export class StreamDigest {
  private readonly h = createHash('sha256');
  events = 0;

  /** `time` maps each timestamp to what a path delivers (e.g. text keeps whole microseconds). */
  add(b: EventBlock, time: (ns: bigint) => bigint = (ns) => ns): void {
    const rec = Buffer.alloc(8 + 2 + 32);
    for (let i = 0; i < b.count; i++) {
      rec.writeBigUInt64LE(time(timestampNs(b, i)), 0);
      rec.writeUInt16LE(b.smmuNames[b.smmuIndex[i]].length, 8);
      for (let k = 0; k < WORDS_PER_RECORD; k++)
        rec.writeUInt32LE(b.words[i * WORDS_PER_RECORD + k], 10 + 4 * k);
      this.h.update(rec);
      this.h.update(b.smmuNames[b.smmuIndex[i]]);
    }
    this.events += b.count;
  }

  hex(): string {
    return this.h.copy().digest('hex');
  }
}

/** Bytes of `data` compressed by `xz -9` (one thread). */
export function xzBytes(data: Buffer): number {
  return execFileSync('xz', ['-9', '-T1', '-c'], { input: data, maxBuffer: 1 << 30 }).length;
}

/**
 * The stream as plain columns, one field after another (timestamp deltas, SMMU index, then
 * each 64-bit record word as a column): the form in which a general compressor sees the
 * structure best, so xz -9 of it stands for the entropy bound a column coding can approach.
 */
export function rawColumns(blocks: readonly EventBlock[]): Buffer {
  const n = blocks.reduce((s, b) => s + b.count, 0);
  const ts = Buffer.alloc(n * 8);
  const smmu = Buffer.alloc(n);
  const words = Array.from({ length: 4 }, () => Buffer.alloc(n * 8));
  let j = 0;
  let prev = 0n;
  for (const b of blocks) {
    for (let i = 0; i < b.count; i++, j++) {
      const t = timestampNs(b, i);
      ts.writeBigInt64LE(j === 0 ? t : t - prev, j * 8);
      prev = t;
      smmu[j] = b.smmuIndex[i];
      for (let k = 0; k < 4; k++) {
        const w = i * WORDS_PER_RECORD + 2 * k;
        words[k].writeUInt32LE(b.words[w], j * 8);
        words[k].writeUInt32LE(b.words[w + 1], j * 8 + 4);
      }
    }
  }
  return Buffer.concat([ts, smmu, ...words]);
}
