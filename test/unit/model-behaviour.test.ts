import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SmmuModel } from '../../agent/src/source/model';
import { decodeRecord } from '../../common/smmu/record';

test('topology: named SMMUs, unique StreamIDs per SMMU, PASIDs from firstPasid, bindings per process', () => {
  const m = new SmmuModel({
    topology: { smmus: 3, devicesPerSmmu: 40, processes: 5, devicesPerProcess: 3, firstPasid: 100 },
  });
  const t = m.topology;
  assert.deepEqual(
    t.smmus.map((s) => s.name),
    ['arm-smmu-v3.0.auto', 'arm-smmu-v3.1.auto', 'arm-smmu-v3.2.auto'],
  );
  for (const s of t.smmus) {
    const sids = t.devices.filter((d) => d.smmu === s.index).map((d) => d.sid);
    assert.equal(new Set(sids).size, 40);
  }
  assert.equal(t.devices.filter((d) => d.stall).length, Math.round(0.75 * 120));
  assert.deepEqual(
    t.processes.map((p) => p.pasid),
    [100, 101, 102, 103, 104],
  );
  assert.equal(t.bindings.length, 15);
  for (const p of t.processes) assert.equal(new Set(p.devices).size, 3);
  for (const p of t.processes) {
    for (const mp of p.mappings) assert.ok(mp.va > 0n && mp.va + (BigInt(mp.pages) << 12n) < 1n << 48n);
  }
});

test('page faults come from bound (device, PASID) pairs, stall only on stall devices with per-SMMU stall tags', () => {
  const m = new SmmuModel({
    seed: 5,
    rate: 0,
    rareEvents: { C_BAD_STE: 0, C_BAD_SUBSTREAMID: 0, C_BAD_STREAMID: 0 },
  });
  const t = m.topology;
  const b = m.generate(30_000);
  const nextTag = new Map<string, number>();
  const kinds = new Map<string, number>();
  for (let i = 0; i < b.count; i++) {
    const e = decodeRecord(b.words, i * 8);
    kinds.set(e.name, (kinds.get(e.name) ?? 0) + 1);
    const smmuName = b.smmuNames[b.smmuIndex[i]];
    const smmu = t.smmus.find((s) => s.name === smmuName)!;
    const dev = t.devices.find((d) => d.smmu === smmu.index && d.sid === e.sid);
    assert.ok(dev, `SID 0x${e.sid.toString(16)} is a device behind ${smmuName}`);
    if (!['F_TRANSLATION', 'F_ACCESS', 'F_PERMISSION'].includes(e.name)) continue;
    const proc = t.processes.find((p) => p.pasid === e.ssid)!;
    assert.ok(e.ssv && proc, 'page faults carry the PASID of a process');
    assert.ok(proc.devices.includes(dev.index), 'the device is bound to that process');
    assert.equal(e.stall, dev.stall);
    assert.equal(e.class, 2, 'CLASS=IN');
    assert.equal(e.pnu || e.ind || e.s2, false);
    assert.equal(e.ipa, 0n, 'stage-1 only');
    if (e.stall) {
      const expected = nextTag.get(smmuName) ?? e.stag;
      assert.equal(e.stag, expected, 'stall tags increment per SMMU');
      nextTag.set(smmuName, (e.stag + 1) & 0xffff);
    } else {
      assert.equal(e.stag, 0);
    }
  }
  for (const k of ['F_TRANSLATION', 'F_ACCESS', 'F_PERMISSION']) assert.ok((kinds.get(k) ?? 0) > 1000, k);
  assert.ok(m.stats.stalls > 0 && m.stats.stalls < b.count);
});

test('hardware AF update removes access faults; read-only jobs take no permission faults', () => {
  const ha = new SmmuModel({ seed: 6, rate: 0, memory: { hardwareAccessFlag: true } });
  ha.generate(20_000);
  assert.equal(ha.stats.byKind[1], 0);
  const ro = new SmmuModel({ seed: 6, rate: 0, workload: { writeFraction: 0 } });
  ro.generate(20_000);
  assert.equal(ro.stats.byKind[2], 0);
  assert.ok(ro.stats.byKind[0] > 0);
});

test('rare events: each configured kind appears with the fields it defines', () => {
  const m = new SmmuModel({
    seed: 8,
    rate: 0,
    rareEvents: {
      F_WALK_EABT: 0.05,
      F_STREAM_DISABLED: 0.05,
      C_BAD_SUBSTREAMID: 0.05,
      F_CD_FETCH: 0.05,
      F_ADDR_SIZE: 0.05,
      IMPDEF: 0.05,
    },
  });
  const b = m.generate(10_000);
  const seen = new Map<string, ReturnType<typeof decodeRecord>>();
  for (let i = 0; i < b.count; i++) {
    const e = decodeRecord(b.words, i * 8);
    if (!seen.has(e.name)) seen.set(e.name, e);
  }
  const walk = seen.get('F_WALK_EABT')!;
  assert.ok(walk.ssv && walk.class === 1 && walk.fetchAddr !== 0n && walk.inputAddr !== 0n);
  const disabled = seen.get('F_STREAM_DISABLED')!;
  assert.deepEqual(disabled.raw.slice(1), [0n, 0n, 0n]);
  assert.equal(disabled.ssv, false);
  const badSsid = seen.get('C_BAD_SUBSTREAMID')!;
  assert.equal(badSsid.ssv, false);
  assert.ok(badSsid.ssid > 8, 'a PASID no process holds');
  assert.ok(seen.get('F_CD_FETCH')!.fetchAddr !== 0n);
  assert.ok(seen.get('F_ADDR_SIZE')!.inputAddr >= 1n << 48n);
  assert.ok([...seen.keys()].some((n) => n.startsWith('IMPDEF_0xe')));
});

test('stall service time is deterministic per record and follows the latency medians', () => {
  const cfg = { seed: 21, rate: 0, latency: { majorFaultProbability: 0 } };
  const a = new SmmuModel(cfg);
  const b = new SmmuModel(cfg);
  const block = a.generate(20_000);
  const byKind: number[][] = [[], [], []];
  for (let i = 0; i < block.count; i++) {
    const w = i * 8;
    if ((block.words[w + 2] & 0x80000000) === 0) continue;
    const ns = a.stallTimeNs(block.words, w);
    assert.equal(b.stallTimeNs(block.words, w), ns, 'another model with the same config agrees');
    assert.ok(ns > 0);
    const id = block.words[w] & 0xff;
    if (id >= 0x10 && id <= 0x13 && id !== 0x11) byKind[id === 0x10 ? 0 : id === 0x12 ? 1 : 2].push(ns);
  }
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1];
  const l = a.config.latency;
  for (const [i, want] of [l.translationNs, l.accessNs, l.permissionNs].entries()) {
    const got = median(byKind[i]);
    assert.ok(Math.abs(got - want) / want < 0.1, `median ${got} near ${want}`);
  }
  const other = new SmmuModel({ ...cfg, seed: 22 });
  let differs = 0;
  for (let i = 0; i < 100; i++)
    if (other.stallTimeNs(block.words, i * 8) !== a.stallTimeNs(block.words, i * 8)) differs++;
  assert.ok(differs > 90, 'the seed enters the latency model');
});

test('fault storms raise the event rate in their windows', () => {
  const calm = new SmmuModel({ seed: 4, rate: 10_000, bursts: null }).generate(20_000);
  const stormy = new SmmuModel({
    seed: 4,
    rate: 10_000,
    bursts: { meanIntervalMs: 100, durationMs: 50, rateMultiplier: 20 },
  }).generate(20_000);
  const span = (b: typeof calm) => b.offsetNs[b.count - 1] - b.offsetNs[0];
  assert.ok(span(stormy) < span(calm) / 3, `storms compress time: ${span(stormy)} vs ${span(calm)}`);
});

test('nextBlock covers one chunk window of simulated time', () => {
  const m = new SmmuModel({
    seed: 2,
    rate: 200_000,
    bursts: null,
    chunkNs: 5_000_000,
    maxChunkEvents: 100_000,
  });
  const first = m.nextBlock();
  const second = m.nextBlock();
  assert.ok(first.count > 800 && first.count < 1200, `${first.count} events in 5 ms at 200k/s`);
  assert.equal(second.baseNs, first.baseNs + 5_000_000n);
  for (const b of [first, second]) for (const o of b.offsetNs) assert.ok(o >= 0 && o < 5_000_000);
  assert.equal(m.simulatedNs, 10_000_000n);
});

test('maxChunkEvents and maxEvents bound the blocks', () => {
  const m = new SmmuModel({ seed: 2, rate: 0, maxChunkEvents: 100, maxEvents: 250 });
  assert.deepEqual(
    [m.nextBlock().count, m.nextBlock().count, m.nextBlock().count, m.nextBlock().count],
    [100, 100, 50, 0],
  );
  assert.equal(m.exhausted, true);
  assert.equal(m.generate(10).count, 0);
});
