// Throw-away PKI for TLS tests, made with the openssl CLI: a CA, a collector certificate for
// 127.0.0.1/localhost, and client certificates whose CN is a host name.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Issues a client certificate with this CN (and the same DNS name); returns [cert, key]. */
  client(cn: string): [string, string];
}

const ssl = (dir: string, args: string[]) =>
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

export function makePki(name = 'ca'): Pki {
  const dir = mkdtempSync(join(tmpdir(), `pki-${name}-`));
  ssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  const issue = (base: string, cn: string, san: string) => {
    writeFileSync(join(dir, `${base}.ext`), `subjectAltName=${san}\n`);
    ssl(dir, [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.csr`,
      '-subj',
      `/CN=${cn}`,
    ]);
    ssl(dir, [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${base}.pem`,
      '-days',
      '2',
      '-extfile',
      `${base}.ext`,
    ]);
    return [join(dir, `${base}.pem`), join(dir, `${base}.key`)] as [string, string];
  };
  const [serverCert, serverKey] = issue('server', 'collector', 'IP:127.0.0.1,DNS:localhost');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    serverCert,
    serverKey,
    client: (cn) => issue(`client-${cn}`, cn, `DNS:${cn}`),
  };
}
