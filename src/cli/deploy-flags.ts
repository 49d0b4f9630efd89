// The flags `deploy`, `upgrade` and `rebase` share, each defined once, and how they become the
// deploy layer's options. Factories, not a base class: each command keeps its own flag order in --help.
import { Option } from 'clipanion';
import { UsageError } from '../common/errors.js';
import type { Derive, Sysroot } from '../deploy/index.js';
import { renderLayerWarnings } from './render/layer.js';

const STAGE_HELP = 'Make it the default at shutdown (arbor-finalize-staged.service)';

/** One option per shared flag; `description` overrides the wording where a command words it its own way. */
export const deployFlag = {
  stage: (description = STAGE_HELP) => Option.Boolean('--stage', false, { description }),
  trialTries: () =>
    Option.String('--trial-tries', {
      description: 'Boot it on trial with N tries (0: not on trial; default 3 when the tree ships arbor-health)',
    }),
  acceptEtcConflicts: () =>
    Option.Boolean('--accept-etc-conflicts', false, {
      description: 'Deploy even when the /etc merge has conflicts (your versions are kept)',
    }),
  preflight: () =>
    Option.Boolean('--preflight', true, {
      description: 'Check the new tree before it becomes the default (--no-preflight: skip)',
    }),
  allowDowngrade: () =>
    Option.Boolean('--allow-downgrade', false, {
      description: "Deploy a commit older than the current deployment's (recorded in its origin)",
    }),
  force: () =>
    Option.Boolean('--force', false, { description: 'Deploy even a commit that failed a trial here before' }),
  reboot: () => Option.Boolean('--reboot', false, { description: 'Reboot into the new deployment' }),
  json: (description = 'Print JSON') => Option.Boolean('--json', false, { description }),
  repoDir: () =>
    Option.Array('--repo-dir', {
      description:
        "Local repository (yum metadata or a directory of packages) layered names resolve in, besides /etc/yum.repos.d's (repeatable)",
    }),
};

/** The shared flags' values, as a command holds them. */
export interface DeployFlags {
  readonly stage: boolean;
  readonly trialTries: string | undefined;
  readonly acceptEtcConflicts: boolean;
  readonly preflight: boolean;
  readonly allowDowngrade: boolean;
  readonly repoDir?: string[] | undefined;
}

/** What deploy() and upgrade() take from the shared flags. */
export interface DeployFlagOptions {
  readonly stage: boolean;
  readonly trialTries?: number;
  readonly acceptEtcConflicts: boolean;
  readonly preflight: boolean;
  readonly allowDowngrade: boolean;
  readonly derive: Derive;
}

/**
 * The shared flags as deploy options; trial tries fall back to the sysroot's setting. `warn` gets
 * what re-applying layered packages reports (a replacement the base caught up with...).
 */
export function deployOptionsOf(
  flags: DeployFlags,
  sysroot: Sysroot,
  warn: (text: string) => void = () => undefined,
): DeployFlagOptions {
  const trialTries = trialTriesOf(sysroot, flags.trialTries);
  return {
    stage: flags.stage,
    ...(trialTries !== undefined ? { trialTries } : {}),
    acceptEtcConflicts: flags.acceptEtcConflicts,
    preflight: flags.preflight,
    allowDowngrade: flags.allowDowngrade,
    derive: reapplyLayering(sysroot, flags.repoDir ?? [], warn),
  };
}

/**
 * The deploy step that re-applies the merge deployment's layered packages onto the new commit.
 * The layering module (and the compose stack under it) loads only when a deployment is made.
 */
function reapplyLayering(sysroot: Sysroot, repoDirs: readonly string[], warn: (text: string) => void): Derive {
  return async (base, from, target) => {
    const { deriveWith } = await import('../layering/index.js');
    return deriveWith(sysroot, { repoDirs, onResult: (r) => warn(renderLayerWarnings(r)) })(base, from, target);
  };
}

/**
 * Trial tries for a new deployment: the flag, else the sysroot's `[sysroot] trial-tries` setting
 * (in arbor/repo/config), else undefined (deploy's default: DEFAULT_TRIAL_TRIES when the tree
 * can bless itself). 0 turns trials off.
 */
function trialTriesOf(sysroot: Sysroot, flag: string | undefined): number | undefined {
  const text = flag ?? sysroot.repo.config.get('sysroot')?.get('trial-tries');
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError('E_USAGE', `trial tries must be a whole number, got '${text}'`);
  return Number(text);
}
