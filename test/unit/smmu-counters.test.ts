import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CounterRow, FaultCounters, formatTable } from '../../agent/src/smmu/counters';
import { SmmuModel } from '../../agent/src/source/model';
import { decodeRecord } from '../../common/smmu/record';
import { type EventBlock, EventBlockBuilder } from '../../proto/event-block';

type Tally = { t: number; a: number; p: number; o: number; stalls: number; ns: number };
const empty = (): Tally => ({ t: 0, a: 0, p: 0, o: 0, stalls: 0, ns: 0 });

/** Counts a block the slow, obvious way: full decode of every record. */
function tallyIndependently(blocks: EventBlock[], stallNs?: (words: Uint32Array, w: number) => number) {
  const bySmmu = new Map<string, Tally>();
  const byStream = new Map<string, Tally>();
  const bySsid = new Map<number, Tally>();
  const get = <K>(m: Map<K, Tally>, k: K) => {
    let t = m.get(k);
    if (!t) {
      t = empty();
      m.set(k, t);
    }
    return t;
  };
  for (const b of blocks) {
    for (let i = 0; i < b.count; i++) {
      const e = decodeRecord(b.words, i * 8);
      const smmu = b.smmuNames[b.smmuIndex[i]];
      for (const t of [get(bySmmu, smmu), get(byStream, `${smmu}/${e.sid}`), get(bySsid, e.ssid)]) {
        if (e.name === 'F_TRANSLATION') t.t++;
        else if (e.name === 'F_ACCESS') t.a++;
        else if (e.name === 'F_PERMISSION') t.p++;
        else t.o++;
        if (e.stall) {
          t.stalls++;
          if (stallNs) t.ns += stallNs(b.words, i * 8);
        }
      }
    }
  }
  return { bySmmu, byStream, bySsid };
}

function asTally(r: CounterRow): Tally {
  return {
    t: r.translation,
    a: r.access,
    p: r.permission,
    o: r.other,
    stalls: r.stalls,
    ns: r.stallTimeNs ?? 0,
  };
}

test('counters per SMMU, StreamID and SSID equal the model events counted independently', () => {
  const model = new SmmuModel({
    seed: 'counters',
    rate: 0,
    rareEvents: { C_BAD_SUBSTREAMID: 0.01, C_BAD_STE: 0.01 },
  });
  const blocks = [model.generate(20_000), model.nextBlock(), model.nextBlock(), model.generate(5_000)];
  const counters = new FaultCounters({ stallTime: model.stallTimeNs });
  for (const b of blocks) counters.add(b);
  const expected = tallyIndependently(blocks, model.stallTimeNs);
  const rows = counters.snapshot();

  const smmuRows = rows.filter((r) => r.scope === 'smmu');
  assert.deepEqual(
    smmuRows.map((r) => r.smmu),
    ['arm-smmu-v3.0.auto', 'arm-smmu-v3.1.auto'],
  );
  for (const r of smmuRows) assert.deepEqual(asTally(r), expected.bySmmu.get(r.smmu!), r.smmu!);

  const streamRows = rows.filter((r) => r.scope === 'stream');
  assert.equal(streamRows.length, expected.byStream.size);
  for (const r of streamRows)
    assert.deepEqual(asTally(r), expected.byStream.get(`${r.smmu}/${r.sid}`), `${r.smmu} ${r.sid}`);

  const ssidRows = rows.filter((r) => r.scope === 'substream');
  assert.equal(ssidRows.length, expected.bySsid.size);
  for (const r of ssidRows) assert.deepEqual(asTally(r), expected.bySsid.get(r.ssid!), `ssid ${r.ssid}`);

  const total = smmuRows.reduce((s, r) => s + r.total, 0);
  assert.equal(
    total,
    blocks.reduce((s, b) => s + b.count, 0),
  );
  assert.equal(total, model.stats.events);
  assert.equal(
    smmuRows.reduce((s, r) => s + r.stalls, 0),
    model.stats.stalls,
  );
  assert.ok(
    smmuRows.every((r) => (r.stallTimeNs ?? 0) > 0),
    'the model knows every stall time',
  );
  assert.ok(
    ssidRows.some((r) => r.ssid! > 8 && r.other > 0),
    'stale PASIDs of C_BAD_SUBSTREAMID are counted',
  );
});

test('a hand-made block: SSID only when valid, C_BAD_SUBSTREAMID without SSV, stall time unknown', () => {
  const b = new EventBlockBuilder();
  const t = 1_700_000_000_000_000_000n;
  // F_TRANSLATION, stalled, SSV=1 SSID 5 on SID 0x100.
  b.push(t, 'arm-smmu-v3.0.auto', [0x0000010000005810n, 0x0000020880000001n, 0x1000n, 0n]);
  // F_ACCESS, not stalled, SSV=0 with SSID bits 5 set: counted under SSID 0.
  b.push(t, 'arm-smmu-v3.0.auto', [0x0000010000005012n, 0x0000020800000000n, 0x2000n, 0n]);
  // F_PERMISSION on another SMMU, stalled.
  b.push(t, 'arm-smmu-v3.1.auto', [0x0000010000005813n, 0x0000020080000002n, 0x3000n, 0n]);
  // C_BAD_SUBSTREAMID: SSID 0x42 without SSV.
  b.push(t, 'arm-smmu-v3.0.auto', [0x0000010000042008n, 0n, 0n, 0n]);
  const c = new FaultCounters();
  c.add(b.finish());
  const rows = c.snapshot();
  const pick = (scope: string, key: (r: CounterRow) => boolean) =>
    rows.find((r) => r.scope === scope && key(r))!;
  const s0 = pick('smmu', (r) => r.smmu === 'arm-smmu-v3.0.auto');
  assert.deepEqual(
    [s0.translation, s0.access, s0.permission, s0.other, s0.total, s0.stalls, s0.stallTimeNs],
    [1, 1, 0, 1, 3, 1, null],
  );
  assert.equal(pick('stream', (r) => r.smmu === 'arm-smmu-v3.1.auto' && r.sid === 0x100).permission, 1);
  assert.equal(pick('substream', (r) => r.ssid === 5).total, 2);
  assert.equal(pick('substream', (r) => r.ssid === 0).access, 1);
  assert.equal(pick('substream', (r) => r.ssid === 0x42).other, 1);

  const table = formatTable(rows).split('\n');
  assert.match(
    table[0],
    /^scope\s+smmu\s+sid\s+ssid\s+translation\s+access\s+permission\s+other\s+total\s+stalls\s+stall_us\s+avg_stall_us$/,
  );
  assert.equal(table.length, rows.length + 1);
  assert.match(table[1], /^smmu\s+arm-smmu-v3\.0\.auto\s+-\s+-\s+1\s+1\s+0\s+1\s+3\s+1\s+-\s+-$/);

  c.reset();
  assert.ok(c.snapshot().every((r) => r.total === 0));
});

test('table shows stall time in microseconds when known', () => {
  const b = new EventBlockBuilder();
  b.push(1n, 'arm-smmu-v3.0.auto', [0x0000010000005810n, 0x0000020880000001n, 0x1000n, 0n]);
  b.push(2n, 'arm-smmu-v3.0.auto', [0x0000010000005810n, 0x0000020880000002n, 0x2000n, 0n]);
  const c = new FaultCounters({ stallTime: (words, w) => 1000 * (words[w + 2] & 0xffff) });
  c.add(b.finish());
  const smmu = c.snapshot()[0];
  assert.equal(smmu.stallTimeNs, 3000);
  assert.match(formatTable([smmu]).split('\n')[1], /\s2\s+3\.0\s+1\.50$/);
});
