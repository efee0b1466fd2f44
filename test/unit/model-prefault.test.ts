import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ModelConfigInput, SmmuModel } from '../../agent/src/source/model';
import { decodeRecord } from '../../common/smmu/record';

type Key = string;

/** Faults by kind name per (pasid, mapping index), attributing each address to its mapping. */
function faultsByMapping(config: ModelConfigInput, events: number) {
  const model = new SmmuModel(config);
  const block = model.generate(events);
  const ranges = model.topology.processes.flatMap((p) =>
    p.mappings.map((m) => ({
      key: `${p.pasid}/${m.index}`,
      pasid: p.pasid,
      from: m.va,
      to: m.va + (BigInt(m.pages) << BigInt(model.config.memory.pageShift)),
    })),
  );
  const counts = new Map<Key, Record<string, number>>();
  for (let i = 0; i < block.count; i++) {
    const e = decodeRecord(block.words, i * 8);
    if (!['F_TRANSLATION', 'F_ACCESS', 'F_PERMISSION'].includes(e.name)) continue;
    const r = ranges.find((x) => x.pasid === e.ssid && e.inputAddr >= x.from && e.inputAddr < x.to);
    assert.ok(r, `fault at 0x${e.inputAddr.toString(16)} for PASID ${e.ssid} lies in one of its mappings`);
    const c = counts.get(r.key) ?? {};
    c[e.name] = (c[e.name] ?? 0) + 1;
    counts.set(r.key, c);
  }
  return { model, counts };
}

test('prefaulting one mapping removes its translation faults, and only its', () => {
  const base: ModelConfigInput = { seed: 11, rate: 0, topology: { processes: 2, devicesPerProcess: 2 } };
  const before = faultsByMapping(base, 40_000).counts;
  assert.ok(
    (before.get('1/1')?.F_TRANSLATION ?? 0) > 100,
    'the mapping takes translation faults without prefault',
  );

  const { model, counts } = faultsByMapping(
    { ...base, memory: { prefaultOverrides: [{ process: 0, mapping: 1, prefault: true }] } },
    40_000,
  );
  assert.equal(model.topology.processes[0].mappings[1].prefault, true);
  assert.equal(counts.get('1/1')?.F_TRANSLATION ?? 0, 0, 'no translation faults in the prefaulted mapping');
  assert.ok((counts.get('1/1')?.F_ACCESS ?? 0) > 0, 'aging still clears the access flag of prefaulted pages');
  for (const k of ['1/0', '1/2', '1/3', '2/0', '2/1']) {
    assert.ok((counts.get(k)?.F_TRANSLATION ?? 0) > 0, `mapping ${k} still takes translation faults`);
  }
});

test('prefaulting a process covers all its mappings; a mapping override can turn one back off', () => {
  const { counts } = faultsByMapping(
    {
      seed: 12,
      rate: 0,
      topology: { processes: 2 },
      memory: {
        prefaultOverrides: [
          { process: 1, prefault: true },
          { process: 1, mapping: 3, prefault: false },
        ],
      },
    },
    40_000,
  );
  for (const k of ['2/0', '2/1', '2/2']) assert.equal(counts.get(k)?.F_TRANSLATION ?? 0, 0, k);
  assert.ok((counts.get('2/3')?.F_TRANSLATION ?? 0) > 0);
  assert.ok((counts.get('1/0')?.F_TRANSLATION ?? 0) > 0);
});

test('global prefault: no translation faults at all; with HA and HD as well, no page faults at all', () => {
  const m = new SmmuModel({ seed: 13, rate: 0, memory: { prefault: true } });
  m.generate(20_000);
  assert.equal(m.stats.byKind[0], 0);
  assert.ok(m.stats.byKind[1] > 0 && m.stats.byKind[2] > 0);

  const quiet = new SmmuModel({
    seed: 13,
    rate: 0,
    memory: { prefault: true, hardwareAccessFlag: true, hardwareDirty: true },
    rareEvents: { C_BAD_STE: 0.5 },
  });
  const b = quiet.generate(2000);
  assert.equal(b.count, 2000, 'rare events still flow');
  assert.deepEqual(quiet.stats.byKind.slice(0, 3), [0, 0, 0]);
});
