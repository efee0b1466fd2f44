// The raw-topic layout guard: where Kafka places a host, and when the aggregator must stop
// counting a partition because its partitions were changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawTopicLayout } from '../../collector/accounting/layout';
import { partitionOf } from '../../common/kafka/topics';
import { silentLogger } from '../../common/runtime/log';

test('hosts are placed as the Java client places them (murmur2 mod partitions)', () => {
  // From org.apache.kafka.common.utils.Utils.murmur2 / toPositive (kafka-clients 4.1.1) for
  // 4, 6 and 12 partitions.
  const java: Array<[string, number, number, number]> = [
    ['node-1', 2, 4, 10],
    ['node-2', 1, 3, 9],
    ['node-3', 1, 3, 9],
    ['node-4', 0, 0, 0],
    ['node-5', 3, 5, 11],
    ['node-6', 3, 1, 7],
    ['edge-host-17', 0, 4, 4],
  ];
  for (const [host, p4, p6, p12] of java)
    assert.deepEqual(
      [4, 6, 12].map((n) => partitionOf('raw', host, n)),
      [p4, p6, p12],
      host,
    );
});

test('a group without checkpoints takes the current count; recorded counts win', async () => {
  const fresh = new RawTopicLayout('raw', 'g', silentLogger);
  await fresh.learn(
    async () => 6,
    async () => 0,
  );
  assert.equal(fresh.partitions, 6);

  const grown = new RawTopicLayout('raw', 'g', silentLogger);
  const asked: number[] = [];
  await grown.learn(
    async () => 6,
    async (q) => {
      asked.push(q);
      return q === 1 ? 4 : 0;
    },
  );
  assert.equal(grown.partitions, 4);
  assert.deepEqual(asked, [0, 1], 'stops at the first checkpoint that recorded a count');
  await grown.learn(
    async () => 12,
    async () => 12,
  );
  assert.equal(grown.partitions, 4, 'learned once per process');
});

test('a misplaced host or a partition beyond the count stops that partition, and only it', async () => {
  const layout = new RawTopicLayout('raw', 'g', silentLogger);
  await layout.learn(
    async () => 4,
    async () => 0,
  );
  for (let p = 0; p < 6; p++) layout.open(p, 4);
  assert.equal(layout.refusal()?.includes('partition 4 is beyond the 4 partitions'), true);
  assert.equal(layout.accepts(4, 0, 'node-4'), false);
  assert.equal(layout.accepts(5, 0, 'node-1'), false);
  layout.forget(4);
  layout.forget(5);
  assert.equal(layout.refusal(), undefined);

  assert.equal(layout.accepts(2, 10, 'node-1'), true);
  assert.equal(layout.accepts(1, 11, undefined), true, 'an undecodable message has no host to check');
  // node-6 is in partition 3 of 4 but in 1 of 6: found in partition 1, the topic grew.
  assert.equal(layout.accepts(1, 12, 'node-6'), false);
  assert.match(
    layout.refusal() ?? '',
    /raw topic raw, group g: counting of partition 1 stopped: host node-6 at offset 12 belongs in partition 3 of 4: .*"Replication, partitions and growing the raw topic"/,
  );
  assert.equal(layout.accepts(1, 13, 'node-2'), false, 'nothing after the stop is counted');
  assert.equal(layout.accepts(2, 14, 'node-1'), true, 'other partitions count on');
  layout.open(1, 4);
  assert.equal(layout.accepts(1, 12, 'node-2'), true, 'a re-opened partition is checked afresh');
  layout.open(0, 6);
  assert.match(layout.refusal() ?? '', /checkpoint was built with 6 partitions, the group with 4/);
});
