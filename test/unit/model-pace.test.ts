import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ModelConfigError,
  type ModelConfigInput,
  RARE_EVENT_NAMES,
  SmmuModel,
  SmmuModelSource,
  wakeIntervalNs,
} from '../../agent/src/source/model';
import { decodeRecord } from '../../common/smmu/record';
import { concatBlocks, type EventBlock, timestampNs, WORDS_PER_RECORD } from '../../proto/event-block';
import { digest, run } from '../support/model-stream';

/** The model and its blocks until `seconds` of simulated time have passed (whole chunks). */
function simulate(config: ModelConfigInput, seconds: number) {
  const m = new SmmuModel(config);
  const blocks: EventBlock[] = [];
  while (m.simulatedNs < BigInt(seconds * 1e9)) blocks.push(m.nextBlock());
  return { model: m, blocks };
}

/** Emitted records by event name, counted from the blocks alone. */
function countRecords(blocks: EventBlock[]): { total: number; byName: Map<string, number> } {
  const byName = new Map<string, number>();
  let total = 0;
  for (const b of blocks) {
    for (let i = 0; i < b.count; i++) {
      const name = decodeRecord(b.words, i * 8).name;
      byName.set(name, (byName.get(name) ?? 0) + 1);
      total++;
    }
  }
  return { total, byName };
}

const PAGE_FAULTS = ['F_TRANSLATION', 'F_ACCESS', 'F_PERMISSION'];

test('work pace: same seed gives a byte-identical stream, different seeds differ', () => {
  const cfg: ModelConfigInput = {
    pace: 'work',
    seed: 42,
    rate: 200_000,
    rareEvents: { F_WALK_EABT: 0.001, C_BAD_SUBSTREAMID: 0.001 },
  };
  const a = run(cfg);
  assert.ok(a.reduce((s, b) => s + b.count, 0) > 5000);
  assert.equal(digest(run(cfg)), digest(a));
  assert.notEqual(digest(run({ ...cfg, seed: 43 })), digest(a));
  assert.notEqual(digest(run({ ...cfg, seed: '42' })), digest(a));
  assert.notEqual(digest(run({ ...cfg, pace: 'events' })), digest(a), 'the pace changes the stream');
});

test('work pace: the record sequence does not depend on how it is cut into blocks', () => {
  const cfg: ModelConfigInput = { pace: 'work', seed: 5, rate: 100_000, maxChunkEvents: 97 };
  const whole = new SmmuModel(cfg).generate(20_000);
  const m = new SmmuModel(cfg);
  const words: number[] = [];
  const times: bigint[] = [];
  while (words.length < 20_000 * 8) {
    const b = m.nextBlock();
    for (let i = 0; i < b.count; i++) times.push(timestampNs(b, i));
    words.push(...b.words.subarray(0, b.count * 8));
  }
  assert.deepEqual(words.slice(0, 20_000 * 8), [...whole.words.subarray(0, whole.count * 8)]);
  for (let i = 0; i < 20_000; i++) assert.equal(times[i], timestampNs(whole, i));
});

test('work pace: the same work with prefault on every mapping gives no translation faults and fewer events', () => {
  const base: ModelConfigInput = {
    pace: 'work',
    seed: 17,
    rate: 1_000_000,
    bursts: null,
    rareEvents: { C_BAD_STE: 1e-3, F_WALK_EABT: 1e-3 },
  };
  const seconds = 0.5;
  const plain = simulate(base, seconds);
  const pre = simulate({ ...base, memory: { prefault: true } }, seconds);
  assert.equal(
    pre.model.topology.processes.every((p) => p.mappings.every((mp) => mp.prefault)),
    true,
  );

  for (const r of [plain, pre]) {
    const c = countRecords(r.blocks);
    const s = r.model.stats;
    assert.equal(s.events, c.total, 'stats.events equals the records emitted');
    PAGE_FAULTS.forEach((name, k) => {
      assert.equal(s.byKind[k], c.byName.get(name) ?? 0, name);
    });
    assert.equal(s.byKind[3], c.total - PAGE_FAULTS.reduce((n, k) => n + (c.byName.get(k) ?? 0), 0));
  }
  // Same simulated time, same touch clock: exactly the same work, and the same rare events.
  assert.equal(pre.model.simulatedNs, plain.model.simulatedNs);
  assert.equal(pre.model.stats.touches, plain.model.stats.touches);
  assert.equal(pre.model.stats.byKind[3], plain.model.stats.byKind[3]);
  assert.ok(plain.model.stats.byKind[3] > 0);

  assert.ok(plain.model.stats.byKind[0] > 1000, 'translation faults without prefault');
  assert.equal(pre.model.stats.byKind[0], 0, 'no translation faults with prefault');
  assert.equal(countRecords(pre.blocks).byName.get('F_TRANSLATION') ?? 0, 0);
  assert.ok(
    pre.model.stats.events < plain.model.stats.events,
    `prefault: ${pre.model.stats.events} events < ${plain.model.stats.events}`,
  );
  // Events pace, for contrast: the clock counts events, so prefault changes only the mix.
  const ev = { ...base, pace: 'events' as const, rate: 100_000 };
  const evPlain = simulate(ev, seconds).model.stats;
  const evPre = simulate({ ...ev, memory: { prefault: true } }, seconds).model.stats;
  assert.equal(evPre.byKind[0], 0);
  assert.equal(evPre.events, evPlain.events);
});

test('work pace: touches per simulated second match the rate', () => {
  // Touches in a fixed time are Poisson(rate x T); with rate x T = 200k, the standard
  // deviation is sqrt(200k) ~ 0.22%, so 1% is about 4.5 sigma.
  const rate = 400_000;
  const { model } = simulate({ pace: 'work', seed: 8, rate, bursts: null }, 0.5);
  const expected = (rate * Number(model.simulatedNs)) / 1e9;
  assert.ok(expected >= 200_000);
  const rel = Math.abs(model.stats.touches - expected) / expected;
  assert.ok(
    rel < 0.01,
    `touches ${model.stats.touches} vs expected ${expected} (${(rel * 100).toFixed(3)}%)`,
  );
  assert.ok(model.stats.events > 0 && model.stats.events < model.stats.touches);
});

test('work pace: fault storms multiply the touch rate, and with it the fault rate', () => {
  const calm = simulate({ pace: 'work', seed: 4, rate: 100_000, bursts: null }, 1);
  const stormy = simulate(
    {
      pace: 'work',
      seed: 4,
      rate: 100_000,
      bursts: { meanIntervalMs: 100, durationMs: 50, rateMultiplier: 20 },
    },
    1,
  );
  // About a third of the time in storms at 20x: ~7x the touches; allow for the randomness.
  assert.ok(stormy.model.stats.touches > 3 * calm.model.stats.touches);
  assert.ok(stormy.model.stats.events > 3 * calm.model.stats.events);
});

test('work pace: rare events come per touch, even when no page faults', () => {
  const m = new SmmuModel({
    pace: 'work',
    seed: 13,
    rate: 0,
    memory: { prefault: true, hardwareAccessFlag: true, hardwareDirty: true },
    rareEvents: { C_BAD_STE: 0.01 },
  });
  const b = m.generate(2000);
  assert.equal(b.count, 2000);
  assert.deepEqual(m.stats.byKind, [0, 0, 0, 2000]);
  // Geometric gaps with p = 0.01: ~100 touches per event (sd of the mean ~ 100/sqrt(2000)).
  const perEvent = m.stats.touches / m.stats.events;
  assert.ok(perEvent > 90 && perEvent < 110, `touches per rare event ${perEvent}`);

  const silent = new SmmuModel({
    pace: 'work',
    seed: 13,
    rate: 0,
    memory: { prefault: true, hardwareAccessFlag: true, hardwareDirty: true },
    rareEvents: Object.fromEntries(RARE_EVENT_NAMES.map((k) => [k, 0])),
  });
  assert.equal(silent.generate(10).count, 0, 'a quiescent workload: generate gives up');
  assert.ok(silent.stats.emptySlots >= 1000);
});

test('work pace: maxEvents and maxChunkEvents hold; timestamps are non-decreasing', () => {
  const m = new SmmuModel({ pace: 'work', seed: 2, rate: 50_000, maxChunkEvents: 100, maxEvents: 250 });
  let total = 0;
  let prev = -1n;
  while (!m.exhausted) {
    const b = m.nextBlock();
    assert.ok(b.count <= 100);
    for (let i = 0; i < b.count; i++) {
      const t = timestampNs(b, i);
      assert.ok(t >= prev);
      prev = t;
    }
    total += b.count;
  }
  assert.equal(total, 250);
  assert.equal(m.generate(10).count, 0);
});

test('pace is validated', () => {
  assert.equal(new SmmuModel().config.pace, 'events');
  assert.throws(
    () => new SmmuModel({ pace: 'touches' as never }),
    (e: unknown) =>
      e instanceof ModelConfigError &&
      /^model config: pace must be one of events, work \(got touches\)$/.test(e.message),
  );
  assert.throws(() => new SmmuModel({ pace: null as never }), ModelConfigError);
});

test('work pace: the source paces touches against the wall clock', async () => {
  const ac = new AbortController();
  const rate = 100_000;
  const src = new SmmuModelSource({ pace: 'work', seed: 1, rate, bursts: null, chunkNs: 10_000_000 });
  const t0 = Date.now();
  let abortedAt = 0;
  setTimeout(() => {
    abortedAt = Date.now();
    ac.abort();
  }, 300);
  let events = 0;
  for await (const c of src.read(ac.signal)) events += c.events.count;
  const elapsed = Date.now() - t0;
  assert.ok(Date.now() - abortedAt < 300, `stopped ${Date.now() - abortedAt} ms after the abort`);
  // Paced against the wall clock: never ahead of rate x elapsed by more than the hand-over in
  // hand at the abort (one wake interval) and a chunk; and running (a loaded machine may fall
  // behind, so the lower bound is loose).
  const touches = src.model.stats.touches;
  const aheadS = (wakeIntervalNs(rate, 10_000_000) + 10_000_000) / 1e9;
  assert.ok(
    touches <= (rate * elapsed) / 1000 + rate * aheadS,
    `${touches} touches in ${elapsed} ms: ahead of the clock`,
  );
  assert.ok(touches > rate * 0.3 * 0.25, `${touches} touches in ${elapsed} ms: stalled`);
  assert.equal(events, src.model.stats.events);
  assert.ok(events > 0 && events < touches);
});

test('work pace: a resumed source continues exactly where an earlier run stopped', async () => {
  const cfg: ModelConfigInput = { pace: 'work', seed: 5, rate: 0, maxEvents: 3000 };
  const whole = new SmmuModel(cfg).generate(3000);
  const blocks = [];
  for await (const c of new SmmuModelSource(cfg).read(new AbortController().signal, 1234))
    blocks.push(c.events);
  const rest = concatBlocks(blocks);
  assert.equal(rest.count, 3000 - 1234);
  assert.deepEqual(rest.words, whole.words.slice(1234 * WORDS_PER_RECORD));
});
