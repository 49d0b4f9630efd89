// `arbor install to-filesystem PATH REV`: a mounted root filesystem made a sysroot (docs/image.md, "Installing").
import { Command, Option } from 'clipanion';
import { type InstallToFilesystemResult, installToFilesystem } from '../../image/index.js';
import { LayoutCommand } from '../layout-command.js';

export class InstallToFilesystemCommand extends LayoutCommand {
  static override paths = [['install', 'to-filesystem']];
  static override usage = Command.Usage({
    description: 'Install a commit into a mounted root filesystem and its ESP',
    details: `
      Makes PATH (the new root filesystem, mounted) the sysroot \`arbor image build\` puts on its root partition: the
      repository holding the commit (and --remote), the stateroot, the deployment and its boot entries, with
      systemd-boot, the entries and the kernels on the EFI System Partition mounted at PATH/boot/efi (or --esp DIR,
      inside PATH: the installed system mounts it at the same place). PATH must be empty but for lost+found and the
      ESP's mount point (--force: install beside what is there). The kernel arguments are root=UUID=<the filesystem
      mounted at PATH> (unless a --karg names root=), rw, then each --karg. Needs root.
    `,
    examples: [
      ['Install into /mnt with the ESP at /mnt/boot/efi', '$0 install to-filesystem --repo repo /mnt os/x86_64/main'],
    ],
  });
  esp = Option.String('--esp', { description: 'The mounted ESP (default PATH/boot/efi)' });
  force = Option.Boolean('--force', false, { description: 'Install into a PATH that holds other files' });
  target = Option.String({ name: 'PATH' });
  rev = Option.String({ name: 'REV' });

  protected async run(): Promise<number> {
    const progress = this.progressLine();
    const result = await installToFilesystem({
      ...this.layoutOptions(progress),
      target: this.target,
      esp: this.esp ?? null,
      force: this.force,
    });
    progress.done();
    if (this.json) this.printJson(result);
    else this.print(renderResult(result));
    return 0;
  }
}

function renderResult(r: InstallToFilesystemResult): string {
  return [
    `${r.target}: ${r.bootloader} on ${r.esp} (mounted at ${r.espMount})`,
    r.espMountUnit === null
      ? `the ESP is a directory of the root filesystem: nothing mounts it at boot`
      : `the booted system mounts the ESP with ${r.espMountUnit}`,
    `deployment ${r.deployment.stateroot} ${r.deployment.checksum}.${r.deployment.serial}`,
    `kernel arguments: ${r.kargs.join(' ')}`,
  ].join('\n');
}
