// `arbor admin undeploy INDEX`: remove one deployment.
import { Command, Option } from 'clipanion';
import { type Sysroot, undeploy } from '../../deploy/index.js';
import { SysrootCommand, parseDeploymentIndex } from '../sysroot-command.js';

export class AdminUndeployCommand extends SysrootCommand {
  static override paths = [['admin', 'undeploy']];
  static override usage = Command.Usage({
    description: 'Remove the deployment at INDEX (see `arbor status`)',
    examples: [['Remove deployment 2', '$0 admin undeploy 2']],
  });
  index = Option.String({ name: 'INDEX' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const d = undeploy(sysroot, parseDeploymentIndex(this.index));
    this.print(`removed ${d.stateroot} ${d.checksum}.${d.serial}`);
    return 0;
  }
}
