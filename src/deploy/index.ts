// The deployment layer's public surface: what cli/ may use.

// /etc merge (etc-merge.ts, etc-tree.ts)
export {
  ETC_ROOT,
  applyEtcMerge,
  compareEtcEntries,
  compareEtcPaths,
  configDiff,
  describeEtcChange,
  diffEtcTrees,
  etcChild,
  etcParent,
  mergedEtcTree,
  planEtcMerge,
  readEtcTree,
  type EtcAction,
  type EtcApplyStats,
  type EtcAspect,
  type EtcChange,
  type EtcCompareOptions,
  type EtcConfigChange,
  type EtcConflict,
  type EtcEntry,
  type EtcEntryType,
  type EtcMergePlan,
  type EtcMergeSources,
  type EtcTree,
} from './etc-merge.js';

// Sysroot, deployments and the operations on them
export { Sysroot, initStateroot, initSysroot, parseCmdline } from './sysroot.js';
export {
  type Deployment,
  type Downgrade,
  type Role,
  deploymentName,
  describeCommitPoint,
  editKargs,
  planCleanup,
  planDeploy,
  planRollback,
  planUndeploy,
  rolesOf,
  sameDeployment,
} from './deployments.js';
export { type Origin, formatOrigin, parseOrigin, parseRefspec } from './origin.js';
export { type BootState, readBootState } from './state.js';
export {
  HEALTH_RUNNER,
  type CleanupReport,
  type DeployOptions,
  type DeployResult,
  cleanup,
  deploy,
  deploymentConfigDiff,
  finalizeStaged,
  pin,
  readEtcConflicts,
  readStagedDeployment,
  rollback,
  setKargs,
  undeploy,
} from './deploy.js';
export { type UpgradeOptions, type UpgradeResult, upgrade } from './upgrade.js';
export { type CommitKernel, findKernel } from './kernel.js';
export {
  DEFAULT_TRIAL_TRIES,
  type TrialFailure,
  bootChoice,
  countAttempt,
  planBless,
  planFallback,
  planHealthFailure,
  planTrialDeploy,
} from './trial.js';
export { currentTrialFailure, readTrialFailures } from './trial-state.js';
export {
  type PreflightCheck,
  type PreflightProblem,
  type PreflightReport,
  initPath,
  interpreterOf,
  missingModules,
  parseProcModules,
  readProvidedModules,
  runPreflight,
} from './preflight.js';
export { resolveInRoot } from './in-root.js';
