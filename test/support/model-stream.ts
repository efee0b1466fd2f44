// Shared by the model tests: a stream the model produces through both of its APIs
// (generate and nextBlock), and one digest of everything its blocks carry.
import { createHash } from 'node:crypto';
import { type ModelConfigInput, SmmuModel } from '../../agent/src/source/model';
import { concatBlocks, type EventBlock } from '../../proto/event-block';

/** Everything a block carries, as one digest. */
export function digest(blocks: EventBlock[]): string {
  const h = createHash('sha256');
  for (const b of blocks) {
    h.update(`${b.count}/${b.baseNs}/${b.smmuNames.join(',')}/`);
    h.update(Buffer.from(b.offsetNs.buffer, b.offsetNs.byteOffset, b.offsetNs.byteLength));
    h.update(Buffer.from(b.words.buffer, b.words.byteOffset, b.words.byteLength));
    h.update(Buffer.from(b.smmuIndex.buffer, b.smmuIndex.byteOffset, b.smmuIndex.byteLength));
  }
  return h.digest('hex');
}

export function run(config: ModelConfigInput): EventBlock[] {
  const m = new SmmuModel(config);
  const out = [m.generate(3000)];
  for (let i = 0; i < 20; i++) out.push(m.nextBlock());
  out.push(m.generate(1000));
  return out;
}

/** The first n events of the model (seed 3 unless given, default workload) as one block. */
export function modelEvents(n: number, seed = 3): EventBlock {
  const m = new SmmuModel({ seed, rate: 0, maxEvents: n, startTimeNs: 1_780_000_000_000_000_000n });
  const blocks: EventBlock[] = [];
  while (!m.exhausted) blocks.push(m.nextBlock());
  return concatBlocks(blocks);
}
