// What the collector and the accounting accept must be counted exactly: 64-bit epochs and
// sequences beyond 2^53, loss counts at and beyond their bound, unknown loss reasons, event
// timestamps far from the collector's clock, and a reused (agent, epoch, sequence) with other
// content. Pure functions and the accounting state; test/integration/accounting-exact.test.ts
// walks the same values through a real collector, broker and aggregator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Long from 'long';
import { AccountState } from '../../collector/accounting/aggregate';
import { decodeCheckpoint, encodeCheckpoint } from '../../collector/accounting/checkpoint';
import { fromCheckpoint, toCheckpoint } from '../../collector/accounting/checkpoint-codec';
import { RECENT_DIGESTS, ReplayFilter } from '../../collector/accounting/dedup';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { hostRow } from '../../collector/accounting/rows';
import { openWindowRecords } from '../../collector/accounting/window-close';
import { WIDTHS_NS } from '../../collector/accounting/windows';
import {
  type Batch,
  BatchDecodeError,
  decodeBatch,
  encodeBatch,
  MAX_LOST_PER_REASON,
} from '../../proto/batch-codec';
import { type EventBlock, EventBlockBuilder } from '../../proto/event-block';
import { LossReason, v1 } from '../../proto/index';
import { modelBatch } from '../support/batches';

const P53 = 2n ** 53n;
const M64 = 2n ** 64n - 1n;
const S = 1_000_000_000n;
/** The collector's clock in these tests, and a normal event time just before it. */
const NOW = 1_760_000_000n * S;
const YEAR_2255 = 8_990_000_000n * S;

function events(n: number, t0: bigint, sid = 5): EventBlock {
  const b = new EventBlockBuilder();
  for (let i = 0; i < n; i++) {
    b.push(t0 + BigInt(i) * 1_000_000n, 'smmu0', [0x10n | (BigInt(sid) << 32n), 0n, BigInt(i) << 12n, 0n]);
  }
  return b.finish();
}

/** A batch with losses and no events, written by the generated encoder (any uint64 value). */
function lossOnly(epoch: bigint, sequence: bigint, lost: Array<[number, bigint]>): Uint8Array {
  const u = (v: bigint) => Long.fromString(v.toString(), true);
  return v1.EventBatch.encode({
    agent: { host: 'h', agent_id: 'h-agent', epoch: u(epoch) },
    sequence: u(sequence),
    lost: lost.map(([reason, count]) => ({ reason, count: u(count) })),
  }).finish();
}

function rejection(bytes: Uint8Array): string {
  try {
    decodeBatch(bytes);
  } catch (err) {
    assert.ok(err instanceof BatchDecodeError, String(err));
    return `${err.reason}: ${err.message}`;
  }
  return 'accepted';
}

function restored(st: AccountState): AccountState {
  return fromCheckpoint(decodeCheckpoint(encodeCheckpoint(toCheckpoint(st))), st.opts);
}

test('epochs and sequences at 2^53 - 1, 2^53 + 1 and 2^64 - 1 decode exactly', () => {
  for (const [epoch, sequence] of [
    [P53 - 1n, 1n],
    [P53 + 1n, P53 + 1n],
    [M64, M64],
  ]) {
    const b = decodeBatch(encodeBatch(modelBatch('h', 1, events(2, NOW), { epoch, sequence })));
    assert.equal(BigInt(b.epoch), epoch);
    assert.equal(BigInt(b.sequence), sequence);
    // Numbers where they are exact, bigints only above: existing readers see what they saw.
    assert.equal(typeof b.epoch, epoch < P53 ? 'number' : 'bigint');
  }
});

test('losses: bounded per batch and reason, unknown reasons kept up to 255', () => {
  assert.equal(rejection(lossOnly(1n, 1n, [[1, BigInt(MAX_LOST_PER_REASON)]])), 'accepted');
  assert.equal(
    rejection(lossOnly(1n, 1n, [[1, 2n ** 63n]])),
    `lost_out_of_range: ${2n ** 63n} events lost for reason 1 exceed the limit of 4294967295 per batch`,
  );
  assert.match(rejection(lossOnly(1n, 1n, [[3, M64]])), /^lost_out_of_range: 18446744073709551615 /);
  // Two entries of one reason are summed, and the sum is bounded too.
  assert.match(
    rejection(
      lossOnly(1n, 1n, [
        [3, BigInt(MAX_LOST_PER_REASON)],
        [3, 1n],
      ]),
    ),
    /^lost_out_of_range: 1 events lost for reason 3 exceed/,
  );
  assert.deepEqual([...decodeBatch(lossOnly(1n, 1n, [[77, 5n]])).lost], [[77, 5]]);
  assert.equal(rejection(lossOnly(1n, 1n, [[255, 1n]])), 'accepted');
  assert.equal(
    rejection(lossOnly(1n, 1n, [[256, 1n]])),
    'loss_reason_out_of_range: loss reason 256 outside 0..255',
  );
  // An enum value beyond int32 reads back negative: refused as well.
  assert.match(rejection(lossOnly(1n, 1n, [[-2, 1n]])), /^loss_reason_out_of_range: loss reason -2 /);
});

test('lost counts sum exactly beyond 2^32 across a checkpoint; unknown reasons labelled', () => {
  const st = new AccountState();
  const max = MAX_LOST_PER_REASON;
  for (let seq = 1; seq <= 3; seq++) {
    st.add(decodeBatch(lossOnly(1n, BigInt(seq), [[LossReason.LOSS_REASON_SPOOL_FULL, BigInt(max)]])));
  }
  st.add(decodeBatch(lossOnly(1n, 4n, [[77, 7n]])));
  const again = restored(st);
  const row = hostRow(again, again.findHost('h')!);
  assert.deepEqual(row.lost, { LOSS_REASON_SPOOL_FULL: 3 * max, LOSS_REASON_UNKNOWN_77: 7 });
  assert.equal(row.lostEvents, 3 * max + 7);
});

test('agent epochs 2^60 + 1 and 2^60 + 2 are two agents; 2^64 - 1 stays one after a restore', () => {
  const f = new ReplayFilter();
  assert.equal(f.accept('a', 2n ** 60n + 1n, 1), true);
  assert.equal(f.accept('a', 2n ** 60n + 2n, 1), true, 'a different epoch');
  assert.equal(f.accept('a', M64, M64), true);
  assert.equal(f.accept('a', M64, M64 - 1n), true);
  assert.equal(f.accept('a', P53 + 1n, P53 + 1n), true);
  assert.equal(f.accept('a', P53 + 1n, P53 + 2n), true, 'sequences beyond 2^53 are told apart');

  const st = new AccountState();
  const b = decodeBatch(encodeBatch(modelBatch('h', 1, events(3, NOW), { epoch: M64, sequence: M64 })));
  assert.equal(st.add(b), true);
  const again = restored(st);
  assert.equal(again.add(b), false, 'a replay after the restore');
  const row = hostRow(again, again.findHost('h')!);
  assert.deepEqual([row.batches, row.events, row.replayedBatches], [1, 3, 1]);
});

test('a reused (agent, epoch, sequence) with other content is a conflict, also after a restore', () => {
  const st = new AccountState();
  const first = modelBatch('h', 1, events(4, NOW));
  const other = modelBatch('h', 1, events(6, NOW, 9));
  assert.equal(st.offer(first), 'new');
  assert.equal(st.offer(first), 'replay');
  assert.equal(st.offer(other), 'conflict');
  const again = restored(st);
  assert.equal(again.offer(other), 'conflict', 'the digest is in the checkpoint');
  assert.equal(again.offer(first), 'replay');
  const row = hostRow(again, again.findHost('h')!);
  assert.deepEqual(
    [row.batches, row.events, row.replayedBatches, row.conflictingBatches, row.conflictingEvents],
    [1, 4, 2, 2, 12],
  );
  assert.equal(again.replays.conflicts, 2);
});

test('a damaged batch and its replacement count once, whichever comes first, also after a restore', () => {
  const original = modelBatch('h', 2, events(4, NOW), {
    lost: new Map([[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 3]]),
  });
  // What the agent sends for batch 2 once its spool record is damaged: the 4 events and the 3
  // the batch reported, as losses.
  const replacement = modelBatch('h', 2, new EventBlockBuilder(1).finish(), {
    lost: new Map([
      [LossReason.LOSS_REASON_SPOOL_CORRUPT, 4],
      [LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 3],
    ]),
    createdUnixNs: 0n,
    replacesDamaged: true,
  });
  const counted = (st: AccountState) => {
    const row = hostRow(st, st.findHost('h')!);
    return [row.batches, row.events, row.lostEvents, row.replayedBatches, row.conflictingBatches];
  };

  const published = new AccountState();
  assert.equal(published.offer(original), 'new');
  assert.equal(published.offer(replacement), 'replay', 'the original reached Kafka: its events count');
  assert.deepEqual(counted(published), [1, 4, 3, 1, 0]);
  const again = restored(published);
  assert.equal(again.offer(replacement), 'replay');
  assert.deepEqual(counted(again), [1, 4, 3, 2, 0]);

  const replacedFirst = new AccountState();
  assert.equal(replacedFirst.offer(replacement), 'new');
  assert.equal(replacedFirst.offer(original), 'replay', 'counted as lost already: not counted again');
  assert.equal(replacedFirst.offer(replacement), 'replay');
  assert.deepEqual(counted(replacedFirst), [1, 0, 7, 2, 0]);
  assert.equal(restored(replacedFirst).offer(original), 'replay');

  // Without the flag the same bytes are another sender's batch under a used triple.
  const plain = new AccountState();
  plain.offer(original);
  assert.equal(plain.offer({ ...replacement, replacesDamaged: false }), 'conflict');
});

test(`content is compared for the latest ${RECENT_DIGESTS} sequences of an agent epoch`, () => {
  const f = new ReplayFilter(4096, 3);
  for (let s = 1; s <= 5; s++) f.offer('a', 1, s, BigInt(s));
  assert.equal(f.offer('a', 1, 5, 99n), 'conflict');
  assert.equal(f.offer('a', 1, 3, 99n), 'conflict');
  assert.equal(f.offer('a', 1, 2, 99n), 'replay', 'older than the remembered digests');
  assert.equal(f.snapshot()[0].recent.length, 3);
});

function hostOf(st: AccountState, name = 'h') {
  return hostRow(st, st.findHost(name)!);
}

for (const [what, bad] of [
  ['year 2255', YEAR_2255],
  ['before 1970', -5n * S],
] as const) {
  test(`an event timestamp of ${what} is held apart and does not make later events late`, () => {
    const st = new AccountState({ collectWindows: true });
    const t0 = NOW - 600n * S;
    const mixed = new EventBlockBuilder();
    mixed.push(t0, 'smmu0', [0x10n | (5n << 32n), 0n, 0n, 0n]);
    mixed.push(bad, 'smmu0', [0x12n | (5n << 32n), 0n, 0n, 0n]);
    st.add(modelBatch('h', 1, mixed.finish()), NOW);
    // 400 normal events in 4 batches, over 40 s of event time.
    for (let i = 0; i < 4; i++) st.add(modelBatch('h', 2 + i, events(100, t0 + BigInt(i) * 10n * S)), NOW);
    const row = hostOf(st);
    assert.deepEqual(row.late, { '10s': 0, '1m': 0 });
    assert.deepEqual([row.events, row.outOfRangeEvents, row.kinds.access], [402, 1, 1]);
    assert.equal(row.lastEventUnixNs, String(t0 + 30n * S + 99n * 1_000_000n));
    assert.equal(row.firstEventUnixNs, String(t0));
    // Every normal event is in a 10 s window (closed or open), the held-apart one in none.
    const closed = st.drainClosed().hosts.filter((w) => w.width === 0);
    const open = openWindowRecords(st.table, st.findHost('h')!, 0).map((w) => w.host);
    const inWindows = [...closed, ...open].reduce((s, w) => s + w.cells[0] + w.cells[1], 0);
    assert.equal(inWindows, 401);
    const again = restored(st);
    assert.equal(hostOf(again).outOfRangeEvents, 1);
    again.add(modelBatch('h', 6, events(10, t0 + 41n * S)), NOW);
    assert.deepEqual(hostOf(again).late, { '10s': 0, '1m': 0 }, 'still not late after a restore');
  });
}

test('events up to maxEventAheadNs ahead of the collector count normally; the one-shot totals too', () => {
  const ahead = BigInt(3600e9);
  const t = new FleetTotals({ maxEventAheadNs: Number(ahead) });
  t.add(modelBatch('h', 1, events(1, NOW + ahead)), NOW);
  t.add(modelBatch('h', 2, events(1, NOW + ahead + 1n)), NOW);
  const row = hostOf(t.state);
  assert.deepEqual([row.events, row.outOfRangeEvents], [2, 1]);
  assert.equal(row.lastEventUnixNs, String(NOW + ahead));
  // No clock to compare with (a batch fed directly): only times before 1970 are held apart.
  const u = new AccountState();
  u.add(modelBatch('h', 1, events(1, YEAR_2255)));
  assert.equal(hostOf(u).outOfRangeEvents, 0);
  assert.equal(WIDTHS_NS.length, 2);
});

test('a batch whose every event is held apart still counts its batch and losses', () => {
  const st = new AccountState({ collectWindows: true });
  const b: Batch = modelBatch('h', 1, events(3, YEAR_2255), {
    lost: new Map([[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 2]]),
  });
  assert.equal(st.add(b, NOW), true);
  const row = hostOf(st);
  assert.deepEqual(
    [row.batches, row.events, row.outOfRangeEvents, row.lostEvents, row.firstEventUnixNs],
    [1, 3, 3, 2, '0'],
  );
});
