// The release graph on the compose server: REPO/releases.json, edited by `arbor release` and by the fleet
// server's failure budget, and published by writing the summary again (signed) — it travels inside it.
import { ArborError } from '../common/errors.js';
import { writeFileAtomic } from '../common/fs-atomic.js';
import { RELEASES_FILE, type Repo, type SigningKey, readReleasesFile, updateSummary } from '../repo/index.js';
import { type ReleaseGraph, decodeReleaseGraph, encodeReleaseGraph } from './releases.js';
import { join } from 'node:path';

/** The repository's release graph (empty when it has none yet). */
export function loadReleaseGraph(repo: Repo): ReleaseGraph {
  const text = readReleasesFile(repo);
  if (text === null) return { releases: [] };
  const parsed = decodeReleaseGraph(text);
  if ('error' in parsed)
    throw new ArborError(
      'E_RELEASES_INVALID',
      `'${join(repo.path, RELEASES_FILE)}' is not a release graph: ${parsed.error}`,
    );
  return parsed.graph;
}

/** Writes the graph and, with keys, publishes it: the summary is written again and signed. */
export function saveReleaseGraph(
  repo: Repo,
  graph: ReleaseGraph,
  publish: { readonly keys: readonly SigningKey[]; readonly expiresInSeconds?: number } | null,
): void {
  writeFileAtomic(join(repo.path, RELEASES_FILE), encodeReleaseGraph(graph));
  if (publish !== null)
    updateSummary(
      repo,
      publish.keys,
      publish.expiresInSeconds !== undefined ? { expiresInSeconds: publish.expiresInSeconds } : {},
    );
}
