// `arbor status`: the deployments in boot order, a staged one, and a trial that failed.
import { Command, Option } from 'clipanion';
import {
  type Sysroot,
  currentTrialFailure,
  readBootState,
  readEtcConflicts,
  readStagedDeployment,
  readTrialFailures,
  rolesOf,
} from '../../deploy/index.js';
import { readFirstbootResult } from '../../firstboot/index.js';
import { type StatusView, renderStatus, statusJson } from '../render/status.js';
import { SysrootCommand } from '../sysroot-command.js';
import { present } from '../../common/errors.js';

export class StatusCommand extends SysrootCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: 'List deployments in boot order: booted, pending, rollback, pinned, staged',
    examples: [
      ['Show the deployments', '$0 status'],
      ['For scripts', '$0 status --json'],
    ],
  });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    // Read whole before printing: a damaged file found halfway must leave stdout empty.
    const view = await withLayering(sysroot, readStatus(sysroot, Math.floor(Date.now() / 1000)));
    if (this.json) this.printJson(statusJson(view));
    else this.context.stdout.write(renderStatus(view));
    return 0;
  }
}

function readStatus(sysroot: Sysroot, now: number): StatusView {
  const state = readBootState(sysroot);
  const roles = rolesOf(state.deployments, state.booted);
  const staged = readStagedDeployment(sysroot);
  const failure = currentTrialFailure(sysroot, state.deployments, state.booted, now);
  const failures = [...new Set(state.deployments.map((d) => d.stateroot))].flatMap((s) =>
    readTrialFailures(sysroot, s),
  );
  const deployments = state.deployments.map((d, i) => ({
    role: failure && i === 0 ? ('failed-trial' as const) : present(roles[i], `the role of deployment ${i}`),
    deployment: d,
    timestamp: sysroot.repo.hasObject(d.checksum, 'commit') ? sysroot.repo.readCommit(d.checksum).timestamp : null,
    etcConflicts: readEtcConflicts(sysroot, d),
  }));
  // First boot is the machine's: read from the booted deployment (the default one when none is booted).
  const current = state.booted ?? state.deployments[0];
  const firstboot = current ? readFirstbootResult(sysroot.deploymentPath(current)) : null;
  return {
    bootversion: state.bootversion,
    deployments,
    staged,
    trialFailed: failure,
    trialFailures: failures,
    firstboot,
  };
}

/**
 * Adds each deployment's package layering. Only origins with extra groups can have any, and only
 * then is the layering module (with the compose stack under it) loaded: most status calls skip it.
 */
async function withLayering(sysroot: Sysroot, view: StatusView): Promise<StatusView> {
  if (!view.deployments.some((e) => e.deployment.origin.extra.size > 0)) return view;
  const { layeringStatus } = await import('../../layering/index.js');
  return {
    ...view,
    deployments: view.deployments.map((e) => ({ ...e, layering: layeringStatus(sysroot.repo, e.deployment) })),
  };
}
