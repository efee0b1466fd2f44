/**
 * The test broker (deploy/kafka/container.ts) against kafkajs: topic creation, 1000 messages produced and
 * consumed back by a consumer group with exact payloads, and a broker outage (stop, start) that keeps
 * the address and the data.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Admin, Kafka, logLevel, Partitioners } from 'kafkajs';
import { type KafkaBroker, startKafka } from '../../deploy/kafka/container';

const MESSAGES = 1000;
const PARTITIONS = 3;

let broker: KafkaBroker | undefined;
let startMs = 0;

function client(b: KafkaBroker, id: string): Kafka {
  return new Kafka({
    clientId: id,
    brokers: b.brokers,
    // kafkajs logs its own transient retries (e.g. group coordinator not yet available) at ERROR.
    logLevel: process.env.KAFKA_LOGS === '1' ? logLevel.WARN : logLevel.NOTHING,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 2_000 },
  });
}

/** Rejects after ms with a message naming what timed out. */
async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function withAdmin<T>(b: KafkaBroker, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = client(b, 'kafka-broker-test-admin').admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Consumes from the beginning with a fresh group until `count` messages arrived (or timeoutMs). */
async function consumeAll(
  b: KafkaBroker,
  topic: string,
  count: number,
  timeoutMs: number,
): Promise<string[]> {
  const consumer = client(b, 'kafka-broker-test-consumer').consumer({
    groupId: `kafka-broker-test-${randomBytes(4).toString('hex')}`,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 200,
  });
  const received: string[] = [];
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        received.push(message.value?.toString('utf8') ?? '<null>');
        if (received.length >= count) done();
      },
    });
    await within(timeoutMs, `consuming ${count} messages from ${topic} (got ${received.length})`, all);
    // Anything beyond `count` would be a duplicate: give it a moment to show up.
    await sleep(500);
    return received;
  } finally {
    await consumer.disconnect();
  }
}

function payload(i: number): string {
  return JSON.stringify({ seq: i, note: `smmu-fault-${i}`, pad: 'x'.repeat(i % 97) });
}

before(async () => {
  const t0 = Date.now();
  broker = await startKafka({ partitions: PARTITIONS });
  startMs = Date.now() - t0;
  console.log(
    `kafka: ${broker.external ? 'external' : broker.image} at ${broker.brokers.join(',')} ready in ${startMs} ms`,
  );
});

after(async () => {
  await broker?.stop();
});

test('produces and consumes 1000 messages through a consumer group', { timeout: 120_000 }, async () => {
  const b = broker!;
  const topic = `kafka-broker-test-${randomBytes(4).toString('hex')}`;
  await within(
    30_000,
    'createTopics',
    withAdmin(b, (admin) =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      }),
    ),
  );
  const topics = await within(
    10_000,
    'listTopics',
    withAdmin(b, (admin) => admin.listTopics()),
  );
  assert.ok(topics.includes(topic), `topic ${topic} listed`);

  const producer = client(b, 'kafka-broker-test-producer').producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    const sent: string[] = Array.from({ length: MESSAGES }, (_, i) => payload(i));
    // Several batches, keyed so that all partitions get some.
    for (let i = 0; i < MESSAGES; i += 100) {
      await within(
        15_000,
        `send batch at ${i}`,
        producer.send({
          topic,
          acks: -1,
          messages: sent.slice(i, i + 100).map((value, j) => ({ key: `k${(i + j) % 17}`, value })),
        }),
      );
    }
  } finally {
    await producer.disconnect();
  }

  const offsets = await within(
    10_000,
    'fetchTopicOffsets',
    withAdmin(b, (a) => a.fetchTopicOffsets(topic)),
  );
  assert.equal(offsets.length, PARTITIONS);
  assert.equal(
    offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0),
    MESSAGES,
  );

  const received = await consumeAll(b, topic, MESSAGES, 60_000);
  assert.equal(received.length, MESSAGES, 'exactly 1000 messages, no duplicates');
  const expected = Array.from({ length: MESSAGES }, (_, i) => payload(i));
  assert.deepEqual([...received].sort(), [...expected].sort(), 'exact payloads');
});

/** Local addresses (kernel hex, e.g. 0100007F) of the sockets listening on TCP `port`, IPv4 and IPv6. */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f.length > 3 && f[3] === '0A' && f[1].endsWith(`:${hexPort}`))
      .map((f) => f[1].split(':')[0]),
  );
}

test('the broker is published on the loopback only, not on every address of the host', (t) => {
  const b = broker;
  assert.ok(b);
  if (b.external) return t.skip('KAFKA_BROKERS names an existing cluster');
  const port = Number(b.brokers[0].split(':').pop());
  assert.deepEqual(listeningAddresses(port), ['0100007F']);
});

test('a stopped and restarted broker keeps its address and its data', { timeout: 150_000 }, async (t) => {
  const b = broker!;
  if (b.external) {
    t.skip('KAFKA_BROKERS names an external cluster');
    return;
  }
  const topic = `kafka-broker-restart-${randomBytes(4).toString('hex')}`;
  const producer = client(b, 'kafka-broker-test-producer').producer({
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    await within(
      15_000,
      'send before restart',
      producer.send({ topic, acks: -1, messages: [{ key: 'restart', value: 'before' }] }),
    );
  } finally {
    await producer.disconnect();
  }

  const t0 = Date.now();
  await within(45_000, 'stopBroker', b.stopBroker());
  const stoppedMs = Date.now() - t0;
  const probe = new Kafka({
    clientId: 'kafka-broker-test-probe',
    brokers: b.brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    retry: { retries: 0 },
  }).admin();
  await assert.rejects(
    within(10_000, 'connect while stopped', probe.connect()),
    'the broker does not answer while stopped',
  );
  await probe.disconnect().catch(() => undefined);
  const t1 = Date.now();
  await within(100_000, 'startBroker', b.startBroker());
  console.log(`kafka: stop ${stoppedMs} ms, start again ${Date.now() - t1} ms`);

  const producer2 = client(b, 'kafka-broker-test-producer').producer({
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer2.connect();
  try {
    await within(
      15_000,
      'send after restart',
      producer2.send({ topic, acks: -1, messages: [{ key: 'restart', value: 'after' }] }),
    );
  } finally {
    await producer2.disconnect();
  }
  // Same key, same partition: the order is the produce order.
  const received = await consumeAll(b, topic, 2, 60_000);
  assert.deepEqual(received, ['before', 'after']);
});
