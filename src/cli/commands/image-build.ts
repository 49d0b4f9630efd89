// `arbor image build REV -o DISK`: a bootable disk image from a commit (docs/image.md).
import { rmSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import {
  type ImageBuildResult,
  type ImageStep,
  assertImageRootFs,
  buildImage,
  parseImageBootloader,
  parseSizeBytes,
} from '../../image/index.js';
import { loadFirstbootConfig } from '../../firstboot/index.js';
import { ProgressLine, formatBytes } from '../progress.js';
import { ArborCommand, DEFAULT_REPO, parseKeyValue, trustedKeysOf } from '../repo-command.js';

const STEP_TEXT: Record<ImageStep, string> = {
  pull: 'copying the commit',
  deploy: 'deploying',
  measure: 'measuring the tree',
  'root-fs': 'writing the root filesystem',
  boot: 'installing the bootloader',
  convert: 'converting to qcow2',
  digest: 'computing the digest',
};

export class ImageBuildCommand extends ArborCommand {
  static override paths = [['image', 'build']];
  static override usage = Command.Usage({
    description: 'Build a bootable disk image (GPT, root filesystem, bootloader) from a commit',
    details: `
      Makes the sysroot \`arbor admin\` would (the repository holding the commit, the stateroot, the deployment, its boot
      entries) without root or loop devices, and writes it into a GPT disk image: an ext4 root filesystem and, with
      systemd-boot (default), an EFI System Partition holding systemd-boot and the entries and kernels; with grub-bios,
      a BIOS boot partition holding GRUB. The same commit and options give the same bytes: identifiers come from the
      inputs and every time is SOURCE_DATE_EPOCH (default: the commit's timestamp).

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
  repoPath = Option.String('--repo', DEFAULT_REPO, { description: 'Repository holding the commit' });
  output = Option.String('-o,--output', { required: true, description: 'Path of the image to write' });
  format = Option.String('--format', 'raw', { description: 'raw (default) or qcow2' });
  size = Option.String('--size', { description: 'Disk size, e.g. 8G (default: what it needs plus a margin)' });
  bootloader = Option.String('--bootloader', 'systemd-boot', { description: 'systemd-boot (default) or grub-bios' });
  rootFs = Option.String('--root-fs', 'ext4', { description: 'Root filesystem: ext4 (xfs: not supported yet)' });
  karg = Option.Array('--karg', [], { description: 'Kernel argument, after root=UUID=… rw (repeatable)' });
  stateroot = Option.String('--stateroot', 'os', { description: 'Stateroot of the deployment (default os)' });
  remote = Option.String('--remote', { description: 'NAME=URL: the remote the booted host upgrades from' });
  signVerify = Option.Array('--sign-verify', [], { description: 'ed25519=PUBKEYFILE: trusted key of --remote' });
  noSignVerify = Option.Boolean('--no-sign-verify', false, { description: 'The remote is not signed' });
  config = Option.String('--config', {
    description: 'First-boot configuration (YAML, docs/firstboot.md) applied once when the image first boots',
  });
  force = Option.Boolean('--force', false, { description: 'Replace an existing output file' });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  rev = Option.String({ name: 'REV' });

  protected async run(): Promise<number> {
    const bootloader = parseImageBootloader(this.bootloader);
    assertImageRootFs(this.rootFs);
    if (this.format !== 'raw' && this.format !== 'qcow2')
      throw new UsageError('E_USAGE', `--format: expected raw or qcow2, got '${this.format}'`);
    const firstboot = this.config === undefined ? null : loadFirstbootConfig(this.config);
    // The configuration's kernel arguments go into the entry like --karg (those it removes are dropped).
    const kargs = firstboot
      ? [...this.karg, ...firstboot.kargsAdd.filter((k) => !this.karg.includes(k))].filter(
          (k) => !firstboot.kargsRemove.some((r) => k === r || k.startsWith(`${r}=`)),
        )
      : this.karg;
    const progress = new ProgressLine(this.context.stderr);
    // Interrupted, the build leaves its temporary directory (a staged sysroot, a partial disk): remove it.
    let workDir: string | null = null;
    const interrupted = (signal: NodeJS.Signals): void => {
      if (workDir !== null) rmSync(workDir, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
    const result = await buildImage({
      onWorkDir: (dir) => {
        workDir = dir;
      },
      repo: this.repoPath,
      rev: this.rev,
      output: this.output,
      format: this.format,
      bootloader,
      sizeBytes: this.size === undefined ? null : parseSizeBytes(this.size),
      kargs,
      firstboot,
      stateroot: this.stateroot,
      remote: this.parseRemote(),
      epoch: sourceDateEpoch(),
      force: this.force,
      onProgress: (step, pull) =>
        progress.update(
          pull === null ? `${STEP_TEXT[step]}…` : `${STEP_TEXT[step]}: ${pull.objects}/${pull.objectsNeeded} objects`,
        ),
    });
    progress.done();
    if (this.json) this.printJson(result);
    else this.print(renderResult(result));
    return 0;
  }

  private parseRemote(): { name: string; url: string; keys: Buffer[] } | null {
    if (this.remote === undefined) {
      if (this.signVerify.length > 0 || this.noSignVerify)
        throw new UsageError('E_USAGE', '--sign-verify and --no-sign-verify need --remote');
      return null;
    }
    const [name, url] = parseKeyValue(this.remote, '--remote');
    return { name, url, keys: trustedKeysOf(this.signVerify, this.noSignVerify) };
  }
}

/** SOURCE_DATE_EPOCH (reproducible-builds.org), or null when unset. */
function sourceDateEpoch(): number | null {
  const text = process.env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === '') return null;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw new UsageError('E_USAGE', `SOURCE_DATE_EPOCH must be a whole number of seconds, got '${text}'`);
  return Number(text);
}

function renderResult(r: ImageBuildResult): string {
  const lines = [
    `${r.output}: ${r.format}, ${formatBytes(r.size)}, ${r.bootloader}`,
    ...r.partitions.map((p) => `  ${p.name.padEnd(9)} ${formatBytes(p.size).padStart(10)} at ${p.start}  ${p.uuid}`),
    `deployment ${r.deployment.stateroot} ${r.deployment.checksum}.${r.deployment.serial}`,
    `kernel arguments: ${r.kargs.join(' ')}`,
    `sha256 ${r.sha256}`,
  ];
  return lines.join('\n');
}
