// Collector stage 2: publishes batches to the raw-batches topic. Each message is one agent
// batch, byte for byte as the agent encoded it, keyed by host so a host's batches stay in one
// partition and in order. Requests that arrive while a send is in progress are coalesced into
// the next send (kafkajs has no linger of its own). A publish resolves only once the broker
// acknowledged it with acks=all from an idempotent producer. Kafka-level compression (zstd by
// default) shrinks what the broker stores while consumers still get plain EventBatch values.
import type { Kafka, Producer } from 'kafkajs';
import { durableProducer } from '../../common/kafka/client';
import { KAFKA_COMPRESSION, type KafkaCompression } from '../../common/kafka/codecs';
import { explainKafkaError } from '../../common/kafka/errors';
import { EVENT_BATCH_TYPE, SCHEMA_VERSION } from '../../proto/index';

export interface PublishRequest {
  host: string;
  agentId: string;
  bytes: Uint8Array;
}

interface Waiting extends PublishRequest {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Kafka headers on every raw-batch message: what the value is, for any consumer. */
export function batchHeaders(r: PublishRequest): Record<string, string> {
  return {
    'content-type': `application/x-protobuf; messageType=${EVENT_BATCH_TYPE}`,
    'schema-version': SCHEMA_VERSION,
    'agent-id': r.agentId,
  };
}

export class BatchPublisher {
  private producer: Producer;
  private queue: Waiting[] = [];
  private sending = false;
  /** Requests queued or being sent (for back-pressure). */
  inFlight = 0;
  /** Why the last send failed; undefined once a send succeeds again (readiness). */
  lastError: string | undefined;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly compression: KafkaCompression = 'zstd',
    private readonly maxBatchesPerSend = 256,
  ) {
    this.producer = durableProducer(kafka);
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  publish(r: PublishRequest): Promise<void> {
    this.inFlight++;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...r, resolve, reject });
      void this.run();
    }).finally(() => this.inFlight--);
  }

  private async run(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatchesPerSend);
        try {
          await this.producer.send({
            topic: this.topic,
            acks: -1,
            compression: KAFKA_COMPRESSION[this.compression],
            messages: batch.map((r) => ({
              key: r.host,
              value: Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
              headers: batchHeaders(r),
            })),
          });
          this.lastError = undefined;
          for (const r of batch) r.resolve();
        } catch (err) {
          // A missing ACL is named (the collector needs WRITE on the raw topic, nothing else).
          this.lastError = explainKafkaError(err, `WRITE on topic ${this.topic}`);
          const e = new Error(this.lastError, { cause: err });
          for (const r of batch) r.reject(e);
        }
      }
    } finally {
      this.sending = false;
    }
  }
}
