// `arbor cleanup`: remove pending and/or rollback deployments, leftovers and unreachable objects.
import { Command, Option } from 'clipanion';
import { type Sysroot, cleanup } from '../../deploy/index.js';
import { formatBytes } from '../progress.js';
import { SysrootCommand } from '../sysroot-command.js';

export class CleanupCommand extends SysrootCommand {
  static override paths = [['cleanup']];
  static override usage = Command.Usage({
    description: 'Remove the pending and/or rollback deployments, leftovers, and unreachable objects',
    examples: [['Drop the rollback deployment', '$0 cleanup --rollback']],
  });
  pending = Option.Boolean('--pending,-p', false, { description: 'Remove the pending deployment (and a staged one)' });
  rollbackFlag = Option.Boolean('--rollback,-r', false, {
    description: 'Remove rollback deployments (not pinned ones)',
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const report = cleanup(sysroot, { pending: this.pending, rollback: this.rollbackFlag });
    for (const d of report.removed) this.print(`removed ${d.stateroot} ${d.checksum}.${d.serial}`);
    if (report.stagedDiscarded) this.print('discarded the staged deployment');
    this.print(`pruned ${report.pruned.objects} objects (${formatBytes(report.pruned.bytes)})`);
    return 0;
  }
}
