import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplayFilter } from '../../collector/accounting/dedup';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { formatFleetTable } from '../../collector/accounting/table';
import type { Batch } from '../../proto/batch-codec';
import { EventBlockBuilder } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { modelBatch } from '../support/batches';

test('replay filter accepts each (agent, epoch, sequence) once, in any order', () => {
  const f = new ReplayFilter();
  assert.deepEqual(
    [1, 2, 3].map((s) => f.accept('a', 1, s)),
    [true, true, true],
  );
  assert.deepEqual(
    [2, 3, 5, 4, 5, 1].map((s) => f.accept('a', 1, s)),
    [false, false, true, true, false, false],
  );
  assert.equal(f.accept('a', 2, 1), true, 'a new epoch starts a new sequence space');
  assert.equal(f.accept('b', 1, 1), true, 'another agent');
  assert.equal(f.duplicates, 4);
});

test('replay filter gives up a gap that never fills once too many batches wait behind it', () => {
  const f = new ReplayFilter(3);
  assert.equal(f.accept('a', 1, 1), true);
  for (const s of [3, 4, 5, 6]) assert.equal(f.accept('a', 1, s), true); // 2 never comes
  assert.equal(f.accept('a', 1, 7), true);
  assert.equal(f.accept('a', 1, 4), false);
});

function batch(host: string, seq: number, records: Array<[number, number, number]>, lost = 0): Batch {
  const b = new EventBlockBuilder();
  for (const [id, sid, ssid] of records) {
    // evt0: ID 7:0, SSV 11, SSID 31:12, SID 63:32
    const evt0 = (BigInt(sid) << 32n) | (BigInt(ssid) << 12n) | (ssid ? 1n << 11n : 0n) | BigInt(id);
    b.push(1_000n, 'smmu0', [evt0, 0n, 0x7000n, 0n]);
  }
  return modelBatch(host, seq, b.finish(), {
    lost: lost ? new Map([[LossReason.LOSS_REASON_SPOOL_FULL, lost]]) : new Map(),
  });
}

test('fleet totals count per host x SMMU x StreamID x SSID x event and drop replays', () => {
  const t = new FleetTotals();
  const first = batch('h1', 1, [
    [0x10, 5, 9],
    [0x10, 5, 9],
    [0x12, 5, 9],
    [0x13, 6, 0],
  ]);
  assert.equal(t.add(first), true);
  assert.equal(t.add(batch('h2', 1, [[0x10, 5, 9]], 7)), true);
  assert.equal(t.add(first), false, 'replayed batch');
  assert.equal(t.add(batch('h1', 1, [[0x10, 5, 9]])), false, 'same triple, other content');
  const rows = t.rows().map((r) => `${r.host} ${r.smmu} ${r.streamId} ${r.ssid} ${r.event} ${r.count}`);
  assert.deepEqual(rows, [
    'h1 smmu0 5 9 F_TRANSLATION 2',
    'h1 smmu0 5 9 F_ACCESS 1',
    'h1 smmu0 6 0 F_PERMISSION 1',
    'h2 smmu0 5 9 F_TRANSLATION 1',
  ]);
  assert.deepEqual(t.lostRows(), [{ host: 'h2', reason: 'LOSS_REASON_SPOOL_FULL', count: 7 }]);
  assert.deepEqual(t.hostRows(), [
    { host: 'h1', batches: 1, events: 4, lost: 0 },
    { host: 'h2', batches: 1, events: 1, lost: 7 },
  ]);
  assert.equal(t.replays.duplicates, 1);
  assert.equal(t.replays.conflicts, 1);
});

test('the fleet table starts with one line per host by fault kind', () => {
  const t = new FleetTotals();
  t.add(
    batch('h1', 1, [
      [0x10, 5, 9],
      [0x10, 5, 9],
      [0x12, 5, 9],
      [0x13, 6, 0],
      [0x04, 6, 0],
    ]),
  );
  t.add(batch('h2', 1, [[0x12, 5, 9]], 7));
  const lines = formatFleetTable(t, 2).split('\n');
  assert.equal(lines[0], 'fleet: 2 hosts, 6 events, 7 lost, 0 replayed batches dropped');
  assert.deepEqual(lines[2].split(/\s+/), ['h1', '5', '2', '1', '1', '1', '0']);
  assert.deepEqual(lines[3].split(/\s+/), ['h2', '1', '0', '1', '0', '0', '7']);
  assert.equal(lines.at(-2), '... 3 more rows');
});
