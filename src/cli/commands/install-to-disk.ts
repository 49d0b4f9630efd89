// `arbor install to-disk DEVICE REV`: the image layout written onto a machine's disk (docs/image.md, "Installing").
import { Command, Option } from 'clipanion';
import { type InstallToDiskResult, installToDisk, parseImageRootFs } from '../../image/index.js';
import { LayoutCommand, renderPartitions, rootFsOption } from '../layout-command.js';
import { formatBytes } from '../progress.js';

export class InstallToDiskCommand extends LayoutCommand {
  static override paths = [['install', 'to-disk']];
  static override usage = Command.Usage({
    description: 'Partition a disk and install a commit onto it (GPT, root filesystem, bootloader)',
    details: `
      Writes onto DEVICE what \`arbor image build --size <its size>\` writes into an image file, byte for byte: a GPT, the
      ESP with systemd-boot (or GRUB's BIOS boot partition with grub-bios) and an ext4 (or --root-fs xfs) root filesystem holding the
      sysroot (the repository with the commit and --remote, the deployment and its boot entries). DEVICE is a whole
      disk (or a file standing in for one). It is refused when it or a partition of it is mounted, and when it holds a
      filesystem or partition table unless --wipe is given. Everything is checked, and the sysroot staged in a
      temporary directory ($TMPDIR or --work-dir), before the first byte is written.
    `,
    examples: [
      ['Install onto a new disk', '$0 install to-disk --repo repo /dev/sdb os/x86_64/main'],
      [
        'Replace what a disk holds, upgrading from a signed remote',
        '$0 install to-disk --wipe --repo repo /dev/nvme1n1 os/main --remote origin=https://updates.example.com/repo --sign-verify=ed25519=release.pub',
      ],
    ],
  });
  wipe = Option.Boolean('--wipe', false, { description: 'Erase the filesystem or partition table DEVICE holds' });
  rootFs = rootFsOption();
  workDir = Option.String('--work-dir', { description: 'Where to stage the sysroot (default: $TMPDIR or /tmp)' });
  device = Option.String({ name: 'DEVICE' });
  rev = Option.String({ name: 'REV' });

  protected async run(): Promise<number> {
    const rootFs = parseImageRootFs(this.rootFs);
    const progress = this.progressLine();
    const result = await installToDisk({
      ...this.layoutOptions(progress),
      onWorkDir: this.removeWorkDirOnInterrupt(),
      device: this.device,
      wipe: this.wipe,
      rootFs,
      ...(this.workDir === undefined ? {} : { workDir: this.workDir }),
    });
    progress.done();
    if (this.json) this.printJson(result);
    else this.print(renderResult(result));
    return 0;
  }
}

function renderResult(r: InstallToDiskResult): string {
  return [
    `${r.device}: ${formatBytes(r.size)}, ${r.bootloader}, ${r.rootFs}`,
    ...renderPartitions(r.partitions),
    `deployment ${r.deployment.stateroot} ${r.deployment.checksum}.${r.deployment.serial}`,
    `kernel arguments: ${r.kargs.join(' ')}`,
  ].join('\n');
}
