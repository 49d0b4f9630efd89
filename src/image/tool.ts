// The system tools a disk image is made with (mkfs.ext4, debugfs, sfdisk, mkfs.vfat, mtools,
// grub-mkimage, qemu-img): one synchronous call each, failures as ArborErrors naming the tool.
import { spawnSync } from 'node:child_process';
import { ArborError } from '../common/errors.js';

// mkfs.*, sfdisk and debugfs live in sbin, which an unprivileged user's PATH often lacks.
const SBIN_PATH = '/usr/sbin:/sbin';

export interface ToolOptions {
  readonly input?: string | Buffer;
  readonly env?: Readonly<Record<string, string>>;
  /** Exit statuses besides 0 that are answers, not failures (blkid's 2: nothing found). */
  readonly allowStatus?: readonly number[];
}

/** The output of a tool that exited 0. */
export interface ToolOutput {
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly status: number;
}

/**
 * Runs COMMAND ARGS to the end with a fixed locale and time zone (their messages and FAT's local
 * times must not depend on the caller's). E_IMAGE_TOOL_MISSING when it is not installed,
 * E_IMAGE_TOOL_FAILED with its stderr when it exits non-zero.
 */
export function runTool(command: string, args: readonly string[], options: ToolOptions = {}): ToolOutput {
  const r = spawnSync(command, args, {
    input: options.input,
    env: {
      ...process.env,
      PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:${SBIN_PATH}`,
      LC_ALL: 'C',
      TZ: 'UTC',
      ...options.env,
    },
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ArborError('E_IMAGE_TOOL_MISSING', `'${command}' is not installed: building an image needs it`, {
        cause: r.error,
        hint: 'install e2fsprogs, fdisk, dosfstools, mtools, grub-pc-bin and qemu-utils (xfsprogs for --root-fs xfs)',
      });
    }
    throw new ArborError('E_IMAGE_TOOL_FAILED', `cannot run '${command}': ${r.error.message}`, { cause: r.error });
  }
  const stderr = r.stderr.toString('utf8');
  if (r.status === null || (r.status !== 0 && !(options.allowStatus ?? []).includes(r.status))) {
    const how = r.signal === null ? `exited ${r.status}` : `was killed by ${r.signal}`;
    throw new ArborError(
      'E_IMAGE_TOOL_FAILED',
      `${command} ${how}: ${stderr.trim().split('\n').slice(-5).join(' / ')}`,
    );
  }
  return { stdout: r.stdout, stderr, status: r.status };
}
