// One Ingest stream to a collector, driven by hand: send raw messages, half-close, and see the
// acks (exact 64-bit sequences) and the final status.
import { type ChannelCredentials, type ChannelOptions, Client, Metadata, type status } from '@grpc/grpc-js';
import type { Ack } from '../../proto/index';
import { ingestService } from '../../proto/ingest-service';

export interface Outcome {
  acks: bigint[];
  code: status;
  details: string;
}

/**
 * Sends raw messages on one stream, half-closes, and reports acks and the final status.
 * `channel`: the client's options (e.g. gzip for every message).
 */
export function exchange(
  address: string,
  creds: ChannelCredentials,
  messages: Uint8Array[],
  md: Record<string, string> = {},
  timeoutMs = 10_000,
  channel: ChannelOptions = {},
): Promise<Outcome> {
  const client = new Client(address, creds, channel);
  const meta = new Metadata();
  for (const [k, v] of Object.entries(md)) meta.set(k, v);
  const m = ingestService.stream;
  const call = client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, meta, {
    deadline: Date.now() + timeoutMs,
  });
  const acks: bigint[] = [];
  return new Promise((resolve) => {
    call.on('data', (a: Ack) => acks.push(BigInt(a.sequence.toString())));
    call.on('status', (s) => {
      client.close();
      resolve({ acks, code: s.code, details: s.details });
    });
    call.on('error', () => {}); // the status event carries it
    for (const msg of messages) call.write(msg);
    call.end();
  });
}
