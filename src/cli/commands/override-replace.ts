// `arbor override replace ./FILE.rpm|NAME-VERSION-RELEASE...`: replace base packages (a new deployment).
import { Command, Option } from 'clipanion';
import type { DeriveTarget, Sysroot } from '../../deploy/index.js';
import {
  type LayerRequests,
  addReplacements,
  packageDirOf,
  packageFilesOf,
  storeLocalPackages,
} from '../../layering/index.js';
import { LayerCommand } from '../layer-command.js';

export class OverrideReplaceCommand extends LayerCommand {
  static override paths = [['override', 'replace']];
  static override usage = Command.Usage({
    description: 'Replace base packages with other builds of the same names (a new deployment)',
    details: `
      Each argument is a package file (a path) or NAME-[EPOCH:]VERSION-RELEASE[.ARCH]: that exact build, found
      in the enabled repositories of /etc/yum.repos.d (fetched and checked as install does) or the --repo-dir
      ones. The file is kept in the sysroot's package directory, so the replacement survives upgrades.
    `,
    examples: [
      ['Replace with a file', '$0 override replace ./libcore-2.0-2.noarch.rpm'],
      ['Replace with a build from the yum repositories', '$0 override replace libcore-2.0-2'],
      ['Replace with a build from a local repository', '$0 override replace --repo-dir /srv/repo libcore-2.0-2.x86_64'],
    ],
  });
  packages = Option.Rest({ name: 'FILE|NEVR', required: 1 });
  protected async edit(current: LayerRequests, sysroot: Sysroot, target: DeriveTarget): Promise<LayerRequests> {
    const files = await packageFilesOf(sysroot, target, this.repoDir ?? [], this.packages);
    return addReplacements(current, await storeLocalPackages(packageDirOf(sysroot), files));
  }
}
