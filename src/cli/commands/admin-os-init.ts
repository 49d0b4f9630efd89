// `arbor admin os-init STATEROOT`: a stateroot's deployment directory and persistent /var.
import { Command, Option } from 'clipanion';
import { type Sysroot, initStateroot } from '../../deploy/index.js';
import { SysrootCommand } from '../sysroot-command.js';

export class AdminOsInitCommand extends SysrootCommand {
  static override paths = [['admin', 'os-init']];
  static override usage = Command.Usage({
    description: 'Create a stateroot: its deployment directory and persistent /var',
    examples: [['Create stateroot "fedora"', '$0 admin os-init --sysroot /mnt/root fedora']],
  });
  stateroot = Option.String({ name: 'STATEROOT' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    initStateroot(sysroot, this.stateroot);
    this.print(`stateroot ${this.stateroot} ready`);
    return 0;
  }
}
