// The base commit of a deployment's tree: package layering deploys a derived commit whose metadata
// names the composed commit it was made from, and upgrades compare that base with the origin's ref.
import type { Checksum } from '../common/hash.js';
import type { Repo } from '../repo/index.js';

/** The metadata key of a derived commit that names its base (written by rpm-compose's layerTree). */
const LAYER_BASE_META = 'arbor.layer.base';

/** The commit `checksum` was derived from by package layering, or `checksum` itself. */
export function baseCommitOf(repo: Repo, checksum: Checksum): Checksum {
  if (!repo.hasObject(checksum, 'commit')) return checksum;
  const base = repo.readCommit(checksum).metadata.get(LAYER_BASE_META);
  return base?.type === 'string' && /^[0-9a-f]{64}$/.test(base.value) ? (base.value as Checksum) : checksum;
}
