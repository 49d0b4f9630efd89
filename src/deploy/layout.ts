// The layout every deployment keeps: /usr, /usr/etc and /etc, when present, are real directories.
// A link there would make the /etc merge read (and copy into the new deployment) the host's files
// or another deployment's, so it is refused on the commit before anything is written, and the
// directories are looked up with no link followed wherever an existing deployment is read.
import { ArborError } from '../common/errors.js';
import { type Checksum, type Repo, isRegular, isSymlink, lookupPath } from '../repo/index.js';
import { describeNonDirectory, realDirInRoot } from './in-root.js';

/** Paths of a deployment (relative to its root) that must be real directories when present. */
const LAYOUT_DIRS = ['usr', 'usr/etc', 'etc'] as const;
export type LayoutDir = (typeof LAYOUT_DIRS)[number];

function treeInvalid(owner: string, at: string, what: string): ArborError {
  return new ArborError(
    'E_DEPLOY_TREE_INVALID',
    `${owner}: ${at} is ${what}; /usr, /usr/etc and /etc must be real directories`,
    {
      hint: 'compose the tree with real directories there (a link would lead the /etc merge out of the deployment); nothing was written',
    },
  );
}

/**
 * E_DEPLOY_TREE_INVALID when /usr, /usr/etc or /etc of `commit` exists as anything but a
 * directory (a symlink is named with its target). Reads dirtrees and file headers only, so it runs
 * before the checkout.
 */
export function assertCommitLayout(repo: Repo, commit: Checksum): void {
  for (const path of LAYOUT_DIRS) {
    let entry;
    try {
      entry = lookupPath(repo, commit, path);
    } catch (error) {
      // Absent (or below a non-directory, which an earlier path of LAYOUT_DIRS already refused).
      if (error instanceof ArborError && error.code === 'E_PATH_NOT_FOUND') continue;
      throw error;
    }
    if (entry.kind === 'dir') continue;
    const header = repo.readFileHeader(entry.checksum);
    const what = isSymlink(header.mode)
      ? describeNonDirectory({ type: 'symlink', target: header.symlinkTarget })
      : describeNonDirectory({ type: isRegular(header.mode) ? 'file' : 'other' });
    throw treeInvalid(`commit ${commit}`, `/${path}`, what);
  }
}

/**
 * The host path of layout directory `rel` of the deployment at `root`, found without following any
 * link, or null when it does not exist; E_DEPLOY_TREE_INVALID (naming `owner`, the deployment) when
 * it or a parent is not a real directory.
 */
export function layoutDir(root: string, rel: LayoutDir, owner: string): string | null {
  const found = realDirInRoot(root, rel);
  if (found.kind === 'not-dir') throw treeInvalid(owner, found.at, found.what);
  return found.kind === 'dir' ? found.path : null;
}
