// `arbor override replace ./FILE.rpm...`: replace base packages with package files (a new deployment).
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import type { Sysroot } from '../../deploy/index.js';
import {
  type LayerRequests,
  addReplacements,
  isPackageFile,
  packageDirOf,
  storeLocalPackages,
} from '../../layering/index.js';
import { LayerCommand } from '../layer-command.js';

export class OverrideReplaceCommand extends LayerCommand {
  static override paths = [['override', 'replace']];
  static override usage = Command.Usage({
    description: 'Replace base packages with package files of the same names (a new deployment)',
    examples: [['Replace a base package', '$0 override replace ./libcore-2.0-2.noarch.rpm']],
  });
  files = Option.Rest({ name: 'FILE', required: 1 });
  protected async edit(current: LayerRequests, sysroot: Sysroot): Promise<LayerRequests> {
    const names = this.files.filter((f) => !isPackageFile(f));
    if (names.length > 0)
      throw new UsageError(
        'E_USAGE',
        `override replace takes package files; '${names[0]}' is not a path (write ./${names[0]})`,
      );
    return addReplacements(current, await storeLocalPackages(packageDirOf(sysroot), this.files));
  }
}
