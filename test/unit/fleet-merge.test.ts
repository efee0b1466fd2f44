// The fleet API's merge of the instances' answers (collector/accounting/fleet.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Answer, addCount, askPeer, mergeAnswers } from '../../collector/accounting/fleet';

const summary = (hosts: number, events: number | string, lost: Record<string, number>) => ({
  hosts,
  series: hosts * 2,
  batches: 10,
  events,
  kinds: { translation: 1, access: 2, permission: 3, other: 4 },
  stalls: 5,
  stallTimeNs: null,
  lost,
  lostEvents: Object.values(lost).reduce((a, b) => a + b, 0),
  replayedBatches: 1,
  late: { '10s': 0, '1m': 2 },
  malformedMessages: 0,
  assignedPartitions: [0, 1],
  checkpointIntervalMs: 5000,
});

test('counts add exactly, as numbers while safe and as decimal strings beyond 2^53', () => {
  assert.equal(addCount(2, 3), 5);
  assert.equal(addCount(Number.MAX_SAFE_INTEGER, 1), '9007199254740992');
  assert.equal(addCount('9007199254740993', 7), '9007199254741000');
  assert.equal(addCount('5', '6'), 11);
});

test('summary: counts add across instances, per-instance settings do not, a silent instance is named', () => {
  const answers: Answer[] = [
    { url: 'self', status: 200, body: summary(2, 100, { LOSS_REASON_SPOOL_FULL: 3 }) },
    {
      url: 'http://b',
      status: 200,
      body: summary(1, '9007199254740993', { LOSS_REASON_RING_BUFFER_OVERRUN: 4 }),
    },
    { url: 'http://c', error: 'connect ECONNREFUSED 127.0.0.1:1' },
  ];
  const { status, body } = mergeAnswers('summary', answers) as {
    status: number;
    body: Record<string, unknown>;
  };
  assert.equal(status, 200);
  assert.equal(body.hosts, 3);
  assert.equal(body.series, 6);
  assert.equal(body.events, '9007199254741093');
  assert.deepEqual(body.kinds, { translation: 2, access: 4, permission: 6, other: 8 });
  assert.deepEqual(body.lost, { LOSS_REASON_SPOOL_FULL: 3, LOSS_REASON_RING_BUFFER_OVERRUN: 4 });
  assert.equal(body.lostEvents, 7);
  assert.deepEqual(body.late, { '10s': 0, '1m': 4 });
  assert.equal(body.stallTimeNs, null);
  assert.equal(body.checkpointIntervalMs, undefined);
  assert.deepEqual(body.instances, [
    { url: 'self', ok: true, partitions: [0, 1] },
    { url: 'http://b', ok: true, partitions: [0, 1] },
    { url: 'http://c', ok: false, error: 'connect ECONNREFUSED 127.0.0.1:1' },
  ]);
});

test('lists concatenate; one host is found on whichever instance has it, else 404 saying so', () => {
  const rows = mergeAnswers('hosts', [
    { url: 'self', status: 200, body: { hosts: [{ host: 'a' }] } },
    { url: 'http://b', status: 200, body: { hosts: [{ host: 'b' }, { host: 'c' }] } },
  ]).body as { hosts: unknown[] };
  assert.deepEqual(rows.hosts, [{ host: 'a' }, { host: 'b' }, { host: 'c' }]);
  const w = mergeAnswers('windows', [
    { url: 'self', status: 200, body: { width: '1m', windows: [1] } },
    { url: 'http://b', status: 200, body: { width: '1m', windows: [2] } },
  ]).body as { width: string; windows: number[] };
  assert.deepEqual([w.width, w.windows], ['1m', [1, 2]]);
  const found = mergeAnswers('hosts/b', [
    { url: 'self', status: 404, body: { error: 'no host' } },
    { url: 'http://b', status: 200, body: { host: { host: 'b' }, devices: [], processes: [] } },
  ]);
  assert.equal(found.status, 200);
  assert.deepEqual((found.body as { host: unknown }).host, { host: 'b' });
  const missing = mergeAnswers('hosts/x%2Fy', [
    { url: 'self', status: 404, body: { error: 'no host' } },
    { url: 'http://b', status: 500, body: { error: 'boom' } },
  ]);
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.body, {
    error: 'no host "x/y" in the fleet (1 of 2 instances answered)',
    instances: [
      { url: 'self', ok: true },
      { url: 'http://b', ok: false, error: 'HTTP 500 boom' },
    ],
  });
});

test('a peer that does not answer becomes an error answer, not an exception', async () => {
  const a = await askPeer('http://127.0.0.1:1', '/v1/summary', 500);
  assert.equal(a.url, 'http://127.0.0.1:1');
  assert.ok('error' in a && a.error.length > 0);
});
