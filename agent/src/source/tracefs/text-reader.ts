// Text reader (fallback): the instance's trace_pipe, which the kernel has already merged
// across CPUs in time order and formatted with each event's print format. Costs more kernel
// CPU than the binary pages (formatting) and more of ours (parsing), and its timestamps have
// microsecond resolution; useful where trace_pipe_raw cannot be used or to cross-check.
//
// Lines are parsed as bytes by text-lines.ts (layout, losses and what is counted there).
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, fsFailure } from './errors';
import type { ReadContext, RoundResult, TracefsReader } from './reader';
import { LineBuffer, type LineFields, lostCount, splitLine, TraceTextParser } from './text-lines';

export interface ParsedLine {
  cpu: number;
  /** Trace-clock timestamp in ns. */
  tsNs: bigint;
  /** Event name without the group. */
  event: string;
  body: string;
}

/** Parses one trace_pipe line; undefined for lines that are not event lines. */
export function parseTraceLine(line: string): ParsedLine | undefined {
  const b = Buffer.from(line, 'utf8');
  const f = {} as LineFields;
  if (!splitLine(b, 0, b.length, f)) return undefined;
  return {
    cpu: f.cpu,
    tsNs: BigInt(f.secs) * 1_000_000_000n + BigInt(f.nanos),
    event: b.toString('utf8', f.eventStart, f.eventEnd),
    body: b.toString('utf8', f.bodyStart, f.bodyEnd),
  };
}

/** The count of a "CPU:n [LOST count EVENTS]" line, or undefined. */
export function parseLostLine(line: string): number | undefined {
  const b = Buffer.from(line, 'utf8');
  const n = lostCount(b, 0, b.length);
  return n < 0 ? undefined : n;
}

export class TextReader implements TracefsReader {
  readonly mode = 'text';
  private fd: number | undefined;
  private readonly parser: TraceTextParser;
  private readonly lines: LineBuffer;

  constructor(
    private readonly ctx: ReadContext,
    /** Bytes parsed per round at most: a round is one synchronous slice of the event loop. */
    private readonly maxBytesPerRound = 1 << 20,
  ) {
    this.parser = new TraceTextParser(ctx);
    this.lines = new LineBuffer(this.parser);
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
    const lines = this.lines;
    this.parser.setBase(baseNs - this.ctx.clockOffsetNs);
    while (this.fd !== undefined) {
      if (total >= this.maxBytesPerRound) {
        drained = false;
        break;
      }
      let n: number;
      try {
        n = readSync(this.fd, lines.buf, lines.carry, lines.free, null);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EAGAIN') break;
        if (code === 'EINTR') continue;
        throw fsFailure(err, 'read', join(this.ctx.instance.path, 'trace_pipe'));
      }
      if (n === 0) break;
      total += n;
      records += lines.parse(n);
    }
    return { records, drained, cutoffOffsetNs: Number.POSITIVE_INFINITY };
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
