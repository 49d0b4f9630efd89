// `arbor override reset PKG...|--all`: undo removals and replacements of base packages (a new deployment).
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type LayerRequests, resetOverrides } from '../../layering/index.js';
import { LayerCommand } from '../layer-command.js';

export class OverrideResetCommand extends LayerCommand {
  static override paths = [['override', 'reset']];
  static override usage = Command.Usage({
    description: 'Undo overrides of base packages (a new deployment)',
    examples: [
      ['Bring back a removed package', '$0 override reset vim-minimal'],
      ['Undo every override', '$0 override reset --all'],
    ],
  });
  all = Option.Boolean('--all', false, { description: 'Reset every override' });
  packages = Option.Rest({ name: 'PKG' });
  protected async edit(current: LayerRequests): Promise<LayerRequests> {
    if (this.all === this.packages.length > 0)
      throw new UsageError('E_USAGE', 'name the packages to reset, or pass --all (not both)');
    return resetOverrides(current, this.packages, this.all);
  }
}
