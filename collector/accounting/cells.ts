// The counter cells every series, window and host sum is kept in: STRIDE numbers per row,
// events by fault kind (0..3, common/smmu/event-ids FaultKind), then stalls by fault kind.
// Rows live side by side in one Float64Array (row r at r * STRIDE); these helpers are the only
// place that knows the layout, and they are small enough for V8 to inline in the hot loop.

export const STRIDE = 8;
/** Offset of the stall cells within a row. */
export const STALLS = 4;
export const KIND_NAMES = ['translation', 'access', 'permission', 'other'] as const;
/** FaultKind "other": every event that is not one of the three page faults. */
export const OTHER = 3;

/** Counts one event of `kind` (and its stall) in the row at `base`. */
export function countEvent(cells: Float64Array, base: number, kind: number, stall: boolean): void {
  cells[base + kind]++;
  if (stall) cells[base + STALLS + kind]++;
}

/** Events of the row at `base`, all kinds. */
export function rowEvents(cells: ArrayLike<number>, base = 0): number {
  return cells[base] + cells[base + 1] + cells[base + 2] + cells[base + 3];
}

/** Stalls of the row at `base`, all kinds. */
export function rowStalls(cells: ArrayLike<number>, base = 0): number {
  return cells[base + 4] + cells[base + 5] + cells[base + 6] + cells[base + 7];
}

/** Adds the row at `from` of `src` to the row at `to` of `dst`. */
export function addRow(dst: Float64Array, to: number, src: ArrayLike<number>, from: number): void {
  for (let j = 0; j < STRIDE; j++) dst[to + j] += src[from + j];
}

/** Counts by kind, as the JSON views show them. */
export interface KindCounts {
  translation: number;
  access: number;
  permission: number;
  other: number;
}

/** The four cells from `o` by kind name: events (o = row base) or stalls (o = base + STALLS). */
export function kindCounts(cells: ArrayLike<number>, o: number): KindCounts {
  return { translation: cells[o], access: cells[o + 1], permission: cells[o + 2], other: cells[o + 3] };
}
