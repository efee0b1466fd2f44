// How batches are gzipped on the wire. grpc-js compresses every message with zlib.gzip at
// zlib's defaults (level 6) and has no option for the level or strategy. On field columns
// (mostly one- and two-byte varints) Z_RLE compresses as well as level 6 (5.59 against 5.51
// B/event for 5,000 model events) in about a third of the time, and a steady agent at 10 k
// events/s spent a third of its CPU in gzip. Word columns repeat longer strings, which Z_RLE
// does not look for (12.96 against 9.68 B/event), so they get level 1 (10.27). grpc-js's gzip
// handler is patched, on import, to use these options. It is an internal class, so the patch
// is for the grpc-js versions it was checked against and otherwise left out (gzip then runs
// at zlib's defaults: slower, nothing else).
//
// Small batches go uncompressed (`noCompressFlags`, grpc-js's public per-message write flag;
// each message's frame says whether it is compressed): below SMALL_BATCH_BYTES gzip saves a
// few hundred bytes and costs a zlib stream set-up per batch.
import { promisify } from 'node:util';
import { constants, gzip, type ZlibOptions } from 'node:zlib';
import { grpcInternal } from '../../../common/grpc/internals';
import { type ColumnCoding, FIELD_CODING } from '../../../proto/batch-codec';

/** Batches shorter than this are sent uncompressed (about 60 events of the model's workload). */
export const SMALL_BATCH_BYTES = 1024;

/** grpc-js WriteFlags.NoCompress (a const enum in its typings, so not importable as a value). */
const NO_COMPRESS = 2;

/** The write flags for a batch of `bytes` bytes: NoCompress for a small one, else none. */
export function noCompressFlags(bytes: number): number | undefined {
  return bytes < SMALL_BATCH_BYTES ? NO_COMPRESS : undefined;
}

const RLE = Object.freeze({ strategy: constants.Z_RLE });
const LEVEL_1 = Object.freeze({ level: 1 });

/** The zlib options of the wire's gzip for batches in `coding`. */
export function wireGzipOptions(coding: ColumnCoding): Readonly<ZlibOptions> {
  return coding === FIELD_CODING ? RLE : LEVEL_1;
}

/** The gzip setting batches in `coding` get, for logs: zlib's defaults when the patch is out. */
export function wireGzipSetting(coding: ColumnCoding): string {
  if (!wireGzipTuned) return 'zlib defaults';
  return coding === FIELD_CODING ? 'Z_RLE' : 'level 1';
}

let options: Readonly<ZlibOptions> = RLE;

/** Gzips this process's batches with the options for `coding` (field columns unless set). */
export function useWireGzipFor(coding: ColumnCoding): void {
  options = wireGzipOptions(coding);
}

const gzipAsync = promisify(gzip);

interface CompressionHandler {
  compressMessage(message: Buffer): Promise<Buffer>;
}

/** True when grpc-js's gzip handler was patched to use wireGzipOptions. */
export const wireGzipTuned = patch();

function patch(): boolean {
  const CompressionFilter = grpcInternal<{
    CompressionFilter: new (options: object, shared: object) => { sendCompression?: CompressionHandler };
  }>('./compression-filter')?.CompressionFilter;
  if (!CompressionFilter) return false;
  // The handler class is not exported: a filter set up for gzip holds an instance of it.
  const handler = new CompressionFilter({ 'grpc.default_compression_algorithm': 2 }, {}).sendCompression;
  const proto = handler && (Object.getPrototypeOf(handler) as CompressionHandler);
  if (!proto || typeof proto.compressMessage !== 'function' || proto.constructor.name !== 'GzipHandler')
    return false;
  proto.compressMessage = (message: Buffer) => gzipAsync(message, options);
  return true;
}
