// `arbor admin config-diff`: the admin's changes in /etc against the deployment's defaults.
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type Sysroot, deploymentConfigDiff, readBootState } from '../../deploy/index.js';
import { SysrootCommand } from '../sysroot-command.js';

export class AdminConfigDiffCommand extends SysrootCommand {
  static override paths = [['admin', 'config-diff']];
  static override usage = Command.Usage({
    description: "Show the admin's changes in /etc against the deployment's defaults (/usr/etc)",
    details: 'Lines are `M path` (modified), `A path` (added) and `D path` (deleted).',
    examples: [['Changes of the booted (or default) deployment', '$0 admin config-diff']],
  });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const state = readBootState(sysroot);
    const d = state.booted ?? state.deployments[0];
    if (!d) throw new UsageError('E_DEPLOYMENT_NONE', 'there is no deployment');
    const changes = deploymentConfigDiff(sysroot, d);
    if (this.json) this.printJson(changes);
    else
      for (const c of changes)
        this.print(`${c.change === 'added' ? 'A' : c.change === 'deleted' ? 'D' : 'M'} ${c.path}`);
    return 0;
  }
}
