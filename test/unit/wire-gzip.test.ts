// The wire's gzip (agent/src/transport/wire-gzip.ts), through grpc-js's own compression filter:
// a batch is gzipped with Z_RLE, not zlib's defaults, and a small one goes uncompressed.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { SmmuModel } from '../../agent/src/source/model/smmu-model';
import {
  noCompressFlags,
  SMALL_BATCH_BYTES,
  useWireGzipFor,
  wireGzipOptions,
  wireGzipTuned,
} from '../../agent/src/transport/wire-gzip';
import { type ColumnCoding, encodeBatch, FIELD_CODING, WORD_CODING } from '../../proto/batch-codec';

interface Filter {
  sendMessage(m: Promise<{ message: Buffer; flags?: number }>): Promise<{ message: Buffer }>;
}
const { CompressionFilter } = createRequire(require.resolve('@grpc/grpc-js'))('./compression-filter') as {
  CompressionFilter: new (options: object, shared: object) => Filter;
};

/** The gRPC frame grpc-js's gzip filter writes for `message` with write `flags`. */
function frame(message: Buffer, flags?: number): Promise<Buffer> {
  const filter = new CompressionFilter({ 'grpc.default_compression_algorithm': 2 }, {});
  return filter.sendMessage(Promise.resolve({ message, flags })).then((r) => r.message);
}

function modelBatch(events: number, coding: ColumnCoding = FIELD_CODING): Buffer {
  const model = new SmmuModel({ rate: 10_000, seed: 3, maxEvents: events });
  const block = model.generate(events);
  assert.equal(block.count, events);
  const bytes = encodeBatch(
    {
      host: 'h',
      agentId: 'a',
      epoch: 1,
      sequence: 1,
      sourceKind: 1,
      sourceEvent: 'model:smmu_evtq_event',
      lost: new Map(),
      events: block,
      createdUnixNs: 1n,
    },
    coding,
  );
  return Buffer.from(bytes);
}

test('the installed grpc-js gzip handler is tuned', () => {
  assert.equal(wireGzipTuned, true);
});

for (const [name, coding, expect] of [
  ['field columns', FIELD_CODING, { strategy: 3 }],
  ['word columns', WORD_CODING, { level: 1 }],
] as const) {
  test(`a batch of ${name} is framed compressed, gzipped with ${JSON.stringify(expect)} (not zlib defaults)`, async () => {
    assert.deepEqual(wireGzipOptions(coding), expect);
    useWireGzipFor(coding);
    const batch = modelBatch(2000, coding);
    const out = await frame(batch, noCompressFlags(batch.length));
    useWireGzipFor(FIELD_CODING);
    assert.equal(out[0], 1, 'compressed-flag byte');
    assert.equal(out.readUInt32BE(1), out.length - 5);
    const body = out.subarray(5);
    assert.deepEqual(body, gzipSync(batch, expect));
    assert.notDeepEqual(body, gzipSync(batch), 'the output differs from level 6 on this batch');
    assert.deepEqual(gunzipSync(body), batch);
  });
}

test(`a batch under ${SMALL_BATCH_BYTES} bytes is framed uncompressed`, async () => {
  assert.equal(noCompressFlags(SMALL_BATCH_BYTES - 1), 2);
  assert.equal(noCompressFlags(SMALL_BATCH_BYTES), undefined);
  const small = modelBatch(20);
  assert.ok(small.length < SMALL_BATCH_BYTES, `${small.length} bytes`);
  const out = await frame(small, noCompressFlags(small.length));
  assert.equal(out[0], 0, 'compressed-flag byte');
  assert.deepEqual(out.subarray(5), small);
});
