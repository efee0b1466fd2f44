// A Kafka broker and an in-process collector publishing to `topic`, for integration tests.

import { Collector, defaultCollectorConfig } from '../../collector/ingest/collector';
import { silentLogger } from '../../common/runtime/log';
import { type KafkaBroker, startKafka } from '../../deploy/kafka/container';

export interface KafkaCollector {
  broker: KafkaBroker;
  collector: Collector;
  stop(): Promise<void>;
}

export async function startKafkaCollector(topic: string, topicPartitions: number): Promise<KafkaCollector> {
  const broker = await startKafka();
  const collector = new Collector(
    {
      ...defaultCollectorConfig,
      listen: '127.0.0.1:0',
      httpListen: '127.0.0.1:0',
      brokers: broker.brokers,
      rawTopic: topic,
      topicPartitions,
    },
    silentLogger,
  );
  try {
    await collector.start();
  } catch (err) {
    await broker.stop();
    throw err;
  }
  return {
    broker,
    collector,
    stop: async () => {
      await collector.stop(1000);
      await broker.stop();
    },
  };
}
