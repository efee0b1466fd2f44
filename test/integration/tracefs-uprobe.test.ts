// The tracefs source against the running kernel. A uprobe on test/fixtures/uprobe/emit.c
// stands in for arm_smmu_v3:smmu_evtq_event (same fields, same names), so the records the
// source reads can be compared with the records the program emitted. Needs root, gcc and
// uprobes (CI runs it as root). Names are unique per run; everything is removed afterwards.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { TracefsError } from '../../agent/src/source/tracefs/errors';
import { PRIMARY_EVENT } from '../../agent/src/source/tracefs/events/index';
import { isTracefsRoot, mountTracefs, unmountTracefs } from '../../agent/src/source/tracefs/mount';
import { TracefsSource, type TracefsSourceOptions } from '../../agent/src/source/tracefs/tracefs-source';
import { type EventBlock, timestampNs, word64 } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { repoRoot } from '../support/paths';
import {
  addSmmuUprobe,
  buildEmitter,
  cleanup,
  emit,
  ensureTracefs,
  subbufSizeRefusal,
  trackInstance,
  uniqueSuffix,
} from '../support/uprobe';
import { expectedName, expectedRecord } from '../support/uprobe-records';

const run = promisify(execFile);
const NAMES = 'smmu0,arm-smmu-v3.1.auto,a-much-longer-smmu-device-name.example';

let root = '';
let emitter = '';
let event = '';

interface Collected {
  blocks: EventBlock[];
  events: Set<string | undefined>;
  count: number;
  lost: Map<LossReason, number>;
  warnings: string[];
}

/**
 * Reads `source` until `until(count)` holds or nothing arrived for `idleMs`, bounded by
 * `timeoutMs`; then aborts and takes what the source finishes with.
 */
async function collect(
  source: TracefsSource,
  opts: { until?: (n: number) => boolean; idleMs?: number; timeoutMs?: number },
): Promise<Omit<Collected, 'warnings'>> {
  const ac = new AbortController();
  const out = {
    blocks: [] as EventBlock[],
    events: new Set<string | undefined>(),
    count: 0,
    lost: new Map(),
  };
  let last = Date.now();
  const timeout = setTimeout(() => ac.abort(), opts.timeoutMs ?? 20_000);
  const idle = setInterval(() => {
    if (Date.now() - last > (opts.idleMs ?? 1000)) ac.abort();
  }, 50);
  try {
    for await (const c of source.read(ac.signal)) {
      last = Date.now();
      if (c.events.count > 0) {
        out.blocks.push(c.events);
        out.events.add(c.event);
      }
      out.count += c.events.count;
      for (const [r, n] of c.lost ?? []) out.lost.set(r, (out.lost.get(r) ?? 0) + n);
      if (opts.until?.(out.count)) ac.abort();
    }
  } finally {
    clearTimeout(timeout);
    clearInterval(idle);
  }
  return out;
}

function newSource(
  tag: string,
  extra: TracefsSourceOptions = {},
): { source: TracefsSource; warnings: string[] } {
  const warnings: string[] = [];
  const instance = trackInstance(root, `smmu-fleet-test-${tag}-${uniqueSuffix()}`);
  const source = new TracefsSource({
    events: [{ event, decoder: PRIMARY_EVENT }],
    instance,
    bufferSizeKb: 2048,
    pollMinMs: 5,
    log: { info() {}, warn: (m) => warnings.push(m) },
    ...extra,
  });
  return { source, warnings };
}

/** Asserts the blocks hold exactly records 0..n-1 of `seed`, in order, with rising timestamps. */
function assertExact(blocks: EventBlock[], n: number, seed: bigint, from: bigint, to: bigint): void {
  let i = 0;
  let prev = 0n;
  for (const b of blocks) {
    for (let k = 0; k < b.count; k++, i++) {
      const words = [0, 1, 2, 3].map((w) => word64(b, k, w));
      assert.deepEqual(words, expectedRecord(i, seed), `record ${i}`);
      assert.equal(b.smmuNames[b.smmuIndex[k]], expectedName(i, NAMES), `name of record ${i}`);
      const ts = timestampNs(b, k);
      assert.ok(ts >= prev, `timestamp of record ${i} goes back by ${prev - ts} ns`);
      assert.ok(
        ts >= from && ts <= to,
        `timestamp of record ${i} is ${ts - from} ns after the start, outside the run`,
      );
      prev = ts;
    }
  }
  assert.equal(i, n);
}

describe('tracefs source on the running kernel (uprobe stand-in for smmu_evtq_event)', () => {
  before(() => {
    root = ensureTracefs();
    emitter = buildEmitter();
    event = addSmmuUprobe(root, emitter, `arm_smmu_v3:smmu_evtq_event_${uniqueSuffix()}`);
  });
  after(() => cleanup());

  const exactCases = [
    { reader: 'raw', label: 'trace_pipe_raw' },
    { reader: 'text', label: 'trace_pipe' },
    { reader: 'raw', label: 'trace_pipe_raw with 64 KiB sub-buffers', subbufSizeKb: 64 },
  ] as const;
  for (const { reader, label, ...extra } of exactCases) {
    it(`reads every emitted record exactly through ${label}`, {
      timeout: 60_000,
    }, async (t) => {
      const refused = 'subbufSizeKb' in extra ? subbufSizeRefusal(root) : undefined;
      if (refused) return t.skip(refused);
      const n = 5000;
      const { source, warnings } = newSource(reader, { reader, ...extra });
      await source.open();
      const path = source.instancePath;
      assert.ok(path && existsSync(path));
      // Wall-clock window of the run; text timestamps are truncated to microseconds.
      const from = BigInt(Date.now() - 2) * 1_000_000n;
      await emit(emitter, { count: n, names: NAMES, seed: 0x7700n });
      const to = BigInt(Date.now() + 2) * 1_000_000n;
      const got = await collect(source, { until: (c) => c >= n, idleMs: 2000 });
      assert.deepEqual([...got.events], [event]);
      assert.equal(got.count, n);
      assertExact(got.blocks, n, 0x7700n, from, to);
      assert.deepEqual(got.lost, new Map());
      assert.deepEqual(warnings, []);
      assert.equal(existsSync(path), false, 'instance removed on close');
    });
  }

  it('says plainly when the kernel refuses the sub-buffer size', { timeout: 30_000 }, async (t) => {
    const refused = subbufSizeRefusal(root);
    if (!refused?.startsWith('the kernel refuses'))
      return t.skip('this kernel lets the sub-buffer size change');
    const { source } = newSource('subbuf-refused', { reader: 'raw', subbufSizeKb: 64 });
    await assert.rejects(source.open(), (e: unknown) => {
      assert.ok(e instanceof TracefsError);
      assert.equal(e.code, 'NOT_PERMITTED');
      assert.match(
        e.message,
        /the kernel refused a 64 KiB sub-buffer size .* though this agent runs as root/,
      );
      assert.match(e.hint, /leave the sub-buffer size unset/);
      return true;
    });
    await source.close();
  });

  for (const reader of ['raw', 'text'] as const) {
    it(`counts what a tiny buffer lost (${reader}): lost == emitted - read`, {
      timeout: 60_000,
    }, async () => {
      const n = 20_000;
      const { source } = newSource(`flood-${reader}`, { reader, bufferSizeKb: 8 });
      await source.open();
      await emit(emitter, { count: n, names: 'smmu0', seed: 0x8800n }); // nobody reads meanwhile
      const got = await collect(source, { idleMs: 500 });
      const lost = got.lost.get(LossReason.LOSS_REASON_RING_BUFFER_OVERRUN) ?? 0;
      assert.ok(got.count > 0 && got.count < n, `read ${got.count} of ${n}`);
      assert.equal(lost, n - got.count, `lost ${lost}, read ${got.count}, emitted ${n}`);
      assert.equal(got.lost.get(LossReason.LOSS_REASON_MALFORMED_RECORD), undefined);
      // Each survivor is exactly one of the emitted records (its index is in evt0's SSID),
      // in emission order.
      let prev = -1;
      for (const b of got.blocks) {
        for (let k = 0; k < b.count; k++) {
          const i = Number((word64(b, k, 0) >> 12n) & 0xfffffn);
          assert.ok(i > prev && i < n, `record ${i} after ${prev}`);
          assert.deepEqual(
            [0, 1, 2, 3].map((w) => word64(b, k, w)),
            expectedRecord(i, 0x8800n),
          );
          prev = i;
        }
      }
    });
  }

  it('recovers a stale instance and reads what it kept while no agent ran', { timeout: 60_000 }, async () => {
    const name = trackInstance(root, `smmu-fleet-test-stale-${uniqueSuffix()}`);
    const opts = { events: [{ event, decoder: PRIMARY_EVENT }], instance: name, pollMinMs: 5 };
    const first = new TracefsSource({ ...opts, keepInstance: true });
    await first.open();
    await first.close(); // as if the agent died: instance left, tracing on
    assert.ok(existsSync(join(root, 'instances', name)));
    const from = BigInt(Date.now() - 2) * 1_000_000n;
    await emit(emitter, { count: 300, names: NAMES, seed: 0x9900n });
    const to = BigInt(Date.now() + 2) * 1_000_000n;
    const infos: string[] = [];
    const second = new TracefsSource({ ...opts, log: { info: (m) => infos.push(m), warn() {} } });
    await second.open();
    assert.ok(infos.some((m) => m.startsWith('recovered tracefs instance')));
    const got = await collect(second, { until: (c) => c >= 300 });
    assertExact(got.blocks, 300, 0x9900n, from, to);
    assert.equal(existsSync(join(root, 'instances', name)), false);
  });

  it('falls back, plainly, when smmu_evtq_event is not in the kernel', { timeout: 30_000 }, async () => {
    const warnings: string[] = [];
    const instance = trackInstance(root, `smmu-fleet-test-fallback-${uniqueSuffix()}`);
    const source = new TracefsSource({ instance, log: { info() {}, warn: (m) => warnings.push(m) } });
    if (existsSync(join(root, 'events', 'arm_smmu_v3', 'smmu_evtq_event'))) return; // a kernel with the patch
    await source.open();
    assert.deepEqual(source.events, ['iommu:io_page_fault']);
    assert.equal(source.event, 'iommu:io_page_fault');
    assert.match(
      warnings.join('\n'),
      /arm_smmu_v3:smmu_evtq_event does not exist in this kernel: it needs .*not in mainline/,
    );
    assert.match(warnings.join('\n'), /falling back to iommu:io_page_fault/);
    await source.close();
    assert.equal(existsSync(join(root, 'instances', instance)), false);

    const none = new TracefsSource({ instance, fallbackEvents: [], log: { info() {}, warn() {} } });
    await assert.rejects(none.open(), (e: unknown) => {
      assert.ok(e instanceof TracefsError);
      assert.equal(e.code, 'EVENT_MISSING');
      assert.match(e.hint, /posted June 2026, not in mainline/);
      return true;
    });
    await assert.rejects(
      new TracefsSource({ instance, events: ['nosuch:event'] }).open(),
      /no decoder for trace event nosuch:event/,
    );
  });

  it('mounts tracefs where asked, and unmounts what it mounted', { timeout: 30_000 }, async () => {
    const dir = join(repoRoot(), '.cache', `tracefs-mount-${uniqueSuffix()}`);
    await run('mkdir', ['-p', dir]);
    try {
      assert.equal(isTracefsRoot(dir), false);
      await mountTracefs(dir);
      assert.equal(isTracefsRoot(dir), true);
      assert.equal(await unmountTracefs({ path: dir, mountedByUs: true }), undefined);
      assert.equal(isTracefsRoot(dir), false);
    } finally {
      await run('umount', [dir]).catch(() => undefined);
      await run('rmdir', [dir]).catch(() => undefined);
    }
  });

  it('tells an unprivileged user what is missing', { timeout: 30_000 }, async () => {
    // Same build, run as nobody: tracefs (mode 0700) is invisible and mounting is refused.
    const script = `
      const { TracefsSource } = require(${JSON.stringify(join(__dirname, '../../agent/src/source/tracefs/tracefs-source.js'))});
      new TracefsSource({ instance: 'never' }).open().then(
        () => console.log(JSON.stringify({ ok: true })),
        (e) => console.log(JSON.stringify({ code: e.code, hint: e.hint, message: e.message })));`;
    const { stdout } = await run(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script],
      { timeout: 20_000 },
    );
    const r = JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
    assert.equal(r.code, 'NOT_PERMITTED', stdout);
    assert.match(r.hint, /CAP_SYS_ADMIN/);
  });
});
