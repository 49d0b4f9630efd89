// Bringing a commit from a local bare-user repository into the staged one by hardlinking its
// object files (copying them, xattr included, across filesystems): both repositories store objects
// the same way, and a pull would copy and re-hash every byte. The source is trusted as a local
// repository is by `ostree pull-local` and by hardlink checkouts; `arbor fsck` verifies it.
import { copyFileSync, linkSync } from 'node:fs';
import { errnoCode, ioError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { native } from '../common/native.js';
import { BARE_USER_XATTR, type Repo } from '../repo/index.js';

type Kind = 'commit' | 'commitmeta' | 'dirtree' | 'dirmeta' | 'file';

/** Whether importCommit can take objects from SOURCE into a repository in DESTMODE. */
export const canImportFrom = (source: Repo, destMode: string): boolean =>
  source.mode === 'bare-user' && destMode === 'bare-user';

/**
 * Links (or copies) every object of COMMIT from SOURCE into DEST and indexes the commit; the
 * caller sets the ref. Returns the number of objects. A missing object is E_OBJECT_MISSING, as a
 * pull of an incomplete source would say.
 */
export function importCommit(source: Repo, dest: Repo, commit: Checksum): number {
  const seen = new Set<string>();
  const take = (checksum: Checksum, kind: Kind, optional = false): void => {
    const key = `${checksum}.${kind}`;
    if (seen.has(key)) return;
    seen.add(key);
    const from = source.objectPath(checksum, kind);
    const to = dest.objectPath(checksum, kind);
    try {
      linkSync(from, to);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') return;
      if (code === 'ENOENT' && optional) return;
      if (code === 'ENOENT') {
        if (kind === 'commit') source.readCommit(checksum); // E_COMMIT_MISSING
        source.readFileHeader(checksum, from); // E_OBJECT_MISSING, with the checksum
      }
      // Another filesystem, or fs.protected_hardlinks and a source owned by someone else.
      if (code !== 'EXDEV' && code !== 'EPERM') throw ioError('link object into', to, error);
      try {
        copyFileSync(from, to);
        const meta = native.lgetxattrs(from).find(([name]) => name === BARE_USER_XATTR);
        if (meta !== undefined) native.setxattr(to, meta[0], meta[1]);
      } catch (copyError) {
        throw ioError('copy object into', to, copyError);
      }
    }
  };
  const walk = (tree: Checksum, meta: Checksum): void => {
    take(meta, 'dirmeta');
    take(tree, 'dirtree');
    const t = source.readDirTree(tree);
    for (const f of t.files) take(f.checksum, 'file');
    for (const d of t.dirs) walk(d.tree, d.meta);
  };
  const c = source.readCommit(commit);
  take(commit, 'commit');
  take(commit, 'commitmeta', true);
  walk(c.rootTree, c.rootMeta);
  dest.indexCommit(commit, c);
  return seen.size;
}
