// `arbor admin init-fs PATH`: a new sysroot (top-level directories and an empty repository).
import { Command, Option } from 'clipanion';
import { initSysroot } from '../../deploy/index.js';
import { ArborCommand } from '../repo-command.js';

export class AdminInitFsCommand extends ArborCommand {
  static override paths = [['admin', 'init-fs']];
  static override usage = Command.Usage({
    description: 'Create a sysroot: top-level directories and an empty repository at arbor/repo',
    examples: [['Make a sysroot in a directory', '$0 admin init-fs /mnt/root']],
  });
  target = Option.String({ name: 'PATH' });
  protected async run(): Promise<number> {
    initSysroot(this.target).close();
    this.print(`initialised sysroot ${this.target}`);
    return 0;
  }
}
