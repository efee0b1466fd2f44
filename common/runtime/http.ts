// The one HTTP server of every daemon: /healthz (alive), /readyz (ready to do its job),
// /metrics (Prometheus text format), the fixed routes a daemon adds, and, for a daemon with a
// query API (the aggregator), a handler for every other path. GET only: another method on a
// known path answers 405. A route that throws answers 500 with its message, never a crash.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Reply {
  status?: number;
  type?: string;
  body: string | Buffer;
}

export type Route = () => Reply | Promise<Reply>;

export interface HttpOptions {
  /** "host:port"; port 0 picks a free one. */
  listen: string;
  registry: Registry;
  /** Returns null when ready, else the reason it is not. */
  notReady: () => string | null;
  routes?: Record<string, Route>;
  /** Every path not in `routes`: the reply, or null for "no such endpoint". */
  handle?: (method: string, url: URL) => Promise<Reply | null>;
}

export interface HttpServer {
  server: Server;
  address: string;
  close(): Promise<void>;
}

export function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = i > 0 ? listen.slice(0, i).replace(/^\[|\]$/g, '') : '127.0.0.1';
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`bad listen address ${JSON.stringify(listen)}: expected host:port`);
  return { host, port };
}

export async function startHttp(o: HttpOptions): Promise<HttpServer> {
  const routes: Record<string, Route> = {
    '/healthz': () => ({ body: 'ok\n' }),
    '/readyz': () => {
      const why = o.notReady();
      return why === null ? { body: 'ready\n' } : { status: 503, body: `not ready: ${why}\n` };
    },
    '/metrics': async () => ({ type: o.registry.contentType, body: await o.registry.metrics() }),
    ...o.routes,
  };
  const answer = async (method: string, url: URL): Promise<Reply> => {
    if (Object.hasOwn(routes, url.pathname)) {
      if (method !== 'GET') return { status: 405, body: 'only GET is supported\n' };
      return routes[url.pathname]();
    }
    const r = o.handle ? await o.handle(method, url) : null;
    return r ?? { status: 404, body: `no such endpoint; try ${Object.keys(routes).join(', ')}\n` };
  };
  const server = createServer((req, res) => {
    answer(req.method ?? 'GET', new URL(req.url ?? '/', 'http://localhost'))
      .catch((err: Error): Reply => ({ status: 500, body: `error: ${err.message}\n` }))
      .then((r) => {
        res.writeHead(r.status ?? 200, { 'content-type': r.type ?? 'text/plain; charset=utf-8' }).end(r.body);
      });
  });
  const { host, port } = splitHostPort(o.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    server,
    address: `${a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
