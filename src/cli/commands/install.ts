// `arbor install PKG|./FILE.rpm...`: layer packages onto the base tree in a new deployment.
import { Command, Option } from 'clipanion';
import type { Sysroot } from '../../deploy/index.js';
import {
  type LayerRequests,
  addPackages,
  isPackageFile,
  packageDirOf,
  storeLocalPackages,
} from '../../layering/index.js';
import { LayerCommand } from '../layer-command.js';

export class InstallCommand extends LayerCommand {
  static override paths = [['install']];
  static override usage = Command.Usage({
    description: 'Layer packages onto the base tree (a new deployment; the booted one is untouched)',
    details: `
      Names are resolved in the repositories of /etc/yum.repos.d (fetched and checked as their .repo files say:
      gpgcheck, repo_gpgcheck, gpgkey, mirrors) and the --repo-dir ones, against the base's installed packages
      (which layering never changes); a path (with a slash, or ending in .rpm) installs that package file. The
      request is kept in the new deployment's origin and applied again by upgrade, rebase and deploy. See
      docs/layering.md.
    `,
    examples: [
      ['Layer a package from the yum repositories', '$0 install htop'],
      ['Layer a package from a local repository', '$0 install --repo-dir /srv/repo htop'],
      ['Layer a package file', '$0 install ./agent-1.0-1.x86_64.rpm'],
    ],
  });
  packages = Option.Rest({ name: 'PKG', required: 1 });
  protected async edit(current: LayerRequests, sysroot: Sysroot): Promise<LayerRequests> {
    const files = this.packages.filter(isPackageFile);
    const names = this.packages.filter((p) => !isPackageFile(p));
    return addPackages(current, names, await storeLocalPackages(packageDirOf(sysroot), files));
  }
}
