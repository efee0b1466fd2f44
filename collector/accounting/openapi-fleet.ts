// The fleet-wide paths of the API (/v1/fleet/..., fleet.ts) and the web page (/), derived from
// the per-instance paths: same parameters, same answers, plus `instances` (who answered).
import { FLEET_LISTS } from './fleet';

interface Op {
  get: { summary: string; description: string; parameters: object[]; responses: Record<string, unknown> };
}

const instances = {
  type: 'array',
  description:
    'Every instance asked (this one is "self", the others are --fleet-peers): ok, the raw-topic partitions it holds (summary only), or why it did not answer. With one not ok the answer covers only the others.',
  items: {
    type: 'object',
    properties: {
      url: { type: 'string' },
      ok: { type: 'boolean' },
      partitions: { type: 'array', items: { type: 'integer' } },
      error: { type: 'string' },
    },
    required: ['url', 'ok'],
  },
};

function fleetOp(op: Op, path: string): Op {
  const responses: Record<string, unknown> = {};
  for (const [code, r] of Object.entries(op.get.responses)) {
    const rr = r as { content?: { 'application/json': { schema: Record<string, unknown> } } };
    const schema = rr.content?.['application/json'].schema;
    responses[code] =
      code === '200' && schema
        ? {
            ...rr,
            content: {
              'application/json': {
                schema: { allOf: [schema, { type: 'object', properties: { instances } }] },
              },
            },
          }
        : r;
  }
  return {
    get: {
      summary: `Fleet: ${op.get.summary.toLowerCase()}`,
      description: `${path} of every instance (this one and --fleet-peers), merged: lists concatenated (instances hold disjoint hosts), summary counts added, a host from whichever instance holds it. ${op.get.description}`,
      parameters: op.get.parameters,
      responses,
    },
  };
}

/** The document with the /v1/fleet/ twin of every per-instance query path, and /. */
export function withFleetPaths<T extends { paths: Record<string, unknown> }>(doc: T): T {
  const paths: Record<string, unknown> = {
    '/': {
      get: {
        summary: 'The fleet web page',
        description:
          'HTML page (its scripts and style sheet under /web/) showing the whole fleet from the /v1/fleet/ API; state in the query string: host, smmu, sid (StreamID), ssid, width.',
        parameters: [],
        responses: {
          200: { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } },
        },
      },
    },
    ...doc.paths,
  };
  for (const name of [...Object.keys(FLEET_LISTS), 'hosts/{host}']) {
    const path = `/v1/${name}`;
    paths[`/v1/fleet/${name}`] = fleetOp(doc.paths[path] as Op, path);
  }
  return { ...doc, paths };
}
