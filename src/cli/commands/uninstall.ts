// `arbor uninstall PKG...`: take layered packages out (a new deployment).
import { Command, Option } from 'clipanion';
import { type LayerRequests, removePackages } from '../../layering/index.js';
import { LayerCommand } from '../layer-command.js';

export class UninstallCommand extends LayerCommand {
  static override paths = [['uninstall']];
  static override usage = Command.Usage({
    description: 'Remove layered packages (a new deployment; base packages: `override remove`)',
    examples: [['Remove a layered package', '$0 uninstall htop']],
  });
  packages = Option.Rest({ name: 'PKG', required: 1 });
  protected async edit(current: LayerRequests): Promise<LayerRequests> {
    return removePackages(current, this.packages);
  }
}
