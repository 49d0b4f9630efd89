// `arbor rollback`: the previous deployment becomes the default again.
import { Command } from 'clipanion';
import { type Sysroot, rollback } from '../../deploy/index.js';
import { SysrootCommand } from '../sysroot-command.js';

export class RollbackCommand extends SysrootCommand {
  static override paths = [['rollback']];
  static override usage = Command.Usage({
    description: 'Make the previous deployment the default again (reorders boot entries; copies nothing)',
    examples: [['Roll back', '$0 rollback']],
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const { to } = rollback(sysroot);
    this.print(
      `default is now ${to.stateroot} ${to.checksum}.${to.serial}${to.version ? ` (version ${to.version})` : ''}; reboot to use it`,
    );
    return 0;
  }
}
