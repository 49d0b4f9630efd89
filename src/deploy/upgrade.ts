// `arbor upgrade` and `arbor rebase`: pull the origin's ref and deploy it. `--check` and
// `--preview` look without deploying: the summary says whether there is a newer commit and a dry-run
// pull how much it would fetch; `--preview` stores the new commit object, for callers to compare.
import { ArborError, UsageError } from '../common/errors.js';
import { collectGarbage } from '../common/v8-heap.js';
import type { Checksum } from '../common/hash.js';
import { type PullProgress, type Repo, fetchRemoteSummary, getRemote, pullFromRemote } from '../repo/index.js';
import { type DeployResult, type Derive, deploy } from './deploy.js';
import { baseCommitOf } from './layer-base.js';
import { type CommitPoint, type Deployment, type Downgrade, planDowngrade } from './deployments.js';
import { parseRefspec } from './origin.js';
import { readBootState } from './state.js';
import { failedBefore } from './trial.js';
import { currentTrialFailure, readTrialFailures } from './trial-state.js';
import type { Sysroot } from './sysroot.js';

export interface UpgradeResult {
  readonly refspec: string;
  readonly from: Deployment;
  /** The newest commit of the origin's ref; null when --check could not learn it. With --preview its commit object is stored. */
  readonly available: Checksum | null;
  readonly version: string | null;
  /** True when `available` differs from the deployed commit. */
  readonly newer: boolean;
  /** --check: bytes a pull would fetch. */
  readonly downloadBytes: number | null;
  /** `available` is older than the deployed commit (known when both timestamps are: the summary gives the new one). */
  readonly downgrade: Downgrade | null;
  readonly deployed: DeployResult | null;
}

export interface UpgradeOptions {
  readonly check?: boolean;
  readonly preview?: boolean;
  /** Rebase: switch the origin to this refspec. */
  readonly refspec?: string;
  readonly onProgress?: (p: PullProgress) => void;
  /** Boot the new deployment on trial with this many tries; 0: not on trial; default: deploy's rule. */
  readonly trialTries?: number;
  /** Stage the new deployment: it becomes the default at shutdown (arbor-finalize-staged.service). */
  readonly stage?: boolean;
  /** Run the preflight on the new tree (default true). */
  readonly preflight?: boolean;
  /** Let /etc merge conflicts through the preflight. */
  readonly acceptEtcConflicts?: boolean;
  /** Deploy even a commit that failed a trial on this machine before. */
  readonly force?: boolean;
  /** Deploy even a commit older than the deployed one (E_DEPLOY_DOWNGRADE otherwise). */
  readonly allowDowngrade?: boolean;
  /** This commit of the origin's remote (a release the release graph chose) instead of the ref's newest. */
  readonly commit?: Checksum;
  /** Re-applies the deployment's layered packages onto the new commit (DeployOptions.derive). */
  readonly derive?: Derive;
}

export async function upgrade(sysroot: Sysroot, options: UpgradeOptions = {}): Promise<UpgradeResult> {
  const state = readBootState(sysroot);
  const from = state.booted ?? state.deployments[0];
  if (from === undefined)
    throw new UsageError('E_DEPLOYMENT_NONE', 'there is no deployment to upgrade', {
      hint: 'deploy one first with `arbor admin deploy`',
    });
  const refspec = options.refspec ?? from.origin.refspec;
  if (refspec === null) {
    throw new UsageError(
      'E_ORIGIN_NONE',
      `deployment ${from.checksum.slice(0, 12)} has no origin ref to upgrade from`,
      { hint: 'use `arbor rebase REMOTE:REF` to set one' },
    );
  }
  const { remote: remoteName, ref } = parseRefspec(refspec);
  const repo = sysroot.repo;
  // A layered deployment runs a commit derived from its base: the base is what the ref moves past.
  const fromBase = baseCommitOf(repo, from.checksum);
  let available: Checksum | null = null;
  let downloadBytes: number | null = null;
  let version: string | null = null;
  /** The available commit's time when only the summary was read (--check). */
  let summaryTimestamp: number | null = null;

  if (remoteName === null) {
    available = repo.db.getRef(ref) ?? null;
    if (available === null)
      throw new ArborError('E_REF_NOT_FOUND', `the origin ref '${ref}' does not exist in the sysroot's repository`);
  } else {
    const remote = getRemote(repo, remoteName);
    if (options.commit !== undefined) {
      available = options.commit;
      // Pulled by checksum: no ref moves; a look fetches only the commit object.
      if (!options.check || options.preview)
        await pullFromRemote(repo, remote, {
          refs: [options.commit],
          refPrefix: `${remoteName}:`,
          commitMetadataOnly: options.preview === true,
          allowDowngrade: true,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
    } else if (options.check && !options.preview) {
      const summary = await fetchRemoteSummary(repo, remote);
      const entry = summary.refs.find((r) => r.name === ref);
      if (!entry) throw new ArborError('E_REF_NOT_FOUND', `remote '${remoteName}' has no ref '${ref}'`);
      available = entry.checksum;
      version = entry.version || null;
      summaryTimestamp = entry.timestamp;
      if (available !== fromBase) {
        // A look moves no ref: an older commit is reported below as a downgrade, not refused here.
        const dry = await pullFromRemote(repo, remote, {
          refs: [ref],
          refPrefix: `${remoteName}:`,
          dryRun: true,
          allowDowngrade: true,
        });
        downloadBytes = dry.wouldFetch?.bytes ?? null;
      }
    } else {
      const report = await pullFromRemote(repo, remote, {
        refs: [ref],
        refPrefix: `${remoteName}:`,
        commitMetadataOnly: options.check === true || options.preview === true,
        // A metadata-only look moves no ref; a real upgrade moves it back only when asked to.
        allowDowngrade: options.check === true || options.preview === true || options.allowDowngrade === true,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      available = report.refs[0]?.commit ?? null;
    }
  }
  if (available !== null && version === null && repo.hasObject(available, 'commit')) {
    const v = repo.readCommit(available).metadata.get('version');
    version = v?.type === 'string' ? v.value : null;
  }
  const newer = available !== null && available !== fromBase;
  const next = available === null ? null : commitPointOf(repo, available, version, summaryTimestamp);
  const downgrade = next === null ? null : planDowngrade(commitPointOf(repo, fromBase, from.version, null), next);
  let deployed: DeployResult | null = null;
  if (!options.check && !options.preview && available !== null && (newer || options.refspec !== undefined)) {
    const failures = [...readTrialFailures(sysroot, from.stateroot)];
    const now = currentTrialFailure(sysroot, state.deployments, state.booted, Math.floor(Date.now() / 1000));
    if (now) failures.push(now);
    const failed = failedBefore(failures, available);
    if (failed && !options.force) {
      throw new ArborError(
        'E_UPGRADE_FAILED_BEFORE',
        `commit ${available} failed a trial boot on this machine (${failed.reason === 'health-check' ? `health check ${failed.check ?? '?'}` : `${failed.triesUsed} tries ran out`}); not deploying it again`,
        {
          hint: 'wait for a newer commit, or pass --force to try it again',
        },
      );
    }
    // The pull's garbage (a delta's buffers, the walk of its tree) would otherwise stay in the heap
    // while the deploy makes its own: 40 MiB of the upgrade's peak on the bench trees.
    collectGarbage();
    deployed = await deploy(sysroot, {
      rev: available,
      stateroot: from.stateroot,
      originRef: refspec,
      ...(options.trialTries !== undefined ? { trialTries: options.trialTries } : {}),
      ...(options.preflight !== undefined ? { preflight: options.preflight } : {}),
      ...(options.stage !== undefined ? { stage: options.stage } : {}),
      ...(options.acceptEtcConflicts !== undefined ? { acceptEtcConflicts: options.acceptEtcConflicts } : {}),
      ...(options.allowDowngrade !== undefined ? { allowDowngrade: options.allowDowngrade } : {}),
      ...(options.derive !== undefined ? { derive: options.derive } : {}),
    });
  }
  return {
    refspec,
    from,
    available,
    version,
    newer,
    downloadBytes,
    downgrade: deployed?.downgrade ?? downgrade,
    deployed,
  };
}

/** A commit's point in time: from its object when stored, else from the summary (`timestamp`); null when neither is known. */
function commitPointOf(
  repo: Repo,
  checksum: Checksum,
  version: string | null,
  timestamp: number | null,
): CommitPoint | null {
  if (repo.hasObject(checksum, 'commit')) return { checksum, version, timestamp: repo.readCommit(checksum).timestamp };
  return timestamp === null ? null : { checksum, version, timestamp };
}
