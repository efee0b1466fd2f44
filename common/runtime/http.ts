// The small HTTP face every daemon has: /healthz (alive), /readyz (ready to do its job),
// /metrics (Prometheus text format) and any JSON/text routes the daemon adds.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export type Route = () =>
  | { status?: number; type?: string; body: string }
  | Promise<{ status?: number; type?: string; body: string }>;

export interface HttpOptions {
  /** "host:port"; port 0 picks a free one. */
  listen: string;
  registry: Registry;
  /** Returns null when ready, else the reason it is not. */
  notReady: () => string | null;
  routes?: Record<string, Route>;
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = i > 0 ? listen.slice(0, i).replace(/^\[|\]$/g, '') : '127.0.0.1';
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`bad listen address ${JSON.stringify(listen)}: expected host:port`);
  return { host, port };
}

export async function startHttp(o: HttpOptions): Promise<{ server: Server; address: string }> {
  const routes: Record<string, Route> = {
    '/healthz': () => ({ body: 'ok\n' }),
    '/readyz': () => {
      const why = o.notReady();
      return why === null ? { body: 'ready\n' } : { status: 503, body: `not ready: ${why}\n` };
    },
    '/metrics': async () => ({ type: o.registry.contentType, body: await o.registry.metrics() }),
    ...o.routes,
  };
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = routes[path];
    if (!route || req.method !== 'GET') {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`no such endpoint; try ${Object.keys(routes).join(', ')}\n`);
      return;
    }
    try {
      const r = await route();
      res.writeHead(r.status ?? 200, { 'content-type': r.type ?? 'text/plain; charset=utf-8' }).end(r.body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`error: ${(err as Error).message}\n`);
    }
  });
  const { host, port } = splitHostPort(o.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return { server, address: `${a.address}:${a.port}` };
}
