// Page states of the processes' mappings, one byte per page in a single array, and the
// fault decision the SMMU's stage-1 walk makes for one access.
import type { ModelConfig } from './config';
import type { Rng } from './rng';
import type { ModelProcess } from './topology';

/** The page has a valid translation. */
export const PAGE_PRESENT = 1;
/** Access flag set. */
export const PAGE_YOUNG = 2;
/** Writable (not write-protected): no copy-on-write pending. */
export const PAGE_WRITABLE = 4;
/** Dirty: writes allowed without a fault even without hardware dirty-state update. */
export const PAGE_DIRTY = 8;

/** Access outcomes; the first three equal FaultKind. */
export const NO_FAULT = -1;
export const FAULT_TRANSLATION = 0;
export const FAULT_ACCESS = 1;
export const FAULT_PERMISSION = 2;

export interface InitialPages {
  old: number;
  readOnly: number;
  writableClean: number;
}

/**
 * What the SMMU reports for an access to a page in state `s`, in the architecture's fault
 * priority: translation (not present), then access flag (AF clear, no HA), then permission
 * (write to a read-only page, or to a clean one without HD).
 */
export function accessFault(s: number, write: boolean, ha: boolean, hd: boolean): number {
  if ((s & PAGE_PRESENT) === 0) return FAULT_TRANSLATION;
  if ((s & PAGE_YOUNG) === 0 && !ha) return FAULT_ACCESS;
  if (write && ((s & PAGE_WRITABLE) === 0 || ((s & PAGE_DIRTY) === 0 && !hd))) return FAULT_PERMISSION;
  return NO_FAULT;
}

/**
 * The page state after the IOPF handler (handle_mm_fault) served a fault: a fault with
 * write intent leaves the page young, writable and dirty; a read maps it young (a read of
 * a not-present anonymous page maps the zero page read-only).
 */
export function afterFault(s: number, write: boolean): number {
  if (write) return PAGE_PRESENT | PAGE_YOUNG | PAGE_WRITABLE | PAGE_DIRTY;
  return (s & PAGE_PRESENT) === 0 ? PAGE_PRESENT | PAGE_YOUNG : s | PAGE_YOUNG;
}

/** The state hardware leaves after an access that did not fault (HA / HD updates). */
export function afterAccess(s: number, write: boolean, ha: boolean, hd: boolean): number {
  if (ha) s |= PAGE_YOUNG;
  if (write && hd) s |= PAGE_DIRTY;
  return s;
}

/** State of every page of a MAP_POPULATE'd mapping: faulted in for write if it is written. */
export function prefaultState(written: boolean): number {
  return written ? PAGE_PRESENT | PAGE_YOUNG | PAGE_WRITABLE | PAGE_DIRTY : PAGE_PRESENT | PAGE_YOUNG;
}

/** Fills pages[from, from+count) as a fresh mapping: prefaulted, or drawn from `initial`. */
export function populate(
  pages: Uint8Array,
  from: number,
  count: number,
  prefault: number,
  initial: InitialPages,
  rng: Rng,
): void {
  if (prefault !== 0) {
    pages.fill(prefault, from, from + count);
    return;
  }
  const a = initial.old;
  const b = a + initial.readOnly;
  const c = b + initial.writableClean;
  if (c === 0) {
    pages.fill(0, from, from + count);
    return;
  }
  for (let i = from; i < from + count; i++) {
    const u = rng.float();
    // Old pages were written before aging cleared their access flag.
    pages[i] =
      u < a
        ? PAGE_PRESENT | PAGE_WRITABLE | PAGE_DIRTY
        : u < b
          ? PAGE_PRESENT | PAGE_YOUNG
          : u < c
            ? PAGE_PRESENT | PAGE_YOUNG | PAGE_WRITABLE
            : 0;
  }
}

/** Page aging (LRU scan): clears the access flag of every page in the range. */
export function age(pages: Uint8Array, from: number, count: number): void {
  for (let i = from; i < from + count; i++) pages[i] &= ~PAGE_YOUNG;
}

/** Writeback: dirty pages become clean (write-protected again unless the SMMU has HD). */
export function clean(pages: Uint8Array, from: number, count: number): void {
  for (let i = from; i < from + count; i++) pages[i] &= ~PAGE_DIRTY;
}

/** Every mapping's pages, one state byte each (mapping m's pages at m * mappingPages). */
export class MappedPages {
  readonly states: Uint8Array;
  /** Byte address of each mapping's first page. */
  readonly base: Float64Array;
  /** The state a (re)created page gets: prefaultState for MAP_POPULATE mappings, else 0. */
  private readonly fresh: Uint8Array;

  constructor(
    processes: readonly ModelProcess[],
    private readonly m: ModelConfig['memory'],
    written: boolean,
    rng: Rng,
  ) {
    const mappings = processes.length * m.mappingsPerProcess;
    this.states = new Uint8Array(mappings * m.mappingPages);
    this.fresh = new Uint8Array(mappings);
    this.base = new Float64Array(mappings);
    for (const p of processes) {
      for (const mp of p.mappings) {
        this.fresh[mp.global] = mp.prefault ? prefaultState(written) : 0;
        this.base[mp.global] = mp.basePage * 2 ** m.pageShift;
        this.remap(mp.global, rng);
      }
    }
  }

  /** munmap + mmap at the same address: the mapping's pages start over. */
  remap(mapping: number, rng: Rng): void {
    const n = this.m.mappingPages;
    populate(this.states, mapping * n, n, this.fresh[mapping], this.m.initialPages, rng);
  }

  /** The configured churn when a job on `mapping` ends: remap, age (reclaim scan), clean (writeback). */
  churn(mapping: number, churn: ModelConfig['workload']['churn'], rng: Rng): void {
    const n = this.m.mappingPages;
    if (rng.float() < churn.remap) this.remap(mapping, rng);
    if (rng.float() < churn.age) age(this.states, mapping * n, n);
    if (rng.float() < churn.clean) clean(this.states, mapping * n, n);
  }
}
