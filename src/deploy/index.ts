// The deployment layer's public surface: what cli/ uses. Tests import the internal files directly.
export {
  cleanup,
  deploy,
  deploymentConfigDiff,
  type DeployResult,
  type Derive,
  type DeriveTarget,
  finalizeStaged,
  pin,
  readEtcConflicts,
  readStagedDeployment,
  rollback,
  setKargs,
  undeploy,
} from './deploy.js';
export { type Deployment, describeCommitPoint, type Downgrade, editKargs, type Role, rolesOf } from './deployments.js';
export { type EtcConflict } from './etc-merge.js';
export { baseCommitOf } from './layer-base.js';
export { readFileInRoot, realDirInRoot, resolveInRoot } from './in-root.js';
export { findKernel } from './kernel.js';
export { mergeDeploymentOf, readBootState } from './state.js';
export { type Origin } from './origin.js';
export { initStateroot, initSysroot, Sysroot } from './sysroot.js';
export { currentTrialFailure, readTrialFailures } from './trial-state.js';
export { type TrialFailure } from './trial.js';
export { upgrade, type UpgradeOptions, type UpgradeResult } from './upgrade.js';
