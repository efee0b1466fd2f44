// The collector daemon: gRPC ingest -> Kafka publish, plus health and metrics over HTTP.
import { setTimeout as sleep } from 'node:timers/promises';
import { Server } from '@grpc/grpc-js';
import type { Kafka } from 'kafkajs';
import { type KafkaSecurity, kafkaClient, noKafkaSecurity } from '../../common/kafka/client';
import type { KafkaCompression } from '../../common/kafka/codecs';
import { explainKafkaError } from '../../common/kafka/errors';
import { DEFAULT_BROKERS, DEFAULT_RAW_TOPIC, ensureTopics, rawTopic } from '../../common/kafka/topics';
import { startHttp } from '../../common/runtime/http';
import type { Logger } from '../../common/runtime/log';
import { ingestService } from '../../proto/ingest-service';
import { type AuthConfig, Authenticator } from './auth';
import { ingestHandler } from './ingest';
import { collectorMetrics } from './metrics';
import { BatchPublisher } from './publish';
import { wireGunzipTuned } from './wire-gunzip';

export interface CollectorConfig {
  /** gRPC listen address host:port (port 0: any free port). */
  listen: string;
  /** HTTP listen address for /healthz, /readyz, /metrics; empty: none. */
  httpListen: string;
  brokers: string[];
  kafkaSecurity: KafkaSecurity;
  /** Longest wait between attempts while Kafka refuses the collector (it starts at 1 s). */
  kafkaRetryMaxMs: number;
  rawTopic: string;
  topicPartitions: number;
  topicReplication: number;
  maxMessageBytes: number;
  maxEventsPerBatch: number;
  /** Sustained batches per second per host; 0: unlimited. */
  maxBatchesPerSecond: number;
  /** Compression of the record batches the collector writes to Kafka. */
  kafkaCompression: KafkaCompression;
  clientId: string;
  auth: AuthConfig;
}

export const defaultCollectorConfig: CollectorConfig = {
  listen: '127.0.0.1:7070',
  httpListen: '127.0.0.1:9471',
  brokers: [...DEFAULT_BROKERS],
  kafkaSecurity: noKafkaSecurity,
  kafkaRetryMaxMs: 30_000,
  rawTopic: DEFAULT_RAW_TOPIC,
  topicPartitions: 6,
  topicReplication: 1,
  maxMessageBytes: 4 << 20,
  maxEventsPerBatch: 65536,
  maxBatchesPerSecond: 200,
  kafkaCompression: 'zstd',
  clientId: 'smmu-collector',
  auth: { tlsCert: '', tlsKey: '', tlsClientCa: '', tokensFile: '' },
};

export class Collector {
  readonly metrics = collectorMetrics();
  private server: Server;
  private publisher: BatchPublisher;
  private auth: Authenticator;
  private kafka: Kafka;
  private http: Awaited<ReturnType<typeof startHttp>> | undefined;
  private ready = false;
  private stopping = new AbortController();
  /** Why the last attempt to set up Kafka failed (readiness), until one succeeds. */
  kafkaError: string | undefined;
  /** Bound gRPC address once started. */
  address = '';
  httpAddress = '';

  constructor(
    private readonly config: CollectorConfig,
    private readonly log: Logger,
  ) {
    this.auth = new Authenticator(config.auth);
    this.server = new Server({
      'grpc.max_receive_message_length': config.maxMessageBytes,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5000,
    });
    // Made here so that unreadable secret files and bad settings stop the program at once.
    this.kafka = this.newKafka();
    this.publisher = new BatchPublisher(this.kafka, config.rawTopic, config.kafkaCompression);
  }

  private newKafka(): Kafka {
    const c = this.config;
    return kafkaClient(
      { clientId: c.clientId, brokers: c.brokers, security: c.kafkaSecurity },
      { retry: { retries: 5 } },
    );
  }

  /**
   * Creates the raw topic if needed and connects the producer. While Kafka refuses (a wrong
   * password, an untrusted certificate, a missing ACL) the collector stays up and not ready,
   * says why, and tries again with a new client, which re-reads the secret files; agents keep
   * their batches in their spools meanwhile.
   */
  private async connectKafka(): Promise<void> {
    const c = this.config;
    for (let attempt = 1, delay = 1000; ; attempt++, delay = Math.min(delay * 2, c.kafkaRetryMaxMs)) {
      // What the step that fails needs, for a message naming a missing ACL.
      let needs = `DESCRIBE on topic ${c.rawTopic} (and CREATE, to create it)`;
      try {
        if (attempt > 1) {
          await this.publisher.disconnect().catch(() => {});
          this.kafka = this.newKafka();
          this.publisher = new BatchPublisher(this.kafka, c.rawTopic, c.kafkaCompression);
        }
        await ensureTopics(this.kafka, [rawTopic(c.rawTopic, c.topicPartitions, c.topicReplication)]);
        // An idempotent producer's id is granted to principals that may write some topic.
        needs = `WRITE on topic ${c.rawTopic}`;
        await this.publisher.connect();
        this.kafkaError = undefined;
        return;
      } catch (err) {
        this.kafkaError = explainKafkaError(err, needs);
        this.metrics.kafkaSetupFailures.inc();
        this.log.error({ err: this.kafkaError, attempt, retryInMs: delay }, 'cannot use Kafka; retrying');
      }
      await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => {
        throw new Error(`stopped before Kafka could be used: ${this.kafkaError}`);
      });
    }
  }

  async start(): Promise<void> {
    const c = this.config;
    if (c.httpListen) {
      this.http = await startHttp({
        listen: c.httpListen,
        registry: this.metrics.registry,
        notReady: () => {
          if (!this.ready)
            return this.kafkaError ? `cannot use Kafka: ${this.kafkaError}` : 'connecting to Kafka';
          const e = this.publisher.lastError;
          return e ? `Kafka is not accepting batches: ${e}` : null;
        },
      });
      this.httpAddress = this.http.address;
    }
    await this.connectKafka();
    this.server.addService(ingestService, {
      stream: ingestHandler(
        this.publisher,
        this.auth,
        {
          maxEventsPerBatch: c.maxEventsPerBatch,
          maxPendingPerStream: 64,
          maxBatchesPerSecond: c.maxBatchesPerSecond,
        },
        this.metrics,
        this.log,
      ),
    });
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(c.listen, this.auth.credentials(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `${c.listen.slice(0, c.listen.lastIndexOf(':'))}:${port}`;
    this.ready = true;
    if (this.auth.open)
      this.log.warn(
        'no client authentication configured (--tls-client-ca or --tokens-file): any agent may report for any host',
      );
    this.log.info(
      {
        grpc: this.address,
        http: this.httpAddress,
        topic: c.rawTopic,
        brokers: c.brokers,
        gunzip: wireGunzipTuned ? 'one zlib call per batch' : 'grpc-js defaults',
      },
      'collector ready',
    );
  }

  /** Stops taking new streams, lets open ones finish for up to graceMs, then closes. */
  async stop(graceMs = 5000): Promise<void> {
    this.ready = false;
    this.stopping.abort();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    await this.publisher.disconnect().catch(() => {});
    await this.http?.close();
  }
}
