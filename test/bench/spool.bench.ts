// Segment spool throughput and recovery time, as `key: value` lines (medians of RUNS runs after a
// warm-up run), in a temporary directory on the default tmpdir's file system:
//   append_<fsync>_per_s, append_<fsync>_MBps  4 KiB batches, each acknowledged after its append
//                                              (steady state: files rotate and are deleted)
//   append_always_full_per_s                   spool full, nothing acknowledged: each append drops one
//   reopen_<N>MiB_ms                           open() of a spool holding N MiB of unacknowledged
//                                              batches (every record read and CRC-checked)
//   lazy_read_MBps                             reading those payloads back when sent (after reopen)
//   pending_<n>_us                             one pending() call with n batches held
//   node dist/test/bench/spool.bench.js [reopen-MiB]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FsyncMode, SegmentSpool } from '../../agent/src/spool/segment-spool';
import { losses } from '../../agent/src/spool/spool';
import { report } from './bench-util';

const RUNS = 5;
const BATCH_BYTES = 4096;
const REOPEN_MIB = Number(process.argv[2] ?? 64);
const scratch = mkdtempSync(join(tmpdir(), 'spool-bench-'));

async function median(fn: () => Promise<number>): Promise<number> {
  await fn();
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) xs.push(await fn());
  xs.sort((a, b) => a - b);
  return xs[xs.length >> 1];
}

let dirs = 0;
const freshDir = () => join(scratch, String(dirs++));

function payload(seq: number): Uint8Array {
  const b = Buffer.alloc(BATCH_BYTES);
  b.writeUInt32LE(seq, 0);
  return b;
}

const batch = (seq: number, dropped: number) => ({
  sequence: seq,
  bytes: payload(seq),
  events: 100,
  sourceOffset: seq * 100,
  reports: losses({ full: dropped }),
});

/** Appends/s of `n` batches, each acknowledged once appended unless `full` (then each drops one). */
async function appendRate(fsync: FsyncMode, n: number, full = false): Promise<number> {
  const dir = freshDir();
  const budgetBytes = full ? 64 * BATCH_BYTES : 256 << 20;
  const segmentBytes = full ? 16 * BATCH_BYTES : undefined;
  const s = await SegmentSpool.open({ dir, budgetBytes, segmentBytes, fsync, fsyncIntervalMs: 200 });
  if (full) for (let i = 0; i < 64; i++) await s.append(batch(s.nextSequence(), 0));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const seq = s.nextSequence();
    await s.append(batch(seq, s.owed().full));
    if (!full) s.ack(seq);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await s.close();
  rmSync(dir, { recursive: true, force: true });
  return n / seconds;
}

async function main(): Promise<void> {
  for (const [mode, n] of [
    ['always', 2000],
    ['interval', 20_000],
    ['never', 20_000],
  ] as const) {
    const rate = await median(() => appendRate(mode, n));
    report(`append_${mode}_per_s`, rate);
    report(`append_${mode}_MBps`, (rate * BATCH_BYTES) / 1e6, 1);
  }
  // Spool full (collector away): every append also drops the oldest batch and persists that.
  report('append_always_full_per_s', await median(() => appendRate('always', 1000, true)));

  const dir = freshDir();
  const batches = Math.floor((REOPEN_MIB << 20) / BATCH_BYTES);
  const w = await SegmentSpool.open({ dir, budgetBytes: (REOPEN_MIB + 1) << 20, fsync: 'never' });
  for (let seq = 1; seq <= batches; seq++) await w.append(batch(seq, 0));
  await w.close();
  const open = () => SegmentSpool.open({ dir, budgetBytes: (REOPEN_MIB + 1) << 20, fsync: 'never' });
  const reopenMs = await median(async () => {
    const t0 = process.hrtime.bigint();
    const s = await open();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    await s.close();
    return ms;
  });
  report(`reopen_${REOPEN_MIB}MiB_ms`, reopenMs, 1);

  const s = await open();
  const readMBps = await median(async () => {
    const t0 = process.hrtime.bigint();
    let bytes = 0;
    for (const e of s.pending()) bytes += e.bytes.length;
    return bytes / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
  });
  report('lazy_read_MBps', readMBps, 1);
  const pendingUs = await median(async () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 10; i++) s.pending();
    return Number(process.hrtime.bigint() - t0) / 1e3 / 10;
  });
  report(`pending_${s.pending().length}_us`, pendingUs, 1);
  await s.close();
}

main()
  .catch((err: Error) => {
    process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(scratch, { recursive: true, force: true }));
