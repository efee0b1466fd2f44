// A directory of raw per-CPU dumps, e.g. made by
//   for c in /sys/kernel/tracing/per_cpu/cpu*; do cat $c/trace_pipe_raw > DIR/$(basename $c); done
//   cp /sys/kernel/tracing/events/header_page DIR/
//   mkdir -p DIR/events/G/E && cp /sys/kernel/tracing/events/G/E/format DIR/events/G/E/
// Layout read: DIR/header_page (or DIR/events/header_page); per CPU DIR/cpuN, DIR/cpuN.raw or
// DIR/per_cpu/cpuN/trace_pipe_raw; formats DIR/events/<group>/<event>/format or
// DIR/<group>:<event>.format. A trailing partial page is parsed as far as it goes.
//
// Time: the newest mtime of the per-CPU files is taken as the wall time of the latest page
// timestamp found (the dump ended when the last page was written).
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SourceChunk } from '../source';
import { parseEventFormat, parseHeaderPage } from '../tracefs/format';
import { type CpuPages, lastPageTimestamp, pageReplay } from './page-replay';
import type { ReplayContext } from './replay-context';

const CPU_FILE = /^cpu(\d+)(\.raw)?$/;

/** True when `dir` looks like a raw dump directory (has header_page). */
export function isRawDir(dir: string): boolean {
  return headerPagePath(dir) !== undefined;
}

function headerPagePath(dir: string): string | undefined {
  return [join(dir, 'header_page'), join(dir, 'events', 'header_page')].find((p) => existsSync(p));
}

/** Every format file in the dump, as ["group:event", path]. */
function formatFiles(dir: string): [string, string][] {
  const out: [string, string][] = [];
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.format') && f.includes(':')) out.push([f.slice(0, -'.format'.length), join(dir, f)]);
  }
  const events = join(dir, 'events');
  if (existsSync(events) && statSync(events).isDirectory()) {
    for (const g of readdirSync(events, { withFileTypes: true })) {
      if (!g.isDirectory()) continue;
      for (const e of readdirSync(join(events, g.name), { withFileTypes: true })) {
        const p = join(events, g.name, e.name, 'format');
        if (e.isDirectory() && existsSync(p)) out.push([`${g.name}:${e.name}`, p]);
      }
    }
  }
  return out;
}

function cpuFiles(dir: string): [number, string][] {
  const out: [number, string][] = [];
  for (const f of readdirSync(dir)) {
    const m = CPU_FILE.exec(f);
    if (m) out.push([Number(m[1]), join(dir, f)]);
  }
  const perCpu = join(dir, 'per_cpu');
  if (existsSync(perCpu)) {
    for (const f of readdirSync(perCpu)) {
      const m = CPU_FILE.exec(f);
      const p = join(perCpu, f, 'trace_pipe_raw');
      if (m && existsSync(p)) out.push([Number(m[1]), p]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]);
}

export function* rawDirReplay(ctx: ReplayContext, signal: AbortSignal): Generator<SourceChunk> {
  const dir = ctx.input;
  const hp = headerPagePath(dir) as string;
  const layout = parseHeaderPage(readFileSync(hp, 'utf8'));
  for (const [event, path] of formatFiles(dir)) {
    let format: ReturnType<typeof parseEventFormat>;
    try {
      format = parseEventFormat(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new Error(`${path}: ${(err as Error).message}`);
    }
    if (!ctx.addTarget(event, format))
      ctx.warnOnce(`skip:${event}`, `no decoder for ${event}: its records are counted as malformed`);
  }
  if (ctx.targets.length === 0)
    throw new Error(`${dir}: no format file of an event with a decoder (see --help)`);
  const files = cpuFiles(dir);
  if (files.length === 0)
    throw new Error(`${dir}: no per-CPU dump (cpuN, cpuN.raw or per_cpu/cpuN/trace_pipe_raw)`);
  const cpus: CpuPages[] = [];
  let mtimeNs = 0n;
  try {
    for (const [cpu, path] of files) {
      const st = statSync(path, { bigint: true });
      if (st.mtimeNs > mtimeNs) mtimeNs = st.mtimeNs;
      cpus.push({ cpu, fd: openSync(path, 'r'), start: 0, end: Number(st.size) });
    }
    const last = lastPageTimestamp(layout, cpus);
    yield* pageReplay(ctx, layout, cpus, last < 0n ? 0n : mtimeNs - last, signal);
  } finally {
    for (const c of cpus) closeSync(c.fd);
  }
}
