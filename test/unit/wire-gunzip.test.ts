// The collector's gzip inflation (collector/ingest/wire-gunzip.ts): one zlib call per message,
// with grpc-js's statuses for too-large and undecodable input, installed into grpc-js's server.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { status } from '@grpc/grpc-js';
import { gunzipChunkSize, inflateGzipMessage, wireGunzipTuned } from '../../collector/ingest/wire-gunzip';

interface ServerCall {
  maxReceiveMessageSize: number;
  decompressMessage(message: Buffer, encoding: string): Buffer | Promise<Buffer>;
}
const { BaseServerInterceptingCall } = createRequire(require.resolve('@grpc/grpc-js'))(
  './server-interceptors',
) as {
  BaseServerInterceptingCall: { prototype: ServerCall };
};

/** `n` bytes that compress a little (not only zeros). */
function payload(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7919) % 251 < 40 ? i & 0xff : 0;
  return b;
}

/** A gRPC message frame: compressed flag, length, body. */
function frame(body: Buffer, compressed: boolean): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

test('the installed grpc-js server inflates gzip with one zlib call', () => {
  assert.equal(wireGunzipTuned, true);
});

test("the output chunk is the size the gzip trailer states, within deflate's ratio, the limit and 16 KiB to 4 MiB", () => {
  const batch = gzipSync(payload(140_173));
  assert.equal(gunzipChunkSize(batch), 140_173);
  assert.equal(gunzipChunkSize(batch, 140_173), 140_173);
  assert.equal(gunzipChunkSize(batch, 100_000), 100_000, 'the limit');
  assert.equal(gunzipChunkSize(batch, 1000), 16 * 1024, 'never under 16 KiB');
  assert.equal(gunzipChunkSize(gzipSync(payload(100))), 16 * 1024);
  const zeros = gzipSync(Buffer.alloc(9 << 20));
  assert.equal(gunzipChunkSize(zeros), 4 << 20, 'never over 4 MiB');
  assert.equal(gunzipChunkSize(new Uint8Array(17).fill(0xff)), 16 * 1024, 'shorter than any gzip member');
  const lying = gzipSync(payload(1000));
  lying.writeUInt32LE(0xffffffff, lying.length - 4);
  assert.ok(lying.length * 1032 < 4 << 20);
  assert.equal(gunzipChunkSize(lying), lying.length * 1032, 'no more than deflate can make of the input');
});

test('a gzip body inflates to its bytes, up to exactly the limit; one byte more is RESOURCE_EXHAUSTED', async () => {
  const data = payload(140_173);
  const gz = gzipSync(data);
  assert.deepEqual(await inflateGzipMessage(gz, -1), data);
  assert.deepEqual(await inflateGzipMessage(gz, data.length), data);
  await assert.rejects(inflateGzipMessage(gz, data.length - 1), {
    code: status.RESOURCE_EXHAUSTED,
    details: `Received message that decompresses to a size larger than ${data.length - 1}`,
  });
  // A trailer that lies about the size fails zlib's own length check.
  const lying = Buffer.from(gz);
  lying.writeUInt32LE(16, lying.length - 4);
  await assert.rejects(inflateGzipMessage(lying, -1), { code: status.INTERNAL }, 'the trailer check fails');
  const two = Buffer.concat([gzipSync(data.subarray(0, 1000)), gzipSync(data.subarray(1000))]);
  assert.deepEqual(await inflateGzipMessage(two, -1), data, 'members one after the other');
});

test('what zlib refuses is INTERNAL, as grpc-js says it', async () => {
  const gz = gzipSync(payload(5000));
  for (const bad of [gz.subarray(0, gz.length - 9), Buffer.from('not gzip at all'), Buffer.alloc(0)]) {
    await assert.rejects(inflateGzipMessage(bad, 1 << 20), {
      code: status.INTERNAL,
      details: 'Failed to decompress message',
    });
  }
});

test("grpc-js's server call uses it for gzip and its own code for other encodings", async () => {
  const data = payload(50_000);
  const call = Object.assign(Object.create(BaseServerInterceptingCall.prototype) as ServerCall, {
    maxReceiveMessageSize: 40_000,
  });
  await assert.rejects(Promise.resolve(call.decompressMessage(frame(gzipSync(data), true), 'gzip')), {
    code: status.RESOURCE_EXHAUSTED,
    details: 'Received message that decompresses to a size larger than 40000',
  });
  call.maxReceiveMessageSize = -1;
  assert.deepEqual(await call.decompressMessage(frame(gzipSync(data), true), 'gzip'), data);
  assert.deepEqual(await call.decompressMessage(frame(data, false), 'identity'), data);
  await assert.rejects(Promise.resolve(call.decompressMessage(frame(data, true), 'snappy')), {
    code: status.UNIMPLEMENTED,
  });
});
