// The page reads only the documented JSON API, in its fleet-wide form (/v1/fleet/...): the
// instance that served the page merges every instance's answer, so the page shows the fleet.
import type { Count, Kinds } from './format.js';

export interface Instance {
  url: string;
  ok: boolean;
  partitions?: number[];
  error?: string;
}

/** Counts kept per host, and their sums over the fleet. */
interface Totals {
  batches: Count;
  events: Count;
  kinds: Kinds;
  stalls: Count;
  lost: Record<string, Count>;
  lostEvents: Count;
  replayedBatches: Count;
  late: Record<string, Count>;
}

export interface HostRow extends Totals {
  host: string;
  firstEventUnixNs: string;
  lastEventUnixNs: string;
  series: number;
}

export interface Summary extends Totals {
  hosts: number;
  series: number;
  instances: Instance[];
}

export interface DeviceRow {
  host: string;
  smmu: string;
  streamId: number;
  events: Count;
  kinds: Kinds;
  stalls: Count;
  processes: number;
}

export interface ProcessRow {
  host: string;
  ssid: number;
  events: Count;
  kinds: Kinds;
  stalls: Count;
  devices: number;
  eventsPerSec: number | null;
}

export interface SeriesRow {
  host: string;
  smmu: string;
  streamId: number;
  ssid: number;
  events: Count;
  kinds: Kinds;
  stalls: Count;
  stallsByKind: Kinds;
  otherEvents: Record<string, Count>;
}

export interface WindowRow {
  host: string;
  startUnixNs: string;
  closed: boolean;
  events: Count;
  eventsPerSec: number;
  kinds: Kinds;
  stalls: Count;
  lostEvents?: Count;
}

export interface HotPage {
  page: number;
  address: string;
  faults: Count;
  error: Count;
  guaranteed: Count;
  stalls: Count;
  translation: Count;
  access: Count;
  permission: Count;
}

export interface HotPages {
  host: string;
  ssid: number;
  hotPageShift: number;
  faults: Count;
  pages: HotPage[];
}

export interface AdviceRange {
  start: string;
  end: string;
  startPage: number;
  endPage: number;
  bytes: number;
  hotPages: number;
  faults: Count;
  guaranteedFaults: Count;
  stalls: Count;
  faultsPerSec: number | null;
  populate: 'read' | 'write';
}

export interface Advice {
  host: string;
  ssid: number;
  observedSeconds: number;
  ranges: AdviceRange[];
  savedFaults: Count;
  savedGuaranteedFaults: Count;
  savedStalls: Count;
}

/** An answer the page can show as a message (unknown host, bad parameter, instance down). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function get<T>(
  path: string,
  params: Record<string, string | number | undefined> = {},
): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  const res = await fetch(`/v1/fleet/${path}${s ? `?${s}` : ''}`, { cache: 'no-store' });
  const body = (await res.json().catch(() => ({ error: `HTTP ${res.status}: not JSON` }))) as T & {
    error?: string;
  };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `HTTP ${res.status}`);
  return body;
}
