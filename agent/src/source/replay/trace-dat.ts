// trace-cmd's trace.dat (file versions 6 and 7, v7 sections uncompressed or compressed with
// zstd or zlib): metadata from dat-header.ts, then each flyrecord buffer's per-CPU pages through
// the same page replay as raw dumps. The header_page and format files come from the file; the
// sub-buffer size is the file's page size (v7: per buffer). Compressed CPU data is inflated
// into temporary files first (removed afterwards), so it needs disk for its uncompressed size.
//
// Time: with a DATE option (trace-cmd record --date) a record's wall time is its timestamp +
// DATE (+ OFFSET), as `trace-cmd report` prints it. Without one, the file's mtime is taken as the
// wall time of the latest page timestamp in the file (trace-cmd wrote the file after the last
// page), and timestamps keep their distances exactly.
import { closeSync, fstatSync, openSync } from 'node:fs';
import type { SourceChunk } from '../source';
import { type PageLayout, parseEventFormat, parseHeaderPage, withDataSize } from '../tracefs/format';
import { DatError, DatFile } from './dat-bytes';
import { type InflatedCpu, inflateCpuData } from './dat-compress';
import { type DatInfo, MAGIC, readDatInfo } from './dat-header';
import { type CpuPages, lastPageTimestamp, pageReplay } from './page-replay';
import { familyFor, type ReplayContext } from './replay-context';

export function isTraceDat(head: Buffer): boolean {
  return head.length >= MAGIC.length && head.subarray(0, MAGIC.length).equals(MAGIC);
}

interface Run {
  layout: PageLayout;
  cpus: CpuPages[];
}

export async function* traceDatReplay(ctx: ReplayContext, signal: AbortSignal): AsyncGenerator<SourceChunk> {
  const fd = openSync(ctx.input, 'r');
  const file = new DatFile(fd, fstatSync(fd).size, ctx.input);
  const inflated: InflatedCpu[] = [];
  try {
    const info = await readDatInfo(file);
    for (const what of info.ignored)
      ctx.warnOnce(`ignored:${what}`, `${ctx.input}: option ${what} not applied`);
    addTargets(ctx, info);
    const base = layoutOf(file, info.headerPage);
    const runs: Run[] = [];
    for (const b of info.buffers) {
      if (b.cpus.length === 0) continue;
      const layout = layoutOf(file, info.headerPage, b.pageSize, base);
      const cpus: CpuPages[] = [];
      for (const c of b.cpus) {
        if (c.size === 0) continue;
        const what = `buffer "${b.name}" CPU ${c.cpu} data`;
        if (b.compressed) {
          const z = await inflateCpuData(file, info.compression, c.offset, c.size, what);
          inflated.push(z);
          cpus.push({ cpu: c.cpu, fd: z.fd, start: 0, end: z.size });
        } else {
          file.check(c.offset, c.size, what);
          cpus.push({ cpu: c.cpu, fd, start: c.offset, end: c.offset + c.size });
        }
      }
      runs.push({ layout, cpus });
    }
    const offsetNs = wallOffset(file, info, runs);
    for (const r of runs) {
      if (signal.aborted) break;
      yield* pageReplay(ctx, r.layout, r.cpus, offsetNs, signal);
    }
  } catch (err) {
    if (err instanceof DatError)
      throw new Error(err.message.startsWith(ctx.input) ? err.message : `${ctx.input}: ${err.message}`);
    throw err;
  } finally {
    for (const z of inflated) z.remove();
    closeSync(fd);
  }
}

/** A target per format file whose event has a decoder (a capture carries hundreds of others). */
function addTargets(ctx: ReplayContext, info: DatInfo): void {
  for (const [event, text] of info.formats) {
    if (!familyFor(event)) continue;
    try {
      ctx.addTarget(event, parseEventFormat(text));
    } catch (err) {
      throw new DatError(`format of ${event}: ${(err as Error).message}`);
    }
  }
  if (ctx.targets.length === 0)
    throw new DatError('no format of an event with a decoder in the file (see --help)');
}

function layoutOf(file: DatFile, headerPage: string, pageSize?: number, base?: PageLayout): PageLayout {
  try {
    const l = base ?? parseHeaderPage(headerPage);
    return pageSize === undefined ? l : withDataSize(l, pageSize);
  } catch (err) {
    throw new DatError(`${file.path}: ${(err as Error).message}`);
  }
}

/** wall - trace clock, ns (see the top of this file). */
function wallOffset(file: DatFile, info: DatInfo, runs: readonly Run[]): bigint {
  if (info.dateNs !== undefined) return info.dateNs + info.offsetNs;
  let last = -1n;
  for (const r of runs) {
    const t = lastPageTimestamp(r.layout, r.cpus);
    if (t > last) last = t;
  }
  return last < 0n ? 0n : fstatSync(file.fd, { bigint: true }).mtimeNs - last;
}
