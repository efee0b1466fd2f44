// Numbers as the API sends them: counts are JSON numbers, or decimal strings once beyond 2^53;
// both are shown exactly (grouped digits), and read as numbers only for charts and ratios.
export type Count = number | string;

export const KINDS = ['translation', 'access', 'permission', 'other'] as const;
export type Kind = (typeof KINDS)[number];
export type Kinds = Record<Kind, Count>;

/** For arithmetic and drawing (approximate beyond 2^53). */
export function num(v: Count | null | undefined): number {
  return v === null || v === undefined ? 0 : Number(v);
}

/** Exact, with thousands separators. */
export function count(v: Count | null | undefined): string {
  if (v === null || v === undefined) return '0';
  const s = typeof v === 'string' ? v : Number.isInteger(v) ? BigInt(v).toString() : v.toString();
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A rate with 3 significant digits. */
export function rate(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '0';
  return v >= 100 ? Math.round(v).toLocaleString('en') : v.toPrecision(3);
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}

/** Loss reason as the page shows it: LOSS_REASON_SPOOL_FULL -> spool full. */
export function lossName(reason: string): string {
  return reason
    .replace(/^LOSS_REASON_/, '')
    .toLowerCase()
    .replace(/_/g, ' ');
}

export function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}
