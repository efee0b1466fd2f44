// The records test/fixtures/uprobe/emit.c emits, and where the repository's fixtures are.
// Pure: no kernel access (test/support/uprobe.ts does that).
import { join } from 'node:path';
import { repoRoot } from './paths';

/** Path of a file under test/fixtures/tracefs. */
export function tracefsFixture(name: string): string {
  return join(repoRoot(), 'test', 'fixtures', 'tracefs', name);
}

const M64 = (1n << 64n) - 1n;

/** Record i of `emit <count> <names> <gap> <seed>` (same formula as emit.c). */
export function expectedRecord(i: number, seed: bigint): [bigint, bigint, bigint, bigint] {
  const u = BigInt(i);
  const evt0 = (0x10n | (1n << 11n) | ((u & 0xfffffn) << 12n) | ((seed + (u % 7n)) << 32n)) & M64;
  const evt1 = (u & 0xffffn) | (1n << 31n) | ((u & 1n) << 35n);
  const evt2 = (0xffff800000000000n + u * 0x1000n + seed) & M64;
  const evt3 = ((u * 0x9e3779b97f4a7c15n) & M64) ^ seed;
  return [evt0, evt1, evt2, evt3];
}

/** The SMMU name of record i for a comma-separated name list. */
export function expectedName(i: number, names: string): string {
  const list = names.split(',');
  return list[i % list.length];
}
