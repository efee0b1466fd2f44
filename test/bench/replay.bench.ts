// Replay speed of trace.dat files: events/s through the replay source (file metadata, inflating
// compressed CPU data, page parsing, decoding into event blocks), no pipeline behind it. Files
// are built from the captured 4 KiB page fixture, repeated with rising page timestamps over two
// CPUs, as v6, v7 uncompressed and v7 zstd (what trace-cmd extract writes). Median of 3 runs.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplaySource } from '../../agent/src/source/replay';
import { fixtureDatSpec, writeTraceDat } from '../support/trace-dat-writer';
import { tracefsFixture } from '../support/uprobe-records';
import { report } from './bench-util';

const RUNS = 3;
const PAGES_PER_CPU = Number(process.env.BENCH_REPLAY_PAGES ?? 4000);

function cpuData(cpu: number): Buffer {
  const page = readFileSync(tracefsFixture('smmu-4k.page'));
  const out = Buffer.alloc(page.length * PAGES_PER_CPU);
  const t0 = page.readBigUInt64LE(0);
  for (let i = 0; i < PAGES_PER_CPU; i++) {
    page.copy(out, i * page.length);
    // 1 ms a page, the CPUs interleaved: the replay merges them by time.
    out.writeBigUInt64LE(t0 + BigInt(2 * i + cpu) * 1_000_000n, i * page.length);
  }
  return out;
}

async function replayOnce(file: string): Promise<{ events: number; perS: number }> {
  const t0 = process.hrtime.bigint();
  let events = 0;
  for await (const c of new ReplaySource({ input: file }).read(new AbortController().signal))
    events += c.events.count;
  return { events, perS: events / (Number(process.hrtime.bigint() - t0) / 1e9) };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'smmu-replay-bench-'));
  try {
    const spec = fixtureDatSpec([cpuData(0), cpuData(1)]);
    const kinds = [
      { tag: 'v6', version: 6 },
      { tag: 'v7', version: 7, compression: 'none' },
      { tag: 'v7_zstd', version: 7, compression: 'zstd' },
    ] as const;
    for (const k of kinds) {
      const file = join(tmp, `${k.tag}.dat`);
      const bytes = await writeTraceDat({ ...spec, ...k });
      writeFileSync(file, bytes);
      await replayOnce(file); // warm-up
      const runs: { events: number; perS: number }[] = [];
      for (let r = 0; r < RUNS; r++) runs.push(await replayOnce(file));
      runs.sort((a, b) => a.perS - b.perS);
      report(`replay_trace_dat_${k.tag}_events`, runs[0].events);
      report(`replay_trace_dat_${k.tag}_file_bytes`, bytes.length);
      report(`replay_trace_dat_${k.tag}_events_per_s`, runs[Math.floor(RUNS / 2)].perS);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
