// The segment spool on disk: reopen, rotation, deletion, the budget and the file bound, and
// recovery from what a crash leaves (a copy of the directory taken while the spool is open is
// what kill -9 at that moment would leave: every completed write is in the page cache).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32, tableCrc32 } from '../../agent/src/spool/crc32';
import { RECORD_HEADER_BYTES } from '../../agent/src/spool/segment-file';
import { SegmentSpool, type SegmentSpoolOptions } from '../../agent/src/spool/segment-spool';
import { type Losses, losses, type SpoolEntry } from '../../agent/src/spool/spool';
import { writeMeta } from '../../agent/src/spool/spool-meta';
import { encodeBatch } from '../../proto/batch-codec';
import { EventBlockBuilder } from '../../proto/event-block';
import { modelBatch } from '../support/batches';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'segment-spool-'));
  dirs.push(d);
  return d;
}

/** The directory as a kill -9 now would leave it. */
function crashCopy(dir: string): string {
  const copy = tempDir();
  cpSync(dir, copy, { recursive: true });
  return copy;
}

function payload(sequence: number, size: number): Uint8Array {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (sequence * 31 + i) & 0xff;
  return b;
}

function entry(sequence: number, size = 100, events = sequence * 10, dropped = 0): SpoolEntry {
  return {
    sequence,
    bytes: payload(sequence, size),
    events,
    sourceOffset: sequence * 1000,
    reports: losses({ full: dropped }),
  };
}

// Long meta flush: nothing is persisted behind a test's back unless it says so.
const open = (dir: string, o: Partial<SegmentSpoolOptions> = {}) =>
  SegmentSpool.open({ dir, budgetBytes: 1 << 20, segmentBytes: 1 << 20, metaFlushMs: 60_000, ...o });

const seqs = (s: SegmentSpool) => s.pending().map((e) => e.sequence);
const segmentFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.seg'));

function assertPayloads(s: SegmentSpool): void {
  for (const e of s.pending())
    assert.ok(
      Buffer.from(e.bytes).equals(Buffer.from(payload(e.sequence, e.bytes.length))),
      `payload ${e.sequence}`,
    );
}

test('crc32: the table version equals zlib, chained or not', () => {
  for (const n of [0, 1, 7, 48, 1000, 4096]) {
    const a = randomBytes(n);
    const b = randomBytes(33);
    assert.equal(tableCrc32(a), crc32(a));
    assert.equal(tableCrc32(b, tableCrc32(a)), crc32(Buffer.concat([a, b])));
  }
  assert.equal(tableCrc32(Buffer.from('123456789')), 0xcbf43926);
});

test('a new directory gets a new epoch, kept across reopens', async () => {
  const dir = join(tempDir(), 'nested', 'spool');
  const a = await open(dir);
  assert.ok(Number.isSafeInteger(a.epoch) && a.epoch > 0);
  await a.append(entry(1));
  await a.close();
  const b = await open(dir);
  assert.equal(b.epoch, a.epoch);
  await b.close();
  const c = await open(crashCopy(dir));
  assert.equal(c.epoch, a.epoch, 'the epoch is in the directory');
  await c.close();
  const d = await open(tempDir());
  assert.notEqual(d.epoch, a.epoch);
  assert.equal(d.nextSequence(), 1);
  await d.close();
});

test('append, ack out of order, close, reopen: pending, sequence, offset and payloads survive', async () => {
  const dir = tempDir();
  const a = await open(dir);
  for (let seq = 1; seq <= 5; seq++) await a.append(entry(seq));
  a.ack(4);
  a.ack(2);
  await a.close();
  await assert.rejects(a.append(entry(6)), /closed/);
  const b = await open(dir, { memoryBytes: 0 });
  assert.deepEqual(seqs(b), [1, 3, 5]);
  assert.equal(b.nextSequence(), 6);
  assert.equal(b.sourceOffset(), 5000);
  assert.equal(b.bytes(), 300);
  assertPayloads(b);
  assert.deepEqual(
    b.pending().map((e) => [e.events, e.sourceOffset, e.reports.full]),
    [
      [10, 1000, 0],
      [30, 3000, 0],
      [50, 5000, 0],
    ],
  );
  await assert.rejects(b.append(entry(5)), /expected sequence 6, got 5/);
  await b.append(entry(6));
  await b.close();
});

test('acks persisted by the meta flush are not resent after a crash; later ones are', async () => {
  const dir = tempDir();
  const s = await open(dir, { metaFlushMs: 20 });
  for (let seq = 1; seq <= 6; seq++) await s.append(entry(seq));
  s.ack(5);
  s.ack(3); // out of order: 1, 2, 4, 6 still pending
  await sleep(150);
  s.ack(2);
  const crashed = await open(crashCopy(dir));
  assert.deepEqual(seqs(crashed), [1, 2, 4, 6], 'ack of 2 was not persisted yet: resent');
  await crashed.close();
  await s.flush();
  const flushed = await open(crashCopy(dir));
  assert.deepEqual(seqs(flushed), [1, 4, 6]);
  await flushed.close();
  await s.close();
});

test('rotation: a new file at segmentBytes; files of acknowledged batches go, the current one too', async () => {
  const dir = tempDir();
  const recordBytes = RECORD_HEADER_BYTES + 100;
  const s = await open(dir, { segmentBytes: 3 * recordBytes });
  for (let seq = 1; seq <= 7; seq++) await s.append(entry(seq));
  assert.deepEqual(segmentFiles(dir), [
    '0000000000000001.seg',
    '0000000000000004.seg',
    '0000000000000007.seg',
  ]);
  assert.equal(s.diskBytes(), 7 * recordBytes);
  for (const seq of [2, 3, 1]) s.ack(seq);
  await s.flush();
  assert.deepEqual(segmentFiles(dir), ['0000000000000004.seg', '0000000000000007.seg']);
  for (const seq of [7, 4, 5, 6]) s.ack(seq);
  await s.flush();
  assert.deepEqual(segmentFiles(dir), [], 'a drained spool gives its space back');
  assert.equal(s.diskBytes(), 0);
  await s.append(entry(8));
  assert.deepEqual(segmentFiles(dir), ['0000000000000008.seg']);
  s.ack(8);
  await s.close();
  const r = await open(dir);
  assert.deepEqual(seqs(r), []);
  assert.equal(r.nextSequence(), 9);
  assert.equal(r.sourceOffset(), 8000, 'from the meta: the last record is acknowledged and gone');
  assert.deepEqual(r.owed(), losses(), 'deleted acknowledged files are no loss');
  await r.close();
});

test('budget: the oldest batches are dropped, their events owed, and the debt survives a crash', async () => {
  const dir = tempDir();
  const s = await open(dir, { budgetBytes: 250 });
  for (let seq = 1; seq <= 4; seq++) await s.append(entry(seq));
  assert.deepEqual(seqs(s), [3, 4]);
  assert.equal(s.owed().full, 30);
  assert.equal(s.stats.droppedBatches, 2);
  const crashed = await open(crashCopy(dir), { budgetBytes: 250 });
  assert.deepEqual(seqs(crashed), [3, 4]);
  assert.equal(crashed.owed().full, 30, 'drops are persisted before append resolves');
  await crashed.close();
  await s.close();
});

test('a drop count is reported exactly once when the process dies right after the reporting append', async () => {
  const dir = tempDir();
  const s = await open(dir, { budgetBytes: 250 });
  for (let seq = 1; seq <= 3; seq++) await s.append(entry(seq));
  assert.equal(s.owed().full, 10);
  s.ack(2);
  s.ack(3);
  await s.append(entry(4, 100, 40, 10)); // reports the 10; no drop, so no meta write
  const crashed = await open(crashCopy(dir), { budgetBytes: 250 });
  assert.equal(crashed.owed().full, 0);
  assert.equal(crashed.nextSequence(), 5);
  await assert.rejects(crashed.append(entry(5, 10, 1, 1)), /only \{"full":0,/);
  await crashed.close();
  // The same after a second crash once the meta has caught up.
  await s.flush();
  const again = await open(crashCopy(dir), { budgetBytes: 250 });
  assert.equal(again.owed().full, 0);
  await again.close();
  await s.close();
});

/** What a crash leaves after batches 1..5 were appended to one segment (the meta predates them). */
async function fiveBatches(): Promise<{ dir: string; file: string }> {
  const s = await open(tempDir());
  for (let seq = 1; seq <= 5; seq++) await s.append(entry(seq));
  const dir = crashCopy(s.dir);
  await s.close();
  return { dir, file: join(dir, segmentFiles(dir)[0]) };
}

test('torn tail: a record cut short is removed and the sequence continues after the last whole one', async () => {
  const { dir, file } = await fiveBatches();
  const size = statSync(file).size;
  truncateSync(file, size - 30);
  const s = await open(dir);
  assert.deepEqual(seqs(s), [1, 2, 3, 4]);
  assert.equal(s.nextSequence(), 5);
  assert.equal(s.sourceOffset(), 4000);
  assert.equal(s.stats.truncatedSegments, 1);
  assert.equal(s.stats.truncatedBytes, RECORD_HEADER_BYTES + 100 - 30);
  assert.equal(statSync(file).size, 4 * (RECORD_HEADER_BYTES + 100));
  await s.append(entry(5));
  await s.close();
  const r = await open(dir);
  assert.deepEqual(seqs(r), [1, 2, 3, 4, 5]);
  assert.equal(r.stats.truncatedSegments, 0);
  assertPayloads(r);
  await r.close();
});

test('torn header: a tail shorter than a header is removed', async () => {
  const { dir, file } = await fiveBatches();
  truncateSync(file, 4 * (RECORD_HEADER_BYTES + 100) + 10);
  const s = await open(dir);
  assert.equal(s.nextSequence(), 5);
  await s.close();
});

/** A closed spool of records 1-5 in one file, and that file's bytes. */
async function closedSpoolOfFive(): Promise<{ dir: string; file: string; b: Buffer }> {
  const w = await open(tempDir());
  for (let seq = 1; seq <= 5; seq++) await w.append(entry(seq));
  await w.close();
  const file = join(w.dir, segmentFiles(w.dir)[0]);
  return { dir: w.dir, file, b: readFileSync(file) };
}

test('a flipped byte costs only its record, counted as lost (SPOOL_CORRUPT) exactly once', async () => {
  for (const [at, expect, lost] of [
    [4 * (RECORD_HEADER_BYTES + 100) + RECORD_HEADER_BYTES + 50, [1, 2, 3, 4], 50], // payload of 5
    [2 * (RECORD_HEADER_BYTES + 100) + 20, [1, 2, 4, 5], 30], // header (sequence field) of 3
    [RECORD_HEADER_BYTES + 100 + RECORD_HEADER_BYTES + 7, [1, 3, 4, 5], 20], // payload of 2
  ] as const) {
    const { dir, file, b } = await closedSpoolOfFive();
    b[at] ^= 0x01;
    writeFileSync(file, b);
    const s = await open(dir);
    assert.deepEqual(seqs(s), expect);
    assert.equal(s.nextSequence(), 6);
    assert.deepEqual(s.owed(), losses({ corrupt: lost }));
    assert.equal(s.stats.corruptEvents, lost);
    assertPayloads(s);
    await s.close();
    const again = await open(dir);
    assert.deepEqual(again.owed(), losses({ corrupt: lost }), 'owed once, not counted again');
    assert.equal(again.stats.corruptEvents, 0);
    await again.close();
  }
});

test('replaceDamaged: a damaged record found on open stays pending and is replaced when sent, again after a restart', async () => {
  const { dir, file, b } = await closedSpoolOfFive();
  const payloadOf = (seq: number) => seq * RECORD_HEADER_BYTES + (seq - 1) * 100;
  b[payloadOf(2) + 9] ^= 0x01; // an intact record follows it: kept
  b[payloadOf(5) + 9] ^= 0x01; // the file's last record: cut, owed as before
  writeFileSync(file, b);
  const replacement = (sequence: number, lost: Losses) => Buffer.from(`${sequence}:${JSON.stringify(lost)}`);

  const s = await open(dir, { replaceDamaged: true });
  s.replaceDamagedWith(replacement);
  assert.deepEqual(seqs(s), [1, 2, 3, 4]);
  assert.deepEqual(s.owed(), losses({ corrupt: 50 }));
  assert.deepEqual([s.stats.corruptRecords, s.stats.corruptEvents], [2, 50]);
  const sent = s.entry(2)?.bytes;
  assert.equal(Buffer.from(sent ?? []).toString(), `2:${JSON.stringify(losses({ corrupt: 20 }))}`);
  assert.deepEqual(s.owed(), losses({ corrupt: 50 }), 'reported by the replacement');
  await s.close(); // stopped before the replacement's ack

  const again = await open(dir, { replaceDamaged: true });
  again.replaceDamagedWith(replacement);
  assert.deepEqual(seqs(again), [1, 2, 3, 4]);
  assert.deepEqual(again.owed(), losses({ corrupt: 50 }), 'record 5 owed once, record 2 not owed');
  assert.deepEqual(Buffer.from(again.entry(2)?.bytes ?? []), Buffer.from(sent ?? []), 'the same replacement');
  again.ack(2);
  await again.close();

  const acked = await open(dir, { replaceDamaged: true });
  assert.deepEqual(seqs(acked), [1, 3, 4]);
  assert.deepEqual([acked.stats.corruptRecords, acked.owed()], [0, losses({ corrupt: 50 })]);
  await acked.close();
});

test('meta lost: records missing between two files are owed when damage shows elsewhere, else taken for a deleted file', async () => {
  const record = RECORD_HEADER_BYTES + 100;
  for (const damageElsewhere of [false, true]) {
    const w = await open(tempDir(), { segmentBytes: 3 * record });
    // Real batches of the spool's epoch, each 100 bytes: the rebuilt meta reads the epoch from them.
    const batch = (sequence: number) => {
      const b = encodeBatch(
        modelBatch('h', sequence, new EventBlockBuilder(1).finish(), { epoch: w.epoch, sourceEvent: '' }),
      );
      return encodeBatch(
        modelBatch('h', sequence, new EventBlockBuilder(1).finish(), {
          epoch: w.epoch,
          sourceEvent: 'x'.repeat(100 - b.length - 2),
        }),
      );
    };
    for (let seq = 1; seq <= 9; seq++) await w.append({ ...entry(seq), bytes: batch(seq) }); // files of 1-3, 4-6, 7-9
    await w.close();
    const dir = w.dir;
    const files = segmentFiles(dir).sort();
    assert.deepEqual(
      files.map((f) => statSync(join(dir, f)).size),
      [3 * record, 3 * record, 3 * record],
    );
    // Cut at a record boundary: records 5 and 6 are gone and the file ends cleanly, as the file
    // before a deleted one would.
    truncateSync(join(dir, files[1]), record);
    if (damageElsewhere) {
      const b = readFileSync(join(dir, files[2]));
      b[record + RECORD_HEADER_BYTES + 9] ^= 0x01; // record 8's payload
      writeFileSync(join(dir, files[2]), b);
    }
    rmSync(join(dir, 'spool.meta'));
    const s = await open(dir);
    if (damageElsewhere) {
      assert.deepEqual(seqs(s), [1, 2, 3, 4, 7, 9]);
      assert.deepEqual(s.owed(), losses({ corrupt: 80 + 50 + 60 }), 'record 8, and 5 and 6 as lost');
      assert.equal(s.stats.gapEvents, 0);
    } else {
      assert.deepEqual(seqs(s), [1, 2, 3, 4, 7, 8, 9]);
      assert.deepEqual(s.owed(), losses(), 'nothing else damaged: taken for a deleted file');
      assert.equal(s.stats.gapEvents, 50 + 60, 'and said so');
    }
    await s.close();
  }
});

test('records lost after the meta saw them: the sequence continues above what the meta saw', async () => {
  const dir = tempDir();
  const s = await open(dir);
  for (let seq = 1; seq <= 5; seq++) await s.append(entry(seq));
  await s.close(); // the meta now says 5 was durable
  const file = join(dir, segmentFiles(dir)[0]);
  truncateSync(file, statSync(file).size - 30);
  const r = await open(dir);
  assert.deepEqual(seqs(r), [1, 2, 3, 4]);
  assert.equal(r.nextSequence(), 6, 'batch 5 may have been sent: its number is not reused');
  assert.equal(r.sourceOffset(), 5000);
  await r.close();
});

test('garbage after the last record and an empty file from an interrupted rotation are removed', async () => {
  const { dir, file } = await fiveBatches();
  writeFileSync(file, Buffer.alloc(4096), { flag: 'a' }); // size grew, data never written
  writeFileSync(join(dir, '0000000000000006.seg'), '');
  writeFileSync(join(dir, 'spool.meta.tmp'), '{"half');
  const s = await open(dir);
  assert.deepEqual(seqs(s), [1, 2, 3, 4, 5]);
  assert.equal(s.nextSequence(), 6);
  assert.deepEqual(segmentFiles(dir), ['0000000000000001.seg']);
  assert.ok(!readdirSync(dir).includes('spool.meta.tmp'));
  await s.close();
});

test('a torn tail after a crash continues after the last durable record, not the meta', async () => {
  const dir = tempDir();
  const s = await open(dir);
  for (let seq = 1; seq <= 3; seq++) await s.append(entry(seq));
  const copy = crashCopy(dir); // meta still says nothing was appended
  const file = join(copy, segmentFiles(copy)[0]);
  truncateSync(file, statSync(file).size - 1);
  const r = await open(copy);
  assert.deepEqual(seqs(r), [1, 2]);
  assert.equal(r.nextSequence(), 3);
  assert.equal(r.sourceOffset(), 2000);
  await r.close();
  await s.close();
});

test('files stay within budget + one segment when old batches stay unacknowledged', async () => {
  const dir = tempDir();
  const recordBytes = RECORD_HEADER_BYTES + 100;
  const segmentBytes = 4 * recordBytes;
  const budgetBytes = 1000;
  const s = await open(dir, { budgetBytes, segmentBytes });
  let dropped = 0;
  for (let seq = 1; seq <= 60; seq++) {
    await s.append(entry(seq, 100, 1));
    // The collector acknowledges all but the first batch of every segment.
    if (seq % 4 !== 1) s.ack(seq);
    await s.flush();
    const files = segmentFiles(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    assert.equal(files, s.diskBytes());
    assert.ok(files <= budgetBytes + segmentBytes, `after ${seq}`);
    dropped = s.stats.droppedForDisk;
  }
  assert.ok(s.bytes() <= budgetBytes);
  assert.ok(dropped > 0, 'the file bound dropped batches the payload budget would have kept');
  assert.equal(s.owed().full, s.stats.droppedBatches);
  await s.close();
});

test('fsync interval: sequences leased ahead are skipped after a reboot, not after a process crash', async () => {
  const dir = tempDir();
  const s = await open(dir, { fsync: 'interval', fsyncIntervalMs: 10 });
  for (let seq = 1; seq <= 3; seq++) await s.append(entry(seq));
  const sameBoot = await open(crashCopy(dir), { fsync: 'interval' });
  assert.equal(sameBoot.nextSequence(), 4);
  assert.equal(sameBoot.stats.skippedSequences, 0);
  await sameBoot.close();

  const rebooted = crashCopy(dir);
  const metaFile = join(rebooted, 'spool.meta');
  const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  assert.equal(meta.leaseThrough, 256);
  await writeMeta(rebooted, { ...meta, bootId: 'another boot' }, false);
  const r = await open(rebooted, { fsync: 'interval' });
  assert.equal(r.nextSequence(), 257, 'numbers that may have been sent are not reused');
  assert.equal(r.stats.skippedSequences, 253);
  assert.deepEqual(seqs(r), [1, 2, 3]);
  await r.append(entry(257));
  await r.close();
  const again = await open(rebooted);
  assert.equal(again.nextSequence(), 258);
  await again.close();
  await s.close();

  // A clean close needs no skipping, whatever the boot.
  const clean = JSON.parse(readFileSync(join(dir, 'spool.meta'), 'utf8'));
  await writeMeta(dir, { ...clean, bootId: 'another boot' }, false);
  const c = await open(dir);
  assert.equal(c.nextSequence(), 4);
  await c.close();
});

test('payloads read back from disk are checked', async () => {
  const dir = tempDir();
  const s = await open(dir, { memoryBytes: 250 });
  for (let seq = 1; seq <= 4; seq++) await s.append(entry(seq));
  assertPayloads(s); // 1 and 2 from disk, 3 and 4 from memory
  const file = join(dir, segmentFiles(dir)[0]);
  const b = readFileSync(file);
  b[RECORD_HEADER_BYTES + 5] ^= 0xff;
  writeFileSync(file, b);
  assert.throws(() => s.pending()[0].bytes, /spool record 1 unreadable: payload CRC mismatch/);
  assert.equal(s.entry(1), undefined, 'the transport gets no damaged payload');
  assert.deepEqual(seqs(s), [2, 3, 4]);
  assert.deepEqual(s.owed(), losses({ corrupt: 10 }), 'batch 1 is owed as SPOOL_CORRUPT');
  await s.close();
});

test('a batch found damaged when read back is sent as a replacement that reports it lost', async () => {
  const dir = tempDir();
  const s = await open(dir, { memoryBytes: 0, budgetBytes: 200 });
  const built: Array<[number, Losses]> = [];
  s.replaceDamagedWith((sequence, lost) => {
    built.push([sequence, { ...lost }]);
    return Buffer.from(`replaces ${sequence}`);
  });
  await s.append(entry(1));
  await s.append(entry(2));
  await s.append(entry(3)); // drops 1: 10 owed
  await s.append(entry(4, 100, 40, 10)); // reports the 10, drops 2: 20 owed
  const noted: Losses[] = [];
  s.onLoss((l) => noted.push(l));
  const file = join(dir, segmentFiles(dir)[0]);
  const b = readFileSync(file);
  b[4 * RECORD_HEADER_BYTES + 3 * 100 + 7] ^= 0xff; // a payload byte of record 4
  writeFileSync(file, b);

  const r = s.entry(4);
  assert.ok(r);
  assert.equal(Buffer.from(r.bytes).toString(), 'replaces 4');
  assert.deepEqual([r.sequence, r.events, r.sourceOffset], [4, 0, 4000]);
  assert.deepEqual(built, [[4, losses({ corrupt: 40, full: 10 })]], 'its events and what it reported');
  assert.deepEqual(noted, [losses({ corrupt: 40 })], 'the loss counts now');
  assert.deepEqual(seqs(s), [3, 4], 'in the damaged batch place');
  assert.deepEqual([s.pendingEvents(), s.bytes()], [30, 100 + 10]);
  assert.deepEqual(s.owed(), losses({ full: 20 }), 'reported by the replacement, not owed');
  assert.equal(s.stats.replacedRecords, 1);
  assert.equal(s.entry(4), r, 'kept in memory: sent again as the same bytes');
  assert.equal(built.length, 1);

  // Dropped to make room, the replacement owes what it would have reported.
  await s.append(entry(5)); // drops 3
  await s.append(entry(6)); // drops the replacement
  assert.deepEqual(seqs(s), [5, 6]);
  assert.deepEqual(s.owed(), losses({ full: 20 + 30 + 10, corrupt: 40 }));
  await s.close();
});

test('an append issued before the previous one resolved takes the next number and reports correctly', async () => {
  const dir = tempDir();
  const s = await open(dir, { budgetBytes: 150 });
  await s.append(entry(1));
  await s.append(entry(2)); // drops 1: 10 owed
  const first = s.append(entry(3, 100, 30, 4));
  assert.equal(s.nextSequence(), 4, 'numbered at once, as the pipeline reads it for the next batch');
  assert.equal(s.owed().full, 6);
  const second = s.append(entry(4, 100, 40, 6));
  await assert.rejects(s.append(entry(4)), /expected sequence 5, got 4/);
  await Promise.all([first, second]);
  assert.deepEqual(seqs(s), [4]);
  assert.equal(s.owed().full, 20 + 4 + 30, 'batches 2 and 3 dropped, with the report 3 carried');
  await s.close();
  const r = await open(dir, { budgetBytes: 150 });
  assert.equal(r.owed().full, 54);
  assert.equal(r.nextSequence(), 5);
  await r.close();
});

test('invalid options are refused', async () => {
  await assert.rejects(open(tempDir(), { budgetBytes: 0 }), /budgetBytes/);
  await assert.rejects(open(tempDir(), { fsync: 'sometimes' as 'never' }), /fsync/);
});
