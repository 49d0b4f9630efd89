// History of a commit: its ancestors, read from the commit index when present, else from objects.
import type { Checksum } from '../common/hash.js';
import { commitVersion } from './objects/index.js';
import type { Repo } from './store.js';

export interface LogEntry {
  readonly checksum: Checksum;
  readonly parent: Checksum | null;
  readonly timestamp: number;
  readonly subject: string;
  readonly body: string;
  readonly version: string | null;
}

/**
 * Walks from `start` to the root or to the first ancestor not in the repository (`truncated`).
 * Commit objects are read for bodies; the index would do for one-line logs, objects stay the truth.
 */
export function logCommits(
  repo: Repo,
  start: Checksum,
  limit = Infinity,
): { entries: LogEntry[]; truncatedAt: Checksum | null } {
  const entries: LogEntry[] = [];
  let next: Checksum | null = start;
  while (next !== null && entries.length < limit) {
    // A missing ancestor is history left out on purpose (shallow pull); a missing start is damage (readCommit throws).
    if (next !== start && !repo.hasObject(next, 'commit')) return { entries, truncatedAt: next };
    const c = repo.readCommit(next);
    entries.push({
      checksum: next,
      parent: c.parent,
      timestamp: c.timestamp,
      subject: c.subject,
      body: c.body,
      version: commitVersion(c) ?? null,
    });
    next = c.parent;
  }
  return { entries, truncatedAt: null };
}
