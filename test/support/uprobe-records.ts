// The records test/fixtures/uprobe/emit.c emits, and where the repository's fixtures are.
// Pure: no kernel access (test/support/uprobe.ts does that).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root: the nearest directory above this file (or, for builds output outside
 * the tree, above the working directory) whose package.json is smmu-fleet's.
 */
export function repoRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = start;
    for (let i = 0; i < 12; i++) {
      const pkg = join(dir, 'package.json');
      if (existsSync(pkg) && /"name":\s*"smmu-fleet"/.test(readFileSync(pkg, 'utf8'))) return dir;
      dir = dirname(dir);
    }
  }
  throw new Error(`no smmu-fleet package.json above ${__dirname} or ${process.cwd()}`);
}

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
