// `arbor override remove PKG...`: take base packages out of the tree (a new deployment).
import { Command, Option } from 'clipanion';
import { type LayerRequests, addRemovals } from '../../layering/index.js';
import { LayerCommand } from '../layer-command.js';

export class OverrideRemoveCommand extends LayerCommand {
  static override paths = [['override', 'remove']];
  static override usage = Command.Usage({
    description: 'Remove base packages from the tree (a new deployment; `override reset` undoes it)',
    examples: [['Remove a base package', '$0 override remove vim-minimal']],
  });
  packages = Option.Rest({ name: 'PKG', required: 1 });
  protected async edit(current: LayerRequests): Promise<LayerRequests> {
    return addRemovals(current, this.packages);
  }
}
