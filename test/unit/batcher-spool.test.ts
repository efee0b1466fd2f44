import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Batcher, type ClosedBatch } from '../../agent/src/batch/batcher';
import { MemorySpool } from '../../agent/src/spool/memory-spool';
import { losses } from '../../agent/src/spool/spool';
import { EventBlockBuilder, word64 } from '../../proto/event-block';
import { LossReason } from '../../proto/index';

function block(from: number, n: number) {
  const b = new EventBlockBuilder();
  for (let i = 0; i < n; i++) b.push(BigInt(from + i), 's', [BigInt(from + i), 0n, 0n, 0n]);
  return b.finish();
}

test('batcher closes on size, keeps order, and hands every event on exactly once', async () => {
  const out: ClosedBatch[] = [];
  const b = new Batcher(
    { maxEvents: 100, maxDelayMs: 60_000 },
    async (x) => void out.push(x),
    (e) => assert.fail(e),
  );
  await b.add('e', block(0, 250));
  await b.add('e', block(250, 30));
  assert.deepEqual(
    out.map((x) => x.events.count),
    [100, 100],
  );
  await b.flush();
  b.stop();
  assert.deepEqual(
    out.map((x) => x.events.count),
    [100, 100, 80],
  );
  const seen = out.flatMap((x) =>
    Array.from({ length: x.events.count }, (_, i) => Number(word64(x.events, i, 0))),
  );
  assert.deepEqual(
    seen,
    Array.from({ length: 280 }, (_, i) => i),
  );
});

test('batcher closes on time, and carries losses even without events', async () => {
  const out: ClosedBatch[] = [];
  const b = new Batcher(
    { maxEvents: 1000, maxDelayMs: 30 },
    async (x) => void out.push(x),
    (e) => assert.fail(e),
  );
  await b.add('e', block(0, 5), new Map([[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 2]]));
  await b.add('other', block(0, 0), new Map([[LossReason.LOSS_REASON_MALFORMED_RECORD, 1]]));
  await sleep(120);
  b.stop();
  assert.equal(out.length, 2);
  const e = out.find((x) => x.event === 'e')!;
  assert.equal(e.events.count, 5);
  assert.equal(e.lost.get(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN), 2);
  assert.equal(out.find((x) => x.event === 'other')!.lost.get(LossReason.LOSS_REASON_MALFORMED_RECORD), 1);
});

test('memory spool drops the oldest batches over budget and owes their events until reported', async () => {
  const s = new MemorySpool(250, 5);
  const entry = (sequence: number, events: number, dropped = 0) => ({
    sequence,
    bytes: new Uint8Array(100),
    events,
    sourceOffset: sequence * 100,
    reports: losses({ full: dropped }),
  });
  for (let seq = 1; seq <= 4; seq++) await s.append(entry(seq, seq * 10));
  assert.equal(s.epoch, 5);
  assert.deepEqual(
    s.pending().map((e) => e.sequence),
    [3, 4],
  );
  assert.equal(s.owed().full, 30);
  assert.equal(s.sourceOffset(), 400);
  s.ack(3);
  s.ack(3);
  assert.deepEqual(
    s.pending().map((e) => e.sequence),
    [4],
  );
  assert.equal(s.bytes(), 100);
  await s.append(entry(5, 1, 30));
  assert.equal(s.owed().full, 0);
  // A dropped batch that carried a loss report owes that report again.
  const t = new MemorySpool(150, 1);
  await t.append(entry(1, 10));
  await t.append(entry(2, 20)); // drops 1
  await t.append(entry(3, 5, 10)); // reports 10, drops 2
  assert.equal(t.owed().full, 20);
  await t.append(entry(4, 1, 20)); // drops 3 (5 events + its report of 10)
  assert.equal(t.owed().full, 15);
  await assert.rejects(s.append(entry(9, 1)), /expected sequence 6, got 9/);
  await assert.rejects(
    s.append(entry(6, 1, 1)),
    /reports \{"full":1,"corrupt":0,"writeFailed":0\} lost events, only \{"full":0,/,
  );
});
