// Production-style Kafka: a SASL_SSL broker that requires client certificates (mutual TLS), with
// StandardAuthorizer and only the admin as super user. Each program works with exactly the ACLs the README lists; a missing ACL, a wrong password
// and an untrusted CA each give a clear error naming the permission or option, the collector
// stays up and not ready while agents keep their batches, and nothing is lost once it is fixed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { agentMetrics } from '../../agent/src/metrics';
import { AgentPipeline } from '../../agent/src/pipeline';
import { SmmuModelSource } from '../../agent/src/source/model';
import { MemorySpool } from '../../agent/src/spool/memory-spool';
import { Aggregator, defaultAggregatorConfig } from '../../collector/accounting/aggregator';
import { BatchConsumer } from '../../collector/accounting/consume';
import { FleetTotals } from '../../collector/accounting/fleet-totals';
import { Collector, defaultCollectorConfig } from '../../collector/ingest/collector';
import type { KafkaSecurity } from '../../common/kafka/client';
import {
  checkpointTopic,
  ensureTopics,
  rawTopic,
  totalsTopic,
  windowsTopic,
} from '../../common/kafka/topics';
import { type Logger, silentLogger } from '../../common/runtime/log';
import { freePort, type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { aggregatorAcls, collectorAcls, grant, revoke } from '../support/acls';
import { makePki } from '../support/certs';
import { type BrokerSecurity, brokerSecurity, unsecuredJwt } from '../support/kafka-security';
import { repoRoot } from '../support/paths';
import { finishDrained } from '../support/pipeline-drain';
import { until } from '../support/until';

let broker: KafkaBroker;
let sec: BrokerSecurity;
let admin: Admin;
let adminKafka: Kafka;
const run = Date.now();
const OWN_BROKER = 'needs a broker started by the tests (KAFKA_BROKERS is set)';
/** The raw topic the second test fills; later tests read it. */
const filled = { topic: `sec-raw-${run}`, host: 'node-acl', events: 4_000 };

before(async () => {
  sec = brokerSecurity({
    scram: { collector: 'SCRAM-SHA-256', aggregator: 'SCRAM-SHA-512' },
    plain: ['reader'],
  });
  broker = await startKafka({ security: sec, startupTimeoutMs: 240_000 });
  adminKafka = new Kafka({
    clientId: 'security-test-admin',
    brokers: broker.brokers,
    logLevel: logLevel.NOTHING,
    ...sec.kafkajs('admin'),
  });
  admin = adminKafka.admin();
  await admin.connect();
});

after(async () => {
  await admin?.disconnect();
  await broker?.stop();
});

/** A logger whose JSON lines the test can search (for secrets that must not appear). */
function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: 'info' }, { write: (s: string) => lines.push(s) }), lines };
}

function collector(topic: string, port: number, security: KafkaSecurity, log: Logger = silentLogger) {
  return new Collector(
    {
      ...defaultCollectorConfig,
      listen: `127.0.0.1:${port}`,
      httpListen: '127.0.0.1:0',
      brokers: broker.brokers,
      kafkaSecurity: security,
      kafkaRetryMaxMs: 1000,
      rawTopic: topic,
      topicPartitions: 2,
    },
    log,
  );
}

async function readiness(c: Collector): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${c.httpAddress}/readyz`);
  return { status: res.status, body: await res.text() };
}

/** Waits until the collector's HTTP face is up and /readyz answers 503 matching `re`. */
async function notReadyWith(c: Collector, re: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (c.httpAddress) {
      const r = await readiness(c);
      last = `${r.status} ${r.body}`;
      if (r.status === 503 && re.test(r.body)) return r.body;
    }
    await sleep(100);
  }
  throw new Error(`readiness never matched ${re}; last: ${last}`);
}

/** A model agent sending `events` events to 127.0.0.1:port, with a memory spool. */
function agent(host: string, port: number, events: number) {
  const metrics = agentMetrics();
  const pipeline = new AgentPipeline(
    {
      identity: { host, agentId: `${host}-agent` },
      batch: { maxEvents: 500, maxDelayMs: 50 },
      transport: { addresses: [`127.0.0.1:${port}`], window: 8, backoffMinMs: 50, backoffMaxMs: 500 },
      drainTimeoutMs: 60_000,
    },
    new SmmuModelSource({ seed: 7, rate: 0, maxEvents: events, maxChunkEvents: 500 }),
    new MemorySpool(64 << 20),
    metrics,
    [],
    silentLogger,
  );
  pipeline.start();
  return {
    spooledBytes: async () => (await metrics.spoolBytes.get()).values[0]?.value ?? 0,
    /** Waits for the source to end and every batch to be acknowledged. */
    finish: async () => {
      await finishDrained(pipeline, host, events);
    },
  };
}

/** Events per host in the raw topic, read as the admin; waits for `want` and a little longer. */
async function countRaw(topic: string, want: number): Promise<Map<string, number>> {
  const totals = new FleetTotals();
  const consumer = new BatchConsumer(
    adminKafka,
    { topic, groupId: `sec-count-${Date.now()}`, fromBeginning: true },
    silentLogger,
  );
  await consumer.start((b) => totals.add(b));
  const counted = () => totals.hostRows().reduce((s, h) => s + h.events, 0);
  const deadline = Date.now() + 30_000;
  while (counted() < want && Date.now() < deadline) await sleep(100);
  await sleep(500); // anything beyond `want` would show now
  await consumer.stop();
  assert.equal(consumer.malformed, 0);
  return new Map(totals.hostRows().map((h) => [h.host, h.events]));
}

/** Starts c without waiting (it may wait for Kafka), runs body, then stops c whatever happened. */
async function whileRunning(c: Collector, body: (started: Promise<void>) => Promise<void>): Promise<void> {
  const started = c.start();
  try {
    await body(started);
  } finally {
    await c.stop(1000);
    await started.catch(() => {});
  }
}

test('collector: topic creation refused without CREATE (clear error, not ready, agent spools), done once granted', {
  timeout: 240_000,
}, async (t) => {
  if (broker.external) return t.skip(OWN_BROKER);
  const topic = `sec-create-${run}`;
  const port = await freePort();
  const c = collector(topic, port, sec.client('collector'));
  await whileRunning(c, async (started) => {
    const why = await notReadyWith(c, /not allowed to create Kafka topics/);
    assert.match(why, new RegExp(`${topic}.*TOPIC_AUTHORIZATION_FAILED.*grant DESCRIBE and CREATE`));
    const a = agent('node-create', port, 3_000);
    await until('the agent to spool', async () => (await a.spooledBytes()) > 0, 20_000);

    await grant(
      admin,
      { user: 'collector', resource: 'TOPIC', name: topic, operation: 'CREATE' },
      ...collectorAcls('collector', topic),
    );
    await started;
    assert.equal((await readiness(c)).status, 200);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(meta.topics[0].partitions.length, 2, 'created with --topic-partitions');
    await a.finish();
    assert.deepEqual([...(await countRaw(topic, 3_000))], [['node-create', 3_000]]);
    assert.ok((await c.metrics.kafkaSetupFailures.get()).values[0].value >= 1);
  });
});

test('collector: WRITE on the raw topic is all it needs; without it the error names WRITE and nothing is lost', {
  timeout: 240_000,
}, async (t) => {
  if (broker.external) return t.skip(OWN_BROKER);
  const { topic, host, events } = filled;
  await ensureTopics(adminKafka, [rawTopic(topic, 2, 1)]);
  // DESCRIBE lets it see the topic, so the only thing missing is WRITE.
  const describe = { user: 'collector', resource: 'TOPIC', name: topic, operation: 'DESCRIBE' } as const;
  await grant(admin, describe);
  const port = await freePort();
  const { log, lines } = capturingLogger();
  const c = collector(topic, port, sec.client('collector'), log);
  await whileRunning(c, async (started) => {
    // Refused at the producer id (CLUSTER_...) or at the first batch (TOPIC_...), both name WRITE.
    const a = agent(host, port, events);
    const why = await notReadyWith(c, /lacks WRITE on topic/);
    assert.match(why, new RegExp(`(CLUSTER|TOPIC)_AUTHORIZATION_FAILED.*lacks WRITE on topic ${topic}`));
    await until('the agent to spool', async () => (await a.spooledBytes()) > 0, 20_000);

    await revoke(admin, describe);
    await grant(admin, ...collectorAcls('collector', topic));
    await started;
    await a.finish();
    assert.equal((await readiness(c)).status, 200);
    assert.deepEqual([...(await countRaw(topic, events))], [[host, events]]);
    assert.ok(
      lines.some((l) => l.includes('lacks WRITE on topic')),
      'the error is logged',
    );
    assert.ok(!lines.some((l) => l.includes(sec.passwords.collector)), 'no password in the logs');
  });
});

test('collector: a wrong password and an untrusted CA name the option to fix; fixing the file is enough', {
  timeout: 240_000,
}, async (t) => {
  if (broker.external) return t.skip(OWN_BROKER);
  const dir = mkdtempSync(join(tmpdir(), 'kafka-secrets-'));
  const good = sec.client('collector');

  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, 'not-the-password-4711\n');
  const { log, lines } = capturingLogger();
  const c1 = collector(filled.topic, await freePort(), { ...good, saslPasswordFile: passwordFile }, log);
  await whileRunning(c1, async (started1) => {
    const why = await notReadyWith(c1, /SASL authentication failed/);
    assert.match(why, /--kafka-sasl-password-file/);
    copyFileSync(good.saslPasswordFile, passwordFile);
    await started1;
    assert.equal((await readiness(c1)).status, 200);
    const logged = lines.join('\n');
    assert.match(logged, /SASL authentication failed/);
    assert.ok(!logged.includes('not-the-password-4711') && !logged.includes(sec.passwords.collector));
  });

  const caFile = join(dir, 'ca.pem');
  copyFileSync(makePki('untrusted').ca, caFile);
  const c2 = collector(filled.topic, await freePort(), { ...good, tlsCa: caFile });
  await whileRunning(c2, async (started2) => {
    const why = await notReadyWith(c2, /certificate is not trusted/);
    assert.match(why, /--kafka-tls-ca/);
    copyFileSync(good.tlsCa, caFile);
    await started2;
    assert.equal((await readiness(c2)).status, 200);
  });
});

test('collector: without a client certificate, or with one from another CA, the broker refuses it and the error names --kafka-tls-cert', {
  timeout: 240_000,
}, async (t) => {
  if (broker.external) return t.skip(OWN_BROKER);
  const good = sec.client('collector');
  const [rogueCert, rogueKey] = makePki('rogue').client('collector');
  for (const [name, security] of [
    ['no certificate', { ...good, tlsCert: '', tlsKey: '' }],
    ['another CA', { ...good, tlsCert: rogueCert, tlsKey: rogueKey }],
  ] as const) {
    const c = collector(filled.topic, await freePort(), security);
    await whileRunning(c, async () => {
      const why = await notReadyWith(c, /refused this client's TLS certificate/);
      assert.match(why, /--kafka-tls-cert and --kafka-tls-key/, name);
    });
  }
  // The same settings with the CA's certificate are accepted.
  const c = collector(filled.topic, await freePort(), good);
  await whileRunning(c, async (started) => {
    await started;
    assert.equal((await readiness(c)).status, 200);
  });
});

test('aggregator: exact totals with exactly its ACLs; a missing one is named at start', {
  timeout: 240_000,
}, async (t) => {
  if (broker.external) return t.skip(OWN_BROKER);
  const topics = {
    raw: filled.topic,
    windows: `sec-windows-${run}`,
    totals: `sec-totals-${run}`,
    checkpoints: `sec-checkpoints-${run}`,
    group: `sec-aggregator-${run}`,
  };
  // Without CREATE rights: the admin creates the output topics with the project's settings.
  await ensureTopics(adminKafka, [
    windowsTopic(topics.windows, 2, 1),
    totalsTopic(topics.totals, 2, 1),
    checkpointTopic(topics.checkpoints, 1),
  ]);
  const acls = aggregatorAcls('aggregator', topics);
  const withoutConfigs = acls.filter((g) => g.operation !== 'DESCRIBE_CONFIGS');
  await grant(admin, ...withoutConfigs);
  const config = {
    ...defaultAggregatorConfig,
    brokers: broker.brokers,
    kafkaSecurity: sec.client('aggregator'),
    groupId: topics.group,
    rawTopic: topics.raw,
    windowsTopic: topics.windows,
    totalsTopic: topics.totals,
    checkpointTopic: topics.checkpoints,
    httpListen: '',
    checkpointIntervalMs: 200,
    sessionTimeoutMs: 6000,
  };
  const refused = new Aggregator(config, silentLogger);
  await assert.rejects(refused.start(), /not allowed to describe Kafka topics.*DESCRIBE_CONFIGS/);

  await grant(admin, ...acls.filter((g) => g.operation === 'DESCRIBE_CONFIGS'));
  const agg = new Aggregator({ ...config, httpListen: '127.0.0.1:0' }, silentLogger);
  await agg.start();
  try {
    const events = () => agg.views.hostRows().reduce((s, h) => s + h.events, 0);
    await until('the aggregator to count every event', async () => events() >= filled.events, 60_000);
    await until(
      'a checkpoint',
      async () => (await agg.metrics.checkpoints.get()).values[0].value > 0,
      20_000,
    );
    await sleep(500);
    assert.deepEqual(
      agg.views.hostRows().map((h) => [h.host, h.events, h.lostEvents]),
      [[filled.host, filled.events, 0]],
    );
    assert.equal((await agg.metrics.errors.get()).values[0].value, 0, 'no checkpoint failed');
    const ready = await fetch(`http://${agg.httpAddress}/readyz`);
    assert.equal(ready.status, 200);
  } finally {
    await agg.stop();
  }
});

test('smmu-fleet totals over SASL PLAIN (password from the environment) and OAUTHBEARER (token file)', {
  timeout: 240_000,
}, async (t) => {
  if (broker.external) return t.skip(OWN_BROKER);
  const dir = mkdtempSync(join(tmpdir(), 'kafka-token-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, unsecuredJwt('token-reader'));
  for (const user of ['reader', 'token-reader']) {
    await grant(
      admin,
      { user, resource: 'TOPIC', name: filled.topic, operation: 'READ' },
      { user, resource: 'GROUP', name: 'smmu-fleet-', operation: 'READ', pattern: 'PREFIXED' },
    );
  }
  const cli = join(repoRoot(), 'dist', 'collector', 'accounting', 'cli.js');
  const common = ['totals', '--kafka-brokers', broker.brokers.join(','), '--raw-topic', filled.topic];
  const runs = [
    {
      name: 'plain',
      args: [
        '--kafka-tls-ca',
        sec.pki.ca,
        '--kafka-tls-cert',
        sec.client('reader').tlsCert,
        '--kafka-tls-key',
        sec.client('reader').tlsKey,
        '--kafka-sasl-mechanism',
        'plain',
        '--kafka-sasl-username',
        'reader',
      ],
      env: { SMMU_FLEET_KAFKA_SASL_PASSWORD: sec.passwords.reader },
    },
    {
      name: 'oauthbearer',
      args: [],
      env: {
        SMMU_FLEET_KAFKA_TLS_CA: sec.pki.ca,
        SMMU_FLEET_KAFKA_TLS_CERT: sec.client('token-reader').tlsCert,
        SMMU_FLEET_KAFKA_TLS_KEY: sec.client('token-reader').tlsKey,
        SMMU_FLEET_KAFKA_SASL_MECHANISM: 'oauthbearer',
        SMMU_FLEET_KAFKA_OAUTH_TOKEN_FILE: tokenFile,
      },
    },
  ];
  for (const r of runs) {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [cli, ...common, '--idle-ms', '8000', ...r.args],
      { env: { ...process.env, ...r.env }, timeout: 60_000 },
    );
    const out = JSON.parse(stdout) as { hosts: Array<{ host: string; events: number }> };
    assert.deepEqual(
      out.hosts.map((h) => [h.host, h.events]),
      [[filled.host, filled.events]],
      r.name,
    );
    assert.ok(!stderr.includes(sec.passwords.reader));
  }
});
