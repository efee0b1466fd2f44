// Collector stage 2: publishes batches to the raw-batches topic. Each message is one agent
// batch, byte for byte as the agent encoded it, keyed by host so a host's batches stay in one
// partition and in order. Requests that arrive while a send is in progress are coalesced into
// the next send (kafkajs has no linger of its own). A publish resolves only once the broker
// acknowledged it with acks=all from an idempotent producer.
// Each send holds the messages of one partition only (placed here by the default partitioner,
// as kafkajs would): kafkajs 2.2.4 remembers a send's responses per broker, so when a partition
// of a multi-partition send moves to a broker that already answered for another partition, its
// retry skips that broker and reports success for messages never written. Kafka-level compression (zstd by
// default) shrinks what the broker stores while consumers still get plain EventBatch values.
import type { Kafka, Producer } from 'kafkajs';
import { durableProducer } from '../../common/kafka/client';
import { KAFKA_COMPRESSION, type KafkaCompression } from '../../common/kafka/codecs';
import { explainKafkaError } from '../../common/kafka/errors';
import { HostPlacement, partitionCount } from '../../common/kafka/topics';
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

  /** Where each host's batches go under the raw topic's partition count. */
  private readonly placement: HostPlacement;
  /** Read the partition count again before the next send. */
  private stale = true;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly compression: KafkaCompression = 'zstd',
    private readonly maxBatchesPerSend = 256,
  ) {
    this.producer = durableProducer(kafka);
    this.placement = new HostPlacement(topic);
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    await this.learnPartitions();
  }

  /** The raw topic's partition count, read again after a failed send (it may have grown). */
  private async learnPartitions(): Promise<void> {
    const n = await partitionCount(this.kafka, this.topic);
    if (n === 0) throw new Error(`Kafka topic ${this.topic} does not exist`);
    this.placement.count = n;
    this.stale = false;
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
          if (this.stale) await this.learnPartitions();
        } catch (err) {
          this.fail(batch, err);
          continue;
        }
        const perPartition = new Map<number, Waiting[]>();
        for (const r of batch) {
          const p = this.placement.of(r.host);
          const group = perPartition.get(p);
          if (group) group.push(r);
          else perPartition.set(p, [r]);
        }
        await Promise.all([...perPartition].map(([p, group]) => this.send(p, group)));
      }
    } finally {
      this.sending = false;
    }
  }

  private async send(partition: number, group: Waiting[]): Promise<void> {
    try {
      await this.producer.send({
        topic: this.topic,
        acks: -1,
        compression: KAFKA_COMPRESSION[this.compression],
        messages: group.map((r) => ({
          key: r.host,
          partition,
          value: Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
          headers: batchHeaders(r),
        })),
      });
      this.lastError = undefined;
      for (const r of group) r.resolve();
    } catch (err) {
      this.fail(group, err);
    }
  }

  private fail(group: Waiting[], err: unknown): void {
    this.stale = true;
    // A missing ACL is named (the collector needs WRITE on the raw topic, nothing else).
    this.lastError = explainKafkaError(err, `WRITE on topic ${this.topic}`);
    const e = new Error(this.lastError, { cause: err });
    for (const r of group) r.reject(e);
  }
}
