// Kafka failures that an operator fixes by configuration, said in terms of what to change: the
// ACL that is missing, the TLS or SASL option that is wrong. Anything else keeps its own message.
// kafkajs wraps the cause in retry errors and aggregates per-topic errors, so the whole chain of
// `cause` and `errors` is inspected.
import { setTimeout as sleep } from 'node:timers/promises';

const AUTHZ = {
  TOPIC_AUTHORIZATION_FAILED: 'topic',
  GROUP_AUTHORIZATION_FAILED: 'consumer group',
  CLUSTER_AUTHORIZATION_FAILED: 'cluster',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'transactional id',
} as const;

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
]);

interface ErrorLike {
  name?: string;
  message?: string;
  type?: string;
  code?: string | number;
  retriable?: boolean;
  cause?: unknown;
  errors?: unknown[];
}

function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const todo = [err as ErrorLike | undefined];
  while (todo.length > 0 && out.length < 20) {
    const e = todo.shift();
    if (!e || typeof e !== 'object') continue;
    out.push(e);
    todo.push(e.cause as ErrorLike, ...((e.errors ?? []) as ErrorLike[]));
  }
  return out;
}

/** TLS alerts a broker sends when it requires a client certificate and got none, or one it does not trust. */
const CLIENT_CERT_REFUSED =
  /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN)|alert (certificate required|bad certificate|unknown ca|certificate unknown)/i;

/** True when Kafka said the failure may pass by itself (e.g. a new topic's metadata spreading). */
export function isRetriable(err: unknown): boolean {
  return chain(err).some((e) => e.retriable === true);
}

/** The authorization failure (e.g. TOPIC_AUTHORIZATION_FAILED) somewhere in err, if any. */
export function authorizationType(err: unknown): string | undefined {
  return chain(err).find((e) => e.type && (e.type in AUTHZ || e.type === 'POLICY_VIOLATION'))?.type;
}

/**
 * A message naming what to change. `needs` says which permission the failed call required,
 * e.g. "WRITE on topic smmu-fleet.batches.v1", and is used for authorization failures.
 */
export function explainKafkaError(err: unknown, needs?: string): string {
  const errs = chain(err);
  const message = (err as Error)?.message ?? String(err);
  for (const e of errs) {
    const resource = e.type ? AUTHZ[e.type as keyof typeof AUTHZ] : undefined;
    if (resource) {
      return `Kafka refused the request (${e.type}): the principal lacks ${needs ?? `an ACL on the ${resource}`}; grant it (kafka-acls --add ...), see "Production Kafka" in README.md`;
    }
    if (e.name === 'KafkaJSSASLAuthenticationError') {
      return `Kafka SASL authentication failed (${e.message}): check --kafka-sasl-mechanism, --kafka-sasl-username and the password (--kafka-sasl-password-file or the KAFKA_SASL_PASSWORD environment variable) or --kafka-oauth-token-file`;
    }
    if (e.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return `Kafka TLS: the broker's certificate does not name the address connected to (${e.message}): use a broker address the certificate names, or --kafka-tls-verify-hostname false`;
    }
    if (CLIENT_CERT_REFUSED.test(`${e.code ?? ''} ${e.message ?? ''}`)) {
      return `Kafka TLS: the broker refused this client's TLS certificate (${e.code ?? e.message}): set --kafka-tls-cert and --kafka-tls-key to a certificate and key issued by a CA the brokers trust`;
    }
    if (typeof e.code === 'string' && (UNTRUSTED.has(e.code) || e.code.startsWith('CERT_'))) {
      return `Kafka TLS: the broker's certificate is not trusted (${e.code}: ${e.message}): set --kafka-tls-ca to the CA bundle that issued it`;
    }
  }
  return message;
}

/** Runs op again (up to 5 tries, 0.5 s, 1 s, ... apart) while Kafka calls its failure retriable. */
export async function retryWhileRetriable<T>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (attempt >= 5 || !isRetriable(err)) throw err;
      await sleep(500 * attempt);
    }
  }
}
