// The rpm database phase: rpm's SQLite database of the composed packages put into the tree at
// /usr/share/rpm, with rpm's default path /var/lib/rpm linked to it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TreeEditor } from '../repo/index.js';
import type { RpmHead } from './rpm/read.js';
import { writeRpmdb } from './rpmdb.js';

/** Writes the database of `heads` (in install order) into the tree, built in a scratch dir under `tmpDir`. */
export function writeTreeRpmdb(
  edit: TreeEditor,
  heads: readonly Pick<RpmHead, 'header' | 'pkg'>[],
  tmpDir: string,
): void {
  const scratch = mkdtempSync(join(tmpDir, 'arbor-compose-'));
  try {
    // Install time: SOURCE_DATE_EPOCH, else the newest build time, so equal inputs give equal trees.
    const installTime = Number(process.env.SOURCE_DATE_EPOCH ?? Math.max(0, ...heads.map((h) => h.pkg.buildTime)));
    writeRpmdb(
      scratch,
      heads.map((h) => ({ header: h.header })),
      installTime,
    );
    edit.writeFile('/usr/share/rpm/rpmdb.sqlite', readFileSync(join(scratch, 'rpmdb.sqlite')), 0o644);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // The link rpm's default path (/var/lib/rpm) resolves through.
  if (!edit.get('/var/lib/rpm')) edit.symlink('/var/lib/rpm', '../../usr/share/rpm');
}
