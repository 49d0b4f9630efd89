// The target of `install to-disk`: a block device (or a plain file standing in for one), checked
// before anything is written: not in use (mounted, swap, a loop device's backing file), nothing on
// it (no filesystem or partition table signature) unless the caller asked to wipe it, and its size.
import { lstatSync } from 'node:fs';
import { ArborError, UsageError } from '../common/errors.js';
import { runTool } from './tool.js';

/** What `install to-disk` writes onto: its path, whether it is a block device, its size in bytes. */
export interface InstallDevice {
  readonly path: string;
  readonly isBlock: boolean;
  readonly sizeBytes: number;
}

/**
 * Opens DEVICE for an install: E_INSTALL_DEVICE_INVALID (exit 2) when it is neither a block
 * device nor a regular file, E_INSTALL_DEVICE_IN_USE when it or a partition of it is mounted or
 * used as swap (a file: attached to a loop device), E_INSTALL_DEVICE_NOT_EMPTY when it holds a
 * filesystem or partition table and WIPE is false. Writes nothing.
 */
export function openInstallDevice(path: string, wipe: boolean): InstallDevice {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined || !(st.isBlockDevice() || st.isFile()))
    throw new UsageError(
      'E_INSTALL_DEVICE_INVALID',
      st === undefined ? `'${path}' does not exist` : `'${path}' is neither a block device nor a file`,
      { hint: 'name the whole disk, e.g. /dev/sdb or /dev/nvme0n1' },
    );
  const isBlock = st.isBlockDevice();
  const users = isBlock ? mountsOf(path) : loopDevicesOf(path);
  if (users.length > 0)
    throw new ArborError('E_INSTALL_DEVICE_IN_USE', `'${path}' is in use: ${users.slice(0, 3).join(', ')}`, {
      hint: isBlock
        ? 'unmount it and its partitions (and swapoff) first'
        : 'detach the loop devices (losetup -d) first',
    });
  const found = signaturesOf(path);
  if (found !== null && !wipe)
    throw new ArborError('E_INSTALL_DEVICE_NOT_EMPTY', `'${path}' holds ${found}`, {
      hint: 'pass --wipe to erase it (everything on it is lost), or choose another device',
    });
  const sizeBytes = isBlock ? Number(runTool('blockdev', ['--getsize64', path]).stdout.toString().trim()) : st.size;
  return { path, isBlock, sizeBytes };
}

/** Removes every filesystem and partition-table signature wipefs knows from DEVICE (`--wipe`). */
export function wipeDevice(device: InstallDevice): void {
  runTool('wipefs', ['--all', '--quiet', device.path]);
}

/** Mount points (and `[SWAP]`) of the block device at PATH and of its partitions, as lsblk lists them. */
function mountsOf(path: string): string[] {
  const out = runTool('lsblk', ['--noheadings', '--raw', '--paths', '--output', 'NAME,MOUNTPOINT', path]).stdout;
  return out
    .toString('utf8')
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter(([, mount]) => mount !== undefined && mount !== '')
    .map(([name, mount]) => `${name} on ${unescapeLsblk(mount ?? '')}`);
}

/** lsblk --raw writes spaces and other bytes in names as \xHH. */
const unescapeLsblk = (text: string): string =>
  text.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/** The loop devices whose backing file is PATH. */
function loopDevicesOf(path: string): string[] {
  const out = runTool('losetup', ['--associated', path, '--noheadings', '--output', 'NAME']).stdout;
  return out
    .toString('utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((name) => `attached to ${name}`);
}

/**
 * What blkid's low-level probe finds at the start of PATH (`a ext4 filesystem`, `a gpt partition
 * table`), or null when it finds nothing (its exit status 2).
 */
function signaturesOf(path: string): string | null {
  const probe = runTool('blkid', ['--probe', '--output', 'export', path], { allowStatus: [2] });
  if (probe.status === 2) return null;
  const out = probe.stdout.toString('utf8');
  const fields = new Map(
    out
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );
  const table = fields.get('PTTYPE');
  const fs = fields.get('TYPE');
  return table !== undefined ? `a ${table} partition table` : fs !== undefined ? `a ${fs} filesystem` : 'a signature';
}
