// Wire cost of the batch codec on the model's default workload: bytes/event raw, columnar and
// columnar+gzip (what grpc-js compression would send), and encode/decode events/s on one core.
import { gzipSync } from 'node:zlib';
import { SmmuModel } from '../../agent/src/source/model';
import { decodeBatch, encodeBatch } from '../../proto/batch-codec';
import { RECORD_BYTES } from '../../proto/event-block';
import { modelBatch } from '../support/batches';
import { median, rate, report } from './bench-util';

const BATCH = Number(process.env.BENCH_BATCH_EVENTS ?? 4096);
const model = new SmmuModel({ seed: 7, rate: 0, maxChunkEvents: BATCH, chunkNs: 1e10 });
const blocks = Array.from({ length: 16 }, () => model.nextBlock());
const events = blocks.reduce((s, b) => s + b.count, 0);
const batches = blocks.map((events, i) =>
  modelBatch('node-1', i + 1, events, { createdUnixNs: 1_700_000_000_000_000_000n }),
);
const encoded = batches.map((b) => encodeBatch(b));
const wire = encoded.reduce((s, e) => s + e.length, 0);
const gz = encoded.reduce((s, e) => s + gzipSync(e, { level: 1 }).length, 0);

report('batch_events', BATCH);
report('raw_record_bytes_per_event', RECORD_BYTES);
report('columnar_bytes_per_event', wire / events, 2);
report('columnar_gzip1_bytes_per_event', gz / events, 2);
report(
  'encode_events_per_s',
  median(7, () =>
    rate(events, () => {
      for (const b of batches) encodeBatch(b);
    }),
  ),
);
report(
  'decode_events_per_s',
  median(7, () =>
    rate(events, () => {
      for (const e of encoded) decodeBatch(e);
    }),
  ),
);
report(
  'check_events_per_s',
  median(7, () =>
    rate(events, () => {
      for (const e of encoded) decodeBatch(e, { maxEvents: 1 << 20, structureOnly: true });
    }),
  ),
);
