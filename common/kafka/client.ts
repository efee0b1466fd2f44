// How every program of the project connects to Kafka: brokers, TLS and SASL, declared once as
// options (same names in smmu-collector and smmu-fleet, as flags, environment variables and
// config-file keys) and turned into a kafkajs client here.
//
// Secrets never have to be flags: the SASL password comes from --kafka-sasl-password-file or the
// environment variable <PREFIX>KAFKA_SASL_PASSWORD (no flag exists for it), the OAUTHBEARER token
// from --kafka-oauth-token-file, which is read again whenever it changes (a sidecar or a
// Kubernetes Secret refreshes it; each new connection and each re-authentication uses the
// current token). Files are read when the client is made, so a program that rebuilds its client
// (the collector, while Kafka refuses it) picks up a corrected secret. Nothing here logs.
import { readFileSync, statSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, type KafkaConfig, logLevel, type Producer, type SASLOptions } from 'kafkajs';
// Stops kafkajs 2.2.4's 1 ms poll of idle connections (see request-queue.ts) for every client made here.
import './request-queue';

export const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Security settings of a Kafka connection (everything but the broker list). */
export interface KafkaSecurity {
  /** TLS with the system's CAs; implied by tlsCa, tlsCert. */
  tls: boolean;
  /** PEM CA bundle that the brokers' certificates must chain to. */
  tlsCa: string;
  /** PEM client certificate and key (mutual TLS). */
  tlsCert: string;
  tlsKey: string;
  /** Check that a broker's certificate names the address connected to (on by default). */
  tlsVerifyHostname: boolean;
  saslMechanism: SaslMechanism;
  saslUsername: string;
  saslPasswordFile: string;
  /** From the environment only (<PREFIX>KAFKA_SASL_PASSWORD); the file wins. */
  saslPassword: string;
  /** File holding an OAUTHBEARER token (a JWT), re-read when it changes. */
  oauthTokenFile: string;
}

export const noKafkaSecurity: KafkaSecurity = {
  tls: false,
  tlsCa: '',
  tlsCert: '',
  tlsKey: '',
  tlsVerifyHostname: true,
  saslMechanism: 'none',
  saslUsername: '',
  saslPasswordFile: '',
  saslPassword: '',
  oauthTokenFile: '',
};

/** The Kafka connection options, spread into each program's option specs. */
export function kafkaOptionSpecs(defaultBrokers: readonly string[]) {
  return {
    kafkaBrokers: { type: 'list', default: defaultBrokers, help: 'Kafka bootstrap brokers' },
    kafkaTls: {
      type: 'boolean',
      default: false,
      help: "Kafka over TLS with the system's CAs (implied by --kafka-tls-ca, --kafka-tls-cert)",
    },
    kafkaTlsCa: { type: 'string', default: '', help: "PEM CA bundle of the Kafka brokers' certificates" },
    kafkaTlsCert: { type: 'string', default: '', help: 'PEM client certificate for Kafka (mutual TLS)' },
    kafkaTlsKey: { type: 'string', default: '', help: 'PEM private key of --kafka-tls-cert' },
    kafkaTlsVerifyHostname: {
      type: 'boolean',
      default: true,
      help: "check that a broker's certificate names the broker address (false: only the CA chain)",
    },
    kafkaSaslMechanism: {
      type: 'string',
      default: 'none',
      choices: SASL_MECHANISMS,
      help: 'Kafka SASL mechanism',
    },
    kafkaSaslUsername: { type: 'string', default: '', help: 'Kafka SASL user (plain, scram-*)' },
    kafkaSaslPasswordFile: {
      type: 'string',
      default: '',
      help: 'file holding the Kafka SASL password (or env <PREFIX>KAFKA_SASL_PASSWORD; never a flag)',
    },
    kafkaOauthTokenFile: {
      type: 'string',
      default: '',
      help: 'file holding the OAUTHBEARER token, re-read when it changes',
    },
  } as const;
}

interface SecurityOptionValues {
  kafkaTls: boolean;
  kafkaTlsCa: string;
  kafkaTlsCert: string;
  kafkaTlsKey: string;
  kafkaTlsVerifyHostname: boolean;
  kafkaSaslMechanism: string;
  kafkaSaslUsername: string;
  kafkaSaslPasswordFile: string;
  kafkaOauthTokenFile: string;
}

/** The parsed options as KafkaSecurity; the password variable is read from env here. */
export function kafkaSecurityFromOptions(
  o: SecurityOptionValues,
  envPrefix: string,
  env: NodeJS.ProcessEnv = process.env,
): KafkaSecurity {
  return {
    tls: o.kafkaTls,
    tlsCa: o.kafkaTlsCa,
    tlsCert: o.kafkaTlsCert,
    tlsKey: o.kafkaTlsKey,
    tlsVerifyHostname: o.kafkaTlsVerifyHostname,
    saslMechanism: o.kafkaSaslMechanism as SaslMechanism,
    saslUsername: o.kafkaSaslUsername,
    saslPasswordFile: o.kafkaSaslPasswordFile,
    saslPassword: env[`${envPrefix}KAFKA_SASL_PASSWORD`] ?? '',
    oauthTokenFile: o.kafkaOauthTokenFile,
  };
}

/** Reads a file named by an option; the error names the option, never the content. */
function readOptionFile(option: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${option} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

/** The tls.connect options of these settings; undefined: plaintext. */
export function tlsOptions(s: KafkaSecurity): ConnectionOptions | undefined {
  if (!s.tls && !s.tlsCa && !s.tlsCert) return undefined;
  if (Boolean(s.tlsCert) !== Boolean(s.tlsKey))
    throw new Error('--kafka-tls-cert and --kafka-tls-key go together');
  const o: ConnectionOptions = { rejectUnauthorized: true };
  if (s.tlsCa) o.ca = readOptionFile('--kafka-tls-ca', s.tlsCa);
  if (s.tlsCert) {
    o.cert = readOptionFile('--kafka-tls-cert', s.tlsCert);
    o.key = readOptionFile('--kafka-tls-key', s.tlsKey);
  }
  // The chain is still verified; only the name check is skipped.
  if (!s.tlsVerifyHostname) o.checkServerIdentity = () => undefined;
  return o;
}

/**
 * An OAUTHBEARER token provider reading `path`, again whenever its modification time or size
 * changed (a refreshed token is used from the next authentication on).
 */
export function tokenFileProvider(path: string): () => Promise<{ value: string }> {
  let cached: { mtimeMs: number; size: number; value: string } | undefined;
  const read = () => {
    const st = statSync(path);
    if (!cached || cached.mtimeMs !== st.mtimeMs || cached.size !== st.size) {
      const value = readOptionFile('--kafka-oauth-token-file', path).trim();
      if (!value) throw new Error(`--kafka-oauth-token-file ${path}: the file is empty`);
      cached = { mtimeMs: st.mtimeMs, size: st.size, value };
    }
    return { value: cached.value };
  };
  read(); // a missing or empty file is a start-up error, not a later connection failure
  return async () => read();
}

function saslOptions(s: KafkaSecurity): SASLOptions | undefined {
  switch (s.saslMechanism) {
    case 'none':
      return undefined;
    case 'oauthbearer':
      if (!s.oauthTokenFile)
        throw new Error('--kafka-sasl-mechanism oauthbearer needs --kafka-oauth-token-file');
      return { mechanism: 'oauthbearer', oauthBearerProvider: tokenFileProvider(s.oauthTokenFile) };
    default: {
      if (!s.saslUsername)
        throw new Error(`--kafka-sasl-mechanism ${s.saslMechanism} needs --kafka-sasl-username`);
      const password = s.saslPasswordFile
        ? readOptionFile('--kafka-sasl-password-file', s.saslPasswordFile).replace(/\r?\n$/, '')
        : s.saslPassword;
      if (!password) {
        throw new Error(
          `--kafka-sasl-mechanism ${s.saslMechanism} needs a password: --kafka-sasl-password-file or the KAFKA_SASL_PASSWORD environment variable of the program`,
        );
      }
      return { mechanism: s.saslMechanism, username: s.saslUsername, password };
    }
  }
}

/**
 * A kafkajs client for these brokers and settings. Throws (naming the option) when a file
 * cannot be read or settings do not fit together.
 */
export function kafkaClient(
  o: { clientId: string; brokers: string[]; security: KafkaSecurity },
  extra: Partial<KafkaConfig> = {},
): Kafka {
  return new Kafka({
    clientId: o.clientId,
    brokers: o.brokers,
    logLevel: logLevel.NOTHING,
    ssl: tlsOptions(o.security),
    sasl: saslOptions(o.security),
    ...extra,
  });
}

/**
 * The producer every writer of the project uses: idempotent with one request in flight (what
 * kafkajs's idempotence needs to keep order), acks=all at each send, never creating topics.
 */
export function durableProducer(kafka: Kafka): Producer {
  return kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
}
