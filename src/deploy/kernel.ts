// Finding a commit's kernel and initramfs, and installing them into /boot once per distinct
// content (`boot/arbor/STATEROOT-BOOTCSUM/`).
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { ArborError } from '../common/errors.js';
import { fsyncDir } from '../common/fs-atomic.js';
import { hashBytes } from '../common/hash.js';
import { type Checksum, type Repo, isRegular, isSymlink, lookupPath } from '../repo/index.js';

export interface CommitKernel {
  readonly kver: string;
  readonly vmlinuz: Checksum;
  readonly initramfs: Checksum;
  /** Sizes in bytes, for the free-space check. */
  readonly bytes: number;
}

function fileIn(repo: Repo, commit: Checksum, path: string): Checksum | null {
  try {
    const entry = lookupPath(repo, commit, path);
    if (entry.kind !== 'file') return null;
    const header = repo.readFileHeader(entry.checksum);
    return isRegular(header.mode) && !isSymlink(header.mode) ? entry.checksum : null;
  } catch (error) {
    if (error instanceof ArborError && error.code === 'E_PATH_NOT_FOUND') return null;
    throw error;
  }
}

/**
 * The kernel of a commit: `/usr/lib/modules/KVER/vmlinuz` with `initramfs.img` beside it, or
 * `/boot/vmlinuz-KVER` with `/boot/initramfs-KVER.img`. Exactly one; else E_DEPLOY_NO_KERNEL.
 */
export function findKernel(repo: Repo, commit: Checksum): CommitKernel {
  const found: CommitKernel[] = [];
  const size = (c: Checksum): number => repo.readFileHeader(c).size;
  let modules: string[] = [];
  try {
    const entry = lookupPath(repo, commit, '/usr/lib/modules');
    if (entry.kind === 'dir') modules = repo.readDirTree(entry.tree).dirs.map((d) => d.name);
  } catch (error) {
    if (!(error instanceof ArborError && error.code === 'E_PATH_NOT_FOUND')) throw error;
  }
  for (const kver of modules) {
    const vmlinuz = fileIn(repo, commit, `/usr/lib/modules/${kver}/vmlinuz`);
    if (vmlinuz === null) continue;
    const initramfs = fileIn(repo, commit, `/usr/lib/modules/${kver}/initramfs.img`);
    if (initramfs === null)
      throw new ArborError(
        'E_DEPLOY_NO_INITRAMFS',
        `commit ${commit} has a kernel (${kver}) but no /usr/lib/modules/${kver}/initramfs.img`,
      );
    found.push({ kver, vmlinuz, initramfs, bytes: size(vmlinuz) + size(initramfs) });
  }
  if (found.length === 0) {
    let boot: string[] = [];
    try {
      const entry = lookupPath(repo, commit, '/boot');
      if (entry.kind === 'dir') boot = repo.readDirTree(entry.tree).files.map((f) => f.name);
    } catch (error) {
      if (!(error instanceof ArborError && error.code === 'E_PATH_NOT_FOUND')) throw error;
    }
    for (const name of boot) {
      const kver = /^vmlinuz-(.+)$/.exec(name)?.[1];
      if (kver === undefined) continue;
      // Only a regular file is a kernel (a symlink or a directory of that name is not).
      const vmlinuz = fileIn(repo, commit, `/boot/${name}`);
      if (vmlinuz === null) continue;
      const initramfs = fileIn(repo, commit, `/boot/initramfs-${kver}.img`);
      if (initramfs === null)
        throw new ArborError(
          'E_DEPLOY_NO_INITRAMFS',
          `commit ${commit} has /boot/${name} but no /boot/initramfs-${kver}.img`,
        );
      found.push({ kver, vmlinuz, initramfs, bytes: size(vmlinuz) + size(initramfs) });
    }
  }
  const [kernel, ...others] = found;
  if (kernel === undefined) {
    throw new ArborError(
      'E_DEPLOY_NO_KERNEL',
      `commit ${commit} has no kernel (/usr/lib/modules/KVER/vmlinuz or /boot/vmlinuz-KVER)`,
      {
        hint: 'only bootable trees can be deployed; compose with a kernel package',
      },
    );
  }
  if (others.length > 0)
    throw new ArborError(
      'E_DEPLOY_KERNELS',
      `commit ${commit} has ${found.length} kernels (${found.map((k) => k.kver).join(', ')}); a deployment boots exactly one`,
    );
  return kernel;
}

/** BLAKE3 of the kernel's bytes followed by the initramfs's. */
export function bootChecksum(
  repo: Repo,
  kernel: CommitKernel,
): { bootcsum: string; vmlinuz: Buffer; initramfs: Buffer } {
  const vmlinuz = repo.loadFile(kernel.vmlinuz).content;
  const initramfs = repo.loadFile(kernel.initramfs).content;
  return { bootcsum: hashBytes(vmlinuz, initramfs), vmlinuz, initramfs };
}

export const kernelDirName = (stateroot: string, bootcsum: string): string => `${stateroot}-${bootcsum}`;

/**
 * Copies kernel and initramfs into `kernelsDir/STATEROOT-BOOTCSUM/` unless already there: written
 * in a temporary directory, fsynced, renamed into place. Returns whether it copied.
 */
export function installKernel(
  kernelsDir: string,
  stateroot: string,
  boot: { bootcsum: string; vmlinuz: Buffer; initramfs: Buffer },
): boolean {
  const final = join(kernelsDir, kernelDirName(stateroot, boot.bootcsum));
  if (existsSync(final)) return false;
  const tmp = `${final}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o755 });
  for (const [name, bytes] of [
    ['vmlinuz', boot.vmlinuz],
    ['initramfs.img', boot.initramfs],
  ] as const)
    writeFileDurable(join(tmp, name), bytes);
  fsyncDir(tmp);
  renameSync(tmp, final);
  fsyncDir(kernelsDir);
  return true;
}

/** Creates `path` (which must not exist) with `bytes`, synced before returning. */
export function writeFileDurable(path: string, bytes: Buffer): void {
  const fd = openSync(path, 'wx', 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Free bytes on the filesystem holding `path`, as root sees them (reserved blocks included). */
export function freeBytes(path: string): number {
  const s = statfsSync(path);
  return Number(s.bfree) * Number(s.bsize);
}
