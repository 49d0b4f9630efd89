// The object store's public surface: what deploy/, rpm-compose/ and cli/ may use.
export {
  checkoutCommit,
  checkoutTree,
  updateCheckout,
  lookupPath,
  type CheckoutMode,
  type CheckoutOptions,
  type CheckoutStats,
  type TreeEntry,
} from './checkout.js';
export { commitTree, writeStreamedFile, type CommitOptions, type CommitResult, type CommitStats } from './commit.js';
export { REPO_FORMAT_VERSION, REPO_MODES, isRepoMode, type RepoMode } from './config.js';
export { diffCommits, summarizeDiff, type DiffEntry } from './diff.js';
export { fsckRepo, rebuildIndex, type FsckReport } from './fsck.js';
export { logCommits, type LogEntry } from './log.js';
export * from './objects/index.js';
export { pruneRepo, type PruneReport } from './prune.js';
export { assertRefName, invalidRefReason, resolveRev, writeRefs } from './refs.js';
export { Repo, Transaction, BARE_USER_XATTR } from './store.js';
export type { Checksum } from '../common/hash.js';
export { generateDelta, deltaDirName, type GenerateReport } from './delta-generate.js';
export { applyDelta, type DeltaApplied } from './delta-apply.js';
export {
  fetchRemoteSummary,
  pullFromRemote,
  type PullOptions,
  type PullProgress,
  type PullReport,
  type PulledRef,
} from './pull.js';
export {
  REMOTE_OPTION_KEYS,
  addRemote,
  deleteRemote,
  describeRemote,
  getRemote,
  listRemotes,
  resetRemoteFreshness,
  type Remote,
} from './remotes.js';
export {
  SIGNATURES_KEY,
  checkCommitSignatures,
  generateKeyPair,
  keyId,
  loadPublicKeys,
  loadSigningKey,
  requireTrustedSignature,
  signCommitMeta,
  signatureEntries,
  type SigningKey,
} from './sign.js';
export { deleteDelta, findDelta, listDeltas, readSuperblock, updateSummary, type DeltaEntry } from './summary.js';
export { DEFAULT_DIR_META, TreeEditor, type TreeEntry as EditEntry } from './tree-edit.js';
