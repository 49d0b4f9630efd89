// Which objects a set of commits reaches: the mark phase shared by prune and fsck.
import type { Checksum } from '../common/hash.js';
import { ArborError } from '../common/errors.js';
import type { DirTreeFile, ObjectKind } from './objects/index.js';
import type { Repo } from './store.js';

/** "checksum.kind" keys of reachable objects. */
export type ObjectKey = `${string}.${ObjectKind}`;

export const objectKey = (checksum: Checksum, kind: ObjectKind): ObjectKey => `${checksum}.${kind}`;

export interface MissingObject {
  readonly checksum: Checksum;
  readonly kind: ObjectKind;
  /** Path inside the commit where the object is referenced ("/" for commit-level objects). */
  readonly path: string;
  readonly commit: Checksum;
  /** "missing", or why it could not be read. */
  readonly problem: string;
}

/**
 * Marks every object reachable from `commits` (and, with `parents`, their ancestors that are
 * present). Missing or unreadable objects are collected, not thrown, so fsck can list them all.
 */
export function markReachable(
  repo: Repo,
  commits: Iterable<Checksum>,
  options: { parents: boolean; onFile?: (file: DirTreeFile, path: string, commit: Checksum) => void },
): { reachable: Set<ObjectKey>; missing: MissingObject[] } {
  const reachable = new Set<ObjectKey>();
  const missing: MissingObject[] = [];
  const visitTree = (tree: Checksum, meta: Checksum, path: string, commit: Checksum): void => {
    if (!reachable.has(objectKey(meta, 'dirmeta'))) {
      reachable.add(objectKey(meta, 'dirmeta'));
      if (!repo.hasObject(meta, 'dirmeta'))
        missing.push({ checksum: meta, kind: 'dirmeta', path, commit, problem: 'missing' });
    }
    if (reachable.has(objectKey(tree, 'dirtree'))) return;
    reachable.add(objectKey(tree, 'dirtree'));
    let entries;
    try {
      entries = repo.readDirTree(tree);
    } catch (error) {
      if (!(error instanceof ArborError)) throw error;
      missing.push({ checksum: tree, kind: 'dirtree', path, commit, problem: error.message });
      return;
    }
    for (const f of entries.files) {
      // Every entry, not only the first to reach an object: each dirtree makes its own size claim.
      options.onFile?.(f, `${path === '/' ? '' : path}/${f.name}`, commit);
      const key = objectKey(f.checksum, 'file');
      if (reachable.has(key)) continue;
      reachable.add(key);
      if (!repo.hasObject(f.checksum, 'file'))
        missing.push({
          checksum: f.checksum,
          kind: 'file',
          path: `${path === '/' ? '' : path}/${f.name}`,
          commit,
          problem: 'missing',
        });
    }
    for (const d of entries.dirs) visitTree(d.tree, d.meta, `${path === '/' ? '' : path}/${d.name}`, commit);
  };
  const pending = [...commits];
  for (let checksum = pending.pop(); checksum !== undefined; checksum = pending.pop()) {
    const key = objectKey(checksum, 'commit');
    if (reachable.has(key)) continue;
    reachable.add(key);
    reachable.add(objectKey(checksum, 'commitmeta'));
    let commit;
    try {
      commit = repo.readCommit(checksum);
    } catch (error) {
      if (!(error instanceof ArborError)) throw error;
      missing.push({ checksum, kind: 'commit', path: '/', commit: checksum, problem: error.message });
      continue;
    }
    visitTree(commit.rootTree, commit.rootMeta, '/', checksum);
    // A parent that is absent is history left behind on purpose (shallow pull), not damage.
    if (options.parents && commit.parent && repo.hasObject(commit.parent, 'commit')) pending.push(commit.parent);
  }
  return { reachable, missing };
}
