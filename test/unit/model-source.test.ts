import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL_EVENT, SmmuModel, SmmuModelSource } from '../../agent/src/source/model';
import { concatBlocks, WORDS_PER_RECORD } from '../../proto/event-block';
import { SourceKind } from '../../proto/index';

test('the source identifies itself as the model', () => {
  const s = new SmmuModelSource();
  assert.equal(s.kind, SourceKind.SOURCE_KIND_MODEL);
  assert.equal(s.event, 'model:smmu_evtq_event');
  assert.equal(MODEL_EVENT, s.event);
});

test('unpaced source yields chunks until maxEvents, the same events as the synchronous model', async () => {
  const cfg = { seed: 77, rate: 0, maxChunkEvents: 1000, maxEvents: 5500 };
  const counts: number[] = [];
  const words: number[] = [];
  for await (const chunk of new SmmuModelSource(cfg).read(new AbortController().signal)) {
    counts.push(chunk.events.count);
    words.push(...chunk.events.words);
    assert.equal(chunk.lost, undefined);
  }
  assert.deepEqual(counts, [1000, 1000, 1000, 1000, 1000, 500]);
  const m = new SmmuModel(cfg);
  const expected: number[] = [];
  for (let i = 0; i < 6; i++) expected.push(...m.nextBlock().words);
  assert.deepEqual(words, expected);
});

test('abort ends the stream after the chunk in hand', async () => {
  const ac = new AbortController();
  let chunks = 0;
  for await (const _ of new SmmuModelSource({ rate: 0, maxChunkEvents: 100 }).read(ac.signal)) {
    chunks++;
    if (chunks === 3) ac.abort();
  }
  assert.equal(chunks, 3);
});

test('paced source delivers about the configured rate and stops promptly on abort', async () => {
  const ac = new AbortController();
  const src = new SmmuModelSource({ seed: 1, rate: 20_000, bursts: null, chunkNs: 10_000_000 });
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 600);
  let events = 0;
  for await (const c of src.read(ac.signal)) events += c.events.count;
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 900, `stopped after ${elapsed} ms`);
  // 20k/s wakes every 4096 events (205 ms): 600 ms is 2 hand-overs and, on abort, the chunks
  // in hand up to the third (12,288 events); bounds allow a loaded machine.
  assert.ok(events > 6000 && events < 17_000, `${events} events in ${elapsed} ms`);
});

test('a resumed model source continues exactly where an earlier run stopped', async () => {
  const whole = new SmmuModel({ seed: 5, rate: 0, maxEvents: 3000 }).generate(3000);
  const resumed = new SmmuModelSource({ seed: 5, rate: 0, maxEvents: 3000 });
  const blocks = [];
  for await (const c of resumed.read(new AbortController().signal, 1234)) blocks.push(c.events);
  const rest = concatBlocks(blocks);
  assert.equal(rest.count, 3000 - 1234);
  assert.deepEqual(rest.words, whole.words.slice(1234 * WORDS_PER_RECORD));
});
