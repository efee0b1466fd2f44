// kill -9 against the segment spool: a child process appends and acknowledges batches in a loop
// (fsync 'always') and is killed at random moments, five times, recovering each time from what
// the previous one left. After every kill the test opens a copy of the directory and checks that
// no batch whose append resolved is lost, no sequence is repeated or skipped, sourceOffset is the
// last durable batch's, and, exactly, that every event is in a batch still pending, in a batch
// acknowledged, or in a dropped batch whose events the spool owes or a later batch reported.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CRASH_BUDGET_BYTES,
  CRASH_SEGMENT_BYTES,
  eventsFor,
  offsetFor,
  openCrashSpool,
  payloadFor,
} from '../support/spool-writer';

const KILLS = 5;
const WRITER = join(__dirname, '..', 'support', 'spool-writer.js');
const scratch = mkdtempSync(join(tmpdir(), 'spool-crash-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Journal {
  opened?: { next: number; dropped: number };
  intents: Map<number, number>; // seq -> reports.full
  appended: number[];
  acks: Set<number>;
}

function readJournal(path: string): Journal {
  const j: Journal = { intents: new Map(), appended: [], acks: new Set() };
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return j; // killed before it opened the journal
  }
  for (const line of text.split('\n').slice(0, -1)) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'O') j.opened = { next: Number(a), dropped: Number(b) };
    else if (kind === 'I') j.intents.set(Number(a), Number(b));
    else if (kind === 'A') j.appended.push(Number(a));
    else if (kind === 'K') j.acks.add(Number(a));
  }
  return j;
}

async function runAndKill(dir: string, journal: string, seed: number, killAfterMs: number): Promise<void> {
  const child = spawn(process.execPath, [WRITER, dir, journal, String(seed)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const early = await Promise.race([exited.then(() => true), sleep(killAfterMs).then(() => false)]);
  assert.equal(early, false, `writer exited before it was killed: ${stderr}`);
  child.kill('SIGKILL');
  const code = await Promise.race([exited, sleep(5000).then(() => 'timeout')]);
  assert.equal(code, null, 'writer died of the signal');
}

test('segment spool survives kill -9 at random moments with exact accounting', async (t) => {
  const dir = join(scratch, 'spool');
  let seed = (Date.now() ^ process.pid) >>> 0;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  // What the previous recovery found: the next writer must start from exactly this.
  let pending = new Map<number, number>(); // seq -> reports.full, of batches still pending
  const rdOf = new Map<number, number>(); // every durable batch's reports.full
  let owed = 0;
  let next = 1;
  let epoch: number | undefined;
  const gone = new Map<number, 'acked' | 'dropped'>(); // batches no longer in the spool

  for (let run = 1; run <= KILLS; run++) {
    const journalPath = join(scratch, `journal-${run}`);
    const killAfter = 300 + Math.floor(rnd() * 1700);
    const writerSeed = Math.floor(rnd() * 2 ** 31);
    await runAndKill(dir, journalPath, writerSeed, killAfter);
    const j = readJournal(journalPath);
    const why = `run ${run} (writer seed ${writerSeed}, killed after ${killAfter} ms)`;
    if (j.opened)
      assert.deepEqual(j.opened, { next, dropped: owed }, `${why}: the writer recovered what the test did`);

    // The directory as the kill left it, opened on a copy so the next writer recovers it itself.
    const copy = join(scratch, `copy-${run}`);
    cpSync(dir, copy, { recursive: true });
    const s = await openCrashSpool(copy, 60_000);
    t.after(() => s.close());
    epoch ??= s.epoch;
    assert.equal(s.epoch, epoch, `${why}: epoch`);
    const newNext = s.nextSequence();

    // Sequences: consecutive, every resolved append durable, nothing appended out of thin air.
    const lastResolved = j.appended.at(-1) ?? next - 1;
    assert.ok(newNext - 1 === lastResolved || newNext - 1 === lastResolved + 1, `${why}: next ${newNext}`);
    for (let seq = next; seq < newNext; seq++) {
      const rd = j.intents.get(seq);
      assert.ok(rd !== undefined, `${why}: durable batch ${seq} was never appended`);
      rdOf.set(seq, rd);
    }
    if (newNext > 1) assert.equal(s.sourceOffset(), offsetFor(newNext - 1), `${why}: sourceOffset`);

    // Pending: oldest first, each batch intact, all from before or from this run.
    const now = new Map<number, number>();
    let prev = 0;
    for (const e of s.pending()) {
      assert.ok(e.sequence > prev, `${why}: pending order`);
      prev = e.sequence;
      assert.ok(
        pending.has(e.sequence) || (e.sequence >= next && e.sequence < newNext),
        `${why}: ${e.sequence}`,
      );
      assert.equal(e.events, eventsFor(e.sequence));
      assert.equal(e.sourceOffset, offsetFor(e.sequence));
      assert.equal(e.reports.full, rdOf.get(e.sequence));
      assert.ok(Buffer.from(e.bytes).equals(payloadFor(e.sequence)), `${why}: payload of ${e.sequence}`);
      now.set(e.sequence, e.reports.full);
    }

    // Whatever left the spool was acknowledged (the writer said so) or dropped, and every
    // dropped batch's events, and the report it carried, are owed again or reported since.
    const candidates = [...pending.keys()];
    for (let seq = next; seq < newNext; seq++) candidates.push(seq);
    let droppedOwed = 0;
    for (const seq of candidates) {
      if (now.has(seq)) continue;
      assert.ok(!gone.has(seq), `${why}: ${seq} left the spool twice`);
      if (j.acks.has(seq)) {
        gone.set(seq, 'acked');
        continue;
      }
      gone.set(seq, 'dropped');
      droppedOwed += eventsFor(seq) + (rdOf.get(seq) ?? 0);
    }
    let reportedNow = 0;
    for (let seq = next; seq < newNext; seq++) reportedNow += rdOf.get(seq) ?? 0;
    assert.equal(droppedOwed, s.owed().full - owed + reportedNow, `${why}: drop accounting`);

    const files = readdirSync(copy).filter((f) => f.endsWith('.seg'));
    const disk = files.reduce((n, f) => n + statSync(join(copy, f)).size, 0);
    assert.ok(disk <= CRASH_BUDGET_BYTES + CRASH_SEGMENT_BYTES, `${why}: ${disk} bytes on disk`);

    t.diagnostic(
      `${why}: next ${next} -> ${newNext}, resolved ${j.appended.length}, pending ${now.size}, owed ${s.owed().full}, cut ${s.stats.truncatedSegments}`,
    );
    pending = now;
    owed = s.owed().full;
    next = newNext;
  }

  // Exact arithmetic over all runs: every batch is pending, acknowledged or dropped (one of them),
  // and the events of the dropped ones are exactly those reported by the batches that were not
  // dropped plus those still owed.
  const events = { pending: 0, acked: 0, dropped: 0 };
  let reportsKept = 0;
  for (let seq = 1; seq < next; seq++) {
    const where = pending.has(seq) ? 'pending' : gone.get(seq);
    assert.ok(where !== undefined && !(pending.has(seq) && gone.has(seq)), `batch ${seq}: ${where}`);
    events[where] += eventsFor(seq);
    if (where !== 'dropped') reportsKept += rdOf.get(seq) ?? 0;
  }
  assert.equal(events.dropped, reportsKept + owed, 'lost events = reported + owed');
  const batches = [...gone.values()];
  t.diagnostic(`events ${JSON.stringify(events)}; owed ${owed}; batches ${next - 1}`);
  assert.ok(
    batches.filter((g) => g === 'acked').length > 10 && batches.includes('dropped'),
    `acks and drops exercised: ${JSON.stringify(events)}`,
  );

  // And the real directory, recovered once more, is where the last copy was.
  const final = await openCrashSpool(dir, 60_000);
  t.after(() => final.close());
  assert.equal(final.nextSequence(), next);
  assert.equal(final.owed().full, owed);
  assert.deepEqual(
    final.pending().map((e) => e.sequence),
    [...pending.keys()],
  );
});
