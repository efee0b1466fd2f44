// The fleet-wide API (/v1/fleet/...): one instance answers for the whole fleet by asking its
// peers (--fleet-peers, the other instances' API base URLs) the same /v1/ question and merging
// the answers with its own. Instances hold disjoint partitions, hence disjoint hosts, so lists
// concatenate and summaries add. An instance that does not answer is named in `instances` with
// its error: a partial fleet is never shown as a whole one.

/** The endpoints that have a fleet form, with the list each answer carries (summary: none). */
export const FLEET_LISTS: Record<string, string | null> = {
  summary: null,
  hosts: 'hosts',
  devices: 'devices',
  processes: 'processes',
  series: 'series',
  windows: 'windows',
  hotpages: 'processes',
  advice: 'advice',
};

/** Summary fields that add up across instances (the rest describe one instance). */
const SUMMARY_SUMS = [
  'hosts',
  'series',
  'batches',
  'events',
  'kinds',
  'stalls',
  'lost',
  'lostEvents',
  'replayedBatches',
  'late',
  'malformedMessages',
] as const;

export interface InstanceStatus {
  url: string;
  ok: boolean;
  /** Raw-topic partitions the instance holds (from its summary; absent for other endpoints). */
  partitions?: number[];
  error?: string;
}

/** One instance's answer: HTTP status and parsed JSON body, or a transport error. */
export type Answer =
  | { url: string; status: number; body: Record<string, unknown> }
  | { url: string; error: string };

type Count = number | string;

/** Adds two counts that may be decimal strings beyond 2^53; stays a number while exact. */
export function addCount(a: Count, b: Count): Count {
  if (typeof a === 'number' && typeof b === 'number' && Number.isSafeInteger(a + b)) return a + b;
  const s = BigInt(a) + BigInt(b);
  return s <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(s) : s.toString();
}

/** Adds count trees: numbers (or decimal strings) add, objects add per key; null stays null. */
export function addCounts(a: unknown, b: unknown): unknown {
  if (a === undefined) return b;
  if (b === undefined || a === null || b === null) return a;
  if (typeof a === 'object' && typeof b === 'object') {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = addCounts(out[k], v);
    return out;
  }
  return addCount(a as Count, b as Count);
}

function status(a: Answer): InstanceStatus {
  if ('error' in a) return { url: a.url, ok: false, error: a.error };
  if (a.status !== 200 && a.status !== 404) {
    const why = typeof a.body.error === 'string' ? a.body.error : '';
    return { url: a.url, ok: false, error: `HTTP ${a.status} ${why}`.trim() };
  }
  const parts = a.body.assignedPartitions;
  return Array.isArray(parts)
    ? { url: a.url, ok: true, partitions: parts as number[] }
    : { url: a.url, ok: true };
}

/**
 * Merges the instances' answers to /v1/<endpoint>. Returns the HTTP status and body: lists
 * concatenated, summary counts added, a host found on any instance, 404 only when no instance
 * that answered has it.
 */
export function mergeAnswers(endpoint: string, answers: Answer[]): { status: number; body: unknown } {
  const instances = answers.map(status);
  const ok = answers.filter(
    (a): a is Extract<Answer, { status: number }> => !('error' in a) && a.status === 200,
  );
  if (endpoint.startsWith('hosts/')) {
    if (ok.length > 0) return { status: 200, body: { ...ok[0].body, instances } };
    const host = decodeURIComponent(endpoint.slice('hosts/'.length));
    const asked = instances.filter((i) => i.ok).length;
    return {
      status: 404,
      body: {
        error: `no host ${JSON.stringify(host)} in the fleet (${asked} of ${instances.length} instances answered)`,
        instances,
      },
    };
  }
  const list = FLEET_LISTS[endpoint];
  if (list === null) {
    const sum: Record<string, unknown> = {};
    for (const a of ok) for (const k of SUMMARY_SUMS) sum[k] = addCounts(sum[k], a.body[k]);
    return { status: 200, body: { ...sum, stallTimeNs: null, instances } };
  }
  const rows = ok.flatMap((a) => (a.body[list] as unknown[] | undefined) ?? []);
  const extra = endpoint === 'windows' ? { width: ok[0]?.body.width } : {};
  return { status: 200, body: { ...extra, [list]: rows, instances } };
}

/** Asks one peer; any failure (refused, timeout, not JSON) becomes an error answer. */
export async function askPeer(base: string, pathAndQuery: string, timeoutMs: number): Promise<Answer> {
  const url = `${base.replace(/\/+$/, '')}${pathAndQuery}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as Record<string, unknown>;
    return { url: base, status: res.status, body };
  } catch (err) {
    return { url: base, error: (err as Error).message };
  }
}
