// The Kafka connection options shared by every program: names, secrets from files or the
// environment, clear errors, the token file re-read, and TLS hostname verification on by default.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, createServer } from 'node:tls';
import {
  kafkaClient,
  kafkaOptionSpecs,
  kafkaSecurityFromOptions,
  noKafkaSecurity,
  tlsOptions,
  tokenFileProvider,
} from '../../common/kafka/client';
import { explainKafkaError } from '../../common/kafka/errors';
import { makePki } from '../support/certs';
import { repoRoot } from '../support/paths';

const tmp = () => mkdtempSync(join(tmpdir(), 'kafka-client-'));
const brokers = ['127.0.0.1:9'];

test('smmu-collector and smmu-fleet offer the same Kafka options, with environment variables', () => {
  const names = Object.keys(kafkaOptionSpecs([])).map(
    (k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
  );
  for (const [cli, prefix] of [
    ['collector/ingest/cli.js', 'SMMU_COLLECTOR_'],
    ['collector/accounting/cli.js', 'SMMU_FLEET_'],
  ]) {
    const help = spawnSync(process.execPath, [join(repoRoot(), 'dist', cli), '--help']).stdout.toString();
    for (const n of names) assert.ok(help.includes(`${n} `), `${cli} --help lists ${n}`);
    assert.ok(help.includes(`env ${prefix}KAFKA_SASL_PASSWORD_FILE`));
    assert.ok(!help.includes('--kafka-sasl-password '), 'no flag carries a password');
  }
});

test('the SASL password comes from the file, else from <PREFIX>KAFKA_SASL_PASSWORD', () => {
  const o = {
    kafkaTls: false,
    kafkaTlsCa: '',
    kafkaTlsCert: '',
    kafkaTlsKey: '',
    kafkaTlsVerifyHostname: true,
    kafkaSaslMechanism: 'scram-sha-512',
    kafkaSaslUsername: 'u',
    kafkaSaslPasswordFile: '',
    kafkaOauthTokenFile: '',
  };
  const s = kafkaSecurityFromOptions(o, 'SMMU_FLEET_', { SMMU_FLEET_KAFKA_SASL_PASSWORD: 'from-env' });
  assert.equal(s.saslPassword, 'from-env');
  assert.equal(s.saslMechanism, 'scram-sha-512');
  kafkaClient({ clientId: 't', brokers, security: s }); // complete: no error

  const dir = tmp();
  writeFileSync(join(dir, 'pw'), 'from-file\n');
  const withFile = { ...s, saslPasswordFile: join(dir, 'pw') };
  assert.doesNotThrow(() => kafkaClient({ clientId: 't', brokers, security: withFile }));
});

test('incomplete or unreadable settings are refused naming the option, never a secret', () => {
  const make = (over: Partial<typeof noKafkaSecurity>) => () =>
    kafkaClient({ clientId: 't', brokers, security: { ...noKafkaSecurity, ...over } });
  assert.throws(make({ saslMechanism: 'plain' }), /--kafka-sasl-mechanism plain needs --kafka-sasl-username/);
  assert.throws(
    make({ saslMechanism: 'scram-sha-256', saslUsername: 'u' }),
    /needs a password: --kafka-sasl-password-file or the KAFKA_SASL_PASSWORD/,
  );
  assert.throws(make({ saslMechanism: 'oauthbearer' }), /needs --kafka-oauth-token-file/);
  assert.throws(
    make({ tlsCa: '/nonexistent/ca.pem' }),
    /--kafka-tls-ca \/nonexistent\/ca.pem: cannot read it \(ENOENT\)/,
  );
  assert.throws(make({ tlsCert: '/x.pem' }), /--kafka-tls-cert and --kafka-tls-key go together/);
  const dir = tmp();
  writeFileSync(join(dir, 'token'), '');
  assert.throws(
    make({ saslMechanism: 'oauthbearer', oauthTokenFile: join(dir, 'token') }),
    /--kafka-oauth-token-file .*: the file is empty/,
  );
});

test('the OAUTHBEARER token file is read again once it changes', async () => {
  const f = join(tmp(), 'token');
  writeFileSync(f, 'token-one\n');
  const provide = tokenFileProvider(f);
  assert.deepEqual(await provide(), { value: 'token-one' });
  writeFileSync(f, 'token-two-refreshed\n');
  const later = new Date(Date.now() + 5000);
  utimesSync(f, later, later);
  assert.deepEqual(await provide(), { value: 'token-two-refreshed' });
  assert.deepEqual(await provide(), { value: 'token-two-refreshed' });
});

test('TLS: hostname verification is on by default; off, the CA chain is still checked', async () => {
  const pki = makePki('kafka-hostname');
  const [cert, key] = pki.client('kafka.invalid'); // names kafka.invalid only, not 127.0.0.1
  const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const handshake = (security: typeof noKafkaSecurity) =>
    new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, ...tlsOptions(security) }, () => {
        s.destroy();
        resolve('ok');
      });
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  try {
    const base = { ...noKafkaSecurity, tlsCa: pki.ca };
    const mismatch = await handshake(base);
    assert.equal(mismatch, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.match(
      explainKafkaError({ message: 'Connection error', code: mismatch }),
      /does not name the address.*--kafka-tls-verify-hostname false/,
    );
    assert.equal(await handshake({ ...base, tlsVerifyHostname: false }), 'ok');
    const other = makePki('kafka-other');
    const untrusted = await handshake({ ...base, tlsCa: other.ca, tlsVerifyHostname: false });
    assert.notEqual(untrusted, 'ok');
    assert.match(explainKafkaError({ code: untrusted, message: 'x' }), /not trusted.*--kafka-tls-ca/);
  } finally {
    server.close();
  }
});

test('authorization failures name the permission, also when wrapped by retries and aggregates', () => {
  const inner = { type: 'TOPIC_AUTHORIZATION_FAILED', message: 'Not authorized' };
  const wrapped = { message: 'retries exceeded', cause: { message: 'aggregate', errors: [inner] } };
  assert.equal(
    explainKafkaError(wrapped, 'WRITE on topic raw'),
    'Kafka refused the request (TOPIC_AUTHORIZATION_FAILED): the principal lacks WRITE on topic raw; grant it (kafka-acls --add ...), see "Production Kafka" in README.md',
  );
  assert.match(
    explainKafkaError({
      name: 'KafkaJSSASLAuthenticationError',
      message: 'SASL SCRAM SHA256 authentication failed',
    }),
    /--kafka-sasl-password-file/,
  );
  assert.equal(explainKafkaError(new Error('Connection timeout')), 'Connection timeout');
});
