// `arbor admin pin INDEX`: keep a deployment through cleanups (--unpin: undo).
import { Command, Option } from 'clipanion';
import { type Sysroot, pin } from '../../deploy/index.js';
import { SysrootCommand, parseDeploymentIndex } from '../sysroot-command.js';

export class AdminPinCommand extends SysrootCommand {
  static override paths = [['admin', 'pin']];
  static override usage = Command.Usage({
    description: 'Pin the deployment at INDEX so cleanup never removes it (--unpin: undo)',
    examples: [['Pin deployment 1', '$0 admin pin 1']],
  });
  unpin = Option.Boolean('--unpin', false, { description: 'Unpin instead' });
  index = Option.String({ name: 'INDEX' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const d = pin(sysroot, parseDeploymentIndex(this.index), this.unpin);
    this.print(`${this.unpin ? 'unpinned' : 'pinned'} ${d.stateroot} ${d.checksum}.${d.serial}`);
    return 0;
  }
}
