import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root: the nearest folder above this file with a package.json (works from dist/ too). */
export function repoRoot(): string {
  let d = __dirname;
  while (!existsSync(join(d, 'package.json')) || d.endsWith('dist')) {
    const up = dirname(d);
    if (up === d) throw new Error('repository root not found');
    d = up;
  }
  return d;
}
