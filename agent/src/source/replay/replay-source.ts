// ReplaySource: SMMU fault records from a capture of the kernel's ring buffer, read once,
// through the same decoders as the live tracefs source. The kind of capture is detected by
// content: a directory with header_page = raw per-CPU dumps (raw-dir.ts); a file starting with
// trace-cmd's magic = trace.dat (trace-dat.ts); anything else = trace_pipe / `trace` text
// (text-replay.ts). Input "-" is stdin; a FIFO works like stdin.
//
// Resumable for regular files and directories: the same capture decodes to the same event
// stream, so a restart skips the events its spool already holds (sourceOffset), and the
// losses reported with them. Pacing: `rate` events/s, 0 (default) as fast as the pipeline
// takes them.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EventBlock, WORDS_PER_RECORD } from '../../../../proto/event-block';
import { SourceKind } from '../../../../proto/index';
import type { EventSource, SourceChunk } from '../source';
import { PRIMARY_EVENT } from '../tracefs/events/index';
import type { TracefsLog } from '../tracefs/reader';
import { isRawDir, rawDirReplay } from './raw-dir';
import { ReplayContext } from './replay-context';
import { textReplay } from './text-replay';
import { isTraceDat, traceDatReplay } from './trace-dat';

export interface ReplaySourceOptions {
  /** Capture: a file, a directory of raw dumps, a FIFO, or "-" for stdin. */
  input: string;
  /** Events/s; 0 = unpaced. */
  rate?: number;
  log?: TracefsLog;
}

export type ReplayKind = 'text' | 'raw-dir' | 'trace-dat';

/** What kind of capture `input` is, by content. */
export function detectReplayKind(input: string): ReplayKind {
  if (input === '-') return 'text';
  const st = statSync(input);
  if (st.isDirectory()) {
    if (isRawDir(input)) return 'raw-dir';
    throw new Error(`${input}: a directory without header_page is no raw dump (see --help)`);
  }
  if (!st.isFile()) return 'text'; // FIFO, character device: a stream, read once
  const fd = openSync(input, 'r');
  try {
    const head = Buffer.alloc(16);
    const n = readSync(fd, head, 0, head.length, 0);
    return isTraceDat(head.subarray(0, n)) ? 'trace-dat' : 'text';
  } finally {
    closeSync(fd);
  }
}

export class ReplaySource implements EventSource {
  readonly kind = SourceKind.SOURCE_KIND_REPLAY;
  readonly resumable: boolean;
  readonly replayKind: ReplayKind;
  private first: string | undefined;

  constructor(private readonly opts: ReplaySourceOptions) {
    this.replayKind = detectReplayKind(opts.input);
    this.resumable = opts.input !== '-' && (this.replayKind !== 'text' || statSync(opts.input).isFile());
  }

  get event(): string {
    return this.first ?? PRIMARY_EVENT;
  }

  async *read(signal: AbortSignal, resumeAt = 0): AsyncGenerator<SourceChunk> {
    const ctx = new ReplayContext(this.opts.input, (m) => this.opts.log?.warn(m));
    const chunks =
      this.replayKind === 'text'
        ? textReplay(ctx, signal)
        : this.replayKind === 'raw-dir'
          ? rawDirReplay(ctx, signal)
          : traceDatReplay(ctx, signal);
    const rate = this.opts.rate ?? 0;
    const t0 = Date.now();
    let seen = 0;
    let sent = 0;
    for await (const chunk of chunks) {
      if (signal.aborted) break;
      this.first ??= chunk.event;
      const n = chunk.events.count;
      const before = seen;
      seen += n;
      if (before < resumeAt) {
        // Sent before the restart, with the losses counted up to them.
        const skip = Math.min(resumeAt - before, n);
        if (skip === n) continue;
        yield { events: dropFirst(chunk.events, skip), event: chunk.event };
        sent += n - skip;
      } else {
        yield chunk;
        sent += n;
      }
      if (rate > 0) {
        const due = t0 + (sent / rate) * 1000;
        if (due > Date.now()) await sleep(due - Date.now(), undefined, { signal }).catch(() => {});
      } else if (this.replayKind !== 'text') {
        await sleep(0); // synchronous page readers: let the pipeline run between chunks
      }
    }
  }
}

/** The block without its first k events (views, no copy). */
function dropFirst(b: EventBlock, k: number): EventBlock {
  return {
    count: b.count - k,
    baseNs: b.baseNs,
    offsetNs: b.offsetNs.subarray(k),
    words: b.words.subarray(k * WORDS_PER_RECORD),
    smmuIndex: b.smmuIndex.subarray(k),
    smmuNames: b.smmuNames,
  };
}
