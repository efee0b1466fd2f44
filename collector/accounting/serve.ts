// Accounting stage 5: serve. The aggregator's HTTP face: /healthz, /readyz and /metrics from the
// server every daemon of the project runs (common/runtime/http.ts), plus the JSON query API
// under /v1/, described in openapi.json (served at /v1/openapi.json), its fleet-wide form under
// /v1/fleet/ (fleet.ts) and the fleet web page at / (web-assets.ts). Guarantee: read-only (GET
// only, over the views of views.ts, never the daemon); a malformed parameter answers 400 naming
// it, an unknown host 404, and a failing view 500 with its message, never a crash.
import type { Registry } from 'prom-client';
import { type HttpServer, type Reply, startHttp } from '../../common/runtime/http';
import { askPeer, FLEET_LISTS, mergeAnswers } from './fleet';
import { OPENAPI } from './openapi';
import type { AccountingQueries } from './views';
import { webAssets } from './web-assets';

export interface ApiOptions {
  listen: string;
  registry: Registry;
  notReady: () => string | null;
  /** The read-only views of the accounting state (views.ts). */
  views: AccountingQueries;
  /** The other instances' API base URLs, asked for /v1/fleet/ answers. */
  fleetPeers?: string[];
  fleetTimeoutMs?: number;
}

class BadRequest extends Error {}
class NotFound extends Error {}

const json = (v: unknown, status = 200): Reply => ({
  status,
  type: 'application/json; charset=utf-8',
  body: `${JSON.stringify(v)}\n`,
});

/** Query parameters with checks that answer 400 naming the parameter. */
class Params {
  constructor(private readonly q: URLSearchParams) {}
  str(name: string): string | undefined {
    const v = this.q.get(name);
    return v === null || v === '' ? undefined : v;
  }
  int(name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = v.startsWith('0x') ? Number.parseInt(v.slice(2), 16) : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new BadRequest(
        `parameter ${name}: expected an integer in ${min}..${max}, got ${JSON.stringify(v)}`,
      );
    }
    return n;
  }
  bool(name: string, dflt: boolean): boolean {
    const v = this.str(name);
    if (v === undefined) return dflt;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new BadRequest(`parameter ${name}: expected true or false, got ${JSON.stringify(v)}`);
  }
  bigint(name: string): bigint | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v))
      throw new BadRequest(`parameter ${name}: expected ns since the Unix epoch, got ${JSON.stringify(v)}`);
    return BigInt(v);
  }
}

function routes(
  a: AccountingQueries,
): Array<[RegExp, (m: RegExpMatchArray, p: Params) => Reply | Promise<Reply>]> {
  return [
    [/^\/v1\/openapi\.json$/, () => json(OPENAPI)],
    [/^\/v1\/summary$/, () => json(a.summary())],
    [/^\/v1\/hosts$/, () => json({ hosts: a.hostRows() })],
    [
      /^\/v1\/hosts\/([^/]+)$/,
      (m) => {
        const host = decodeURIComponent(m[1]);
        const row = a.hostRows().find((h) => h.host === host);
        if (!row) throw new NotFound(`no host ${JSON.stringify(host)} in this aggregator's partitions`);
        return json({ host: row, devices: a.deviceRows(host), processes: a.processRows(host) });
      },
    ],
    [/^\/v1\/devices$/, (_m, p) => json({ devices: a.deviceRows(p.str('host')) })],
    [/^\/v1\/processes$/, (_m, p) => json({ processes: a.processRows(p.str('host')) })],
    [
      /^\/v1\/series$/,
      (_m, p) =>
        json({
          series: a.seriesRows({
            host: p.str('host'),
            smmu: p.str('smmu'),
            streamId: p.int('streamId', 0, 0xffffffff),
            ssid: p.int('ssid', 0, 0xfffff),
          }),
        }),
    ],
    [
      /^\/v1\/windows$/,
      (_m, p) => {
        const widthName = p.str('width') ?? '10s';
        const width = a.widthIndex(widthName);
        if (width < 0)
          throw new BadRequest(`parameter width: expected 10s or 1m, got ${JSON.stringify(widthName)}`);
        return json({
          width: widthName,
          windows: a.windows({
            width,
            host: p.str('host'),
            smmu: p.str('smmu'),
            streamId: p.int('streamId', 0, 0xffffffff),
            ssid: p.int('ssid', 0, 0xfffff),
            sinceNs: p.bigint('since'),
            includeOpen: p.bool('open', true),
            limit: p.int('limit', 1, 1_000_000) ?? 1000,
          }),
        });
      },
    ],
    [
      /^\/v1\/hotpages$/,
      (_m, p) =>
        json({
          processes: a.hotPages(p.str('host'), p.int('ssid', 0, 0xfffff), p.int('limit', 1, 1 << 20) ?? 16),
        }),
    ],
    [
      /^\/v1\/advice$/,
      (_m, p) =>
        json({
          advice: a.advice(
            p.str('host'),
            p.int('ssid', 0, 0xfffff),
            p.int('minFaults', 1) ?? a.settings.adviceMinFaults,
            p.int('gapPages', 0) ?? a.settings.adviceGapPages,
          ),
        }),
    ],
  ];
}

/** Errors as the API answers them: 400 and 404 with their message, anything else 500. */
function errorReply(err: Error): Reply {
  return err instanceof BadRequest
    ? json({ error: err.message }, 400)
    : err instanceof NotFound
      ? json({ error: err.message }, 404)
      : json({ error: err.message }, 500);
}

/**
 * /v1/fleet/<endpoint>: this instance's own answer (which also checks the parameters: a
 * malformed one is 400 before any peer is asked), then the peers', merged.
 */
function fleetRoute(
  local: (url: URL) => Promise<Reply>,
  peers: string[],
  timeoutMs: number,
): (m: RegExpMatchArray, p: Params, url: URL) => Promise<Reply> {
  return async (m, _p, url) => {
    const path = `/v1/${m[1]}${url.search}`;
    const own = await local(new URL(path, url));
    if (own.status === 400) return own;
    const answers = await Promise.all(peers.map((peer) => askPeer(peer, path, timeoutMs)));
    const merged = mergeAnswers(m[1], [
      { url: 'self', status: own.status ?? 200, body: JSON.parse(own.body.toString()) },
      ...answers,
    ]);
    return json(merged.body, merged.status);
  };
}

const FLEET_PATH = new RegExp(`^/v1/fleet/(${Object.keys(FLEET_LISTS).join('|')}|hosts/[^/]+)$`);

export function startApi(o: ApiOptions): Promise<HttpServer> {
  const table: Array<[RegExp, (m: RegExpMatchArray, p: Params, url: URL) => Reply | Promise<Reply>]> = [
    ...routes(o.views),
    ...webAssets().routes,
  ];
  const dispatch = async (method: string, url: URL): Promise<Reply> => {
    for (const [re, fn] of table) {
      const m = url.pathname.match(re);
      if (!m) continue;
      if (method !== 'GET') return json({ error: 'only GET is supported' }, 405);
      return fn(m, new Params(url.searchParams), url);
    }
    return json(
      {
        error: `no such endpoint ${url.pathname}`,
        endpoints: ['/', '/healthz', '/readyz', '/metrics', ...Object.keys(OPENAPI.paths)],
      },
      404,
    );
  };
  const local = (url: URL) => dispatch('GET', url).catch(errorReply);
  table.push([FLEET_PATH, fleetRoute(local, o.fleetPeers ?? [], o.fleetTimeoutMs ?? 3000)]);
  return startHttp({
    listen: o.listen,
    registry: o.registry,
    notReady: o.notReady,
    handle: (method, url) => dispatch(method, url).catch(errorReply),
  });
}
