// The --tmpdir check `compose tree` and `refresh-md` share: the directory must exist before any
// work starts, since a missing scratch directory would otherwise fail late.
import { statSync } from 'node:fs';
import { UsageError } from '../common/errors.js';

/** Throws E_USAGE unless `tmpDir` (when given) is an existing directory. */
export function assertTmpDir(tmpDir: string | undefined): void {
  if (tmpDir === undefined) return;
  let isDirectory = false;
  try {
    isDirectory = statSync(tmpDir).isDirectory();
  } catch {
    // missing or unreadable: refused below either way
  }
  if (!isDirectory)
    throw new UsageError('E_USAGE', `--tmpdir: '${tmpDir}' is not a directory`, {
      hint: 'create it first, or leave --tmpdir out to use the system temp dir',
    });
}
