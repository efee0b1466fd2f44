// How the collector inflates gzipped batches. grpc-js's server inflates each compressed message
// through a zlib stream with 16 KiB output chunks: a 140 KB batch of 16,384 events makes nine
// trips to libuv's pool and back, 560–570 µs of CPU. One zlib call whose output chunk is the
// size the gzip trailer states takes 390–410 µs (about 0.01 CPU-s per million events, a
// fortieth of the collector's CPU at line rate). The server call's decompressMessage (a method of an exported class, but not
// public API) is replaced for gzip on import, for the grpc-js versions it was checked against
// (common/grpc/internals.ts); other encodings keep grpc-js's own, with the same errors.

import { gunzip } from 'node:zlib';
import { status } from '@grpc/grpc-js';
import { grpcInternal } from '../../common/grpc/internals';

/** zlib's default output chunk; the least a stated size gets. */
const MIN_CHUNK = 16 * 1024;
/** The most one output chunk takes, whatever a trailer states. */
const MAX_CHUNK = 4 * 1024 * 1024;
/** Deflate's largest expansion: about 1032 bytes out per byte in. */
const MAX_RATIO = 1032;

/**
 * Output chunk for inflating gzip data `gz` into at most `maxBytes` (-1: no limit): the size its
 * trailer states (ISIZE, the size mod 2^32), but no more than deflate can make of `gz`, than the
 * limit or than MAX_CHUNK, and at least MIN_CHUNK. The trailer is only a hint: one that lies
 * costs no more memory than a real bomb of the same size through grpc-js's own inflation.
 */
export function gunzipChunkSize(gz: Uint8Array, maxBytes = -1): number {
  const n = gz.length;
  const stated = n >= 18 ? (gz[n - 4] | (gz[n - 3] << 8) | (gz[n - 2] << 16) | (gz[n - 1] << 24)) >>> 0 : 0;
  let most = Math.min(MAX_CHUNK, n * MAX_RATIO);
  if (maxBytes >= 0) most = Math.min(most, maxBytes);
  return Math.max(MIN_CHUNK, Math.min(stated, most));
}

/**
 * Inflates a gzip message body in one zlib call. Rejects as grpc-js does: more than `maxBytes`
 * (-1: no limit) out is RESOURCE_EXHAUSTED, anything zlib refuses INTERNAL.
 */
export function inflateGzipMessage(body: Buffer, maxBytes: number): Promise<Buffer> {
  const limit = maxBytes >= 0 ? { maxOutputLength: Math.max(1, maxBytes) } : {};
  return new Promise((resolve, reject) =>
    gunzip(body, { chunkSize: gunzipChunkSize(body, maxBytes), ...limit }, (err, out) => {
      if (!err) return resolve(out);
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      reject(
        tooLarge
          ? {
              code: status.RESOURCE_EXHAUSTED,
              details: `Received message that decompresses to a size larger than ${maxBytes}`,
            }
          : { code: status.INTERNAL, details: 'Failed to decompress message' },
      );
    }),
  );
}

interface ServerCall {
  maxReceiveMessageSize: number;
  decompressMessage(message: Buffer, encoding: string): Buffer | Promise<Buffer>;
}

/** True when grpc-js's server inflates gzip messages with inflateGzipMessage. */
export const wireGunzipTuned = patch();

function patch(): boolean {
  const call = grpcInternal<{ BaseServerInterceptingCall?: { prototype: ServerCall } }>(
    './server-interceptors',
  )?.BaseServerInterceptingCall?.prototype;
  const own = call?.decompressMessage;
  if (!call || typeof own !== 'function') return false;
  call.decompressMessage = function (this: ServerCall, message: Buffer, encoding: string) {
    if (encoding !== 'gzip' || typeof this.maxReceiveMessageSize !== 'number')
      return own.call(this, message, encoding);
    // A gRPC message frame: 1 flag byte and a 4-byte length, then the body.
    return inflateGzipMessage(message.subarray(5), this.maxReceiveMessageSize);
  };
  return true;
}
