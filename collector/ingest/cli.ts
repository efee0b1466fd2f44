#!/usr/bin/env node
import { kafkaOptionSpecs, kafkaSecurityFromOptions } from '../../common/kafka/client';
import { KAFKA_COMPRESSION } from '../../common/kafka/codecs';
// smmu-collector: receives agent batch streams over gRPC and publishes them to Kafka.
import { runMain } from '../../common/runtime/main';
import { overlay } from '../../common/runtime/options';
import { Collector, defaultCollectorConfig as d } from './collector';

const ENV_PREFIX = 'SMMU_COLLECTOR_';

const specs = {
  listen: { type: 'string', default: d.listen, help: 'gRPC listen address for agents (host:port)' },
  httpListen: {
    type: 'string',
    default: d.httpListen,
    help: 'HTTP address for /healthz, /readyz, /metrics (empty: off)',
  },
  ...kafkaOptionSpecs(d.brokers),
  rawTopic: { type: 'string', default: d.rawTopic, help: 'Kafka topic of raw agent batches (keyed by host)' },
  topicPartitions: {
    type: 'number',
    default: d.topicPartitions,
    min: 1,
    integer: true,
    help: 'partitions when creating the raw topic',
  },
  topicReplication: {
    type: 'number',
    default: d.topicReplication,
    min: 1,
    integer: true,
    help: 'replication factor when creating the raw topic',
  },
  maxMessageBytes: {
    type: 'number',
    default: d.maxMessageBytes,
    min: 1024,
    help: 'largest accepted batch message',
  },
  maxEventsPerBatch: {
    type: 'number',
    default: d.maxEventsPerBatch,
    min: 1,
    integer: true,
    help: 'most events accepted in one batch',
  },
  maxBatchesPerSecond: {
    type: 'number',
    default: d.maxBatchesPerSecond,
    min: 0,
    help: 'sustained batches/s per host before reading pauses (0: unlimited)',
  },
  kafkaCompression: {
    type: 'string',
    default: d.kafkaCompression,
    choices: Object.keys(KAFKA_COMPRESSION),
    help: 'compression of the record batches written to Kafka (consumers still read plain EventBatch values)',
  },
  tlsCert: { type: 'string', default: '', help: 'PEM server certificate (enables TLS)' },
  tlsKey: { type: 'string', default: '', help: 'PEM server private key' },
  tlsClientCa: {
    type: 'string',
    default: '',
    help: "PEM CA of agent certificates: requires mutual TLS; a certificate's CN/DNS names are the hosts it may report for",
  },
  tokensFile: {
    type: 'string',
    default: '',
    help: 'JSON file {"<token>": "<host>"}: agents authenticate with "authorization: Bearer <token>"',
  },
} as const;

runMain(
  {
    name: 'smmu-collector',
    envPrefix: ENV_PREFIX,
    summary:
      'Receives IOMMU fault event batches from smmu-agent over gRPC and publishes them to Kafka; acknowledges a batch only once Kafka has it.',
  },
  specs,
  async (o, _pos, log) => {
    const c = new Collector(
      {
        ...overlay(d, o),
        brokers: o.kafkaBrokers,
        kafkaSecurity: kafkaSecurityFromOptions(o, ENV_PREFIX),
        auth: overlay(d.auth, o),
      },
      log,
    );
    await c.start();
    return c;
  },
);
