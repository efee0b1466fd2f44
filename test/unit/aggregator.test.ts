// The aggregator's accounting state against a plain per-event reference: totals by kind and
// stall, window boundaries and closing, late events, replays, the hot-page sketch, prefault
// advice, and checkpoint round trips that continue exactly where they stopped.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SmmuModel } from '../../agent/src/source/model';
import { AccountState } from '../../collector/accounting/aggregate';
import { STRIDE } from '../../collector/accounting/cells';
import { decodeCheckpoint, encodeCheckpoint } from '../../collector/accounting/checkpoint';
import { fromCheckpoint, toCheckpoint } from '../../collector/accounting/checkpoint-codec';
import { ReplayFilter } from '../../collector/accounting/dedup';
import { adviseRanges, SpaceSaving } from '../../collector/accounting/hotpages';
import { OPENAPI } from '../../collector/accounting/openapi';
import { hostRow, hostRows, seriesRows } from '../../collector/accounting/rows';
import { WIDTHS_NS } from '../../collector/accounting/windows';
import { faultKind, isStall, streamId, substreamId } from '../../common/smmu/record';
import type { Batch } from '../../proto/batch-codec';
import { type EventBlock, EventBlockBuilder, timestampNs, WORDS_PER_RECORD } from '../../proto/event-block';
import { LossReason } from '../../proto/index';
import { modelBatch } from '../support/batches';
import { repoRoot } from '../support/paths';

const S = 1_000_000_000n;
const T0 = 1_700_000_003n * S;
const opts = { collectWindows: true, windowGraceNs: 0, hotPageShift: 12, sketchSlots: 16 };

function batch(host: string, seq: number, events: EventBlock, lost = 0, epoch = 1): Batch {
  return modelBatch(host, seq, events, {
    epoch,
    lost: lost ? new Map([[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, lost]]) : new Map(),
  });
}

/** One event: [ts, event id, sid, ssid, stall, address]. */
type Ev = [bigint, number, number, number, boolean, bigint];

function block(evs: Ev[], smmu = 'arm-smmu-v3.0.auto'): EventBlock {
  const b = new EventBlockBuilder();
  for (const [ts, id, sid, ssid, stall, addr] of evs) {
    const evt0 = (BigInt(sid) << 32n) | (BigInt(ssid) << 12n) | (ssid ? 1n << 11n : 0n) | BigInt(id);
    b.push(ts, smmu, [evt0, stall ? 1n << 31n : 0n, addr, 0n]);
  }
  return b.finish();
}

/** The model's blocks, as batches of one host. */
function modelBatches(host: string, seed: number, n: number, per: number): Batch[] {
  const m = new SmmuModel({ seed, rate: 0, clockRate: 300, maxEvents: n });
  const out: Batch[] = [];
  while (!m.exhausted) out.push(batch(host, out.length + 1, m.generate(per)));
  return out;
}

/** Reference: series key -> cells, and window key -> cells, by plain iteration. */
function reference(batches: Batch[]) {
  const totals = new Map<string, number[]>();
  const windows = new Map<string, number[]>();
  const add = (m: Map<string, number[]>, k: string, kind: number, stall: boolean) => {
    let c = m.get(k);
    if (!c) {
      c = new Array(STRIDE).fill(0);
      m.set(k, c);
    }
    c[kind]++;
    if (stall) c[4 + kind]++;
  };
  for (const b of batches) {
    const e = b.events;
    for (let i = 0; i < e.count; i++) {
      const w = i * WORDS_PER_RECORD;
      const key = `${b.host}/${e.smmuNames[e.smmuIndex[i]]}/${streamId(e.words, w)}/${substreamId(e.words, w)}`;
      const kind = faultKind(e.words, w);
      add(totals, key, kind, isStall(e.words, w));
      const ts = timestampNs(e, i);
      WIDTHS_NS.forEach((width, k) => {
        add(windows, `${key}@${k}:${ts / BigInt(width)}`, kind, isStall(e.words, w));
      });
    }
  }
  return { totals, windows };
}

function totalsOf(st: AccountState): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let s = 0; s < st.seriesCount; s++) {
    const k = st.seriesKey(s);
    out.set(`${k.host}/${k.smmu}/${k.streamId}/${k.ssid}`, Array.from(st.seriesCells(s)));
  }
  return out;
}

function sorted<T>(m: Map<string, T>): Array<[string, T]> {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

test('totals per series by kind and stall equal a per-event count; replays count once', () => {
  const batches = [...modelBatches('h1', 1, 6000, 500), ...modelBatches('h2', 2, 3000, 400)];
  const st = new AccountState(opts);
  for (const b of batches) assert.equal(st.add(b), true);
  for (const b of batches.slice(0, 5)) assert.equal(st.add(b), false, 'replay');
  assert.deepEqual(sorted(totalsOf(st)), sorted(reference(batches).totals));
  const hosts = hostRows(st);
  assert.deepEqual(
    hosts.map((h) => [h.host, h.batches, h.events, h.replayedBatches]),
    [
      ['h1', 12, 6000, 5],
      ['h2', 8, 3000, 0],
    ],
  );
  assert.ok(hosts[0].kinds.translation > 0 && hosts[0].kinds.access > 0 && hosts[0].kinds.permission > 0);
  assert.ok(hosts[0].stalls > 0, 'the model has stall devices');
});

test('closed windows hold exactly the events of [start, start + width) and close by event time', () => {
  const batches = modelBatches('h1', 3, 20_000, 700);
  const st = new AccountState(opts);
  const closed = new Map<string, number[]>();
  for (const b of batches) {
    st.add(b);
    const c = st.drainClosed();
    for (const w of c.series) {
      const key = `${w.host}/${w.smmu}/${w.streamId}/${w.ssid}@${w.width}:${w.index}`;
      assert.ok(!closed.has(key), `window ${key} emitted once`);
      closed.set(key, Array.from(w.cells));
    }
  }
  const ref = reference(batches).windows;
  const last = st.findHost('h1')!.lastNs;
  // Every window whose end the watermark passed is closed and exact; the others are open.
  let expectClosed = 0;
  for (const [key, cells] of ref) {
    const [, at] = key.split('@');
    const [k, idx] = at.split(':').map(Number);
    const end = BigInt(idx + 1) * BigInt(WIDTHS_NS[k]);
    if (end <= last) {
      expectClosed++;
      assert.deepEqual(closed.get(key), cells, key);
    } else assert.equal(closed.has(key), false, `${key} still open`);
  }
  assert.equal(closed.size, expectClosed);
  assert.ok(expectClosed > 20, 'several 10 s and 1 min windows closed');
  assert.ok(
    [...closed.keys()].some((k) => k.includes('@1:')),
    'a 1 min window closed',
  );
});

test('window boundaries, grace, late events and host windows with batches and losses', () => {
  const st = new AccountState({ ...opts, windowGraceNs: 2e9 });
  const B = T0 - (T0 % (10n * S)); // a 10 s boundary
  // Batch 1: an event just before the boundary and one on it (next window).
  st.add(
    batch(
      'h',
      1,
      block([
        [B - 1n, 0x10, 1, 5, true, 0x1000n],
        [B, 0x10, 1, 5, false, 0x2000n],
      ]),
      3,
    ),
  );
  assert.equal(st.drainClosed().series.length, 0, 'grace keeps [B-10s, B) open');
  // Batch 2 moves the watermark past B + grace: [B-10s, B) closes.
  st.add(batch('h', 2, block([[B + 2n * S, 0x12, 1, 5, false, 0x3000n]])));
  let c = st.drainClosed();
  const w10 = c.series.filter((w) => w.width === 0);
  assert.equal(w10.length, 1);
  assert.equal(BigInt(w10[0].index) * 10n * S, B - 10n * S, 'window start');
  assert.deepEqual(Array.from(w10[0].cells), [1, 0, 0, 0, 1, 0, 0, 0]);
  const hw = c.hosts.find((w) => w.width === 0)!;
  assert.equal(hw.batches, 0, 'batch 1 belongs to the window of its latest event');
  // Batch 3: a late event for the closed window, and a loss report.
  st.add(batch('h', 3, block([[B - 5n * S, 0x13, 1, 5, false, 0x4000n]]), 4));
  const h = hostRow(st, st.findHost('h')!);
  assert.equal(h.late['10s'], 1, 'late for 10 s windows');
  assert.equal(h.kinds.permission, 1, 'late events are in the totals');
  assert.equal(h.lostEvents, 7);
  // Batch 4 closes [B, B+10s): 2 events (B and B+2s), batches 1, 2 and 3 (late -> oldest open), 7 lost.
  st.add(batch('h', 4, block([[B + 13n * S, 0x10, 1, 5, false, 0x5000n]])));
  c = st.drainClosed();
  const s10 = c.series.filter((w) => w.width === 0);
  assert.equal(s10.length, 1);
  assert.equal(BigInt(s10[0].index) * 10n * S, B);
  assert.deepEqual(Array.from(s10[0].cells), [1, 1, 0, 0, 0, 0, 0, 0]);
  const h10 = c.hosts.find((w) => w.width === 0)!;
  assert.equal(h10.batches, 3);
  assert.deepEqual([...h10.lost], [[LossReason.LOSS_REASON_RING_BUFFER_OVERRUN, 7]]);
});

test('events without a valid SubstreamID count under SSID 0; other events by event ID', () => {
  const st = new AccountState(opts);
  st.add(
    batch(
      'h',
      1,
      block([
        [T0, 0x04, 7, 0, false, 0n], // C_BAD_STE
        [T0, 0x04, 7, 0, false, 0n],
        [T0, 0x08, 7, 33, false, 0n], // C_BAD_SUBSTREAMID: SSID without SSV
        [T0, 0x10, 7, 0, false, 0x1000n],
      ]),
    ),
  );
  const rows = seriesRows(st).map((r) => [r.ssid, r.kinds, r.otherEvents]);
  assert.deepEqual(rows, [
    [0, { translation: 1, access: 0, permission: 0, other: 2 }, { C_BAD_STE: 2 }],
    [33, { translation: 0, access: 0, permission: 0, other: 1 }, { C_BAD_SUBSTREAMID: 1 }],
  ]);
});

test('a checkpoint restores a state that continues exactly like one that never stopped', () => {
  const batches = [...modelBatches('h1', 5, 9000, 600), ...modelBatches('h2', 6, 5000, 300)];
  batches.sort((a, b) => Number(a.events.baseNs - b.events.baseNs));
  const whole = new AccountState(opts);
  const wholeClosed: string[] = [];
  const record = (st: AccountState, into: string[]) => {
    const c = st.drainClosed();
    for (const w of c.series) into.push(`${w.host}/${w.ssid}/${w.width}/${w.index}:${Array.from(w.cells)}`);
    for (const w of c.hosts) into.push(`${w.host}/${w.width}/${w.index}:${Array.from(w.cells)}/${w.batches}`);
  };
  for (const b of batches) {
    whole.add(b);
    record(whole, wholeClosed);
  }

  let st = new AccountState(opts);
  const closed: string[] = [];
  const cut = Math.floor(batches.length / 2);
  batches.forEach((b, i) => {
    if (i === cut) {
      st.nextOffset = i;
      const bytes = encodeCheckpoint({ ...toCheckpoint(st), group_id: 'g', raw_topic: 't', partition: 0 });
      st = fromCheckpoint(decodeCheckpoint(bytes), opts);
      assert.equal(st.nextOffset, cut);
      for (const r of batches.slice(cut - 3, cut)) assert.equal(st.add(r), false, 'replays still dropped');
    }
    st.add(b);
    record(st, closed);
  });
  assert.deepEqual(closed, wholeClosed);
  assert.deepEqual(sorted(totalsOf(st)), sorted(totalsOf(whole)));
  assert.deepEqual(
    hostRows(st).map((h) => ({ ...h, replayedBatches: 0 })),
    hostRows(whole),
  );
  const strip = (st: AccountState) => {
    const c = toCheckpoint(st);
    c.replay_duplicates = 0;
    c.next_offset = 0;
    c.hosts = (c.hosts ?? []).map((h) => ({ ...h, replayed_batches: 0 }));
    return Buffer.from(encodeCheckpoint(c)).toString('hex');
  };
  assert.equal(strip(st), strip(whole), 'identical state, sketches included');
});

test('a checkpoint taken with other settings is refused', () => {
  const st = new AccountState(opts);
  const c = decodeCheckpoint(encodeCheckpoint(toCheckpoint(st)));
  assert.throws(() => fromCheckpoint(c, { ...opts, sketchSlots: 32 }), /sketchSlots/);
});

test('Space-Saving keeps every heavy page with count - error <= true <= count', () => {
  const sk = new SpaceSaving(8);
  const truth = new Map<number, number>();
  let x = 12345;
  for (let i = 0; i < 20_000; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    // Pages 1..3 are hot (30% of faults), the rest spread over 5000 pages.
    const page = x % 10 < 3 ? 1 + (x % 3) : 100 + (x % 5000);
    sk.add(page, x % 3, x & 1);
    truth.set(page, (truth.get(page) ?? 0) + 1);
  }
  const top = sk.top();
  assert.equal(top.length, 8);
  for (const p of top) {
    const t = truth.get(p.page) ?? 0;
    assert.ok(p.guaranteed <= t && t <= p.faults, `page ${p.page}: ${p.guaranteed} <= ${t} <= ${p.faults}`);
  }
  assert.deepEqual(
    top
      .slice(0, 3)
      .map((p) => p.page)
      .sort(),
    [1, 2, 3],
  );
  assert.equal(sk.offered, 20_000);
});

test('prefault advice merges nearby hot pages into ranges and says how to populate', () => {
  const sk = new SpaceSaving(16);
  const hit = (page: number, n: number, kind: number) => {
    for (let i = 0; i < n; i++) sk.add(page, kind, 1);
  };
  hit(100, 5, 0);
  hit(102, 4, 0);
  hit(103, 3, 1);
  hit(500, 6, 2);
  hit(900, 1, 0); // below minFaults
  const r = adviseRanges(sk, { minFaults: 2, gapPages: 4 });
  assert.deepEqual(
    r.map((x) => [x.startPage, x.endPage, x.hotPages, x.faults, x.stalls, x.populate]),
    [
      [100, 104, 3, 12, 12, 'read'],
      [500, 501, 1, 6, 6, 'write'],
    ],
  );
});

test('replay filter state survives a snapshot', () => {
  const f = new ReplayFilter();
  for (const s of [1, 2, 3, 5, 7]) f.accept('a', 1, s);
  f.accept('a', 1, 2);
  const g = new ReplayFilter();
  g.restore(f.snapshot(), f.duplicates);
  assert.deepEqual(
    [1, 4, 5, 6, 7, 8].map((s) => g.accept('a', 1, s)),
    [false, true, false, true, false, true],
  );
  assert.equal(g.duplicates, 1 + 3);
});

test('openapi.json is the document the API serves', () => {
  const file = join(repoRoot(), 'collector', 'accounting', 'openapi.json');
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), JSON.parse(JSON.stringify(OPENAPI)));
});
