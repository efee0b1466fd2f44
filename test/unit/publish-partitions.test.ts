// The collector's publisher sends each partition's messages in a send of their own (kafkajs 2.2.4
// loses the messages of a multi-partition send whose partition moves to a broker that already
// answered for another one), places them as Kafka's default partitioner does, and a failed send
// fails only its own requests. A small fake producer records the sends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kafka, ProducerRecord } from 'kafkajs';
import { BatchPublisher } from '../../collector/ingest/publish';
import { partitionOf } from '../../common/kafka/topics';

function fakeKafka(partitions: number, failPartition = -1) {
  const sends: ProducerRecord[] = [];
  const kafka = {
    producer: () => ({
      connect: async () => {},
      disconnect: async () => {},
      send: async (r: ProducerRecord) => {
        await new Promise((resolve) => setImmediate(resolve));
        sends.push(r);
        if (r.messages.some((m) => m.partition === failPartition)) throw new Error('NOT_LEADER_OR_FOLLOWER');
        return [];
      },
    }),
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      fetchTopicMetadata: async () => ({
        topics: [
          { name: 'raw', partitions: Array.from({ length: partitions }, (_, i) => ({ partitionId: i })) },
        ],
      }),
    }),
  };
  return { kafka: kafka as unknown as Kafka, sends };
}

const hosts = Array.from({ length: 24 }, (_, i) => `node-${i}`);

test('one send per partition, each message placed where the default partitioner puts its host', async () => {
  const { kafka, sends } = fakeKafka(6);
  const pub = new BatchPublisher(kafka, 'raw', 'none');
  await pub.connect();
  // The first publish goes out alone; the other 47 queue behind it and are coalesced.
  await Promise.all(
    [...hosts, ...hosts].map((host, i) => pub.publish({ host, agentId: host, bytes: new Uint8Array([i]) })),
  );
  const sent = sends.flatMap((s) => s.messages);
  assert.equal(sent.length, 48);
  for (const s of sends) {
    const parts = new Set(s.messages.map((m) => m.partition));
    assert.equal(parts.size, 1, `a send holds one partition, not ${[...parts]}`);
  }
  for (const m of sent) assert.equal(m.partition, partitionOf('raw', String(m.key), 6));
  // A host's batches keep their order.
  for (const [i, host] of hosts.entries()) {
    const values = sent.filter((m) => m.key === host).map((m) => (m.value as Buffer)[0]);
    assert.deepEqual(values, [i, i + 24], host);
  }
  assert.ok(sends.length > 2 && sends.length <= 7, `${sends.length} sends`);
});

test("a failed send fails only its partition's requests", async () => {
  const bad = partitionOf('raw', 'node-3', 6);
  const { kafka } = fakeKafka(6, bad);
  const pub = new BatchPublisher(kafka, 'raw', 'none');
  await pub.connect();
  const bytes = new Uint8Array([7]);
  await pub.publish({ host: 'node-0', agentId: 'a', bytes }).catch(() => {});
  const results = await Promise.allSettled(hosts.map((host) => pub.publish({ host, agentId: host, bytes })));
  for (const [i, r] of results.entries()) {
    const failed = partitionOf('raw', hosts[i], 6) === bad;
    assert.equal(r.status, failed ? 'rejected' : 'fulfilled', hosts[i]);
    if (r.status === 'rejected') assert.match(String(r.reason.message), /NOT_LEADER_OR_FOLLOWER/);
  }
  assert.ok(results.some((r) => r.status === 'rejected'));
});
