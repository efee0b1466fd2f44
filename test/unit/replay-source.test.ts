// The replay source on captured fixtures (no kernel): text file, FIFO, raw per-CPU dump
// directory, trace.dat; detection, wall-time mapping, losses, resuming after N events, bad input.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { detectReplayKind, ReplaySource } from '../../agent/src/source/replay';
import type { SourceChunk } from '../../agent/src/source/source';
import {
  concatBlocks,
  type EventBlock,
  EventBlockBuilder,
  timestampNs,
  word64,
} from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { modelEvents } from '../support/model-stream';
import { replayOffsetNs, writeRawDump } from '../support/raw-pages';
import { fixtureDatSpec, writeTraceDat } from '../support/trace-dat-writer';
import { expectedName, expectedRecord, tracefsFixture } from '../support/uprobe-records';

const tmp = mkdtempSync(join(tmpdir(), 'smmu-replay-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Got {
  words: bigint[][];
  names: string[];
  ts: bigint[];
  events: Set<string>;
  lost: Map<LossReason, number>;
}

async function collect(source: ReplaySource, resumeAt = 0): Promise<Got> {
  const got: Got = { words: [], names: [], ts: [], events: new Set(), lost: new Map() };
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  for await (const c of source.read(ac.signal, resumeAt) as AsyncIterable<SourceChunk>) {
    const b = c.events;
    if (b.count > 0) got.events.add(c.event ?? '');
    for (let i = 0; i < b.count; i++) {
      got.words.push([0, 1, 2, 3].map((k) => word64(b, i, k)));
      got.names.push(b.smmuNames[b.smmuIndex[i]]);
      got.ts.push(timestampNs(b, i));
    }
    for (const [r, n] of c.lost ?? []) got.lost.set(r, (got.lost.get(r) ?? 0) + n);
  }
  clearTimeout(timer);
  return got;
}

const NAMES = 'smmu0,arm-smmu-v3.1.auto,x';

function assertFixtureRecords(got: Got, from = 0): void {
  assert.equal(got.words.length, 20 - from);
  for (let i = from; i < 20; i++) {
    assert.deepEqual(got.words[i - from], expectedRecord(i, 0x100n), `record ${i}`);
    assert.equal(got.names[i - from], expectedName(i, NAMES));
  }
}

function rawDir(name: string, pages: string[]): string {
  const dir = join(tmp, name);
  mkdirSync(join(dir, 'events', 'uprobes', 'smmu_evtq_event'), { recursive: true });
  copyFileSync(tracefsFixture('header_page.4k'), join(dir, 'header_page'));
  copyFileSync(
    tracefsFixture('smmu_evtq_event.uprobe.format'),
    join(dir, 'events', 'uprobes', 'smmu_evtq_event', 'format'),
  );
  for (const [cpu, p] of pages.entries())
    writeFileSync(join(dir, `cpu${cpu}`), readFileSync(tracefsFixture(p)));
  return dir;
}

describe('replay source', () => {
  it('replays a `trace` text file: every record, times mapped so the last is the file mtime', async () => {
    const file = join(tmp, 'trace.txt');
    copyFileSync(tracefsFixture('smmu-4k.trace.txt'), file);
    const mtime = new Date('2026-06-01T12:00:00Z');
    utimesSync(file, mtime, mtime);
    assert.equal(detectReplayKind(file), 'text');
    const source = new ReplaySource({ input: file });
    assert.equal(source.resumable, true);
    const got = await collect(source);
    assertFixtureRecords(got);
    assert.equal(got.lost.size, 0, 'header lines are not counted');
    assert.equal(got.ts[19], BigInt(mtime.getTime()) * 1_000_000n);
    // 836.322624 -> 836.322652: microsecond spacing kept.
    assert.equal(got.ts[1] - got.ts[0], 28_000n);
    assert.deepEqual([...got.events], ['arm_smmu_v3:smmu_evtq_event']);
  });

  it('resumes after N events: the rest, nothing twice', async () => {
    const file = join(tmp, 'trace.txt');
    assertFixtureRecords(await collect(new ReplaySource({ input: file }), 7), 7);
    assert.equal((await collect(new ReplaySource({ input: file }), 20)).words.length, 0);
  });

  it('reads a FIFO to its end', async () => {
    const fifo = join(tmp, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assert.equal(detectReplayKind(fifo), 'text');
    const source = new ReplaySource({ input: fifo });
    assert.equal(source.resumable, false);
    const w = createWriteStream(fifo);
    w.end(readFileSync(tracefsFixture('smmu-4k.trace.txt')));
    assertFixtureRecords(await collect(source));
  });

  it('replays a raw dump directory: pages merged over CPUs, missed events counted', async () => {
    const dir = rawDir('raw', ['smmu-4k.page', 'missed-4k.page']);
    assert.equal(detectReplayKind(dir), 'raw-dir');
    const got = await collect(new ReplaySource({ input: dir }));
    const stats = readFileSync(tracefsFixture('missed-4k.stats.txt'), 'utf8');
    const overrun = Number(/^overrun: (\d+)/m.exec(stats)?.[1]);
    assert.equal(got.lost.get(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN), overrun);
    assert.equal(got.lost.get(LossReason.LOSS_REASON_MALFORMED_RECORD), undefined);
    const fromSmmu = got.words.filter((w) => (w[2] & 0xfffn) === 0x100n);
    assert.equal(fromSmmu.length, 20);
    assert.deepEqual([...got.events], ['uprobes:smmu_evtq_event']);
    for (let i = 1; i < got.ts.length; i++) assert.ok(got.ts[i] >= got.ts[i - 1], 'time order');
    // The newest page's time stamp maps to the newest dump file's mtime.
    const mtimeNs = statSync(join(dir, 'cpu1'), { bigint: true }).mtimeNs;
    assert.ok(got.ts[got.ts.length - 1] >= mtimeNs);
  });

  it('replays pages built from model events: every event, its words, name and ns time', async () => {
    // Enough pages for several of the replay's 128 KiB read-aheads, the last one partial.
    const blocks: EventBlock[] = [modelEvents(10_000, 5)];
    // A gap of 3 s (over the 27-bit delta): a time-extend record.
    const late = new EventBlockBuilder(1);
    late.push(1_780_000_100_000_000_123n, 'smmu-late', [1n, 2n ** 64n - 1n, 3n, 4n]);
    blocks.push(late.finish());
    const boot = 1_779_999_000_000_000_000n;
    const dump = writeRawDump(join(tmp, 'built'), blocks, boot);
    const size = statSync(join(dump.dir, 'cpu0')).size;
    assert.ok(size > 3 * 128 * 1024 && size % (128 * 1024) !== 0, `${size} bytes of pages`);
    const got = await collect(new ReplaySource({ input: dump.dir }));
    const shift = replayOffsetNs(dump) - boot;
    const want = concatBlocks(blocks);
    assert.equal(got.words.length, 10_001);
    for (let i = 0; i < want.count; i++) {
      assert.deepEqual(
        got.words[i],
        [0, 1, 2, 3].map((k) => word64(want, i, k)),
        `event ${i}`,
      );
      assert.equal(got.names[i], want.smmuNames[want.smmuIndex[i]]);
      assert.equal(got.ts[i], timestampNs(want, i) + shift, `time of event ${i}`);
    }
    assert.equal(got.lost.size, 0);
  });

  it('counts a truncated last page and a corrupt page, and never fails', async () => {
    const dir = rawDir('cut', ['smmu-4k.page']);
    const page = readFileSync(tracefsFixture('smmu-4k.page'));
    const bad = Buffer.from(page);
    // The first record: type_len 0 with a length word that used to wrap the parser.
    bad.writeUInt32LE(0, 16);
    bad.writeUInt32LE(0xfffffffc, 20);
    writeFileSync(join(dir, 'cpu0'), Buffer.concat([page, bad, page.subarray(0, 1000)]));
    const got = await collect(new ReplaySource({ input: dir }));
    assert.equal(got.words.length, 20);
    assert.equal(got.lost.get(LossReason.LOSS_REASON_MALFORMED_RECORD), 2);
  });

  it('reads trace.dat v6, v7, v7 zlib and v7 zstd: the records, losses and times of the same pages as a raw dump', async () => {
    const pages = ['smmu-4k.page', 'missed-4k.page'];
    const dir = rawDir('dat-ref', pages);
    const when = new Date('2026-01-02T03:04:05Z');
    for (const c of ['cpu0', 'cpu1']) utimesSync(join(dir, c), when, when);
    const want = await collect(new ReplaySource({ input: dir }));
    assert.ok(want.words.length > 10 && (want.lost.get(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN) ?? 0) > 0);
    const spec = fixtureDatSpec(pages.map((p) => readFileSync(tracefsFixture(p))));
    const kinds = [
      { version: 6, compression: 'none' },
      { version: 7, compression: 'none' },
      { version: 7, compression: 'zlib' },
      { version: 7, compression: 'zstd' },
    ] as const;
    for (const k of kinds) {
      const file = join(tmp, `v${k.version}-${k.compression}.dat`);
      writeFileSync(file, await writeTraceDat({ ...spec, ...k, instance: 'inst' }));
      utimesSync(file, when, when);
      const source = new ReplaySource({ input: file });
      assert.equal(source.replayKind, 'trace-dat');
      assert.deepEqual(await collect(source), want, `${file}`);
    }
  });

  it('says what is wrong with a directory that is no dump, or a cut trace.dat', async () => {
    const dir = join(tmp, 'empty');
    mkdirSync(dir);
    assert.throws(() => new ReplaySource({ input: dir }), /without header_page/);
    assert.throws(() => new ReplaySource({ input: join(tmp, 'nope') }), /ENOENT/);
    const dat = join(tmp, 'trace.dat');
    writeFileSync(dat, Buffer.concat([Buffer.from([0x17, 0x08, 0x44]), Buffer.from('tracing7\0\0\x08')]));
    const source = new ReplaySource({ input: dat });
    assert.equal(source.replayKind, 'trace-dat');
    await assert.rejects(async () => {
      for await (const _ of source.read(new AbortController().signal));
    }, /trace\.dat: file header: page size \(4 bytes\) at file offset 14 runs past the end/);
  });
});
