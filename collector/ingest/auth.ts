// Who may send batches for which host. An agent proves its identity with a client
// certificate (mutual TLS: its CN and DNS subject-alternative names are the hosts it may speak
// for) or with a per-agent bearer token (a tokens file maps each token to one host). The
// collector then refuses any batch whose host is not one of those (PERMISSION_DENIED), so no
// agent can report in another host's name. With neither configured, every stream is accepted
// for any host: a development setting that the collector warns about at start.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Metadata, ServerCredentials, status } from '@grpc/grpc-js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context';

export interface AuthConfig {
  /** PEM files; cert+key enable TLS. */
  tlsCert: string;
  tlsKey: string;
  /** CA that signs client certificates; with it, clients must present one (mutual TLS). */
  tlsClientCa: string;
  /** JSON file {"<token>": "<host>", ...}; enables bearer-token authentication. */
  tokensFile: string;
}

export type Identity =
  | { kind: 'anonymous' }
  | { kind: 'certificate' | 'token'; hosts: ReadonlySet<string>; name: string };

export class AuthError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class Authenticator {
  /** sha256(token) in hex -> host */
  private tokens = new Map<string, string>();
  readonly mutualTls: boolean;

  constructor(private readonly c: AuthConfig) {
    this.mutualTls = Boolean(c.tlsClientCa);
    if (c.tokensFile) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(c.tokensFile, 'utf8'));
      } catch (err) {
        throw new Error(`tokens file ${c.tokensFile}: ${(err as Error).message}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error(`tokens file ${c.tokensFile}: expected a JSON object {"<token>": "<host>"}`);
      }
      for (const [token, host] of Object.entries(parsed)) {
        if (typeof host !== 'string' || !host || token.length < 16) {
          throw new Error(
            `tokens file ${c.tokensFile}: each token must be at least 16 characters and map to a host name`,
          );
        }
        this.tokens.set(sha256(token).toString('hex'), host);
      }
    }
    if (this.mutualTls && !c.tlsCert)
      throw new Error('--tls-client-ca needs --tls-cert and --tls-key (mutual TLS runs over TLS)');
    if (Boolean(c.tlsCert) !== Boolean(c.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
  }

  /** True when nothing is checked (development). */
  get open(): boolean {
    return !this.mutualTls && this.tokens.size === 0;
  }

  credentials(): ServerCredentials {
    if (!this.c.tlsCert) return ServerCredentials.createInsecure();
    const ca = this.c.tlsClientCa ? readFileSync(this.c.tlsClientCa) : null;
    return ServerCredentials.createSsl(
      ca,
      [{ cert_chain: readFileSync(this.c.tlsCert), private_key: readFileSync(this.c.tlsKey) }],
      this.mutualTls,
    );
  }

  /** The identity of a new stream, or an AuthError (UNAUTHENTICATED). */
  authenticate(md: Metadata, auth: AuthContext): Identity {
    const cert = auth.sslPeerCertificate;
    if (cert && Object.keys(cert).length > 0) {
      const hosts = new Set<string>();
      if (cert.subject?.CN) hosts.add(String(cert.subject.CN));
      for (const san of (cert.subjectaltname ?? '').split(',')) {
        const m = /^\s*DNS:(.+)$/.exec(san);
        if (m) hosts.add(m[1].trim());
      }
      return { kind: 'certificate', hosts, name: String(cert.subject?.CN ?? '') };
    }
    if (this.mutualTls) throw new AuthError(status.UNAUTHENTICATED, 'a client certificate is required');
    if (this.tokens.size === 0) return { kind: 'anonymous' };
    const header = md.get('authorization')[0];
    const m = typeof header === 'string' ? /^Bearer (.+)$/.exec(header) : null;
    if (!m) throw new AuthError(status.UNAUTHENTICATED, 'missing "authorization: Bearer <token>" metadata');
    // Looked up by digest: timing reveals nothing about the token itself.
    const host = this.tokens.get(sha256(m[1]).toString('hex'));
    if (!host) throw new AuthError(status.UNAUTHENTICATED, 'unknown token');
    return { kind: 'token', hosts: new Set([host]), name: host };
  }
}

/** PERMISSION_DENIED unless the identity may report for this host. */
export function checkHost(id: Identity, host: string): void {
  if (id.kind === 'anonymous' || id.hosts.has(host)) return;
  throw new AuthError(
    status.PERMISSION_DENIED,
    `${id.kind} "${id.name}" may not send batches for host "${host}"`,
  );
}
