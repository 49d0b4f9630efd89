// The compose module's public surface for cli/: the RPM reader, package repositories and import.
export * from './rpm/index.js';
export * from './repodata/index.js';
export { type ImportOptions, type ImportResult, type OwnerMap, importRpm, loadOwnerMap, pkgRefName } from './import.js';
export { type AssembleResult, type FileConflict, type PackageTree, assembleTree } from './assemble.js';
export { type PostprocessReport, STATE_LINKS, VAR_TMPFILES, postprocessTree } from './postprocess.js';
export { type InitramfsSpec, type Treefile, loadTreefile } from './treefile.js';
export { type RpmdbPackage, richNames, writeRpmdb } from './rpmdb.js';
export {
  type PackageChange,
  type PackageDiff,
  type PackageEntry,
  RPMDB_PATH,
  diffPackages,
  listPackages,
  readPackageList,
} from './db.js';
export { type Candidate, type Universe, formatNevra as formatCandidateNevra, loadUniverse } from './solve/universe.js';
export { type SolveRequest, type SolveResult, solve } from './solve/depsolve.js';
export {
  type ComposeOptions,
  type ComposeProgress,
  type ComposeResult,
  type ComposedPackage,
  composeTree,
  nextVersion,
  parseInstallSection,
} from './compose.js';
export {
  SANDBOX_PATH,
  SANDBOX_SCRIPT_PATH,
  type SandboxOptions,
  type SandboxStep,
  SandboxStepError,
  runInTree,
  sandboxProblem,
} from './sandbox.js';
export {
  type ComposePackage,
  type IgnoredScriptlet,
  type PlannedScriptlet,
  type PostprocessScripts,
  type ScriptletOptions,
  type ScriptletPlan,
  type ScriptletRef,
  type ScriptletReport,
  type ScriptletSlot,
  formatScriptletRef,
  planScriptlets,
  runPostprocessScripts,
  runScriptlets,
} from './scriptlets.js';
