// The aggregator's topics: created when missing (with --create-topics) and checked, and what
// the aggregator needs from Kafka, for error messages that name a missing ACL.
import type { Kafka } from 'kafkajs';
import { retryWhileRetriable } from '../../common/kafka/errors';
import {
  checkpointTopic,
  ensureTopics,
  rawTopic,
  totalsTopic,
  verifyTopicConfig,
  windowsTopic,
} from '../../common/kafka/topics';
import type { AggregatorConfig } from './config';

export async function prepareTopics(kafka: Kafka, c: AggregatorConfig): Promise<void> {
  // Two instances starting together race to create the topics; Kafka then answers "does not
  // host this topic-partition" until the new topics' metadata has spread.
  await retryWhileRetriable(async () => {
    if (c.createTopics) {
      await ensureTopics(kafka, [
        // Normally the collector creates it; the same specification either way.
        rawTopic(c.rawTopic, c.topicPartitions, c.topicReplication),
        windowsTopic(c.windowsTopic, c.topicPartitions, c.topicReplication, c.windowsRetentionMs),
        totalsTopic(c.totalsTopic, c.topicPartitions, c.topicReplication),
        checkpointTopic(c.checkpointTopic, c.topicReplication),
      ]);
    }
    // A checkpoint topic that deletes old checkpoints would make a restore start from nothing.
    await verifyTopicConfig(kafka, [
      { topic: c.checkpointTopic, name: 'cleanup.policy', value: 'compact' },
      { topic: c.totalsTopic, name: 'cleanup.policy', value: 'compact' },
    ]);
  });
}

/** The ACLs the aggregator's principal needs. */
export function kafkaPermissions(c: AggregatorConfig): string {
  return `READ on topics ${c.rawTopic} and ${c.checkpointTopic}, READ on consumer groups with the prefix ${c.groupId}, WRITE on topics ${c.windowsTopic}, ${c.totalsTopic} and ${c.checkpointTopic}, DESCRIBE_CONFIGS on ${c.checkpointTopic} and ${c.totalsTopic}`;
}
