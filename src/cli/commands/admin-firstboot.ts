// `arbor admin firstboot CONFIG`: give a deployment a first-boot configuration (users, ssh keys, files,
// units, hostname) that it applies once at its next boot, without Node; kernel arguments go to its entry.
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type Sysroot, editKargs, readBootState, setKargs } from '../../deploy/index.js';
import { installFirstboot, loadFirstbootConfig } from '../../firstboot/index.js';
import { SysrootCommand, parseDeploymentIndex } from '../sysroot-command.js';

export class AdminFirstbootCommand extends SysrootCommand {
  static override paths = [['admin', 'firstboot']];
  static override usage = Command.Usage({
    description: 'Install a first-boot configuration into a deployment, applied once at its next boot',
    details: `
      CONFIG is YAML (docs/firstboot.md): hostname, groups, users (with ssh_authorized_keys and
      password_hash), files, directories, systemd.units (enabled, mask, contents) and kernel_arguments
      (should_exist, should_not_exist). It is validated against the deployment's tree now — an unknown key
      or a unit that cannot be enabled is an error here, not at boot — then compiled into a shell script
      that arbor-firstboot.service runs before sysinit.target. \`arbor status\` shows its result.
      Kernel arguments are written to the deployment's boot entry at once.
    `,
    examples: [
      ['Configure the default deployment', '$0 admin firstboot --sysroot /mnt/root config.yaml'],
      ['Only validate', '$0 admin firstboot --check config.yaml'],
    ],
  });
  check = Option.Boolean('--check', false, { description: 'Validate only; change nothing' });
  index = Option.String('--deploy-index', '0', { description: 'Deployment to configure (default 0, the default one)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  config = Option.String({ name: 'CONFIG' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const config = loadFirstbootConfig(this.config);
    const index = parseDeploymentIndex(this.index);
    sysroot.lock();
    const d = readBootState(sysroot).deployments[index];
    if (!d) throw new UsageError('E_DEPLOYMENT_INDEX', `there is no deployment ${this.index}`);
    const steps = {
      hostname: config.hostname,
      groups: config.groups.map((g) => g.name),
      users: config.users.map((u) => u.name),
      files: config.files.map((f) => f.path),
      directories: config.directories.map((x) => x.path),
      units: config.units.map((u) => u.name),
    };
    const kargs = { add: config.kargsAdd, remove: config.kargsRemove };
    if (!this.check) {
      installFirstboot(sysroot.deploymentPath(d), config);
      if (kargs.add.length > 0 || kargs.remove.length > 0)
        setKargs(sysroot, index, (current) =>
          editKargs(current, { append: kargs.add.filter((k) => !current.includes(k)), delete: [...kargs.remove] }),
        );
    }
    const target = `${d.stateroot} ${d.checksum}.${d.serial}`;
    if (this.json) this.printJson({ deployment: target, installed: !this.check, ...steps, kargs });
    else
      this.print(
        `${this.check ? 'valid for' : 'installed in'} ${target}: ${config.users.length} users, ${config.groups.length} groups, ${config.files.length} files, ${config.directories.length} directories, ${config.units.length} units${this.check ? '' : '; applied at its next boot'}`,
      );
    return 0;
  }
}
