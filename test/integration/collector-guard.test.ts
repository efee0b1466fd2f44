// The collector on bad days: wrong or missing credentials, a client claiming another host,
// malformed and oversized batches, a client that never reads its acks. Real gRPC server, real
// Kafka; a well-behaved agent keeps being served throughout.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ChannelCredentials, credentials, status } from '@grpc/grpc-js';
import { agentCredentials } from '../../agent/src/transport/credentials';
import { Collector, defaultCollectorConfig } from '../../collector/ingest/collector';
import { silentLogger } from '../../common/runtime/log';
import { type KafkaBroker, startKafka } from '../../deploy/kafka/container';
import { encodeBatch } from '../../proto/batch-codec';
import { EventBlockBuilder } from '../../proto/event-block';
import { ingestService } from '../../proto/ingest-service';
import { modelBatch } from '../support/batches';
import { makePki, type Pki } from '../support/certs';
import { exchange } from '../support/ingest-stream';

let broker: KafkaBroker;
let pki: Pki;
let mtls: Collector;
let tokens: Collector;
const TOKEN_A = 'token-for-node-a-0123456789';

function batchBytes(host: string, sequence: number, events = 3): Uint8Array {
  const b = new EventBlockBuilder();
  for (let i = 0; i < events; i++)
    b.push(BigInt(1e18) + BigInt(i), 'smmu0', [0x10n | (5n << 32n), 0n, BigInt(i) << 12n, 0n]);
  return encodeBatch(modelBatch(host, sequence, b.finish()));
}

before(async () => {
  broker = await startKafka();
  pki = makePki('fleet-ca');
  const base = {
    ...defaultCollectorConfig,
    listen: '127.0.0.1:0',
    httpListen: '',
    brokers: broker.brokers,
    rawTopic: `guard-${Date.now()}`,
    topicPartitions: 1,
    maxMessageBytes: 64 << 10,
    maxEventsPerBatch: 1000,
    maxBatchesPerSecond: 0,
  };
  mtls = new Collector(
    {
      ...base,
      auth: { tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsClientCa: pki.ca, tokensFile: '' },
    },
    silentLogger,
  );
  const tokensFile = join(pki.dir, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ [TOKEN_A]: 'node-a' }));
  tokens = new Collector(
    { ...base, auth: { tlsCert: '', tlsKey: '', tlsClientCa: '', tokensFile } },
    silentLogger,
  );
  await mtls.start();
  await tokens.start();
});

after(async () => {
  await mtls?.stop(500);
  await tokens?.stop(500);
  await broker?.stop();
});

function clientCreds(cn: string | undefined, ca = pki.ca): ChannelCredentials {
  if (!cn) return agentCredentials({ tlsCa: ca, tlsCert: '', tlsKey: '', tokenFile: '' }).credentials;
  const [cert, key] = pki.client(cn);
  return agentCredentials({ tlsCa: ca, tlsCert: cert, tlsKey: key, tokenFile: '' }).credentials;
}

test('mutual TLS: a certificate may report for its own host only', { timeout: 60_000 }, async () => {
  const own = await exchange(mtls.address, clientCreds('node-a'), [
    batchBytes('node-a', 1),
    batchBytes('node-a', 2),
  ]);
  assert.deepEqual([own.code, own.acks], [status.OK, [1n, 2n]]);
  const other = await exchange(mtls.address, clientCreds('node-a'), [batchBytes('node-b', 1)]);
  assert.equal(other.code, status.PERMISSION_DENIED);
  assert.match(other.details, /certificate "node-a" may not send batches for host "node-b"/);
  assert.deepEqual(other.acks, []);
});

test('mutual TLS: no client certificate, or one from another CA, gets nothing through', {
  timeout: 60_000,
}, async () => {
  const none = await exchange(mtls.address, clientCreds(undefined), [batchBytes('node-a', 1)]);
  assert.notEqual(none.code, status.OK);
  assert.deepEqual(none.acks, []);
  const rogue = makePki('rogue-ca');
  const [cert, key] = rogue.client('node-a');
  const creds = credentials.createSsl(readFileSync(pki.ca), readFileSync(key), readFileSync(cert));
  const foreign = await exchange(mtls.address, creds, [batchBytes('node-a', 1)]);
  assert.notEqual(foreign.code, status.OK);
  assert.deepEqual(foreign.acks, []);
  const plain = await exchange(
    mtls.address,
    credentials.createInsecure(),
    [batchBytes('node-a', 1)],
    {},
    3000,
  );
  assert.notEqual(plain.code, status.OK);
});

test('tokens: missing or unknown token is UNAUTHENTICATED, another host is PERMISSION_DENIED', {
  timeout: 60_000,
}, async () => {
  const insecure = credentials.createInsecure();
  const ok = await exchange(tokens.address, insecure, [batchBytes('node-a', 1)], {
    authorization: `Bearer ${TOKEN_A}`,
  });
  assert.deepEqual([ok.code, ok.acks], [status.OK, [1n]]);
  const missing = await exchange(
    tokens.address,
    insecure,
    [1, 2, 3].map((q) => batchBytes('node-a', q)),
  );
  assert.deepEqual(
    [missing.code, missing.details],
    [status.UNAUTHENTICATED, 'missing "authorization: Bearer <token>" metadata'],
  );
  const wrong = await exchange(tokens.address, insecure, [batchBytes('node-a', 1)], {
    authorization: 'Bearer not-a-token-of-anyone',
  });
  assert.deepEqual([wrong.code, wrong.details], [status.UNAUTHENTICATED, 'unknown token']);
  const spoof = await exchange(tokens.address, insecure, [batchBytes('node-b', 1)], {
    authorization: `Bearer ${TOKEN_A}`,
  });
  assert.equal(spoof.code, status.PERMISSION_DENIED);
  // Refused credentials count streams (their batches are never read), the spoofed host a batch.
  const count = async (c: { get(): Promise<{ values: Array<{ labels: object; value: number }> }> }) =>
    Object.fromEntries((await c.get()).values.map((v) => [(v.labels as { reason: string }).reason, v.value]));
  assert.deepEqual(await count(tokens.metrics.streamsRejected), { unauthenticated: 2 });
  assert.deepEqual(await count(tokens.metrics.rejected), { permission_denied: 1 });
});

test('malformed, truncated, oversized and over-limit batches are refused with the right status', {
  timeout: 60_000,
}, async () => {
  const insecure = credentials.createInsecure();
  const auth = { authorization: `Bearer ${TOKEN_A}` };
  const before =
    (await tokens.metrics.rejected.get()).values.find((v) => v.labels.reason === 'malformed')?.value ?? 0;
  const junk = await exchange(tokens.address, insecure, [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])], auth);
  assert.equal(junk.code, status.INVALID_ARGUMENT);
  assert.match(junk.details, /^malformed batch: /);
  const good = batchBytes('node-a', 1, 20);
  const cut = await exchange(tokens.address, insecure, [good.subarray(0, good.length - 9)], auth);
  assert.equal(cut.code, status.INVALID_ARGUMENT);
  const many = await exchange(tokens.address, insecure, [batchBytes('node-a', 1, 1001)], auth);
  assert.deepEqual(
    [many.code, many.details],
    [status.INVALID_ARGUMENT, 'malformed batch: 1001 events exceed the limit of 1000'],
  );
  const huge = await exchange(tokens.address, insecure, [new Uint8Array(100 << 10)], auth);
  assert.equal(huge.code, status.RESOURCE_EXHAUSTED);
  // Gzipped: 1 MiB of zeros is about 1 KiB on the wire and is refused while inflating.
  const gzip = { 'grpc.default_compression_algorithm': 2 };
  const bomb = await exchange(tokens.address, insecure, [new Uint8Array(1 << 20)], auth, 10_000, gzip);
  assert.deepEqual(
    [bomb.code, bomb.details],
    [status.RESOURCE_EXHAUSTED, `Received message that decompresses to a size larger than ${64 << 10}`],
  );
  const after =
    (await tokens.metrics.rejected.get()).values.find((v) => v.labels.reason === 'malformed')?.value ?? 0;
  assert.equal(after - before, 3);
  // The collector still serves a well-behaved agent.
  const ok = await exchange(tokens.address, insecure, [batchBytes('node-a', 7)], auth);
  assert.deepEqual([ok.code, ok.acks], [status.OK, [7n]]);
  const gzipped = await exchange(
    tokens.address,
    insecure,
    [batchBytes('node-a', 8, 900)],
    auth,
    10_000,
    gzip,
  );
  assert.deepEqual([gzipped.code, gzipped.acks], [status.OK, [8n]]);
});

test('a client that never reads its acks is paused; others are served meanwhile', {
  timeout: 90_000,
}, async () => {
  // A raw HTTP/2 gRPC client with a tiny receive window that never reads: the collector's
  // acks back up, and it must stop reading that stream instead of buffering.
  const session = http2.connect(`http://${tokens.address}`, { settings: { initialWindowSize: 1024 } });
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': ingestService.stream.path,
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${TOKEN_A}`,
  });
  stream.on('error', () => {});
  stream.pause();
  const received = async () => (await tokens.metrics.batchesReceived.get()).values[0]?.value ?? 0;
  const received0 = await received();
  let sent = 0;
  const deadline = Date.now() + 20_000;
  for (let seq = 1; seq <= 20_000 && Date.now() < deadline; seq++) {
    const msg = batchBytes('node-a', seq, 1);
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    frame.set(msg, 5);
    sent++;
    if (!stream.write(frame)) {
      const blockedUntil = Date.now() + 2000;
      while (stream.writableNeedDrain && Date.now() < blockedUntil) await sleep(20);
      if (stream.writableNeedDrain) break; // the collector stopped reading us
    }
  }
  await sleep(2000);
  const taken = (await received()) - received0;
  await sleep(1000);
  assert.equal((await received()) - received0, taken, 'the collector stopped reading the stream');
  assert.ok(taken < sent, `collector read ${taken} of ${sent} batches from a client that reads no acks`);
  const ok = await exchange(tokens.address, credentials.createInsecure(), [batchBytes('node-a', 1)], {
    authorization: `Bearer ${TOKEN_A}`,
  });
  assert.deepEqual([ok.code, ok.acks], [status.OK, [1n]]);
  stream.close();
  session.destroy();
});
