// Text reader (fallback): the instance's trace_pipe, which the kernel has already merged
// across CPUs in time order and formatted with each event's print format. Costs more kernel
// CPU than the binary pages (formatting) and more of ours (parsing), and its timestamps have
// microsecond resolution; useful where trace_pipe_raw cannot be used or to cross-check.
//
// Line layout (default trace_options; the irq-info and record-tgid columns are optional):
//   "  <comm>-<pid>  (<tgid>) [<cpu>] <flags> <secs>.<usecs>: <event>: <body>"
// Losses appear as "CPU:<n> [LOST <count> EVENTS]" lines.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { errnoCode, fsFailure } from './errors';
import { splitEvent } from './instance';
import type { DecodeTarget, ReadContext, RoundResult, TracefsReader } from './reader';

const LINE =
  /^\s*(.*)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:\S+\s+)?(\d+)\.(\d+):\s+([^:\s]+):\s?(.*)$/;
const LOST = /^CPU:(\d+) \[LOST (\d+) EVENTS\]/;

export interface ParsedLine {
  cpu: number;
  /** Trace-clock timestamp in ns (microsecond resolution). */
  tsNs: bigint;
  /** Event name without the group. */
  event: string;
  body: string;
}

/** Parses one trace_pipe line; undefined for lines that are not event lines. */
export function parseTraceLine(line: string): ParsedLine | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const frac = m[5].length >= 9 ? m[5].slice(0, 9) : m[5].padEnd(9, '0');
  return { cpu: Number(m[3]), tsNs: BigInt(m[4]) * 1_000_000_000n + BigInt(frac), event: m[6], body: m[7] };
}

/** The count of a "CPU:n [LOST count EVENTS]" line, or undefined. */
export function parseLostLine(line: string): number | undefined {
  const m = LOST.exec(line);
  return m ? Number(m[2]) : undefined;
}

export class TextReader implements TracefsReader {
  readonly mode = 'text';
  private fd: number | undefined;
  private readonly buf = Buffer.allocUnsafe(1 << 18);
  private readonly utf8 = new StringDecoder('utf8');
  private partial = '';
  private readonly byName = new Map<string, DecodeTarget>();

  constructor(
    private readonly ctx: ReadContext,
    /** Bytes read per round at most. */
    private readonly maxBytesPerRound = 16 << 20,
  ) {
    for (const t of ctx.targets) this.byName.set(splitEvent(t.event)[1], t);
  }

  open(): void {
    const path = join(this.ctx.instance.path, 'trace_pipe');
    try {
      this.fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw fsFailure(err, 'open', path);
    }
    for (const cpu of this.ctx.instance.cpus())
      this.ctx.losses.updateStats(cpu, this.ctx.instance.stats(cpu));
  }

  refreshCpus(): void {}

  cpus(): readonly number[] {
    return this.ctx.instance.cpus();
  }

  round(baseNs: bigint): RoundResult {
    let records = 0;
    let total = 0;
    let drained = true;
    while (this.fd !== undefined) {
      if (total >= this.maxBytesPerRound) {
        drained = false;
        break;
      }
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EAGAIN') break;
        if (code === 'EINTR') continue;
        throw fsFailure(err, 'read', join(this.ctx.instance.path, 'trace_pipe'));
      }
      if (n === 0) break;
      total += n;
      const text = this.partial + this.utf8.write(this.buf.subarray(0, n));
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) records += this.line(line, baseNs);
    }
    return { records, drained, cutoffOffsetNs: Number.POSITIVE_INFINITY };
  }

  private line(line: string, baseNs: bigint): number {
    if (line.length === 0) return 0;
    const p = parseTraceLine(line);
    const ctx = this.ctx;
    if (!p) {
      const lost = parseLostLine(line);
      if (lost !== undefined) ctx.losses.addMissed(lost);
      else {
        ctx.losses.addMalformed();
        ctx.warnOnce('text-line', `unparsable trace_pipe line counted and skipped: ${line.slice(0, 200)}`);
      }
      return 0;
    }
    const t = this.byName.get(p.event);
    if (!t) {
      ctx.losses.addMalformed();
      ctx.warnOnce(
        `text-event:${p.event}`,
        `trace_pipe line of unexpected event ${p.event}: counted, skipped`,
      );
      return 0;
    }
    const offset = Number(p.tsNs + ctx.clockOffsetNs - baseNs);
    if (t.decoder.decodeText(p.body, t.staging.builder, offset)) return 1;
    ctx.losses.addMalformed();
    ctx.warnOnce(
      `text-bad:${t.event}`,
      `malformed ${t.event} line counted and skipped: ${p.body.slice(0, 200)}`,
    );
    return 0;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
