// Values of the RPM reader's types for unit tests that need a package's parts without a package.
import type { RpmFile } from '../../src/rpm-compose/rpm/package.js';

/** A regular root-owned file entry at `path`, every other field empty. */
export const rpmFile = (path: string): RpmFile => ({
  path,
  size: 0,
  mode: 0o100644,
  rdev: 0,
  mtime: 0,
  digest: '',
  linkTo: '',
  flags: 0,
  user: 'root',
  group: 'root',
  inode: 0,
  device: 0,
  caps: '',
  lang: '',
  verifyFlags: 0,
});
