// Creates the project's Kafka topics when missing, with explicit configuration, and says
// clearly what to do when it may not.
import type { Kafka } from 'kafkajs';

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
  configEntries?: Array<{ name: string; value: string }>;
}

/** The raw-batches topic: one message per agent batch, keyed by host, kept for a week. */
export function rawTopic(topic: string, partitions: number, replication: number): TopicSpec {
  return {
    topic,
    numPartitions: partitions,
    replicationFactor: replication,
    configEntries: [
      { name: 'retention.ms', value: String(7 * 24 * 3600 * 1000) },
      { name: 'cleanup.policy', value: 'delete' },
      { name: 'max.message.bytes', value: String(8 << 20) },
    ],
  };
}

export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.topic));
    if (missing.length === 0) return;
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  } catch (err) {
    const e = err as Error & { type?: string };
    if (e.type === 'TOPIC_AUTHORIZATION_FAILED' || e.type === 'CLUSTER_AUTHORIZATION_FAILED') {
      throw new Error(
        `not allowed to create Kafka topics ${specs.map((s) => s.topic).join(', ')} (${e.type}): create them beforehand or grant CREATE on the cluster`,
      );
    }
    throw err;
  } finally {
    await admin.disconnect();
  }
}
