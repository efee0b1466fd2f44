// Binary reader: per-CPU per_cpu/cpuN/trace_pipe_raw, one sub-buffer per read(2).
//
// Node has no poll(2) on arbitrary files (libuv's uv_poll is not exposed, and net.Socket
// refuses a tracefs fd), and a blocking read per CPU would pin one libuv pool thread per CPU
// (4 by default). So the fds are opened O_NONBLOCK and read synchronously from a timer loop
// owned by the source: a read either returns a whole sub-buffer (a partly filled one too:
// the kernel copies out the committed records) or fails with EAGAIN when the CPU's buffer is
// empty, which costs one syscall. The loop's interval adapts (see source.ts); buffer_percent
// matters only for blocking readers and splice, not for this one.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { errnoCode } from './errors';
import type { PageLayout } from './format';
import { PageCursor } from './page';
import type { DecodeTarget, ReadContext, RoundResult, TracefsReader } from './reader';

export class RawReader implements TracefsReader {
  readonly mode = 'raw';
  private readonly fds = new Map<number, number>();
  private readonly cursor: PageCursor;
  private readonly page: Buffer;
  private readonly byType: (DecodeTarget | undefined)[] = [];
  /** Offset (ns after the round's base) of the last record parse() saw. */
  private lastOffset = 0;

  constructor(
    private readonly ctx: ReadContext,
    layout: PageLayout,
    /** Sub-buffers read per CPU per round at most, so one busy CPU cannot starve the rest. */
    private readonly maxPagesPerCpu = 256,
  ) {
    this.cursor = new PageCursor(layout);
    this.page = Buffer.allocUnsafeSlow(layout.subbufSize);
    for (const t of ctx.targets) this.byType[t.typeId] = t;
  }

  open(): void {
    this.refreshCpus();
  }

  refreshCpus(): void {
    for (const cpu of this.ctx.instance.cpus()) {
      if (this.fds.has(cpu)) continue;
      const path = this.ctx.instance.cpuFile(cpu, 'trace_pipe_raw');
      try {
        this.fds.set(cpu, openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
        this.ctx.losses.updateStats(cpu, this.ctx.instance.stats(cpu));
      } catch (err) {
        this.ctx.warnOnce(`open:${cpu}`, `cannot open ${path}: ${String(err)}; CPU ${cpu} is not read`);
      }
    }
  }

  cpus(): readonly number[] {
    return [...this.fds.keys()];
  }

  round(baseNs: bigint, settledWallNs: bigint | undefined): RoundResult {
    let cutoff = settledWallNs === undefined ? Number.POSITIVE_INFINITY : Number(settledWallNs - baseNs);
    let records = 0;
    let drained = true;
    for (const [cpu, fd] of this.fds) {
      let pages = 0;
      let last = Number.NEGATIVE_INFINITY;
      for (;;) {
        if (pages >= this.maxPagesPerCpu) {
          drained = false;
          // Unread records of this CPU are newer than `last`: nothing after it is settled.
          if (last + 1 < cutoff) cutoff = last + 1;
          break;
        }
        let n: number;
        try {
          n = readSync(fd, this.page, 0, this.page.length, null);
        } catch (err) {
          const code = errnoCode(err);
          if (code === 'EAGAIN') break;
          if (code === 'EINTR') continue;
          this.ctx.warnOnce(`read:${cpu}`, `reading CPU ${cpu} failed: ${String(err)}; no longer read`);
          closeSync(fd);
          this.fds.delete(cpu);
          break;
        }
        if (n === 0) break;
        pages++;
        const r = this.parse(cpu, n, baseNs);
        records += r;
        if (this.lastOffset > last) last = this.lastOffset;
      }
    }
    return { records, drained, cutoffOffsetNs: cutoff };
  }

  /** Decodes one sub-buffer; returns the records decoded and sets lastOffset. */
  private parse(cpu: number, length: number, baseNs: bigint): number {
    const c = this.cursor;
    const n = decodePage(c, this.page, length, this.byType, this.ctx, cpu, this.ctx.clockOffsetNs - baseNs);
    this.lastOffset = Number(c.timestamp + this.ctx.clockOffsetNs - baseNs) + c.delta;
    return n;
  }

  close(): void {
    for (const fd of this.fds.values()) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.fds.clear();
  }
}

/**
 * Decodes one sub-buffer page[0, length) into its targets (by type id) at offsets
 * page time + `shiftNs` (trace clock -> the builders' base); counts what the page says was
 * missed and every malformed record. Returns the records decoded.
 */
export function decodePage(
  c: PageCursor,
  page: Buffer,
  length: number,
  byType: readonly (DecodeTarget | undefined)[],
  ctx: Pick<ReadContext, 'losses' | 'warnOnce'>,
  cpu: number,
  shiftNs: bigint,
): number {
  if (!c.load(page, length)) {
    ctx.losses.addMalformed();
    ctx.warnOnce('page', `unusable sub-buffer from CPU ${cpu}: ${c.error}`);
    return 0;
  }
  if (c.missedEvents) ctx.losses.addMissed(c.missedCount);
  const pageOffset = Number(c.timestamp + shiftNs);
  let n = 0;
  while (c.next()) {
    const t = byType[c.typeId];
    if (t === undefined) {
      ctx.losses.addMalformed();
      ctx.warnOnce(
        `type:${c.typeId}`,
        `record of unknown type id ${c.typeId} on CPU ${cpu}: counted, skipped`,
      );
      continue;
    }
    if (
      t.decoder.decodeBinary(c.bytes, c.words, c.offset, c.length, t.staging.builder, pageOffset + c.delta)
    ) {
      n++;
    } else {
      ctx.losses.addMalformed();
      ctx.warnOnce(
        `bad:${t.event}`,
        `malformed ${t.event} record (${c.length} bytes) on CPU ${cpu}: counted, skipped`,
      );
    }
  }
  if (c.error !== undefined) {
    ctx.losses.addMalformed();
    ctx.warnOnce('record', `malformed sub-buffer from CPU ${cpu}: ${c.error}; rest of the page skipped`);
  }
  return n;
}
