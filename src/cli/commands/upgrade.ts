// `arbor upgrade`: pull the origin's ref and deploy it; --check and --preview only look. The
// base class here also runs `arbor rebase`, which is an upgrade to another ref.
import { spawnSync } from 'node:child_process';
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type Sysroot, type UpgradeOptions, type UpgradeResult, upgrade } from '../../deploy/index.js';
import type { PackageDiff } from '../../rpm-compose/index.js';
import { deployFlag, deployOptionsOf } from '../deploy-flags.js';
import { ProgressLine, describePullProgress } from '../progress.js';
import { renderUpgrade, upgradeJson } from '../render/upgrade.js';
import { SysrootCommand } from '../sysroot-command.js';

/** Upgrade or rebase, then report it and reboot when asked. */
export abstract class UpgradingCommand extends SysrootCommand {
  protected async upgradeAndReport(
    sysroot: Sysroot,
    options: UpgradeOptions,
    flags: { reboot: boolean; json: boolean },
  ): Promise<number> {
    const progress = new ProgressLine(this.context.stderr);
    let result;
    try {
      result = await upgrade(sysroot, {
        ...options,
        onProgress: (p) => progress.update(describePullProgress('pulling', p, progress.elapsedSeconds), p.bytes),
      });
    } finally {
      progress.done();
    }
    const packages = options.preview ? await previewPackages(sysroot, result) : null;
    if (flags.json) this.printJson(upgradeJson(result, packages));
    else this.emit(renderUpgrade(result, packages));
    if (flags.reboot && result.deployed) {
      if (sysroot.path !== '/')
        throw new UsageError('E_USAGE', '--reboot only applies to the running system (--sysroot /)');
      spawnSync('systemctl', ['reboot'], { stdio: 'inherit' });
    }
    return 0;
  }
}

/** What the available commit changes in packages, as `db diff` says it; null unless both commits list theirs. */
async function previewPackages(sysroot: Sysroot, result: UpgradeResult): Promise<PackageDiff | null> {
  if (!result.newer || result.available === null || !sysroot.repo.hasObject(result.available, 'commit')) return null;
  // Loaded here only: the compose module is not worth its load time to every host command.
  const { diffPackages, readPackageList } = await import('../../rpm-compose/index.js');
  const before = readPackageList(sysroot.repo, result.from.checksum);
  const after = readPackageList(sysroot.repo, result.available);
  return before !== null && after !== null ? diffPackages(before, after) : null;
}

export class UpgradeCommand extends UpgradingCommand {
  static override paths = [['upgrade']];
  static override usage = Command.Usage({
    description: "Pull the origin's ref and deploy it",
    details: `
      --check only says whether a newer commit exists and how much a pull would fetch; --preview also fetches the new
      commit's metadata and lists package changes (when commits carry package lists). --reboot reboots after deploying.
      The new deployment boots on trial and passes the preflight first, as with \`arbor deploy\` (see its --help).
    `,
    examples: [
      ['Upgrade', '$0 upgrade'],
      ['Is there an upgrade?', '$0 upgrade --check'],
    ],
  });
  check = Option.Boolean('--check', false, { description: 'Only check for an upgrade' });
  preview = Option.Boolean('--preview', false, { description: 'Check and list package changes' });
  reboot = deployFlag.reboot();
  stage = deployFlag.stage();
  trialTries = deployFlag.trialTries();
  force = deployFlag.force();
  acceptEtcConflicts = deployFlag.acceptEtcConflicts();
  preflight = deployFlag.preflight();
  allowDowngrade = deployFlag.allowDowngrade();
  repoDir = deployFlag.repoDir();
  json = deployFlag.json();
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const options = {
      ...deployOptionsOf(this, sysroot, (text) => this.context.stderr.write(text)),
      force: this.force,
      check: this.check,
      preview: this.preview,
    };
    return this.upgradeAndReport(sysroot, options, { reboot: this.reboot, json: this.json });
  }
}
