// Verifying a repository: every stored object against its checksum, every ref's commit for
// completeness; with repair, corrupt objects are removed and the index rebuilt from objects/.
import { lstatSync, rmSync } from 'node:fs';
import { ArborError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { type DirTreeFile, decodeCommitMeta } from './objects/index.js';
import { type MissingObject, markReachable } from './reachability.js';
import type { ObjectKind } from './objects/index.js';
import type { Repo } from './store.js';
import { lockRepo } from './lock.js';
import { readFileSync } from 'node:fs';

interface CorruptObject {
  readonly checksum: Checksum;
  readonly kind: ObjectKind;
  readonly problem: string;
}

export interface FsckReport {
  readonly objectsChecked: number;
  readonly corrupt: CorruptObject[];
  /** Objects that refs reach but that are absent or unreadable, with the ref that reaches them. */
  readonly missing: (MissingObject & { ref: string })[];
  /** Corrupt objects removed by --repair. */
  readonly removed: number;
}

export interface FsckOptions {
  readonly repair?: boolean;
  readonly onProgress?: (checked: number) => void;
}

/** Checks the whole repository; clean when `corrupt` and `missing` are both empty. */
export function fsckRepo(repo: Repo, options: FsckOptions = {}): FsckReport {
  // Repair deletes objects: keep writers out meanwhile. A plain check only reads.
  const lock = options.repair ? lockRepo(repo.path, true) : undefined;
  try {
    const corrupt: CorruptObject[] = [];
    /** Content size of each file object that verified, to hold dirtrees' size claims against. */
    const sizes = new Map<Checksum, number>();
    let checked = 0;
    for (const { checksum, kind, path } of repo.listObjects()) {
      const problem = checkObject(repo, checksum, kind, path, sizes);
      if (problem) corrupt.push({ checksum, kind, problem });
      if (++checked % 1000 === 0) options.onProgress?.(checked);
    }
    const sizeReported = new Set<string>();
    const onFile = (file: DirTreeFile, path: string, commit: Checksum): void => {
      const size = sizes.get(file.checksum);
      if (size === undefined || size === file.size || sizeReported.has(file.checksum)) return;
      sizeReported.add(file.checksum);
      // A signed dirtree vouches for the size: an object that disagrees is not the one it names.
      corrupt.push({
        checksum: file.checksum,
        kind: 'file',
        problem: `holds ${size} content bytes, but '${path}' in commit ${commit} records ${file.size}`,
      });
    };
    // With repair, size claims are checked before removal so that it removes such objects too.
    if (options.repair)
      for (const { checksum } of repo.db.listRefs()) markReachable(repo, [checksum], { parents: false, onFile });
    let removed = 0;
    if (options.repair) {
      for (const c of corrupt) {
        rmSync(repo.objectPath(c.checksum, c.kind), { force: true });
        removed++;
      }
      rebuildIndex(repo);
    }
    const missing: (MissingObject & { ref: string })[] = [];
    const corruptKeys = new Set(corrupt.map((c) => `${c.checksum}.${c.kind}`));
    for (const { name, checksum } of repo.db.listRefs()) {
      const found = markReachable(repo, [checksum], { parents: false, ...(!options.repair && { onFile }) }).missing;
      // A ref deleted or moved while we walked it may have let a concurrent prune take its objects.
      if (found.length > 0 && !options.repair && repo.db.getRef(name) !== checksum) continue;
      for (const m of found) {
        if (!options.repair && corruptKeys.has(`${m.checksum}.${m.kind}`)) continue; // already reported as corrupt
        missing.push({ ...m, ref: name });
      }
    }
    return { objectsChecked: checked, corrupt, missing, removed };
  } finally {
    lock?.release();
  }
}

function checkObject(
  repo: Repo,
  checksum: Checksum,
  kind: ObjectKind,
  path: string,
  sizes: Map<Checksum, number>,
): string | undefined {
  try {
    switch (kind) {
      case 'file': {
        const actual = repo.computeFileChecksum(checksum);
        if (actual !== checksum) return `content hashes to ${actual}`;
        sizes.set(checksum, repo.readFileHeader(checksum).size);
        return undefined;
      }
      case 'commitmeta':
        decodeCommitMeta(readFileSync(path), `commitmeta of ${checksum}`);
        return undefined;
      case 'dirtree':
        repo.readDirTree(checksum);
        return undefined;
      case 'dirmeta':
        repo.readDirMeta(checksum);
        return undefined;
      case 'commit':
        repo.readCommit(checksum);
        return undefined;
    }
  } catch (error) {
    // Gone since listObjects saw it: a concurrent prune removed it (a plain fsck takes no lock).
    // Checked before ArborError, which is what a vanished dirtree, dirmeta or commit throws.
    if (lstatSync(path, { throwIfNoEntry: false }) === undefined) return undefined;
    return (error as Error).message;
  }
}

/** Rebuilds the commit index from commit objects and drops the devino cache (it refills on commit). */
function rebuildIndex(repo: Repo): void {
  repo.db.clearCaches();
  for (const { checksum, kind } of repo.listObjects()) {
    if (kind !== 'commit') continue;
    try {
      repo.indexCommit(checksum, repo.readCommit(checksum));
    } catch (error) {
      if (!(error instanceof ArborError)) throw error;
    }
  }
}
