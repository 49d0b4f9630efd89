// Files Arbor ships beside its code (the data/ directory: shell scripts and units that run without
// Node), found from the running module whether it runs from src (tests), dist, or an installed package.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The path of `rel` under data/, in the first directory above this module holding package.json and data/. */
export function dataFile(rel: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'data'))) return join(dir, 'data', rel);
    const up = dirname(dir);
    if (up === dir) throw new Error(`internal error: no data/ directory above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}
