// Deleting unreachable objects. Holds the exclusive repository lock across mark and sweep, so a
// commit or pull (which hold it shared until their ref moves) cannot publish meanwhile.
import { lstatSync, rmSync } from 'node:fs';
import type { Checksum } from '../common/hash.js';
import { lockRepo } from './lock.js';
import { objectKey, markReachable } from './reachability.js';
import type { Repo } from './store.js';

export interface PruneOptions {
  /** Keep only what refs reach (and young commits); otherwise every commit is a root. */
  readonly refsOnly?: boolean;
  /** With refsOnly: also keep commits newer than this many seconds. */
  readonly keepYoungerThanSeconds?: number;
  readonly dryRun?: boolean;
  /** Seconds since the epoch (passed in: prune logic reads no clock). */
  readonly now: number;
}

export interface PruneReport {
  readonly objectsTotal: number;
  readonly objectsDeleted: number;
  readonly bytesFreed: number;
  readonly commitsDeleted: number;
}

export function pruneRepo(repo: Repo, options: PruneOptions): PruneReport {
  const lock = lockRepo(repo.path, true);
  try {
    const roots = new Set<Checksum>(repo.db.listRefs().map((r) => r.checksum));
    const objects = [...repo.listObjects()];
    for (const o of objects) {
      if (o.kind !== 'commit') continue;
      if (!options.refsOnly) roots.add(o.checksum);
      else if (options.keepYoungerThanSeconds !== undefined) {
        const row = repo.db.getCommit(o.checksum) ?? { timestamp: repo.readCommit(o.checksum).timestamp };
        if (row.timestamp > options.now - options.keepYoungerThanSeconds) roots.add(o.checksum);
      }
    }
    const { reachable } = markReachable(repo, roots, { parents: true });
    let objectsDeleted = 0;
    let bytesFreed = 0;
    const deletedCommits: Checksum[] = [];
    const deletedFiles = new Set<Checksum>();
    // Commits first: a prune killed part-way must not leave a commit whose tree it already
    // deleted, as `refs --create` or `reset` could later point a ref at that incomplete commit.
    const unreachable = objects.filter((o) => !reachable.has(objectKey(o.checksum, o.kind)));
    unreachable.sort((a, b) => Number(b.kind === 'commit') - Number(a.kind === 'commit'));
    for (const o of unreachable) {
      const st = lstatSync(o.path, { throwIfNoEntry: false });
      if (!st) continue;
      objectsDeleted++;
      // A hardlinked checkout keeps the inode alive: only the last link frees the blocks.
      if (st.nlink <= 1) bytesFreed += st.size;
      if (o.kind === 'commit') deletedCommits.push(o.checksum);
      if (o.kind === 'file') deletedFiles.add(o.checksum);
      if (!options.dryRun) rmSync(o.path, { force: true });
    }
    if (!options.dryRun) {
      repo.db.deleteCommits(deletedCommits);
      repo.db.forgetDevinos(deletedFiles);
    }
    return { objectsTotal: objects.length, objectsDeleted, bytesFreed, commitsDeleted: deletedCommits.length };
  } finally {
    lock.release();
  }
}
