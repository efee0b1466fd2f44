// Creates the project's Kafka topics when missing, with explicit configuration, and says
// clearly what to do when it may not.
//
// | topic (default name)       | written by  | key                         | cleanup        | retention |
// |----------------------------|-------------|-----------------------------|----------------|-----------|
// | smmu-fleet.batches.v1      | collector   | host                        | delete         | 7 days    |
// | smmu-fleet.windows.v1      | aggregator  | host/smmu/sid/ssid or host  | delete         | 7 days    |
// | smmu-fleet.totals.v1       | aggregator  | host/smmu/sid/ssid or host  | compact        | forever   |
// | smmu-fleet.checkpoints.v1  | aggregator  | group/raw topic/partition   | compact        | forever   |
import { type Admin, type Kafka, type Message, Partitioners } from 'kafkajs';
import { authorizationType } from './errors';

/** Where every program looks for Kafka unless told otherwise. */
export const DEFAULT_BROKERS: readonly string[] = ['127.0.0.1:9092'];
/** The raw topic's default name: what collectors write and the accounting reads. */
export const DEFAULT_RAW_TOPIC = 'smmu-fleet.batches.v1';

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  replicationFactor: number;
  configEntries?: Array<{ name: string; value: string }>;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * A compacted topic: the latest value per key is kept forever. Segments roll hourly and are
 * compacted once 10% of the log is superseded; a deleted key disappears after a day.
 */
function compacted(maxMessageBytes: number): Array<{ name: string; value: string }> {
  return [
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'segment.ms', value: String(3600 * 1000) },
    { name: 'min.cleanable.dirty.ratio', value: '0.1' },
    { name: 'delete.retention.ms', value: String(DAY_MS) },
    { name: 'max.message.bytes', value: String(maxMessageBytes) },
  ];
}

/** Kafka's default partitioner (Java-compatible murmur2), the one every producer here uses. */
const place = Partitioners.DefaultPartitioner();

/** Where Kafka's default partitioner puts messages keyed `key` in a topic of `count` partitions. */
export function partitionOf(topic: string, key: string, count: number): number {
  const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));
  return place({ topic, partitionMetadata, message: { key, value: null } as Message });
}

/**
 * partitionOf for the hosts of one topic at one partition count, cached per host (a murmur2 per
 * batch is cheap, none is cheaper). Setting another count forgets every placement.
 */
export class HostPlacement {
  private readonly placed = new Map<string, number>();
  private n = 0;

  constructor(readonly topic: string) {}

  /** The partition count placements are for; 0 until set. */
  get count(): number {
    return this.n;
  }

  set count(n: number) {
    if (n !== this.n) this.placed.clear();
    this.n = n;
  }

  of(host: string): number {
    let p = this.placed.get(host);
    if (p === undefined) {
      p = partitionOf(this.topic, host, this.n);
      this.placed.set(host, p);
    }
    return p;
  }
}

/** A topic's partition count now (0: the topic does not exist). */
export async function partitionCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    return md.topics[0]?.partitions.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}

/** The raw-batches topic: one message per agent batch, keyed by host, kept for a week. */
export function rawTopic(topic: string, partitions: number, replication: number): TopicSpec {
  return {
    topic,
    numPartitions: partitions,
    replicationFactor: replication,
    configEntries: [
      { name: 'retention.ms', value: String(7 * DAY_MS) },
      { name: 'cleanup.policy', value: 'delete' },
      { name: 'max.message.bytes', value: String(8 << 20) },
    ],
  };
}

/**
 * Closed tumbling windows (smmu.accounting.v1.WindowRecord), keyed by series or host, kept for
 * `retentionMs` (default a week). Records are small; a day of a 10,000-series fleet with a
 * window every 10 s is about 86,400 / 10 x 10,000 x 60 bytes = 5 GB at most (only series with
 * events in a window get a record).
 */
export function windowsTopic(
  topic: string,
  partitions: number,
  replication: number,
  retentionMs = 7 * DAY_MS,
): TopicSpec {
  return {
    topic,
    numPartitions: partitions,
    replicationFactor: replication,
    configEntries: [
      { name: 'retention.ms', value: String(retentionMs) },
      { name: 'cleanup.policy', value: 'delete' },
      { name: 'max.message.bytes', value: String(1 << 20) },
    ],
  };
}

/**
 * Cumulative totals (smmu.accounting.v1.TotalsRecord), compacted: the latest value per series or
 * host is kept forever. Segments roll hourly and are compacted once 10% of the log is
 * superseded, so a reader of the whole topic reads little more than one value per key; a
 * deleted key (empty value) disappears after a day.
 */
export function totalsTopic(topic: string, partitions: number, replication: number): TopicSpec {
  return {
    topic,
    numPartitions: partitions,
    replicationFactor: replication,
    configEntries: compacted(1 << 20),
  };
}

/**
 * Aggregator checkpoints (smmu.accounting.v1.PartitionCheckpoint), compacted: the latest
 * state per (group, raw topic, partition). One partition is plenty (a few messages per second);
 * messages hold a partition's whole state (gzip-compressed), hence the 64 MiB limit.
 */
export function checkpointTopic(topic: string, replication: number): TopicSpec {
  return {
    topic,
    numPartitions: 1,
    replicationFactor: replication,
    configEntries: compacted(64 << 20),
  };
}

function authorizationError(err: unknown, what: string, topics: string[]): Error | undefined {
  const type = authorizationType(err);
  if (type === undefined || type === 'GROUP_AUTHORIZATION_FAILED') return undefined;
  const grant = what === 'create' ? 'DESCRIBE and CREATE' : 'DESCRIBE and DESCRIBE_CONFIGS';
  return new Error(
    `not allowed to ${what} Kafka topics ${topics.join(', ')} (${type}): create them beforehand with the configuration in common/kafka/topics.ts, or grant ${grant} on them`,
  );
}

/** Runs fn with a connected admin client, turning authorization failures into clear errors. */
async function withAdmin<T>(
  kafka: Kafka,
  what: string,
  topics: string[],
  fn: (admin: Admin) => Promise<T>,
): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } catch (err) {
    throw authorizationError(err, what, topics) ?? err;
  } finally {
    await admin.disconnect();
  }
}

export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<void> {
  await withAdmin(
    kafka,
    'create',
    specs.map((s) => s.topic),
    async (admin) => {
      const existing = new Set(await admin.listTopics());
      const missing = specs.filter((s) => !existing.has(s.topic));
      // false (not an error) when another process created them in the meantime.
      if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true });
    },
  );
}

/**
 * Checks that existing topics have the configuration values that correctness depends on
 * (e.g. cleanup.policy=compact for the checkpoint topic). Throws naming the topic, the setting,
 * what it is and what it must be.
 */
export async function verifyTopicConfig(
  kafka: Kafka,
  required: Array<{ topic: string; name: string; value: string }>,
): Promise<void> {
  if (required.length === 0) return;
  const topics = [...new Set(required.map((r) => r.topic))];
  await withAdmin(kafka, 'describe', topics, async (admin) => {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      // Retriable: in a cluster, a topic just created may not be in every broker's metadata yet.
      throw Object.assign(
        new Error(
          `Kafka topics ${missing.join(', ')} do not exist: create them with the configuration in common/kafka/topics.ts, or let the program create them`,
        ),
        { retriable: true },
      );
    }
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: 2 /* TOPIC */, name })),
    });
    for (const r of required) {
      const entry = res.resources
        .find((x) => x.resourceName === r.topic)
        ?.configEntries.find((c) => c.configName === r.name);
      if (entry?.configValue !== r.value) {
        throw new Error(
          `Kafka topic ${r.topic} has ${r.name}=${entry?.configValue ?? '(unset)'}, must be ${r.value}: change it (kafka-configs --alter --entity-type topics --entity-name ${r.topic} --add-config ${r.name}=${r.value}) or use another topic`,
        );
      }
    }
  });
}
