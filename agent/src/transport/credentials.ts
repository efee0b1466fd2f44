// How the agent proves itself to the collector and checks the collector: TLS with the
// collector's CA, optionally a client certificate (mutual TLS), or a bearer token.
import { readFileSync } from 'node:fs';
import { type ChannelCredentials, credentials } from '@grpc/grpc-js';

export interface AgentAuthOptions {
  /** PEM CA that signed the collector's certificate; enables TLS. */
  tlsCa: string;
  /** PEM client certificate and key (mutual TLS). */
  tlsCert: string;
  tlsKey: string;
  /** File holding this agent's bearer token. */
  tokenFile: string;
}

export function agentCredentials(o: AgentAuthOptions): {
  credentials: ChannelCredentials;
  metadata: Record<string, string>;
} {
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
  if (o.tlsCert && !o.tlsCa)
    throw new Error('--tls-cert needs --tls-ca (the CA of the collector certificate)');
  const read = (f: string) => readFileSync(f);
  const creds = o.tlsCa
    ? credentials.createSsl(
        read(o.tlsCa),
        o.tlsKey ? read(o.tlsKey) : null,
        o.tlsCert ? read(o.tlsCert) : null,
      )
    : credentials.createInsecure();
  const metadata: Record<string, string> = {};
  if (o.tokenFile) {
    const token = readFileSync(o.tokenFile, 'utf8').trim();
    if (!token) throw new Error(`token file ${o.tokenFile} is empty`);
    metadata.authorization = `Bearer ${token}`;
  }
  return { credentials: creds, metadata };
}
