// `arbor rebase REMOTE:REF`: switch the origin to another ref, pull it and deploy it.
import { Command, Option } from 'clipanion';
import type { Sysroot } from '../../deploy/index.js';
import { deployFlag, deployOptionsOf } from '../deploy-flags.js';
import { UpgradingCommand } from './upgrade.js';

export class RebaseCommand extends UpgradingCommand {
  static override paths = [['rebase']];
  static override usage = Command.Usage({
    description: 'Switch the origin to REMOTE:REF, pull it and deploy it',
    examples: [['Rebase', '$0 rebase origin:os/x86_64/testing']],
  });
  reboot = deployFlag.reboot();
  stage = deployFlag.stage();
  trialTries = deployFlag.trialTries();
  force = deployFlag.force();
  acceptEtcConflicts = deployFlag.acceptEtcConflicts();
  preflight = deployFlag.preflight();
  allowDowngrade = deployFlag.allowDowngrade();
  repoDir = deployFlag.repoDir();
  json = deployFlag.json();
  refspec = Option.String({ name: 'REMOTE:REF' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const options = {
      ...deployOptionsOf(this, sysroot, (text) => this.context.stderr.write(text)),
      refspec: this.refspec,
      force: this.force,
    };
    return this.upgradeAndReport(sysroot, options, { reboot: this.reboot, json: this.json });
  }
}
