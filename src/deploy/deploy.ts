// The operations on a sysroot's deployments: deploy (and its staged form), rollback, undeploy,
// pin, kargs, cleanup. Each holds the sysroot lock, decides with the pure functions of
// deployments.ts, makes new deployment directories under temporary names first, and changes the
// boot set only through writeDeployments (one atomic swap). A command killed at any moment
// leaves the previous boot set complete; its half-made leftovers are removed by the next one.
import { existsSync, lstatSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { ArborError, UsageError, errnoCode, inStep, ioError, present } from '../common/errors.js';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import { favourMemory } from '../common/v8-heap.js';
import { fsyncDir, writeFileAtomic } from '../common/fs-atomic.js';
import type { Checksum } from '../common/hash.js';
import { type Repo, checkoutCommit, pruneRepo, resolveRev, writeRefs } from '../repo/index.js';
import {
  type CommitPoint,
  type Deployment,
  type Downgrade,
  assertKargs,
  deploymentName,
  describeCommitPoint,
  nextSerial,
  planCleanup,
  planDeploy,
  planDowngrade,
  planUndeploy,
  sameDeployment,
} from './deployments.js';
import {
  type EtcConfigChange,
  type EtcConflict,
  type EtcTree,
  applyEtcMerge,
  diffEtcTrees,
  planEtcMerge,
  readEtcTree,
} from './etc-merge.js';
import { assertCommitLayout, layoutDir } from './layout.js';
import { type BootFiles, bootChecksum, findKernel, freeBytes, installKernel, kernelDirName } from './kernel.js';
import { type Origin, formatOrigin, hasLayering, parseRefspec } from './origin.js';
import { resyncEsp } from './esp.js';
import { resolveInRoot } from './in-root.js';
import { type PreflightReport, parseProcModules, preflightError, runPreflight } from './preflight.js';
import { DEFAULT_TRIAL_TRIES, abandonTrials, planFallback, planRollbackPastFailure, planTrialDeploy } from './trial.js';
import {
  mergeDeploymentOf,
  readBootState,
  readOrigin,
  removeUnreferenced,
  sysrootBootloader,
  writeDeployments,
} from './state.js';
import { ETC_CONFLICTS_FILE, STAGED_FILE, parseStateJson, readStateFile, stateFileInvalid } from './state-file.js';
import { type Sysroot, parseCmdline } from './sysroot.js';

/** Ref prefix that keeps deployed commits from being pruned. */
const DEPLOY_REF_PREFIX = 'arbor/deploy/';

export interface DeployOptions {
  readonly rev: string;
  readonly stateroot?: string;
  /** Replace the kernel arguments (default: the merge deployment's). */
  readonly kargs?: readonly string[];
  /** Take the kernel arguments from the running system's /proc/cmdline. */
  readonly kargsProcCmdline?: boolean;
  /** The origin's refspec (default: REV when it is a ref, else the merge deployment's). */
  readonly originRef?: string;
  /** Prepare the deployment now; make it the default at shutdown (`admin finalize-staged`). */
  readonly stage?: boolean;
  /** Keep every existing deployment. */
  readonly retain?: boolean;
  /**
   * Boot the new deployment on trial with this many tries (boot assessment; trial.ts); 0: not on
   * trial. Default: DEFAULT_TRIAL_TRIES when the new tree can bless itself (it ships
   * HEALTH_RUNNER) and there is a deployment to fall back to; else not on trial.
   */
  readonly trialTries?: number;
  /** Deploy a commit even though it failed a trial before. */
  readonly force?: boolean;
  /** Run the preflight on the prepared tree (default true; preflight.ts). */
  readonly preflight?: boolean;
  /** Let /etc merge conflicts through the preflight (the admin's versions are kept). */
  readonly acceptEtcConflicts?: boolean;
  /** Deploy a commit older than the current deployment's (recorded in its origin); else E_DEPLOY_DOWNGRADE. */
  readonly allowDowngrade?: boolean;
  /**
   * Makes the tree to deploy from the resolved commit (package layering): given the base, the
   * requesting deployment's extra origin groups and where the new deployment goes (its stateroot
   * and the merge deployment, whose /etc holds the host's configuration), returns the commit to
   * deploy and the groups its origin records. Without it the commit itself is deployed with no
   * extra groups.
   */
  readonly derive?: Derive;
}

/** See DeployOptions.derive. */
export type Derive = (
  base: Checksum,
  from: Origin['extra'],
  target: DeriveTarget,
) => Promise<{ readonly commit: Checksum; readonly extra: Origin['extra'] }>;

/** Where a derived deployment goes: its stateroot, and the deployment its /etc is merged from. */
export interface DeriveTarget {
  readonly stateroot: string;
  readonly merge: Deployment | null;
}

/** What blesses a trial at boot (data/health/arbor-health, run by arbor-health.service). */
const HEALTH_RUNNER = '/usr/lib/arbor/arbor-health';

export interface DeployResult {
  readonly deployment: Deployment;
  readonly staged: boolean;
  /** Files the admin changed in /etc that the new defaults changed too: the admin's version was kept. */
  readonly etcConflicts: readonly EtcConflict[];
  readonly removed: readonly Deployment[];
  readonly kernelCopied: boolean;
  /** The preflight's findings; null when it was not run (--no-preflight, finalization). */
  readonly preflight: PreflightReport | null;
  /** Tries the deployment boots on trial with; null when it is not on trial. */
  readonly trialTries: number | null;
  /** Why it is not on trial by default, or why its trial cannot end in a blessing. */
  readonly trialNote: string | null;
  /** Set when the commit is older than the current deployment's and --allow-downgrade let it through. */
  readonly downgrade: Downgrade | null;
}

interface Staged {
  readonly deployment: Deployment;
  readonly trialTries?: number;
  /** The deployment whose /etc it was merged from, to merge again at finalization. */
  readonly mergeFrom: { stateroot: string; checksum: Checksum; serial: number } | null;
  readonly retain: boolean;
}

function readStaged(sysroot: Sysroot): Staged | null {
  const path = sysroot.stagedPath;
  const text = readStateFile(path, STAGED_FILE);
  if (text === null) return null;
  const value = parseStateJson(text, path, STAGED_FILE) as Partial<Staged> | null;
  const d = value?.deployment;
  // Later steps take paths and boot entries from it: it must be what deploy --stage wrote.
  const isRef = (x: unknown): boolean => {
    const r = x as { stateroot?: unknown; checksum?: unknown; serial?: unknown } | null;
    return (
      typeof r?.stateroot === 'string' &&
      /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(r.stateroot) &&
      typeof r.checksum === 'string' &&
      /^[0-9a-f]{64}$/.test(r.checksum) &&
      Number.isSafeInteger(r.serial)
    );
  };
  const kargsOk = Array.isArray(d?.kargs) && d.kargs.every((k) => typeof k === 'string');
  if (
    !isRef(d) ||
    typeof d?.bootcsum !== 'string' ||
    !/^[0-9a-f]{64}$/.test(d.bootcsum) ||
    !kargsOk ||
    (value?.mergeFrom != null && !isRef(value.mergeFrom))
  ) {
    throw stateFileInvalid(STAGED_FILE, path, 'does not describe a deployment');
  }
  // JSON has no Map: the origin is the deployment's origin file, written when it was staged.
  return { ...(value as Staged), deployment: { ...(d as Deployment), origin: readOrigin(sysroot, d as Deployment) } };
}

/** Runs `fn` holding the sysroot lock, after removing what a killed command left half-made. */
function locked<T>(sysroot: Sysroot, fn: () => T): T {
  sysroot.lock();
  resyncEsp(sysroot); // before anything the ESP may still name is removed
  const state = readBootState(sysroot);
  const staged = readStaged(sysroot);
  removeUnreferenced(sysroot, state.deployments, staged ? [staged.deployment] : []);
  return fn();
}

function commitVersion(repo: Repo, checksum: Checksum): string | null {
  const v = repo.readCommit(checksum).metadata.get('version');
  return v?.type === 'string' ? v.value : null;
}

/** Makes the new deployment's directory (checkout, /etc, origin) under a temporary name, then renames it. */
async function prepareDeployment(
  sysroot: Sysroot,
  d: Deployment,
  merge: Deployment | null,
  check: (tmp: string, conflicts: readonly EtcConflict[]) => void = () => {},
): Promise<{ conflicts: EtcConflict[] }> {
  const final = sysroot.deploymentPath(d);
  const tmp = join(sysroot.deployDir(d.stateroot), `.tmp-${deploymentName(d)}`);
  rmSync(tmp, { recursive: true, force: true });
  // A bare-user repository (an image's sysroot built without root) keeps owners in an xattr:
  // its checkouts are user-mode ones, and the image builder applies the owners afterwards.
  const bareUser = sysroot.repo.mode === 'bare-user';
  await checkoutCommit(sysroot.repo, d.checksum, tmp, { mode: 'hardlink', userMode: bareUser, linkAsStored: bareUser });
  let conflicts: EtcConflict[] = [];
  try {
    // The commit's layout was checked (assertCommitLayout); these lookups follow no link either.
    const newDefaults = layoutDir(tmp, 'usr/etc', `deployment ${d.stateroot} ${deploymentName(d)}`);
    if (newDefaults !== null) {
      // A real directory (the layout check refuses anything else): the merge makes it anew.
      if (lstatSync(join(tmp, 'etc'), { throwIfNoEntry: false }))
        rmSync(join(tmp, 'etc'), { recursive: true, force: true });
      const mergeDir = merge ? sysroot.deploymentPath(merge) : null;
      const owner = merge ? `deployment ${merge.stateroot} ${deploymentName(merge)}` : '';
      const oldDefaultsDir = mergeDir ? layoutDir(mergeDir, 'usr/etc', owner) : null;
      const adminDir = mergeDir ? layoutDir(mergeDir, 'etc', owner) : null;
      const plan = planEtcMerge(treeOrEmpty(oldDefaultsDir), treeOrEmpty(adminDir), readEtcTree(newDefaults));
      applyEtcMerge(plan, { oldDefaultsDir, adminDir, newDefaultsDir: newDefaults }, join(tmp, 'etc'));
      conflicts = [...plan.conflicts];
    }
    check(tmp, conflicts);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  writeFileAtomic(sysroot.originPath(d), formatOrigin(d.origin));
  writeEtcConflicts(sysroot, d, conflicts);
  fsyncDir(tmp);
  renameSync(tmp, final);
  fsyncDir(sysroot.deployDir(d.stateroot));
  return { conflicts };
}

/** The /etc tree at `dir`, or an empty tree (no /etc at all) when `dir` is null. */
const treeOrEmpty = (dir: string | null): EtcTree => (dir === null ? new Map() : readEtcTree(dir));

function writeEtcConflicts(sysroot: Sysroot, d: Deployment, conflicts: readonly EtcConflict[]): void {
  const path = sysroot.etcConflictsPath(d);
  if (conflicts.length === 0) rmSync(path, { force: true });
  else
    writeFileAtomic(
      path,
      JSON.stringify(conflicts.map((c) => ({ path: c.path, admin: c.admin, defaults: c.defaults }))),
    );
}

/** The /etc merge conflicts recorded when the deployment was made (files where the admin's version was kept). */
export function readEtcConflicts(sysroot: Sysroot, d: Deployment): { path: string; admin: string; defaults: string }[] {
  const path = sysroot.etcConflictsPath(d);
  const text = readStateFile(path, ETC_CONFLICTS_FILE);
  if (text === null) return [];
  const value = parseStateJson(text, path, ETC_CONFLICTS_FILE);
  const isConflict = (c: unknown): boolean => {
    const x = c as { path?: unknown; admin?: unknown; defaults?: unknown } | null;
    return typeof x?.path === 'string' && typeof x.admin === 'string' && typeof x.defaults === 'string';
  };
  if (!Array.isArray(value) || !value.every(isConflict))
    throw stateFileInvalid(ETC_CONFLICTS_FILE, path, 'is not a list of conflicts');
  return (value as { path: string; admin: string; defaults: string }[]).map(({ path: p, admin, defaults }) => ({
    path: p,
    admin,
    defaults,
  }));
}

/**
 * The admin's changes in a deployment's /etc against its /usr/etc (`arbor admin config-diff`),
 * both looked up inside the deployment with no link followed (E_DEPLOY_TREE_INVALID otherwise);
 * a missing one is an empty tree.
 */
export function deploymentConfigDiff(sysroot: Sysroot, d: Deployment): EtcConfigChange[] {
  const root = sysroot.deploymentPath(d);
  const owner = `deployment ${d.stateroot} ${deploymentName(d)}`;
  const defaults = layoutDir(root, 'usr/etc', owner);
  const etc = layoutDir(root, 'etc', owner);
  return diffEtcTrees(treeOrEmpty(defaults), treeOrEmpty(etc));
}

/** Estimated bytes a new deployment needs in the sysroot: its /etc copy and one block per directory. */
function deploymentCost(repo: Repo, checksum: Checksum): number {
  const root = repo.readCommit(checksum);
  let dirs = 0;
  let etcBytes = 0;
  const walk = (tree: Checksum, inEtc: boolean, depth: number): void => {
    const t = repo.readDirTree(tree);
    dirs++;
    if (inEtc) for (const f of t.files) etcBytes += repo.readFileHeader(f.checksum).size;
    for (const d of t.dirs) walk(d.tree, inEtc || (depth === 1 && d.name === 'etc'), depth + 1);
  };
  // /usr/etc: depth 0 is /, depth 1 is /usr.
  const usr = repo.readDirTree(root.rootTree).dirs.find((d) => d.name === 'usr');
  dirs++;
  if (usr) walk(usr.tree, false, 1);
  for (const d of repo.readDirTree(root.rootTree).dirs) if (d.name !== 'usr') walk(d.tree, false, 2);
  return etcBytes + dirs * 4096;
}

const MARGIN = 16 * 1024 * 1024;

function checkSpace(sysroot: Sysroot, stateroot: string, boot: BootFiles, cost: number): void {
  const bootNeed = existsSync(join(sysroot.kernelsDir, kernelDirName(stateroot, boot.bootcsum)))
    ? 0
    : boot.vmlinuzBytes + boot.initramfsBytes + 64 * 1024;
  const bootFree = freeBytes(sysroot.bootDir);
  if (bootNeed > 0 && bootFree < bootNeed) {
    throw new ArborError(
      'E_NO_SPACE',
      `/boot has ${mib(bootFree)} free, the new kernel and initramfs need ${mib(bootNeed)}`,
      {
        hint: 'remove old deployments (`arbor cleanup --rollback`) or make /boot bigger',
      },
    );
  }
  const rootFree = freeBytes(sysroot.path);
  if (rootFree < cost + MARGIN) {
    throw new ArborError(
      'E_NO_SPACE',
      `the sysroot has ${mib(rootFree)} free, the new deployment needs about ${mib(cost + MARGIN)}`,
      {
        hint: 'free space or remove old deployments (`arbor cleanup --rollback`)',
      },
    );
  }
}

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

/**
 * Keeps the deployed commits alive for `prune`: one ref per deployment of DEPLOYMENTS, and (unless
 * `addOnly`) nothing else under the prefix. A switch adds before it writes the boot set and
 * removes after: a command killed between the two leaves a ref too many (the next full sync drops
 * it), never a listed deployment without one, whose objects a prune would take.
 *
 * A full sync ends by writing the refs it left to a stamp file; while the stamp names exactly the
 * refs wanted, the repository's index is not opened at all (a rollback, which only reorders, then
 * starts no SQLite). Any sync that changes refs removes the stamp first. `trustStamp: false` (for
 * `cleanup`) checks the index whatever the stamp says, which also puts back refs removed by hand.
 */
function syncDeployRefs(
  sysroot: Sysroot,
  deployments: readonly Deployment[],
  options: { addOnly?: boolean; trustStamp?: boolean } = {},
): void {
  const wanted = new Map(
    deployments.map((d) => [`${DEPLOY_REF_PREFIX}${d.stateroot}/${deploymentName(d)}`, d.checksum]),
  );
  const stamp = [...wanted]
    .map(([name, checksum]) => `${name} ${checksum}\n`)
    .sort()
    .join('');
  if (options.trustStamp !== false && readStamp(sysroot.deployRefsStampPath) === stamp) return;
  const repo = sysroot.repo;
  const updates: { name: string; checksum: Checksum | null }[] = [];
  if (options.addOnly !== true)
    for (const r of repo.db.listRefs()) {
      if (r.name.startsWith(DEPLOY_REF_PREFIX) && !wanted.has(r.name)) updates.push({ name: r.name, checksum: null });
    }
  for (const [name, checksum] of wanted) if (repo.db.getRef(name) !== checksum) updates.push({ name, checksum });
  if (updates.length > 0) {
    rmSync(sysroot.deployRefsStampPath, { force: true });
    writeRefs(repo, updates, Math.floor(Date.now() / 1000));
  }
  if (options.addOnly !== true) writeFileAtomic(sysroot.deployRefsStampPath, stamp);
}

/** The stamp's text, or null when there is none (or it cannot be read: then the index decides). */
function readStamp(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Writes the boot set, then removes what it no longer references. */
function switchTo(sysroot: Sysroot, list: readonly Deployment[]): number {
  const staged = readStaged(sysroot);
  const kept = [...list, ...(staged ? [staged.deployment] : [])];
  syncDeployRefs(sysroot, kept, { addOnly: true });
  const bootversion = writeDeployments(sysroot, list);
  syncDeployRefs(sysroot, kept);
  removeUnreferenced(sysroot, list, staged ? [staged.deployment] : []);
  return bootversion;
}

/** `arbor admin deploy` / `arbor deploy`: a commit becomes the new default deployment. */
export async function deploy(sysroot: Sysroot, options: DeployOptions): Promise<DeployResult> {
  // The checkout and the tree walks make garbage by the 100k: left to grow, the young generation
  // took 32 MiB of a deploy's peak on the bench trees, for no gain in time.
  favourMemory();
  sysroot.lock();
  resyncEsp(sysroot);
  const state = readBootState(sysroot);
  const prior = readStaged(sysroot);
  removeUnreferenced(sysroot, state.deployments, prior ? [prior.deployment] : []);
  const repo = sysroot.repo;
  const resolved = resolveRev(repo, options.rev);
  const stateroot = options.stateroot ?? state.booted?.stateroot ?? state.deployments[0]?.stateroot;
  if (stateroot === undefined)
    throw new UsageError('E_STATEROOT_REQUIRED', 'no deployment exists yet: name the stateroot with --stateroot');
  sysroot.assertStateroot(stateroot);
  if (options.kargs !== undefined && options.kargsProcCmdline)
    throw new UsageError('E_USAGE', '--karg and --karg-proc-cmdline cannot be combined');

  const merge = mergeDeploymentOf(state, stateroot);
  // Everything that can fail is checked before anything is written.
  // Layering requests come from the stateroot's default deployment (a pending one, when the machine
  // has not booted it yet), so successive installs add up, as rpm-ostree's transactions do.
  const requestsFrom = state.deployments.find((d) => d.stateroot === stateroot) ?? null;
  if (options.derive === undefined && requestsFrom !== null && hasLayering(requestsFrom.origin))
    throw new ArborError(
      'E_DEPLOY_LAYERED',
      `deployment ${requestsFrom.checksum.slice(0, 12)}.${requestsFrom.serial} has layered packages, which this deploy cannot re-apply`,
      {
        hint: 'run `arbor upgrade` (or `arbor deploy`), which re-applies them; or `arbor override reset --all` and `arbor uninstall` them first',
      },
    );
  const derived = options.derive
    ? await inStep('layering packages', () =>
        (options.derive as Derive)(resolved, requestsFrom?.origin.extra ?? new Map(), { stateroot, merge }),
      )
    : { commit: resolved, extra: new Map() };
  const checksum = derived.commit;
  assertCommitLayout(repo, checksum);
  if (options.originRef !== undefined) parseRefspec(options.originRef);
  const downgrade =
    merge === null
      ? null
      : planDowngrade(
          commitPoint(repo, merge.checksum),
          present(commitPoint(repo, checksum) ?? undefined, `commit ${checksum}`),
        );
  if (downgrade !== null && options.allowDowngrade !== true) throw downgradeError(downgrade);
  const kernel = findKernel(repo, checksum);
  const boot = bootChecksum(repo, kernel);
  checkSpace(sysroot, stateroot, boot, deploymentCost(repo, checksum));
  sysrootBootloader(sysroot); // E_BOOTLOADER_UNKNOWN now, not after the checkout

  let kargs: readonly string[] = options.kargs ?? merge?.kargs ?? [];
  if (options.kargsProcCmdline) {
    const file = process.env.ARBOR_CMDLINE_FILE ?? '/proc/cmdline';
    kargs = parseCmdline(readFileSync(file, 'utf8')).filter(
      (a) => !a.startsWith('arbor=') && !a.startsWith('BOOT_IMAGE=') && !a.startsWith('initrd='),
    );
  }
  // Each one must stay one argument in the entry's `options` line (inherited ones too: a hand-edited entry).
  assertKargs(kargs);
  // A ref given to deploy is what the new deployment follows; a commit id keeps what the merge deployment followed.
  const refspec =
    options.originRef ?? (repo.db.getRef(options.rev) !== undefined ? options.rev : (merge?.origin.refspec ?? null));
  const origin: Origin = { refspec, pinned: false, allowDowngrade: downgrade !== null, extra: derived.extra };
  const existing = readdirOrEmpty(sysroot.deployDir(stateroot));
  const deployment: Deployment = {
    stateroot,
    checksum,
    serial: nextSerial(
      existing.map((n) => n.replace(/^\.tmp-/, '')),
      checksum,
    ),
    bootcsum: boot.bootcsum,
    kargs,
    origin,
    version: commitVersion(repo, checksum),
  };

  const kernelCopied = installKernel(repo, sysroot.kernelsDir, stateroot, boot);
  let preflight: PreflightReport | null = null;
  let trial: { tries: number | undefined; note: string | null } = { tries: undefined, note: null };
  let conflicts: EtcConflict[];
  try {
    ({ conflicts } = await prepareDeployment(sysroot, deployment, merge, (root, found) => {
      trial = decideTrial(options.trialTries, root, state.deployments.length > 0);
      if (options.preflight === false) return;
      preflight = runPreflight({
        root,
        kver: kernel.kver,
        vmlinuzBytes: boot.vmlinuzBytes,
        initramfsBytes: boot.initramfsBytes,
        kargs,
        etcConflicts: found,
        acceptEtcConflicts: options.acceptEtcConflicts === true,
        running: state.booted === null ? null : runningSystem(sysroot.deploymentPath(state.booted)),
      });
      if (preflight.problems.length > 0) throw preflightError(`${stateroot} ${deploymentName(deployment)}`, preflight);
    }));
  } catch (error) {
    // The kernel copied for it is unreferenced now: remove it, as the next command would.
    removeUnreferenced(sysroot, state.deployments, prior ? [prior.deployment] : []);
    throw error;
  }
  const trialTries = trial.tries;
  const outcome = { preflight, trialTries: trialTries ?? null, trialNote: trial.note, downgrade };
  if (options.stage) {
    const staged: Staged = {
      deployment,
      mergeFrom: merge,
      retain: options.retain === true,
      ...(trialTries ? { trialTries } : {}),
    };
    syncDeployRefs(sysroot, [...state.deployments, deployment], { addOnly: true });
    writeFileAtomic(sysroot.stagedPath, JSON.stringify(staged));
    syncDeployRefs(sysroot, [...state.deployments, deployment]);
    return { deployment, staged: true, etcConflicts: conflicts, removed: [], kernelCopied, ...outcome };
  }
  const planned = plan(state.deployments, deployment, state.booted, options.retain === true, trialTries);
  if (prior) rmSync(sysroot.stagedPath, { force: true });
  switchTo(sysroot, planned.list);
  return { deployment, staged: false, etcConflicts: conflicts, removed: planned.removed, kernelCopied, ...outcome };
}

/** A commit's checksum, version and timestamp; null when the commit object is not here (nothing to compare). */
function commitPoint(repo: Repo, checksum: Checksum): CommitPoint | null {
  if (!repo.hasObject(checksum, 'commit')) return null;
  return { checksum, version: commitVersion(repo, checksum), timestamp: repo.readCommit(checksum).timestamp };
}

function downgradeError(d: Downgrade): ArborError {
  return new ArborError(
    'E_DEPLOY_DOWNGRADE',
    `commit ${d.to.checksum} is a downgrade: ${describeCommitPoint(d.to)} is older than the current deployment's ${describeCommitPoint(d.from)}`,
    {
      hint: 'pass --allow-downgrade to deploy it anyway (it is recorded in its origin); `arbor rollback` returns to a deployment that is still listed',
    },
  );
}

/**
 * Whether a new deployment boots on trial. Asked for (N ≥ 1): yes, with a note when nothing in the
 * tree will bless it. Not asked (undefined): DEFAULT_TRIAL_TRIES when the tree ships HEALTH_RUNNER
 * and an earlier deployment exists to fall back to; else not, with the reason. 0: not on trial.
 */
function decideTrial(
  requested: number | undefined,
  root: string,
  fallbackExists: boolean,
): { tries: number | undefined; note: string | null } {
  if (requested === 0) return { tries: undefined, note: null };
  const canBless = resolveInRoot(root, HEALTH_RUNNER).ok;
  if (requested !== undefined) {
    return {
      tries: requested,
      note: canBless
        ? null
        : `the new tree has no ${HEALTH_RUNNER}: nothing will bless the trial, so it falls back after ${requested} boot${requested === 1 ? '' : 's'} unless another tool blesses it`,
    };
  }
  if (!fallbackExists)
    return { tries: undefined, note: 'not on trial: there is no earlier deployment to fall back to' };
  if (!canBless) return { tries: undefined, note: `not on trial: the new tree has no ${HEALTH_RUNNER} to bless it` };
  return { tries: DEFAULT_TRIAL_TRIES, note: null };
}

/**
 * The running system, for the preflight's modules check: its kernel release and loaded modules.
 * ARBOR_KERNEL_RELEASE and ARBOR_PROC_MODULES stand in for `uname -r` and /proc/modules in
 * tests, as ARBOR_CMDLINE_FILE does for /proc/cmdline.
 */
function runningSystem(bootedRoot: string): { release: string; loadedModules: string[]; bootedRoot: string } {
  const file = process.env.ARBOR_PROC_MODULES ?? '/proc/modules';
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    // A kernel built without module support has no /proc/modules: nothing is loaded.
    if (errnoCode(error) !== 'ENOENT') throw ioError('read', file, error);
  }
  return { release: process.env.ARBOR_KERNEL_RELEASE ?? release(), loadedModules: parseProcModules(text), bootedRoot };
}

/**
 * `arbor admin finalize-staged` (at shutdown): merges /etc again from the merge deployment, so
 * changes made since staging carry over, and makes the staged deployment the default.
 */
export async function finalizeStaged(sysroot: Sysroot): Promise<DeployResult | null> {
  return locked(sysroot, async () => {
    const staged = readStaged(sysroot);
    if (staged === null) return null;
    const state = readBootState(sysroot);
    const { mergeFrom } = staged;
    const merge = mergeFrom ? (state.deployments.find((d) => sameDeployment(d, mergeFrom)) ?? null) : null;
    // Redo the deployment directory's /etc from the merge deployment's current /etc.
    const dir = sysroot.deploymentPath(staged.deployment);
    let conflicts: EtcConflict[] = [];
    // Every directory looked up with no link followed: neither tree may lead the merge outside itself.
    const newDefaults = layoutDir(
      dir,
      'usr/etc',
      `deployment ${staged.deployment.stateroot} ${deploymentName(staged.deployment)}`,
    );
    const mergeDir = merge ? sysroot.deploymentPath(merge) : null;
    const owner = merge ? `deployment ${merge.stateroot} ${deploymentName(merge)}` : '';
    const oldDefaults = mergeDir ? layoutDir(mergeDir, 'usr/etc', owner) : null;
    const admin = mergeDir ? layoutDir(mergeDir, 'etc', owner) : null;
    if (
      newDefaults !== null &&
      oldDefaults !== null &&
      admin !== null &&
      lstatSync(join(dir, 'etc'), { throwIfNoEntry: false })?.isDirectory()
    ) {
      const plan = planEtcMerge(readEtcTree(oldDefaults), readEtcTree(admin), readEtcTree(newDefaults));
      const fresh = join(dir, '.etc-finalize');
      rmSync(fresh, { recursive: true, force: true });
      applyEtcMerge(plan, { oldDefaultsDir: oldDefaults, adminDir: admin, newDefaultsDir: newDefaults }, fresh);
      const old = join(dir, '.etc-old');
      rmSync(old, { recursive: true, force: true });
      renameSync(join(dir, 'etc'), old);
      renameSync(fresh, join(dir, 'etc'));
      rmSync(old, { recursive: true, force: true });
      fsyncDir(dir);
      conflicts = [...plan.conflicts];
      writeEtcConflicts(sysroot, staged.deployment, conflicts);
    }
    const planned = plan(state.deployments, staged.deployment, state.booted, staged.retain, staged.trialTries);
    rmSync(sysroot.stagedPath, { force: true });
    switchTo(sysroot, planned.list);
    return {
      deployment: staged.deployment,
      staged: false,
      etcConflicts: conflicts,
      removed: planned.removed,
      kernelCopied: false,
      preflight: null,
      trialTries: staged.trialTries ?? null,
      trialNote: null,
      downgrade: null,
    };
  });
}

/**
 * The new list for a deployment: on trial (the last good deployment second, trial.ts) or plain.
 * A trial that failed while this machine fell back is first moved behind the good deployment.
 */
function plan(
  list: readonly Deployment[],
  added: Deployment,
  booted: Deployment | null,
  retain: boolean,
  trialTries: number | undefined,
): { list: Deployment[]; removed: Deployment[] } {
  const settled = planFallback(list, booted)?.list ?? list;
  if (!trialTries) return planDeploy(settled, added, booted, { retain });
  const bootedIndex = booted === null ? -1 : settled.findIndex((d) => sameDeployment(d, booted));
  return planTrialDeploy(
    settled,
    added,
    booted,
    trialTries,
    (d, i) => retain || d.origin.pinned || i === bootedIndex || i === 0 || d.stateroot !== added.stateroot,
  );
}

/** `arbor rollback`: reorders only (see planRollback); a trial in progress is abandoned, a failed one skipped. */
export function rollback(sysroot: Sysroot): { from: Deployment; to: Deployment } {
  return locked(sysroot, () => {
    const state = readBootState(sysroot);
    const planned = planRollbackPastFailure(state.deployments, state.booted);
    switchTo(sysroot, abandonTrials(planned.list));
    return { from: planned.from, to: planned.to };
  });
}

export function undeploy(sysroot: Sysroot, index: number): Deployment {
  return locked(sysroot, () => {
    const state = readBootState(sysroot);
    const planned = planUndeploy(state.deployments, index, state.booted);
    switchTo(sysroot, planned.list);
    return planned.removed;
  });
}

/** Pins (or unpins) a deployment: kept by every later deploy and cleanup. Boot set unchanged. */
export function pin(sysroot: Sysroot, index: number, unpin: boolean): Deployment {
  return locked(sysroot, () => {
    const state = readBootState(sysroot);
    const d = state.deployments[index];
    if (d === undefined)
      throw new UsageError(
        'E_DEPLOYMENT_INDEX',
        `there is no deployment ${index} (there are ${state.deployments.length})`,
      );
    const origin = readOrigin(sysroot, d);
    writeFileAtomic(sysroot.originPath(d), formatOrigin({ ...origin, pinned: !unpin }));
    return { ...d, origin: { ...origin, pinned: !unpin } };
  });
}

/** Replaces one deployment's kernel arguments (a new boot set; no checkout). */
export function setKargs(
  sysroot: Sysroot,
  index: number,
  edit: (kargs: readonly string[]) => string[],
): { before: readonly string[]; after: readonly string[] } {
  return locked(sysroot, () => {
    const state = readBootState(sysroot);
    const d = state.deployments[index];
    if (d === undefined)
      throw new UsageError(
        'E_DEPLOYMENT_INDEX',
        `there is no deployment ${index} (there are ${state.deployments.length})`,
      );
    const after = edit(d.kargs);
    if (after.join(' ') !== d.kargs.join(' ')) {
      switchTo(
        sysroot,
        state.deployments.map((x, i) => (i === index ? { ...x, kargs: after } : x)),
      );
    }
    return { before: d.kargs, after };
  });
}

export interface CleanupReport {
  readonly removed: readonly Deployment[];
  readonly pruned: { objects: number; bytes: number };
  readonly stagedDiscarded: boolean;
}

/** `arbor cleanup [--pending] [--rollback]`: drops those deployments, leftovers, and unreachable objects. */
export function cleanup(sysroot: Sysroot, options: { pending?: boolean; rollback?: boolean }): CleanupReport {
  return locked(sysroot, () => {
    const state = readBootState(sysroot);
    let stagedDiscarded = false;
    if (options.pending && existsSync(sysroot.stagedPath)) {
      rmSync(sysroot.stagedPath, { force: true });
      stagedDiscarded = true;
    }
    const planned = planCleanup(state.deployments, state.booted, options);
    if (planned.removed.length > 0) switchTo(sysroot, planned.list);
    else {
      const staged = readStaged(sysroot);
      syncDeployRefs(sysroot, [...state.deployments, ...(staged ? [staged.deployment] : [])], { trustStamp: false });
      removeUnreferenced(sysroot, state.deployments, staged ? [staged.deployment] : []);
    }
    const report = pruneRepo(sysroot.repo, { refsOnly: true, now: Math.floor(Date.now() / 1000) });
    return {
      removed: planned.removed,
      pruned: { objects: report.objectsDeleted, bytes: report.bytesFreed },
      stagedDiscarded,
    };
  });
}

export function readStagedDeployment(sysroot: Sysroot): Deployment | null {
  return readStaged(sysroot)?.deployment ?? null;
}
