// The flags `image build`, `install to-disk` and `install to-filesystem` share (what goes on the
// disk and how it boots), how they become the image module's options, progress on stderr, and the
// removal of the work directory when the command is interrupted.
import { rmSync } from 'node:fs';
import { Option } from 'clipanion';
import { UsageError } from '../common/errors.js';
import { loadFirstbootConfig } from '../firstboot/index.js';
import { type ImageStep, type LayoutRemote, parseImageBootloader } from '../image/index.js';
import type { PullProgress } from '../repo/index.js';
import { ProgressLine, formatBytes } from './progress.js';
import { ArborCommand, DEFAULT_REPO, parseKeyValue, trustedKeysOf } from './repo-command.js';

const STEP_TEXT: Record<ImageStep, string> = {
  pull: 'copying the commit',
  deploy: 'deploying',
  measure: 'measuring the tree',
  'root-fs': 'writing the root filesystem',
  inodes: 'setting owners, modes and times',
  boot: 'installing the bootloader',
  convert: 'converting to qcow2',
  digest: 'computing the digest',
};

/** The `--root-fs` flag of the commands that write a root filesystem (`image build`, `install to-disk`). */
export const rootFsOption = () =>
  Option.String('--root-fs', 'ext4', {
    description: 'Root filesystem: ext4 (default) or xfs (needs root and loop devices; not byte-reproducible)',
  });

/** A command that lays out a sysroot from a commit: the source, the bootloader, kernel arguments, remote and first boot. */
export abstract class LayoutCommand extends ArborCommand {
  repoPath = Option.String('--repo', DEFAULT_REPO, { description: 'Repository holding the commit' });
  bootloader = Option.String('--bootloader', 'systemd-boot', { description: 'systemd-boot (default) or grub-bios' });
  karg = Option.Array('--karg', [], { description: 'Kernel argument, after root=UUID=… rw (repeatable)' });
  stateroot = Option.String('--stateroot', 'os', { description: 'Stateroot of the deployment (default os)' });
  remote = Option.String('--remote', { description: 'NAME=URL: the remote the booted host upgrades from' });
  signVerify = Option.Array('--sign-verify', [], { description: 'ed25519=PUBKEYFILE: trusted key of --remote' });
  noSignVerify = Option.Boolean('--no-sign-verify', false, { description: 'The remote is not signed' });
  config = Option.String('--config', {
    description: 'First-boot configuration (YAML, docs/firstboot.md) applied once when the system first boots',
  });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  /** The commit (ref, checksum or prefix); each command declares it where its positional order wants it. */
  abstract rev: string;

  /** The shared options as the image module takes them, progress reported on stderr by PROGRESS. */
  protected layoutOptions(progress: ProgressLine) {
    const bootloader = parseImageBootloader(this.bootloader);
    const firstboot = this.config === undefined ? null : loadFirstbootConfig(this.config);
    // The configuration's kernel arguments go into the entry like --karg (those it removes are dropped).
    const kargs = firstboot
      ? [...this.karg, ...firstboot.kargsAdd.filter((k) => !this.karg.includes(k))].filter(
          (k) => !firstboot.kargsRemove.some((r) => k === r || k.startsWith(`${r}=`)),
        )
      : this.karg;
    return {
      repo: this.repoPath,
      rev: this.rev,
      bootloader,
      kargs,
      firstboot,
      stateroot: this.stateroot,
      remote: this.parseRemote(),
      epoch: sourceDateEpoch(),
      onProgress: (step: ImageStep, pull: PullProgress | null) =>
        progress.update(
          pull === null ? `${STEP_TEXT[step]}…` : `${STEP_TEXT[step]}: ${pull.objects}/${pull.objectsNeeded} objects`,
        ),
    };
  }

  /** A progress line on stderr. */
  protected progressLine(): ProgressLine {
    return new ProgressLine(this.context.stderr);
  }

  /**
   * Removes the work directory (a staged sysroot, a partial disk) when SIGINT or SIGTERM ends the
   * command (exit 130, 143); returns the callback that learns the directory.
   */
  protected removeWorkDirOnInterrupt(): (dir: string) => void {
    let workDir: string | null = null;
    const interrupted = (signal: NodeJS.Signals): void => {
      if (workDir !== null) rmSync(workDir, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
    return (dir) => {
      workDir = dir;
    };
  }

  private parseRemote(): LayoutRemote | null {
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

/** A disk's partitions as the text results list them. */
export function renderPartitions(
  partitions: readonly { name: string; start: number; size: number; uuid: string }[],
): string[] {
  return partitions.map((p) => `  ${p.name.padEnd(9)} ${formatBytes(p.size).padStart(10)} at ${p.start}  ${p.uuid}`);
}
