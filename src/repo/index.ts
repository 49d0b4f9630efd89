// The object store's public surface: what deploy/, rpm-compose/ and cli/ use. Tests import the
// internal files directly.
export { type Checksum } from '../common/hash.js';
export { checkoutCommit, checkoutTree, lookupPath, type TreeEntry, updateCheckout } from './checkout.js';
export { commitTree, writeStreamedFile } from './commit.js';
export { isRepoMode, REPO_MODES } from './config.js';
export { applyDelta } from './delta-apply.js';
export { generateDelta } from './delta-generate.js';
export { diffCommits, summarizeDiff } from './diff.js';
export { createFetcher, DEFAULT_TRANSFER_LIMITS, type Fetcher, type TransferLimits } from './fetch.js';
export { fsckRepo } from './fsck.js';
export { headerFromDisk } from './object-writer.js';
export { logCommits } from './log.js';
export {
  type Commit,
  decodeCommitMeta,
  decodeFileHeader,
  decodeSummary,
  type DirMeta,
  type DirTree,
  encodeCommit,
  encodeDirMeta,
  encodeDirTree,
  encodeFileHeader,
  type FileHeader,
  fileType,
  invalidNameReason,
  isDevice,
  isRegular,
  isSymlink,
  type MetadataValue,
  S_IFDIR,
  S_IFSOCK,
  sortXattrs,
  type Summary,
  type Xattr,
} from './objects/index.js';
export { BARE_USER_XATTR } from './object-writer.js';
export { pruneRepo } from './prune.js';
export { fetchRemoteSummary, pullFromRemote, type PullProgress, type PullReport } from './pull.js';
export { assertRefName, invalidRefReason, resolveRev, writeRefs } from './refs.js';
export {
  addRemote,
  DEFAULT_MAX_METADATA_BYTES,
  deleteRemote,
  describeRemote,
  getRemote,
  listRemotes,
  type Remote,
  REMOTE_OPTION_KEYS,
  resetRemoteFreshness,
} from './remotes.js';
export {
  checkCommitSignatures,
  generateKeyPair,
  keyId,
  loadPublicKeys,
  loadSigningKey,
  signatureEntries,
  SIGNATURES_KEY,
  signCommitMeta,
  type SigningKey,
} from './sign.js';
export { Repo } from './store.js';
export {
  deleteDelta,
  findDelta,
  listDeltas,
  RELEASES_FILE,
  RELEASES_KEY,
  readReleasesFile,
  readSuperblock,
  updateSummary,
} from './summary.js';
export { Transaction } from './transaction.js';
export { DEFAULT_DIR_META, TreeEditor } from './tree-edit.js';
