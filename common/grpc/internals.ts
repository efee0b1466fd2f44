// grpc-js modules outside its public API, for the few patches that tune its message
// compression (agent/src/transport/wire-gzip.ts, collector/ingest/wire-gunzip.ts). Each patch
// was checked against GRPC_JS_CHECKED only: with another grpc-js version none is applied and
// grpc-js runs as shipped.
import { createRequire } from 'node:module';

/** grpc-js versions the patches were checked against. */
const GRPC_JS_CHECKED = /^1\.14\./;

const grpcRequire = createRequire(require.resolve('@grpc/grpc-js'));

/** The installed grpc-js's build module `path` (e.g. './compression-filter'), or undefined for an unchecked version. */
export function grpcInternal<T>(path: string): T | undefined {
  const { version } = grpcRequire('../../package.json') as { version: string };
  return GRPC_JS_CHECKED.test(version) ? (grpcRequire(path) as T) : undefined;
}
