// The segment spool on a 2 MiB tmpfs (mounted here, unmounted also on failure; needs root):
// when the disk is full every append still resolves, each refused batch is owed as
// LOSS_REASON_SPOOL_WRITE_FAILED, acknowledgements free the space (the active file included),
// writing resumes, the owed losses are reported by the next batch, and after a reopen nothing
// acknowledged is resent. Counted exactly: delivered + pending + owed == generated.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SegmentSpool } from '../../agent/src/spool/segment-spool';
import { losses, totalLosses } from '../../agent/src/spool/spool';

const BATCH_BYTES = 16 << 10;

test('disk full: appends keep resolving, refused batches are owed, acks give the space back', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to mount a tmpfs');
    return;
  }
  const mnt = mkdtempSync(join(tmpdir(), 'spool-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  try {
    const options = {
      dir: join(mnt, 'spool'),
      budgetBytes: 64 << 20,
      segmentBytes: 256 << 10,
      metaFlushMs: 60_000,
    };
    const s = await SegmentSpool.open(options);
    let generated = 0;
    let delivered = 0;
    const append = async () => {
      const sequence = s.nextSequence();
      const reports = s.owed();
      await s.append({
        sequence,
        bytes: Buffer.alloc(BATCH_BYTES, sequence & 0xff),
        events: 10,
        sourceOffset: 0,
        reports,
      });
      generated += 10;
    };
    const owedNow = () => totalLosses(s.owed());
    const pendingWeight = () => s.pending().reduce((n, e) => n + e.events + totalLosses(e.reports), 0);

    // 2 MiB hold about 120 batches of 16 KiB: 200 appends must hit the limit.
    for (let i = 0; i < 200; i++) await append();
    assert.ok(s.stats.failedWrites > 0, 'the disk filled up');
    assert.equal(s.pendingCount() + s.stats.failedWrites, 200);
    assert.deepEqual(s.owed(), losses({ writeFailed: 10 * s.stats.failedWrites }));
    assert.equal(pendingWeight() + owedNow(), generated, 'pending + owed == generated');

    // The collector acknowledges everything: the files go, the active one too.
    for (const e of s.pending()) {
      delivered += e.events + totalLosses(e.reports);
      s.ack(e.sequence);
    }
    await s.flush();
    assert.deepEqual(
      readdirSync(options.dir).filter((f) => f.endsWith('.seg')),
      [],
      'space given back',
    );
    const failed = s.stats.failedWrites;
    await append(); // reports what the full disk cost
    assert.equal(s.stats.failedWrites, failed, 'writing resumed');
    assert.deepEqual(s.owed(), losses());
    assert.deepEqual(s.pending()[0].reports, losses({ writeFailed: 10 * failed }));
    assert.equal(delivered + pendingWeight() + owedNow(), generated);
    const last = s.pending()[0].sequence;
    await s.close();

    const r = await SegmentSpool.open(options);
    assert.deepEqual(
      r.pending().map((e) => e.sequence),
      [last],
      'acknowledged batches are not resent after a restart',
    );
    assert.deepEqual(r.owed(), losses());
    await r.close();
  } finally {
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});
