// The transport settings an agent process takes from its options: collector addresses, window,
// backoff, wire compression, ack timeout and credentials. Shared by `run` and `loadgen`.
import { type AgentAuthOptions, agentCredentials } from './credentials';
import type { IngestClientOptions } from './ingest-client';

export interface TransportFlags extends AgentAuthOptions {
  collector: string[];
  window: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  compression: string;
  ackTimeoutMs: number;
}

export function transportOptions(o: TransportFlags): Omit<IngestClientOptions, 'logger'> {
  return {
    addresses: o.collector,
    window: o.window,
    backoffMinMs: o.backoffMinMs,
    backoffMaxMs: o.backoffMaxMs,
    gzip: o.compression === 'gzip',
    ackTimeoutMs: o.ackTimeoutMs,
    ...agentCredentials(o),
  };
}
