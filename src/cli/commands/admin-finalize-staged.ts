// `arbor admin finalize-staged`: a staged deployment becomes the default (run at shutdown).
import { Command } from 'clipanion';
import { type Sysroot, finalizeStaged } from '../../deploy/index.js';
import { renderDeploy } from '../render/deploy.js';
import { SysrootCommand } from '../sysroot-command.js';

export class AdminFinalizeStagedCommand extends SysrootCommand {
  static override paths = [['admin', 'finalize-staged']];
  static override usage = Command.Usage({
    description: 'Make a staged deployment the default (run at shutdown by arbor-finalize-staged.service)',
    examples: [['Finalize', '$0 admin finalize-staged']],
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const result = await finalizeStaged(sysroot);
    if (result === null) this.print('no staged deployment');
    else this.emit(renderDeploy(result));
    return 0;
  }
}
