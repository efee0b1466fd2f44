// trace-cmd's trace.dat (file format versions 6 and 7).
import type { SourceChunk } from '../source';
import type { ReplayContext } from './replay-context';

/** "\x17\x08\x44tracing": the first 10 bytes of every trace.dat. */
const MAGIC = Buffer.from([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]);

export function isTraceDat(head: Buffer): boolean {
  return head.length >= MAGIC.length && head.subarray(0, MAGIC.length).equals(MAGIC);
}

export function* traceDatReplay(ctx: ReplayContext, _signal: AbortSignal): Generator<SourceChunk> {
  throw new Error(`${ctx.input}: trace.dat files are not read yet`);
}
