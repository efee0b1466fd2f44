// Cost of the tracefs source.
// 1. Parsing, one core, no kernel: records/s through PageCursor alone and through PageCursor
//    plus the smmu_evtq_event decoder into an EventBlock, over full 4 KiB and 64 KiB
//    sub-buffers cut from a page captured from the kernel (median of runs).
// 2. Reading the same stream from the kernel (root only): a uprobe stand-in fills two
//    instances' buffers while nobody reads, then one source drains its copy through
//    trace_pipe_raw and another through trace_pipe, for several rounds. Reported: the reading
//    process's system (kernel) and user CPU per 1000 records, from process.cpuUsage().
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SourceChunk } from '../../agent/src/source/source';
import { decoderFamily, PRIMARY_EVENT } from '../../agent/src/source/tracefs/events/index';
import {
  type PageLayout,
  parseEventFormat,
  parseHeaderPage,
  withDataSize,
} from '../../agent/src/source/tracefs/format';
import type { TracefsInstance } from '../../agent/src/source/tracefs/instance';
import { LossCounter } from '../../agent/src/source/tracefs/losses';
import { PageCursor } from '../../agent/src/source/tracefs/page';
import { EventStaging } from '../../agent/src/source/tracefs/staging';
import { TextReader } from '../../agent/src/source/tracefs/text-reader';
import { TracefsSource } from '../../agent/src/source/tracefs/tracefs-source';
import { EventBlockBuilder } from '../../proto/event-block';
import {
  addSmmuUprobe,
  buildEmitter,
  cleanup,
  emit,
  ensureTracefs,
  trackInstance,
  uniqueSuffix,
} from '../support/uprobe';
import { expectedRecord, tracefsFixture } from '../support/uprobe-records';
import { median, rate, report } from './bench-util';

const RUNS = 7;
const layout64k = parseHeaderPage(readFileSync(tracefsFixture('header_page.64k'), 'utf8'));
const format = parseEventFormat(readFileSync(tracefsFixture('smmu_evtq_event.uprobe.format'), 'utf8'));
const captured = readFileSync(tracefsFixture('smmu-64k.page'));

/** A full sub-buffer of `size` bytes: the captured page's records up to what fits. */
function fullPage(size: number): Buffer {
  const c = new PageCursor(layout64k);
  c.load(captured);
  const header = layout64k.dataOffset;
  let end = header;
  while (c.next()) {
    const recEnd = c.offset + c.length;
    if (recEnd > size) break;
    end = recEnd;
  }
  const page = Buffer.alloc(size);
  captured.copy(page, 0, 0, end);
  page.writeUInt32LE(end - header, layout64k.commitOffset);
  page.writeUInt32LE(0, layout64k.commitOffset + 4);
  return page;
}

function parseBench(size: number): void {
  const layout: PageLayout = withDataSize(layout64k, size);
  const pages = Array.from({ length: Math.max(1, (8 << 20) / size) }, () => fullPage(size));
  const cursor = new PageCursor(layout);
  let perPass = 0;
  for (const p of pages) {
    cursor.load(p);
    while (cursor.next()) perPass++;
  }
  const tag = `${size / 1024}k`;
  report(`parse_${tag}_records_per_page`, perPass / pages.length);
  report(
    `parse_only_${tag}_records_per_s`,
    median(RUNS, () =>
      rate(perPass, () => {
        for (const p of pages) {
          cursor.load(p);
          while (cursor.next()) {}
        }
      }),
    ),
  );
  const decoder = decoderFamily(PRIMARY_EVENT)?.create(format, PRIMARY_EVENT);
  if (!decoder) throw new Error('no smmu_evtq_event decoder');
  const out = new EventBlockBuilder(perPass);
  report(
    `parse_decode_${tag}_records_per_s`,
    median(RUNS, () =>
      rate(perPass, () => {
        out.setBase(0n);
        for (const p of pages) {
          cursor.load(p);
          const off = Number(cursor.timestamp & 0xffffffn);
          while (cursor.next()) {
            decoder.decodeBinary(
              cursor.bytes,
              cursor.words,
              cursor.offset,
              cursor.length,
              out,
              off + cursor.delta,
            );
          }
        }
        out.finish();
      }),
    ),
  );
}

/** trace_pipe text lines of `form` ('proposed': the tracepoint's print format; 'uprobe': its stand-in). */
function textLines(n: number, form: 'proposed' | 'uprobe'): string {
  const hex = (v: bigint, pad: boolean) => `0x${pad ? v.toString(16).padStart(16, '0') : v.toString(16)}`;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const w = expectedRecord(i, 0x100n);
    const ts = `${836 + Math.floor(i / 1e6)}.${String(i % 1e6).padStart(6, '0')}`;
    const body =
      form === 'proposed'
        ? `arm-smmu-v3.0.auto evt: ${w.map((v) => hex(v, true)).join(' ')}`
        : `(0x55ccaee263a0) ${w.map((v, k) => `evt${k}=${hex(v, false)}`).join(' ')} iommu="arm-smmu-v3.0.auto"`;
    lines.push(`            emit-8031    [000] DBZff   ${ts}: smmu_evtq_event: ${body}\n`);
  }
  return lines.join('');
}

/** Lines/s through the text reader (read, parse, decode, stage) from a file standing in for trace_pipe. */
function textBench(form: 'proposed' | 'uprobe'): void {
  const n = Number(process.env.BENCH_TEXT_LINES ?? 300_000);
  const dir = mkdtempSync(join(tmpdir(), 'smmu-text-bench-'));
  try {
    writeFileSync(join(dir, 'trace_pipe'), textLines(n, form));
    const fmt = parseEventFormat(readFileSync(tracefsFixture('smmu_evtq_event.uprobe.format'), 'utf8'));
    const decoder = decoderFamily(PRIMARY_EVENT)?.create(fmt, PRIMARY_EVENT);
    if (!decoder) throw new Error('no smmu_evtq_event decoder');
    const instance = {
      path: dir,
      cpus: () => [0],
      stats: () => ({ overrun: 0, commitOverrun: 0, dropped: 0 }),
    };
    let got = 0;
    report(
      `text_${form}_lines_per_s`,
      median(RUNS, () =>
        rate(n, () => {
          const staging = new EventStaging(PRIMARY_EVENT);
          const ctx = {
            instance: instance as unknown as TracefsInstance,
            targets: [{ event: PRIMARY_EVENT, typeId: fmt.id, decoder, staging }],
            losses: new LossCounter(),
            clockOffsetNs: 0n,
            warnOnce: () => {},
          };
          const reader = new TextReader(ctx);
          reader.open();
          got = 0;
          for (let round = 0; round < 10_000; round++) {
            staging.begin(0n);
            const r = reader.round(0n);
            got += staging.take()?.count ?? 0;
            if (r.drained) break;
          }
          reader.close();
        }),
      ),
    );
    if (got !== n) throw new Error(`text bench: ${got} of ${n} lines decoded`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pulls chunks from `it` until `n` more records (or losses) arrived; bounded by `timeoutMs`. */
async function pull(
  it: AsyncIterator<SourceChunk>,
  n: number,
  timeoutMs = 120_000,
): Promise<[number, number]> {
  let got = 0;
  let lost = 0;
  const deadline = Date.now() + timeoutMs;
  while (got + lost < n && Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    const step = await Promise.race([
      it.next(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), deadline - Date.now());
      }),
    ]);
    clearTimeout(timer);
    if (!step || step.done) break;
    got += step.value.events.count;
    for (const v of step.value.lost?.values() ?? []) lost += v;
  }
  return [got, lost];
}

async function kernelBench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('kernel_read_bench: skipped (needs root)\n');
    return;
  }
  // System time is sampled per scheduler tick (4 ms at HZ=250): several rounds of a large
  // stream keep the binary reader's small kernel cost above that resolution.
  const n = Number(process.env.BENCH_TRACEFS_EVENTS ?? 200_000);
  const rounds = Number(process.env.BENCH_TRACEFS_ROUNDS ?? 5);
  const ac = new AbortController();
  try {
    const root = ensureTracefs();
    const bin = buildEmitter();
    const event = addSmmuUprobe(root, bin, `arm_smmu_v3:smmu_evtq_event_bench_${uniqueSuffix()}`);
    // Both instances record the same stream; each reader then drains its copy.
    const readers = (['raw', 'text'] as const).map((reader) => {
      const source = new TracefsSource({
        events: [{ event, decoder: PRIMARY_EVENT }],
        instance: trackInstance(root, `smmu-fleet-bench-${reader}-${uniqueSuffix()}`),
        reader,
        bufferSizeKb: Math.ceil((n * 80) / 1024) + 1024, // the whole stream: nothing lost
        pollMinMs: 1,
      });
      return { reader, source, it: source.read(ac.signal), got: 0, lost: 0, user: 0, system: 0, wall: 0 };
    });
    for (const r of readers) await r.source.open();
    for (let round = 0; round < rounds; round++) {
      await emit(bin, { count: n, names: 'arm-smmu-v3.0.auto', cpu: 0 });
      for (const r of readers) {
        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const [got, lost] = await pull(r.it, n);
        r.wall += Number(process.hrtime.bigint() - t0) / 1e9;
        const used = process.cpuUsage(cpu0);
        r.user += used.user;
        r.system += used.system;
        r.got += got;
        r.lost += lost;
      }
    }
    report('kernel_read_records_per_round', n);
    report('kernel_read_rounds', rounds);
    for (const r of readers) {
      const name = r.reader === 'raw' ? 'trace_pipe_raw' : 'trace_pipe';
      report(`${name}_records_read`, r.got);
      report(`${name}_records_lost`, r.lost);
      report(`${name}_system_cpu_us_per_1k_records`, (r.system / r.got) * 1000, 1);
      report(`${name}_user_cpu_us_per_1k_records`, (r.user / r.got) * 1000, 1);
      report(`${name}_drain_records_per_s`, r.got / r.wall);
    }
    ac.abort();
    for (const r of readers) while (!(await r.it.next()).done) {}
  } finally {
    ac.abort();
    cleanup();
  }
}

parseBench(4096);
parseBench(65536);
textBench('proposed');
textBench('uprobe');
kernelBench().catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exitCode = 1;
});
