// Child process for the spool crash test: opens a segment spool (fsync 'always') and appends
// batches in a loop as the pipeline does (each reports what the spool owes), acknowledging some,
// until it is killed. A journal line is written before each step ("I seq rd": about to append,
// "K seq": about to ack) and after each append resolves ("A seq"), so the test can tell what
// must have survived. Batch contents are derived from the sequence number alone.
//   node spool-writer.js <dir> <journal> <seed>
import { closeSync, openSync, writeSync } from 'node:fs';
import { SegmentSpool } from '../../agent/src/spool/segment-spool';
import { losses } from '../../agent/src/spool/spool';

export const CRASH_BUDGET_BYTES = 48 << 10;
export const CRASH_SEGMENT_BYTES = 16 << 10;
/** A bound on each run in case nobody kills it. */
const MAX_BATCHES = 100_000;
const MAX_MS = 20_000;

export const eventsFor = (seq: number): number => 1 + ((seq * 7919) % 97);
export const offsetFor = (seq: number): number => seq * 100;

export function payloadFor(seq: number): Buffer {
  const b = Buffer.alloc(1000 + ((seq * 37) % 3000));
  b.writeUInt32LE(seq, 0);
  for (let i = 4; i < b.length; i++) b[i] = (seq + i) & 0xff;
  return b;
}

export function openCrashSpool(dir: string, metaFlushMs = 50): Promise<SegmentSpool> {
  return SegmentSpool.open({
    dir,
    budgetBytes: CRASH_BUDGET_BYTES,
    segmentBytes: CRASH_SEGMENT_BYTES,
    fsync: 'always',
    metaFlushMs,
  });
}

async function main(): Promise<void> {
  const [dir, journalPath, seedArg] = process.argv.slice(2);
  let seed = Number(seedArg) >>> 0 || 1;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  const journal = openSync(journalPath, 'a');
  const note = (line: string) => writeSync(journal, `${line}\n`);
  const spool = await openCrashSpool(dir);
  note(`O ${spool.nextSequence()} ${spool.owed().full}`);
  const deadline = Date.now() + MAX_MS;
  for (let i = 0; i < MAX_BATCHES && Date.now() < deadline; i++) {
    const seq = spool.nextSequence();
    const owed = spool.owed().full;
    const rd = rnd() < 0.8 ? owed : Math.floor(rnd() * (owed + 1));
    note(`I ${seq} ${rd}`);
    await spool.append({
      sequence: seq,
      bytes: payloadFor(seq),
      events: eventsFor(seq),
      sourceOffset: offsetFor(seq),
      reports: losses({ full: rd }),
    });
    note(`A ${seq}`);
    // Fewer acks than appends, mostly of the oldest batches: the budget keeps dropping.
    const p = spool.pending();
    if (p.length > 0 && rnd() < 0.55) {
      const e = p[rnd() < 0.7 ? 0 : Math.floor(rnd() * p.length)];
      note(`K ${e.sequence}`);
      spool.ack(e.sequence);
    }
  }
  await spool.close();
  closeSync(journal);
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}
