// The compose module's public surface for cli/: the RPM reader, package repositories, import and
// compose. Tests import the internal files directly.
export { type ComposeResult, composeTree } from './compose.js';
export { diffPackages, listPackages, type PackageDiff, readPackageList } from './db.js';
export { importRpm, loadOwnerMap } from './import.js';
export { findPackageFiles, type LayerRemotes, type LayerResult, layerTree } from './layer.js';
export { emptyKeyring, readKeyring } from './openpgp.js';
export { assertRepomdSigned, verifyRepomdSignature } from './repodata/repomd-signature.js';
export {
  describeForJson,
  formatDump,
  formatInfo,
  listFile,
  type PayloadSummary,
  readPayload,
  readRpmHead,
  readRpmSignedParts,
  type RpmSignatureReport,
  assertRpmSignatureOk,
  verifyRpmSignature,
} from './rpm/index.js';
export { loadTreefile } from './treefile.js';
export { type EnabledRepos, readEnabledRepos, refreshMetadata } from './refresh-md.js';
export { DNF_MAIN_DEFAULTS, type DnfMain, parseDnfMain } from './yum/repo-file.js';
