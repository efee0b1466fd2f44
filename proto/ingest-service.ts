// The Ingest gRPC service as grpc-js sees it. Batches travel as the bytes the agent's spool
// holds (encoded once, sent as they are, published to Kafka as they are); acks are decoded
// with the generated class.
import type { ServiceDefinition } from '@grpc/grpc-js';
import type Long from 'long';
import { type Ack, INGEST_SERVICE, v1 } from './index';

export const ingestService: ServiceDefinition = {
  stream: {
    path: `/${INGEST_SERVICE}/Stream`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (a: { sequence: number | Long }) => Buffer.from(v1.Ack.encode(a).finish()),
    responseDeserialize: (b: Buffer): Ack => v1.Ack.decode(b),
    originalName: 'Stream',
  },
};
