// concatBlocks joins blocks block by block; it must give exactly what appending every event
// one by one (the reference below) gives: same base, offsets, words, SMMU indices and names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  concatBlocks,
  type EventBlock,
  EventBlockBuilder,
  timestampNs,
  WORDS_PER_RECORD,
} from '../../proto/event-block';
import { rng } from '../support/rng';

function reference(blocks: readonly EventBlock[]): EventBlock {
  const out = new EventBlockBuilder(1);
  for (const b of blocks) {
    const ids = b.smmuNames.map((n) => out.smmuId(n));
    for (let i = 0; i < b.count; i++) {
      const w = out.append(timestampNs(b, i), ids[b.smmuIndex[i]]);
      out.wordArray.set(b.words.subarray(i * WORDS_PER_RECORD, (i + 1) * WORDS_PER_RECORD), w);
    }
  }
  return out.finish();
}

function randomBlock(r: () => number, names: string[]): EventBlock {
  const b = new EventBlockBuilder(4);
  const count = Math.floor(r() * 40);
  const mine = names.filter(() => r() < 0.6);
  if (mine.length === 0) mine.push(names[0]);
  b.setBase(1_780_000_000_000_000_000n + BigInt(Math.floor(r() * 1e12)));
  for (const n of mine) b.smmuId(n);
  let t = Math.floor(r() * 1e6) - 5e5;
  for (let i = 0; i < count; i++) {
    t += Math.floor(r() * 1e6);
    const w = b.appendOffset(t, Math.floor(r() * mine.length));
    for (let k = 0; k < WORDS_PER_RECORD; k++) b.wordArray[w + k] = Math.floor(r() * 2 ** 32);
  }
  return b.finish();
}

test('concatBlocks equals event-by-event appending (bases, negative offsets, empty blocks, names)', () => {
  const r = rng(11);
  const names = ['arm-smmu-v3.0.auto', 'arm-smmu-v3.1.auto', 'arm-smmu-v3.2.auto', 'x'];
  for (let trial = 0; trial < 200; trial++) {
    const blocks = Array.from({ length: Math.floor(r() * 6) }, () => randomBlock(r, names));
    assert.deepEqual(concatBlocks(blocks), reference(blocks), `trial ${trial}`);
  }
  assert.deepEqual(concatBlocks([]), reference([]));
});
