/**
 * A Kafka broker that enforces what production clusters do, for tests: a SASL_SSL client listener
 * (certificate made by the test's own CA, for 127.0.0.1) that also requires a client certificate
 * from that CA (mutual TLS; the principal is still the SASL user), SASL PLAIN, SCRAM-SHA-256/512 and
 * OAUTHBEARER (the broker's unsecured-JWT validator: the token's `sub` is the principal),
 * StandardAuthorizer with no ACLs, and `super.users` only the admin. SCRAM users are created when
 * the log dir is formatted (SCRAM_USERS, see test/infra/kafka/start-kafka.sh). Brokers talk to
 * each other and to the controller over SASL_PLAINTEXT as the admin, on ports that are not
 * published.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SASLOptions } from 'kafkajs';
import { type KafkaSecurity, noKafkaSecurity } from '../../common/kafka/client';
import type { ContainerSecurity } from '../../deploy/kafka/container';
import { makePki, type Pki } from './certs';

export const SECRETS_DIR = '/etc/kafka/secrets';
const INTERNAL_PORT = 9094;

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface BrokerUsers {
  /** SCRAM users created at format time: name -> mechanism (the password is made here). */
  scram?: Record<string, ScramMechanism>;
  /** SASL PLAIN users (JAAS user_<name> entries). */
  plain?: string[];
}

export interface BrokerSecurity extends ContainerSecurity {
  pki: Pki;
  /** Passwords of every user, including 'admin' (PLAIN and SCRAM-SHA-512). */
  passwords: Record<string, string>;
  scram: Record<string, ScramMechanism>;
  /** Client settings of a user (with its client certificate), for kafkaClient() or a program's options. */
  client(user: string): KafkaSecurity;
}

/** An unsigned JWT ("alg": "none") as the broker's unsecured OAUTHBEARER validator accepts it. */
export function unsecuredJwt(sub: string, lifetimeS = 3600): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none' })}.${b64({ sub, iat, exp: iat + lifetimeS })}.`;
}

export function brokerSecurity(users: BrokerUsers): BrokerSecurity {
  const pki = makePki('kafka-ca');
  const password = () => randomBytes(12).toString('hex');
  const scram: Record<string, ScramMechanism> = { admin: 'SCRAM-SHA-512', ...users.scram };
  const names = new Set(['admin', ...Object.keys(scram), ...(users.plain ?? [])]);
  const passwords = Object.fromEntries([...names].map((n) => [n, password()]));
  const plain = ['admin', ...(users.plain ?? [])];

  const keystore = join(pki.dir, 'broker.pem');
  writeFileSync(keystore, readFileSync(pki.serverKey, 'utf8') + readFileSync(pki.serverCert, 'utf8'));
  // JAAS per listener and mechanism (a section with several login modules is refused). The
  // controller and inter-broker listeners use PLAIN as the admin.
  const plainJaas = [
    'org.apache.kafka.common.security.plain.PlainLoginModule required',
    `username="admin" password="${passwords.admin}"`,
    ...plain.map((u) => `user_${u}="${passwords[u]}"`),
  ].join(' ');
  const jaas = {
    KAFKA_LISTENER_NAME_CONTROLLER_PLAIN_SASL_JAAS_CONFIG: `${plainJaas};`,
    KAFKA_LISTENER_NAME_INTERNAL_PLAIN_SASL_JAAS_CONFIG: `${plainJaas};`,
    KAFKA_LISTENER_NAME_CLIENT_PLAIN_SASL_JAAS_CONFIG: `${plainJaas};`,
    KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___256_SASL_JAAS_CONFIG:
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___512_SASL_JAAS_CONFIG:
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    KAFKA_LISTENER_NAME_CLIENT_OAUTHBEARER_SASL_JAAS_CONFIG:
      'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin";',
  };
  const files = [
    { source: pki.ca, target: `${SECRETS_DIR}/ca.pem` },
    { source: keystore, target: `${SECRETS_DIR}/broker.pem` },
  ];
  const passwordFile = (u: string) => {
    const f = join(pki.dir, `${u}.password`);
    writeFileSync(f, `${passwords[u]}\n`);
    return f;
  };
  const certs = new Map<string, [string, string]>();
  const certOf = (u: string) => {
    let c = certs.get(u);
    if (!c) {
      c = pki.client(u);
      certs.set(u, c);
    }
    return c;
  };
  const mechanismOf = (u: string) => (scram[u] ?? 'PLAIN').toLowerCase() as KafkaSecurity['saslMechanism'];

  return {
    pki,
    passwords,
    scram,
    files,
    env: (port, host) => ({
      KAFKA_LISTENERS: `CLIENT://:${port},INTERNAL://:${INTERNAL_PORT},CONTROLLER://:9093`,
      KAFKA_ADVERTISED_LISTENERS: `CLIENT://${host}:${port},INTERNAL://127.0.0.1:${INTERNAL_PORT}`,
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP:
        'CLIENT:SASL_SSL,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
      KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL: 'PLAIN',
      KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL: 'PLAIN',
      KAFKA_SASL_ENABLED_MECHANISMS: 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
      KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS: 'PLAIN',
      KAFKA_LISTENER_NAME_INTERNAL_SASL_ENABLED_MECHANISMS: 'PLAIN',
      KAFKA_SSL_KEYSTORE_TYPE: 'PEM',
      KAFKA_SSL_KEYSTORE_LOCATION: `${SECRETS_DIR}/broker.pem`,
      KAFKA_SSL_TRUSTSTORE_TYPE: 'PEM',
      KAFKA_SSL_TRUSTSTORE_LOCATION: `${SECRETS_DIR}/ca.pem`,
      KAFKA_LISTENER_NAME_CLIENT_SSL_CLIENT_AUTH: 'required',
      KAFKA_AUTHORIZER_CLASS_NAME: 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      KAFKA_SUPER_USERS: 'User:admin',
      KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND: 'false',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
      ...jaas,
      SCRAM_USERS: Object.entries(scram)
        .map(([u, m]) => `${m}=[name=${u},password=${passwords[u]}]`)
        .join(';'),
    }),
    client: (user) => ({
      ...noKafkaSecurity,
      tlsCa: pki.ca,
      tlsCert: certOf(user)[0],
      tlsKey: certOf(user)[1],
      saslMechanism: mechanismOf(user),
      saslUsername: user,
      saslPasswordFile: passwordFile(user),
    }),
    kafkajs: (user) => ({
      ssl: {
        ca: readFileSync(pki.ca, 'utf8'),
        cert: readFileSync(certOf(user)[0], 'utf8'),
        key: readFileSync(certOf(user)[1], 'utf8'),
      },
      sasl: { mechanism: mechanismOf(user), username: user, password: passwords[user] } as SASLOptions,
    }),
  };
}
