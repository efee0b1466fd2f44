// Replay of trace.dat files written by the real trace-cmd (Debian's 3.1, installed by
// test/infra/setup-host.sh) against what `trace-cmd report` prints for the same file. Records
// come from the uprobe stand-in for arm_smmu_v3:smmu_evtq_event (test/support/uprobe.ts) in a
// tracefs instance of this test's own; `trace-cmd extract -B` writes the instance's buffers
// (`trace-cmd record` cannot run here: it writes /proc/sys/kernel/ftrace_enabled, read-only
// on this kernel) as a zstd-compressed v7 file, and `trace-cmd convert` rewrites that file as
// v6 and as uncompressed v7. Needs root, gcc, uprobes and trace-cmd.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ReplaySource } from '../../agent/src/source/replay/index';
import { timestampNs, word64 } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import {
  addSmmuUprobe,
  buildEmitter,
  cleanup,
  emit,
  ensureTracefs,
  subbufSizeRefusal,
  trackInstance,
  uniqueSuffix,
} from '../support/uprobe';
import { expectedName, expectedRecord } from '../support/uprobe-records';

const run = promisify(execFile);
const NAMES = 'smmu0,arm-smmu-v3.1.auto,a-much-longer-smmu-device-name.example';
const SEED = 0x5eedn;

interface Rec {
  ts: bigint;
  words: bigint[];
  name: string;
}

let root = '';
let emitter = '';
let event = '';
let tmp = '';
let missing = '';

/** `trace-cmd report -t` lines of the event: "... [001] 12501.864054217: name: (ip) evt0=0x.. ... iommu="..."". */
const REPORT_LINE =
  /\[\d+\]\s+(\d+)\.(\d{9}):\s+\S+:\s+\([0-9a-f]+\)\s+evt0=0x([0-9a-f]+) evt1=0x([0-9a-f]+) evt2=0x([0-9a-f]+) evt3=0x([0-9a-f]+) iommu="([^"]*)"/;

/** What report prints for a page whose missed-events flag is set (with the count). */
const LOST_LINE = /CPU:\d+ \[(?:LOST (\d+) EVENTS|(\d+) EVENTS DROPPED)\]/;

interface Replayed {
  recs: Rec[];
  /** Overrun losses (report: the counts of its LOST / EVENTS DROPPED lines). */
  lost: number;
}

async function report(file: string): Promise<Replayed> {
  const { stdout } = await run('trace-cmd', ['report', '-t', file], {
    maxBuffer: 256 << 20,
    timeout: 60_000,
  });
  const out: Replayed = { recs: [], lost: 0 };
  for (const line of stdout.split('\n')) {
    const lost = LOST_LINE.exec(line);
    if (lost) out.lost += Number(lost[1] ?? lost[2]);
    const m = REPORT_LINE.exec(line);
    if (!m) continue;
    out.recs.push({
      ts: BigInt(m[1]) * 1_000_000_000n + BigInt(m[2]),
      words: [m[3], m[4], m[5], m[6]].map((h) => BigInt(`0x${h}`)),
      name: m[7],
    });
  }
  return out;
}

async function replay(file: string): Promise<Replayed & { kind: string; otherLosses: number }> {
  const source = new ReplaySource({ input: file });
  const recs: Rec[] = [];
  let lost = 0;
  let otherLosses = 0;
  for await (const c of source.read(new AbortController().signal)) {
    const b = c.events;
    for (let i = 0; i < b.count; i++)
      recs.push({
        ts: timestampNs(b, i),
        words: [0, 1, 2, 3].map((k) => word64(b, i, k)),
        name: b.smmuNames[b.smmuIndex[i]],
      });
    for (const [r, n] of c.lost ?? []) {
      if (r === LossReason.LOSS_REASON_RING_BUFFER_OVERRUN) lost += n;
      else otherLosses += n;
    }
  }
  return { recs, lost, otherLosses, kind: source.replayKind };
}

/**
 * Emits `perCpu` records on each of `cpus` CPUs (one CPU after the other, so the time order is
 * the emit order) into a new instance and extracts it with trace-cmd; returns the v7 file.
 */
async function capture(
  name: string,
  perCpu: number,
  cpus: number,
  buffer: { subbufKb?: number; sizeKb?: number } = {},
): Promise<string> {
  const inst = trackInstance(root, `smmu_tcmd_${uniqueSuffix()}`);
  const dir = join(root, 'instances', inst);
  mkdirSync(dir);
  if (buffer.subbufKb !== undefined)
    writeFileSync(join(dir, 'buffer_subbuf_size_kb'), String(buffer.subbufKb));
  if (buffer.sizeKb !== undefined) writeFileSync(join(dir, 'buffer_size_kb'), String(buffer.sizeKb));
  const [group, ev] = event.split(':');
  writeFileSync(join(dir, 'events', group, ev, 'enable'), '1');
  for (let c = 0; c < cpus; c++) await emit(emitter, { count: perCpu, names: NAMES, seed: SEED, cpu: c });
  const file = join(tmp, `${name}.dat`);
  // extract reads the instance's buffers and then removes the instance itself.
  await run('trace-cmd', ['extract', '-B', inst, '-o', file], { timeout: 60_000 });
  return file;
}

async function convert(from: string, to: string, version: 6 | 7): Promise<string> {
  await run(
    'trace-cmd',
    ['convert', '-i', from, '-o', to, '--file-version', String(version), '--compression', 'none'],
    {
      timeout: 60_000,
    },
  );
  return to;
}

/** Our records against the emitted ones: same words and names in emit order (cpu after cpu). */
function assertEmitted(recs: Rec[], perCpu: number, cpus: number): void {
  assert.equal(recs.length, perCpu * cpus);
  for (let k = 0; k < recs.length; k++) {
    const i = k % perCpu;
    assert.deepEqual(recs[k].words, expectedRecord(i, SEED), `record ${k}`);
    assert.equal(recs[k].name, expectedName(i, NAMES), `record ${k}`);
  }
}

/**
 * Our records against trace-cmd report's: same count, words, names, and timestamps equal up to
 * the one wall-clock offset the replay adds (no DATE option: file mtime = latest page).
 */
function assertSameAsReport(ours: Rec[], theirs: Rec[], file: string): void {
  assert.equal(ours.length, theirs.length, `${file}: record count`);
  const offset = ours[0].ts - theirs[0].ts;
  for (let k = 0; k < ours.length; k++) {
    assert.deepEqual(ours[k].words, theirs[k].words, `${file}: record ${k} words`);
    assert.equal(ours[k].name, theirs[k].name, `${file}: record ${k} iommu`);
    assert.equal(ours[k].ts - theirs[k].ts, offset, `${file}: record ${k} timestamp`);
  }
  // The latest page starts at the file's mtime: the last record is within a minute of it.
  const mtime = statSync(file, { bigint: true }).mtimeNs;
  const gap = ours[ours.length - 1].ts - mtime;
  assert.ok(gap > -60_000_000_000n && gap < 60_000_000_000n, `${file}: last record ${gap} ns after mtime`);
}

describe('trace.dat from the real trace-cmd, replayed', () => {
  before(async () => {
    try {
      await run('sh', ['-c', 'command -v trace-cmd']);
    } catch {
      missing = 'trace-cmd is not installed (test/infra/setup-host.sh installs it)';
      return;
    }
    root = ensureTracefs();
    emitter = buildEmitter();
    event = addSmmuUprobe(root, emitter, `arm_smmu_v3:smmu_evtq_event_${uniqueSuffix()}`);
    tmp = mkdtempSync(join(tmpdir(), 'smmu-tcmd-'));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    cleanup();
  });

  const cpus = Math.min(2, availableParallelism());
  const perCpu = 700; // several 4 KiB pages per CPU

  it('v7 zstd (as extract writes it), v7 uncompressed and v6: the records trace-cmd report prints', {
    timeout: 120_000,
  }, async (t) => {
    if (missing) return t.skip(missing);
    const v7z = await capture('v7-zstd', perCpu, cpus);
    const files = [
      v7z,
      await convert(v7z, join(tmp, 'v7-none.dat'), 7),
      await convert(v7z, join(tmp, 'v6.dat'), 6),
    ];
    for (const file of files) {
      const ours = await replay(file);
      assert.equal(ours.kind, 'trace-dat');
      assert.equal(ours.lost + ours.otherLosses, 0, `${file}: losses`);
      assertEmitted(ours.recs, perCpu, cpus);
      assertSameAsReport(ours.recs, (await report(file)).recs, file);
    }
  });

  it('8 KiB sub-buffers: every emitted record, and every record trace-cmd report prints', {
    timeout: 120_000,
  }, async (t) => {
    if (missing) return t.skip(missing);
    const refused = subbufSizeRefusal(root);
    if (refused) return t.skip(refused);
    const file = await capture('subbuf8k', perCpu, cpus, { subbufKb: 8 });
    const ours = await replay(file);
    assert.equal(ours.lost + ours.otherLosses, 0);
    assertEmitted(ours.recs, perCpu, cpus);
    // The installed trace-cmd 3.1 report prints fewer records than such a file holds (752 of
    // 1400 here, the emitted ones, which the replay yields): each one it prints must be one of
    // ours, with the same offset between the timestamps.
    const theirs = (await report(file)).recs;
    assert.ok(theirs.length > 0 && theirs.length <= ours.recs.length);
    const byTs = new Map(ours.recs.map((r) => [r.ts, r]));
    const offset = ours.recs[0].ts - theirs[0].ts;
    for (const r of theirs) {
      const mine = byTs.get(r.ts + offset);
      assert.ok(mine, `report record at ${r.ts} not replayed`);
      assert.deepEqual(mine.words, r.words);
    }
    t.diagnostic(`8 KiB sub-buffers: replay ${ours.recs.length} records, trace-cmd report ${theirs.length}`);
  });

  it('an overrun buffer: the LOST counts trace-cmd report prints are counted as losses', {
    timeout: 120_000,
  }, async (t) => {
    if (missing) return t.skip(missing);
    // 8 KiB per CPU (a few pages) and 5000 records: the ring overwrites its oldest pages.
    const file = await capture('overrun', 5000, 1, { sizeKb: 8 });
    const ours = await replay(file);
    const theirs = await report(file);
    assert.ok(theirs.lost > 0, 'the buffer did not overrun');
    assert.equal(ours.lost, theirs.lost);
    assert.equal(ours.otherLosses, 0);
    assertSameAsReport(ours.recs, theirs.recs, file);
    // What survived is the newest records, in order, and with the losses adds up to all.
    assert.equal(ours.recs.length + ours.lost, 5000);
    const skip = 5000 - ours.recs.length;
    for (const [k, r] of ours.recs.entries()) assert.deepEqual(r.words, expectedRecord(skip + k, SEED));
  });
});
