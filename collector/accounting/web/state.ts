// What the page shows is all in its URL (?host=&smmu=&sid=&ssid=&width=), so a link shows the
// same view to whoever opens it; navigation changes the URL without reloading.
export interface State {
  host?: string;
  smmu?: string;
  /** StreamID (device), as typed in the URL; the API checks it. */
  sid?: string;
  /** SubstreamID (process), as typed in the URL; the API checks it. */
  ssid?: string;
  width: string;
}

export function readState(search: string): State {
  const q = new URLSearchParams(search);
  const v = (k: string) => q.get(k) || undefined;
  return { host: v('host'), smmu: v('smmu'), sid: v('sid'), ssid: v('ssid'), width: v('width') ?? '10s' };
}

export function href(s: Partial<State>): string {
  const q = new URLSearchParams();
  for (const k of ['host', 'smmu', 'sid', 'ssid', 'width'] as const) {
    const v = s[k];
    if (v !== undefined && !(k === 'width' && v === '10s')) q.set(k, v);
  }
  const t = q.toString();
  return t ? `?${t}` : './';
}

/** The level above: process or device -> host -> fleet. */
export function up(s: State): State {
  if (s.ssid !== undefined || s.sid !== undefined) return { host: s.host, width: s.width };
  return { width: s.width };
}
