// `arbor image build REV -o DISK`: a bootable disk image from a commit (docs/image.md).
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type ImageBuildResult, buildImage, parseImageRootFs, parseSizeBytes } from '../../image/index.js';
import { LayoutCommand, rootFsOption, renderPartitions } from '../layout-command.js';
import { formatBytes } from '../progress.js';

export class ImageBuildCommand extends LayoutCommand {
  static override paths = [['image', 'build']];
  static override usage = Command.Usage({
    description: 'Build a bootable disk image (GPT, root filesystem, bootloader) from a commit',
    details: `
      Makes the sysroot \`arbor admin\` would (the repository holding the commit, the stateroot, the deployment, its boot
      entries) without root or loop devices, and writes it into a GPT disk image: an ext4 root filesystem and, with
      systemd-boot (default), an EFI System Partition holding systemd-boot and the entries and kernels; with grub-bios,
      a BIOS boot partition holding GRUB. The same commit and options give the same bytes: identifiers come from the
      inputs and every time is SOURCE_DATE_EPOCH (default: the commit's timestamp). --root-fs xfs makes an xfs root
      filesystem instead, on a loop device (root only), whose inode ctimes are the build's clock.

      With --remote NAME=URL and --sign-verify=ed25519=PUBKEYFILE (or --no-sign-verify) the image's repository has the
      remote the booted host upgrades from; the ref is then stored as NAME:REF and deployed from there. The kernel
      arguments are root=UUID=<the root filesystem> (unless a --karg names root=), rw (unless a --karg says ro or rw),
      then each --karg. Without --size the disk gets what it needs plus a quarter (at least 64 MiB).
    `,
    examples: [
      ['A UEFI image', '$0 image build --repo repo os/x86_64/main -o disk.img'],
      [
        'A BIOS qcow2 image that upgrades from a signed remote',
        '$0 image build --repo repo os/main -o disk.qcow2 --format qcow2 --bootloader grub-bios --size 8G --remote origin=https://updates.example.com/repo --sign-verify=ed25519=release.pub',
      ],
    ],
  });
  output = Option.String('-o,--output', { required: true, description: 'Path of the image to write' });
  format = Option.String('--format', 'raw', { description: 'raw (default) or qcow2' });
  size = Option.String('--size', { description: 'Disk size, e.g. 8G (default: what it needs plus a margin)' });
  rootFs = rootFsOption();
  force = Option.Boolean('--force', false, { description: 'Replace an existing output file' });
  rev = Option.String({ name: 'REV' });

  protected async run(): Promise<number> {
    const rootFs = parseImageRootFs(this.rootFs);
    if (this.format !== 'raw' && this.format !== 'qcow2')
      throw new UsageError('E_USAGE', `--format: expected raw or qcow2, got '${this.format}'`);
    const progress = this.progressLine();
    const result = await buildImage({
      ...this.layoutOptions(progress),
      onWorkDir: this.removeWorkDirOnInterrupt(),
      output: this.output,
      format: this.format,
      sizeBytes: this.size === undefined ? null : parseSizeBytes(this.size),
      force: this.force,
      rootFs,
    });
    progress.done();
    if (this.json) this.printJson(result);
    else this.print(renderResult(result));
    return 0;
  }
}

function renderResult(r: ImageBuildResult): string {
  const lines = [
    `${r.output}: ${r.format}, ${formatBytes(r.size)}, ${r.bootloader}, ${r.rootFs}`,
    ...renderPartitions(r.partitions),
    `deployment ${r.deployment.stateroot} ${r.deployment.checksum}.${r.deployment.serial}`,
    `kernel arguments: ${r.kargs.join(' ')}`,
    `sha256 ${r.sha256}`,
  ];
  return lines.join('\n');
}
