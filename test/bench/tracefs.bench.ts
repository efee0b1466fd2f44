// Cost of the tracefs source.
// 1. Parsing, one core, no kernel: records/s through PageCursor alone and through PageCursor
//    plus the smmu_evtq_event decoder into an EventBlock, over full 4 KiB and 64 KiB
//    sub-buffers cut from a page captured from the kernel (median of runs).
// 2. Reading the same stream from the kernel (root only): a uprobe stand-in fills the
//    instance's buffer while nobody reads, then the source drains it through trace_pipe_raw
//    and, for a second identical stream, through trace_pipe. Reported: the reading process's
//    system (kernel) and user CPU per 1000 records, from process.cpuUsage().
import { readFileSync } from 'node:fs';
import { decoderFamily, PRIMARY_EVENT } from '../../agent/src/source/tracefs/events/index';
import {
  type PageLayout,
  parseEventFormat,
  parseHeaderPage,
  withDataSize,
} from '../../agent/src/source/tracefs/format';
import { PageCursor } from '../../agent/src/source/tracefs/page';
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
import { tracefsFixture } from '../support/uprobe-records';
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

async function kernelBench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('kernel_read_bench: skipped (needs root)\n');
    return;
  }
  const n = Number(process.env.BENCH_TRACEFS_EVENTS ?? 100_000);
  try {
    const root = ensureTracefs();
    const bin = buildEmitter();
    const event = addSmmuUprobe(root, bin, `arm_smmu_v3:smmu_evtq_event_bench_${uniqueSuffix()}`);
    report('kernel_read_records', n);
    for (const reader of ['raw', 'text'] as const) {
      const source = new TracefsSource({
        events: [{ event, decoder: PRIMARY_EVENT }],
        instance: trackInstance(root, `smmu-fleet-bench-${reader}-${uniqueSuffix()}`),
        reader,
        // Room for the whole stream on the one CPU it is emitted on: nothing is lost.
        bufferSizeKb: Math.ceil((n * 80) / 1024) + 1024,
        pollMinMs: 1,
      });
      await source.open();
      await emit(bin, { count: n, names: 'arm-smmu-v3.0.auto', cpu: 0 });
      const ac = new AbortController();
      const guard = setTimeout(() => ac.abort(), 120_000);
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      let got = 0;
      let lost = 0;
      for await (const c of source.read(ac.signal)) {
        got += c.events.count;
        for (const v of c.lost?.values() ?? []) lost += v;
        if (got + lost >= n) ac.abort();
      }
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const used = process.cpuUsage(cpu0);
      clearTimeout(guard);
      const name = reader === 'raw' ? 'trace_pipe_raw' : 'trace_pipe';
      report(`${name}_records_read`, got);
      report(`${name}_records_lost`, lost);
      report(`${name}_system_cpu_us_per_1k_records`, (used.system / got) * 1000, 1);
      report(`${name}_user_cpu_us_per_1k_records`, (used.user / got) * 1000, 1);
      report(`${name}_drain_records_per_s`, got / wall);
    }
  } finally {
    cleanup();
  }
}

parseBench(4096);
parseBench(65536);
kernelBench().catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exitCode = 1;
});
