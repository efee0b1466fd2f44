// The aggregator's cost on one core: events/s of the accounting stage over decoded blocks
// (totals, 10 s and 1 min windows, hot-page sketches, replay filter with the digest of the raw
// message the aggregator computes for conflict detection), events/s with the batch
// decode in front of it, and the memory and checkpoint size of a state with 10,000 distinct
// (host, device, process) series whose hot-page sketches are full. Medians of 7 runs;
// `key: value` lines.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { SmmuModel } from '../../agent/src/source/model';
import { AccountState, defaultAccountOptions } from '../../collector/accounting/aggregate';
import { decodeCheckpoint, encodeCheckpoint } from '../../collector/accounting/checkpoint';
import { fromCheckpoint, toCheckpoint } from '../../collector/accounting/checkpoint-codec';
import { bytesDigest } from '../../collector/accounting/dedup';
import { evt0Lo, RECORD_BITS } from '../../common/smmu/record';
import { type Batch, decodeBatch, encodeBatch } from '../../proto/batch-codec';
import { EventBlockBuilder } from '../../proto/event-block';
import { modelBatch } from '../support/batches';
import { median, rate, report } from './bench-util';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const BATCH = Number(process.env.BENCH_BATCH_EVENTS ?? 4096);
const HOSTS = 8;
const opts = { ...defaultAccountOptions, collectWindows: true };

function asBatch(host: string, seq: number, events: Batch['events']): Batch {
  return modelBatch(host, seq, events, { createdUnixNs: 1_700_000_000_000_000_000n });
}

// The model's default workload (2 SMMUs x 4 devices, 8 processes, stalls, bursts, churn) on
// HOSTS hosts, at the model's default simulated 1 M events/s.
const batches: Batch[] = [];
for (let h = 0; h < HOSTS; h++) {
  const m = new SmmuModel({ seed: h + 1, rate: 0 });
  for (let i = 0; i < 8; i++) batches.push(asBatch(`node-${h}`, i + 1, m.generate(BATCH)));
}
const events = batches.reduce((s, b) => s + b.events.count, 0);
const encoded = batches.map((b) => encodeBatch(b));

report('batch_events', BATCH);
report('hosts', HOSTS);
report(
  'aggregate_events_per_s',
  median(7, () => {
    const st = new AccountState(opts);
    return rate(events, () => {
      for (let i = 0; i < batches.length; i++) st.offer(batches[i], undefined, bytesDigest(encoded[i]));
      st.drainClosed();
    });
  }),
);
report(
  'decode_and_aggregate_events_per_s',
  median(7, () => {
    const st = new AccountState(opts);
    return rate(events, () => {
      for (const e of encoded) st.offer(decodeBatch(e), undefined, bytesDigest(e));
      st.drainClosed();
    });
  }),
);
report(
  'replayed_batch_drop_per_s',
  median(7, () => {
    const st = new AccountState(opts);
    const digests = encoded.map(bytesDigest);
    for (let i = 0; i < batches.length; i++) st.offer(batches[i], undefined, digests[i]);
    const n = batches.length * 50;
    return rate(n, () => {
      for (let k = 0; k < 50; k++) {
        for (let i = 0; i < batches.length; i++) st.offer(batches[i], undefined, bytesDigest(encoded[i]));
      }
    });
  }),
);

// 10,000 series: 100 hosts x (2 SMMUs x 5 devices) x 10 processes, 20 events each, spread over
// 2 minutes of event time, every fault on a page of its own.
const SERIES_HOSTS = 100;
const DEVICES = 10;
const PROCS = 10;
function seriesBatches(): Batch[] {
  const out: Batch[] = [];
  const t0 = 1_700_000_000_000_000_000n;
  for (let h = 0; h < SERIES_HOSTS; h++) {
    const b = new EventBlockBuilder(DEVICES * PROCS * 20);
    const smmus = [b.smmuId('arm-smmu-v3.0.auto'), b.smmuId('arm-smmu-v3.1.auto')];
    let page = 0x100000 * (h + 1);
    for (let d = 0; d < DEVICES; d++) {
      for (let p = 0; p < PROCS; p++) {
        for (let k = 0; k < 20; k++) {
          const ts = t0 + BigInt(Math.floor(((d * PROCS + p) * 20 + k) * 6e7));
          const w = b.append(ts, smmus[d % 2]);
          const words = b.wordArray;
          words[w] = evt0Lo([0x10, 0x12, 0x13][k % 3], true, 1 + p);
          words[w + 1] = 0x100 + d;
          words[w + 2] = k % 2 ? RECORD_BITS.STALL : 0;
          // Every fault on its own 64 KiB block: the sketches fill up (the worst case for memory).
          const addr = 0xffff_0000_0000 + page++ * 65536;
          words[w + 4] = addr % 2 ** 32;
          words[w + 5] = Math.floor(addr / 2 ** 32);
        }
      }
    }
    out.push(asBatch(`host-${String(h).padStart(3, '0')}`, 1, b.finish()));
  }
  return out;
}
const sb = seriesBatches();
gc();
const heap0 = process.memoryUsage().heapUsed;
const big = new AccountState(opts);
for (const b of sb) big.add(b);
big.drainClosed();
gc();
const mem = process.memoryUsage();
report('series', big.seriesCount);
report('series_state_heap_mb', (mem.heapUsed - heap0) / 2 ** 20, 1);
report('series_state_heap_bytes_per_series', (mem.heapUsed - heap0) / big.seriesCount);
report('rss_mb', mem.rss / 2 ** 20, 1);
report('heap_used_mb', mem.heapUsed / 2 ** 20, 1);
let ckpt: Uint8Array = new Uint8Array(0);
report(
  'checkpoint_encode_ms',
  median(7, () => {
    const t = process.hrtime.bigint();
    ckpt = encodeCheckpoint(toCheckpoint(big));
    return Number(process.hrtime.bigint() - t) / 1e6;
  }),
  1,
);
report('checkpoint_bytes', ckpt.length);
report('checkpoint_gzip_bytes', gzipSync(ckpt, { level: 1 }).length);
report(
  'checkpoint_restore_ms',
  median(7, () => {
    const t = process.hrtime.bigint();
    fromCheckpoint(decodeCheckpoint(ckpt), opts);
    return Number(process.hrtime.bigint() - t) / 1e6;
  }),
  1,
);
