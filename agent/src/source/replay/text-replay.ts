// Replay of trace_pipe / `trace` text: a file, stdin or a FIFO, read as a stream, parsed in
// bounded slices (one read of at most 256 KiB per chunk, so the event loop is never held for
// long) by the same byte parser as the live text reader.
//
// Time: text timestamps are trace-clock seconds. Those of a capture's clock that counts from
// boot (local, mono, boot: the usual ones) are mapped to wall time by one offset:
//   - a regular file: its mtime is taken as the wall time of its last record (read from the
//     file's tail first), as `cat trace_pipe > file` or `cp trace` leave it;
//   - stdin or a FIFO: the first record is taken to be "now".
// Timestamps of 10^9 s and more (a realtime/tai clock) are taken as wall time already.
import {
  closeSync,
  createReadStream,
  fstatSync,
  openSync,
  type ReadStream,
  readSync,
  statSync,
} from 'node:fs';
import type { SourceChunk } from '../source';
import type { DecodeTarget } from '../tracefs/reader';
import { LineBuffer, TraceTextParser } from '../tracefs/text-lines';
import { type ReplayContext, takeChunks } from './replay-context';

const TAIL_BYTES = 1 << 16;
/** Seconds from which a timestamp is taken as wall time (2001-09-09). */
export const WALL_CLOCK_SECONDS = 1e9;

/** Wall-clock ns minus trace-clock ns for a text capture whose first record is at `firstSecs`. */
function clockOffset(ctx: ReplayContext, parser: TraceTextParser, firstSecs: number): bigint {
  if (firstSecs >= WALL_CLOCK_SECONDS) return 0n;
  const tail = ctx.input === '-' ? undefined : lastSeconds(ctx.input, parser);
  if (tail) return tail.mtimeNs - tail.traceNs;
  return BigInt(Date.now()) * 1_000_000n - BigInt(firstSecs) * 1_000_000_000n;
}

/** The last record's trace-clock time in a regular file's tail, and the file's mtime. */
function lastSeconds(
  path: string,
  parser: TraceTextParser,
): { traceNs: bigint; mtimeNs: bigint } | undefined {
  // Never open a FIFO twice: its writer may be gone by then, and open(2) would block.
  if (!statSync(path).isFile()) return undefined;
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd, { bigint: true });
    const size = Number(st.size);
    const buf = Buffer.alloc(Math.min(size, TAIL_BYTES));
    const n = readSync(fd, buf, 0, buf.length, size - buf.length);
    const last = parser.lastTime(buf, 0, n);
    return last < 0n ? undefined : { traceNs: last, mtimeNs: st.mtimeNs };
  } finally {
    closeSync(fd);
  }
}

export async function* textReplay(ctx: ReplayContext, signal: AbortSignal): AsyncGenerator<SourceChunk> {
  const parser = new TraceTextParser({
    targets: [],
    losses: ctx.losses,
    warnOnce: ctx.warnOnce,
    resolve: (name): DecodeTarget | undefined => ctx.textTarget(name),
  });
  const lines = new LineBuffer(parser);
  const stream: ReadStream | NodeJS.ReadStream =
    ctx.input === '-' ? process.stdin : createReadStream(ctx.input, { highWaterMark: 1 << 18 });
  let offsetNs: bigint | undefined;
  let wallBase = 0n;
  try {
    for await (const data of stream as AsyncIterable<Buffer>) {
      if (signal.aborted) break;
      for (let at = 0; at < data.length; ) {
        const n = Math.min(lines.free, data.length - at);
        data.copy(lines.buf, lines.carry, at, at + n);
        at += n;
        // Time base of this slice: the whole second of its first record.
        const secs = parser.firstSeconds(lines.buf, 0, lines.carry + n);
        if (secs >= 0) {
          offsetNs ??= clockOffset(ctx, parser, secs);
          const traceBase = BigInt(secs) * 1_000_000_000n;
          parser.setBase(traceBase);
          wallBase = traceBase + offsetNs;
        }
        ctx.begin(wallBase);
        lines.parse(n);
        yield* takeChunks(ctx);
      }
    }
    ctx.begin(wallBase);
    lines.finish();
    yield* takeChunks(ctx);
  } finally {
    if (stream !== process.stdin) (stream as ReadStream).destroy();
  }
}
