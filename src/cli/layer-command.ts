// The base of the layering commands (`install`, `uninstall`, `override ...`): each edits the
// requests in the current deployment's origin and deploys the derived tree like `deploy` does, or
// with --dry-run prints the transaction.
import { Option } from 'clipanion';
import { UsageError, present } from '../common/errors.js';
import {
  type Deployment,
  type DeriveTarget,
  type Sysroot,
  baseCommitOf,
  deploy,
  mergeDeploymentOf,
  readBootState,
} from '../deploy/index.js';
import { type LayerRequests, deriveWith, parseLayerRequests, planLayer } from '../layering/index.js';
import type { LayerResult } from '../rpm-compose/index.js';
import { deployFlag, deployOptionsOf } from './deploy-flags.js';
import { renderDeploy } from './render/deploy.js';
import { renderLayer } from './render/layer.js';
import { SysrootCommand } from './sysroot-command.js';

export abstract class LayerCommand extends SysrootCommand {
  os = Option.String('--os', { description: 'Stateroot (default: the booted or current one)' });
  repoDir = deployFlag.repoDir();
  dryRun = Option.Boolean('--dry-run', false, { description: 'Print the transaction; deploy nothing' });
  stage = deployFlag.stage();
  trialTries = deployFlag.trialTries();
  acceptEtcConflicts = deployFlag.acceptEtcConflicts();
  preflight = deployFlag.preflight();
  allowDowngrade = deployFlag.allowDowngrade();
  json = deployFlag.json('Print the transaction (and the deploy) as JSON');

  /** The new requests from the current ones (package files are kept in the package directory first). */
  protected abstract edit(current: LayerRequests, sysroot: Sysroot, target: DeriveTarget): Promise<LayerRequests>;

  protected async runWith(sysroot: Sysroot): Promise<number> {
    const { from, merge } = currentDeployment(sysroot, this.os);
    const current = parseLayerRequests(from.origin.extra, `${from.checksum}.${from.serial}.origin`);
    const target = { stateroot: from.stateroot, merge };
    const requests = await this.edit(current, sysroot, target);
    const base = baseCommitOf(sysroot.repo, from.checksum);
    const repoDirs = this.repoDir ?? [];
    if (this.dryRun) {
      const plan = await planLayer(sysroot, base, requests, repoDirs, target);
      if (this.json) this.printJson({ base, dryRun: true, ...transaction(plan) });
      else this.emit(renderLayer(plan, true));
      return 0;
    }
    let layered: LayerResult | undefined;
    const result = await deploy(sysroot, {
      rev: base,
      stateroot: from.stateroot,
      ...deployOptionsOf(this, sysroot),
      derive: deriveWith(sysroot, { repoDirs, requests, onResult: (r) => void (layered = r) }),
    });
    const done = present(layered as LayerResult | undefined, 'the layering report');
    if (this.json) this.printJson({ base, dryRun: false, ...transaction(done), deploy: result });
    else {
      this.emit(renderLayer(done, false));
      this.emit(renderDeploy(result));
    }
    return 0;
  }
}

const transaction = (r: LayerResult) => ({
  added: r.added.map(({ nevra, repo, why, packageBytes, installedBytes }) => ({
    nevra,
    repo,
    why,
    packageBytes,
    installedBytes,
  })),
  removed: r.removed,
  replaced: r.replaced,
  downloadBytes: r.downloadBytes,
  scripts: r.scripts,
  droppedVarFiles: r.droppedVarFiles,
  notes: r.notes,
  skippedRepos: r.skippedRepos,
});

/**
 * The deployment whose requests layering edits: the stateroot's default one (a pending deployment
 * when there is one), so successive installs add up before a reboot, as with rpm-ostree; and the
 * merge deployment whose /etc gives the repositories (the booted one when it is of the stateroot).
 */
function currentDeployment(
  sysroot: Sysroot,
  stateroot: string | undefined,
): { from: Deployment; merge: Deployment | null } {
  const state = readBootState(sysroot);
  const wanted = stateroot ?? state.booted?.stateroot ?? state.deployments[0]?.stateroot;
  const found = state.deployments.find((d) => d.stateroot === wanted);
  if (!found)
    throw new UsageError(
      'E_DEPLOYMENT_NONE',
      `there is no deployment${wanted ? ` of stateroot '${wanted}'` : ''} to layer packages on`,
      { hint: 'deploy one first with `arbor admin deploy`' },
    );
  return { from: found, merge: mergeDeploymentOf(state, found.stateroot) };
}
