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
