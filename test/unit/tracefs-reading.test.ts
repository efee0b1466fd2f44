import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { measureMonoToWall, offsetDrifted } from '../../agent/src/source/tracefs/clock';
import { decoderFamily, PRIMARY_EVENT } from '../../agent/src/source/tracefs/events/index';
import { parseEventFormat, parseHeaderPage } from '../../agent/src/source/tracefs/format';
import {
  parseCpuStats,
  selectedClock,
  splitEvent,
  type TracefsInstance,
} from '../../agent/src/source/tracefs/instance';
import { LossCounter } from '../../agent/src/source/tracefs/losses';
import { tracefsCandidates, tracefsMountPoints } from '../../agent/src/source/tracefs/mount';
import { RawReader } from '../../agent/src/source/tracefs/raw-reader';
import type { ReadContext } from '../../agent/src/source/tracefs/reader';
import { EventStaging, splitOrdered } from '../../agent/src/source/tracefs/staging';
import { parseLostLine, parseTraceLine } from '../../agent/src/source/tracefs/text-reader';
import { EventBlockBuilder, timestampNs, word64 } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { expectedRecord, tracefsFixture } from '../support/uprobe-records';

describe('trace_pipe lines', () => {
  it('parses event lines with and without the irq-info and tgid columns', () => {
    const full = parseTraceLine(
      '            emit-16447   [001] DBZff   366.417087: smmu_evtq_event: (0x564df616f1d0) evt0=0x1',
    );
    assert.deepEqual(full, {
      cpu: 1,
      tsNs: 366_417_087_000n,
      event: 'smmu_evtq_event',
      body: '(0x564df616f1d0) evt0=0x1',
    });
    const bare = parseTraceLine(
      '  kworker/u8:2-my-job-77 [000]  12.000001: io_page_fault: IOMMU:a b iova=0x1 flags=0x0',
    );
    assert.equal(bare?.tsNs, 12_000_001_000n);
    assert.equal(bare?.event, 'io_page_fault');
    const tgid = parseTraceLine('  app-12 (   10) [003] ..... 5.5: prq_report: dmar0/x seq# 1: rid=0x1');
    assert.equal(tgid?.cpu, 3);
    assert.equal(tgid?.tsNs, 5_500_000_000n);
    assert.equal(parseTraceLine('# tracer: nop'), undefined);
  });

  it('reads LOST lines', () => {
    assert.equal(parseLostLine('CPU:1 [LOST 2835 EVENTS]'), 2835);
    assert.equal(parseLostLine('CPU:1 [LOST x EVENTS]'), undefined);
  });
});

describe('ordering of a round', () => {
  function block(offsets: number[], base = 100n) {
    const b = new EventBlockBuilder(offsets.length);
    b.setBase(base);
    for (const [i, o] of offsets.entries()) {
      const w = b.appendOffset(o, b.smmuId(i % 2 ? 'b' : 'a'));
      b.wordArray[w] = i;
    }
    return b.finish();
  }

  it('returns a sorted block below the cutoff untouched', () => {
    const b = block([1, 2, 3]);
    assert.equal(splitOrdered(b, 10).ready, b);
  });

  it('sorts (stably) and holds back records at or after the cutoff', () => {
    const { ready, rest } = splitOrdered(block([5, 1, 9, 1, 4]), 5);
    assert.deepEqual([...(ready?.offsetNs ?? [])], [1, 1, 4]);
    assert.deepEqual(
      [...(ready?.words ?? [])].filter((_, k) => k % 8 === 0),
      [1, 3, 4],
    );
    assert.deepEqual(ready?.smmuNames, ['b', 'a']);
    assert.deepEqual([...(rest?.offsetNs ?? [])], [5, 9]);
  });

  it('splits a sorted block at the cutoff', () => {
    const b = new EventBlockBuilder(4);
    b.setBase(0n);
    for (const o of [1, 2, 3, 4]) b.appendOffset(o, b.smmuId('only'));
    const { ready, rest } = splitOrdered(b.finish(), 3);
    assert.deepEqual([...(ready?.offsetNs ?? [])], [1, 2]);
    assert.equal(ready?.words.length, 16);
    assert.deepEqual([...(rest?.offsetNs ?? [])], [3, 4]);
  });

  it('carries held-back records into the next round on a new base', () => {
    const s = new EventStaging('x:y');
    s.begin(1000n);
    s.builder.appendOffset(50, s.builder.smmuId('a'));
    s.builder.appendOffset(10, s.builder.smmuId('a'));
    const first = s.take(20);
    assert.deepEqual([...(first?.offsetNs ?? [])], [10]);
    assert.equal(s.count, 1);
    s.begin(1040n);
    s.builder.appendOffset(5, s.builder.smmuId('a'));
    const second = s.take();
    assert.ok(second);
    assert.deepEqual(
      [0, 1].map((i) => timestampNs(second, i)),
      [1045n, 1050n],
    );
    assert.equal(s.take(), undefined);
  });
});

describe('loss counting', () => {
  it('reports the larger of page counts and stats, once', () => {
    const l = new LossCounter();
    const stats = (overrun: number, dropped = 0) => ({
      entries: 0,
      overrun,
      commitOverrun: 0,
      dropped,
      read: 0,
    });
    l.updateStats(0, stats(100)); // baseline
    assert.equal(l.take(), undefined);
    l.addMissed(30);
    assert.deepEqual(l.take(), new Map([[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 30]]));
    l.addMissed(-1); // unknown count: the stats tell
    l.updateStats(0, stats(150, 5));
    l.addMalformed(2);
    assert.deepEqual(
      l.take(),
      new Map([
        [LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 25],
        [LossReason.LOSS_REASON_MALFORMED_RECORD, 2],
      ]),
    );
    assert.equal(l.unknownCountSeen, true);
    l.addMissed(20); // pages catching up with what the stats already said
    assert.equal(l.take(), undefined);
  });

  it('parses per-CPU stats', () => {
    assert.deepEqual(parseCpuStats(readFileSync(tracefsFixture('missed-4k.stats.txt'), 'utf8')), {
      entries: 165,
      overrun: 2835,
      commitOverrun: 0,
      dropped: 0,
      read: 0,
    });
  });
});

describe('tracefs discovery helpers', () => {
  it('finds tracefs mount points in /proc/mounts', () => {
    const mounts = [
      'sysfs /sys sysfs rw 0 0',
      'tracefs /sys/kernel/tracing tracefs rw,nosuid 0 0',
      'none /mnt/my\\040trace tracefs rw 0 0',
    ].join('\n');
    assert.deepEqual(tracefsMountPoints(mounts), ['/sys/kernel/tracing', '/mnt/my trace']);
    assert.deepEqual(tracefsCandidates('/custom', mounts), [
      '/custom',
      '/sys/kernel/tracing',
      '/mnt/my trace',
      '/sys/kernel/debug/tracing',
    ]);
  });

  it('reads the selected trace clock and splits event names', () => {
    assert.equal(selectedClock('local global [mono] boot\n'), 'mono');
    assert.deepEqual(splitEvent('arm_smmu_v3:smmu_evtq_event'), ['arm_smmu_v3', 'smmu_evtq_event']);
    assert.deepEqual(splitEvent('iommu/io_page_fault'), ['iommu', 'io_page_fault']);
    assert.throws(() => splitEvent('nogroup'), /bad event name/);
  });
});

describe('trace clock to wall clock', () => {
  it('measures CLOCK_REALTIME - CLOCK_MONOTONIC well below a millisecond', () => {
    const c = measureMonoToWall();
    assert.ok(c.uncertaintyNs < 1_000_000, `uncertainty ${c.uncertaintyNs}`);
    const wall = process.hrtime.bigint() + c.offsetNs;
    const diff = Number(wall - BigInt(Date.now()) * 1_000_000n);
    assert.ok(diff >= -2_000_000 && diff <= 2_000_000, `diff ${diff}`);
    assert.equal(offsetDrifted(c), false);
    assert.equal(offsetDrifted({ offsetNs: c.offsetNs + 10_000_000n, uncertaintyNs: 0 }), true);
  });
});

describe('raw reader over sub-buffers in files (no kernel)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tracefs-raw-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decodes every CPU, counts missed events and unknown records, and orders the round', () => {
    const pages: Record<number, Buffer[]> = {
      0: [readFileSync(tracefsFixture('smmu-4k.page')), readFileSync(tracefsFixture('missed-4k.page'))],
      1: [readFileSync(tracefsFixture('time-extend-4k.page'))],
    };
    // An unknown record type on CPU 1: type id 7 in a 2-word record appended to its page.
    const odd = Buffer.from(pages[1][0]);
    const size = odd.readUInt32LE(8) & 0x7ffffff;
    odd.writeUInt32LE(2, 16 + size);
    odd.writeUInt16LE(7, 16 + size + 4);
    odd.writeUInt32LE(size + 12, 8);
    pages[1] = [odd];
    for (const [cpu, list] of Object.entries(pages))
      writeFileSync(join(dir, `cpu${cpu}`), Buffer.concat(list));

    const format = parseEventFormat(readFileSync(tracefsFixture('smmu_evtq_event.uprobe.format'), 'utf8'));
    const layout = parseHeaderPage(readFileSync(tracefsFixture('header_page.4k'), 'utf8'));
    const instance = {
      cpus: () => [0, 1],
      cpuFile: (cpu: number) => join(dir, `cpu${cpu}`),
      stats: () => ({ entries: 0, overrun: 0, commitOverrun: 0, dropped: 0, read: 0 }),
    } as unknown as TracefsInstance;
    const staging = new EventStaging(PRIMARY_EVENT);
    const decoder = decoderFamily(PRIMARY_EVENT)?.create(format, PRIMARY_EVENT);
    assert.ok(decoder);
    const warnings: string[] = [];
    const ctx: ReadContext = {
      instance,
      targets: [{ event: PRIMARY_EVENT, typeId: format.id, decoder, staging }],
      losses: new LossCounter(),
      clockOffsetNs: 0n,
      warnOnce: (_k, m) => warnings.push(m),
    };
    const reader = new RawReader(ctx, layout);
    reader.open();
    staging.begin(0n);
    const r = reader.round(0n, undefined);
    reader.close();
    assert.equal(r.records, 20 + 63 + 4);
    assert.equal(r.drained, true);
    const block = staging.take();
    assert.ok(block);
    assert.equal(block.count, 87);
    for (let i = 1; i < block.count; i++) assert.ok(block.offsetNs[i] >= block.offsetNs[i - 1]);
    const seeds = new Map<bigint, number>();
    for (let i = 0; i < block.count; i++) {
      const seed = word64(block, i, 2) & 0xfffn;
      seeds.set(seed, (seeds.get(seed) ?? 0) + 1);
    }
    assert.deepEqual([...seeds.entries()].sort(), [
      [0x100n, 20],
      [0x200n, 4],
      [0x300n, 63],
    ]);
    assert.deepEqual(
      [0, 1, 2, 3].map((w) => word64(block, 0, w)),
      expectedRecord(0, 0x100n),
    );
    assert.deepEqual(
      ctx.losses.take(),
      new Map([
        [LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 2835],
        [LossReason.LOSS_REASON_MALFORMED_RECORD, 1],
      ]),
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /unknown type id 7/);
  });
});
