// Finding a commit's kernel and initramfs, and installing them into /boot once per distinct
// content (`boot/arbor/STATEROOT-BOOTCSUM/`).
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { ArborError, CorruptionError, ioError } from '../common/errors.js';
import { fsyncDir } from '../common/fs-atomic.js';
import { StreamHasher } from '../common/hash.js';
import { type Checksum, type Repo, encodeFileHeader, isRegular, isSymlink, lookupPath } from '../repo/index.js';

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

/** A commit's kernel with its boot checksum: what a deployment installs into /boot, named by content. */
export interface BootFiles {
  /** BLAKE3 of the kernel's bytes followed by the initramfs's. */
  readonly bootcsum: string;
  readonly kernel: CommitKernel;
  readonly vmlinuzBytes: number;
  readonly initramfsBytes: number;
}

const CHUNK_BYTES = 1024 * 1024;

/**
 * Feeds a file object's content to `onChunk` in pieces of at most 1 MiB, then checks the object
 * against its checksum (E_OBJECT_CORRUPT). A kernel and its initramfs are tens of MiB: held whole,
 * they were the biggest part of a deploy's peak memory. Archive objects are compressed as a whole
 * and are read whole (a sysroot's repository is bare or bare-user). Returns the content's size.
 */
function streamFileObject(repo: Repo, checksum: Checksum, onChunk: (chunk: Buffer) => void): number {
  if (repo.mode === 'archive') {
    const { content } = repo.loadFile(checksum);
    onChunk(content);
    return content.length;
  }
  const path = repo.objectPath(checksum, 'file');
  const header = repo.readFileHeader(checksum, path);
  const hasher = new StreamHasher().update(encodeFileHeader(header));
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, header.size + 1));
  let total = 0;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    throw ioError('open', path, error);
  }
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, total);
      } catch (error) {
        throw ioError('read', path, error);
      }
      if (n === 0) break;
      hasher.update(chunk.subarray(0, n));
      onChunk(chunk.subarray(0, n));
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  const actual = hasher.digest();
  if (total !== header.size || actual !== checksum)
    throw new CorruptionError(
      'E_OBJECT_CORRUPT',
      `file ${checksum} is corrupt: ${total !== header.size ? `${total} bytes, header says ${header.size}` : `it hashes to ${actual}`}`,
      { hint: 'run `arbor fsck`' },
    );
  return total;
}

/** The boot checksum of a commit's kernel, read in chunks and verified, never held whole. */
export function bootChecksum(repo: Repo, kernel: CommitKernel): BootFiles {
  const hasher = new StreamHasher();
  const vmlinuzBytes = streamFileObject(repo, kernel.vmlinuz, (chunk) => hasher.update(chunk));
  const initramfsBytes = streamFileObject(repo, kernel.initramfs, (chunk) => hasher.update(chunk));
  return { bootcsum: hasher.digest(), kernel, vmlinuzBytes, initramfsBytes };
}

export const kernelDirName = (stateroot: string, bootcsum: string): string => `${stateroot}-${bootcsum}`;

/**
 * Copies kernel and initramfs into `kernelsDir/STATEROOT-BOOTCSUM/` unless already there: written
 * in a temporary directory, fsynced, renamed into place. The objects are verified again as they are
 * copied, so /boot gets the bytes the boot checksum names. Returns whether it copied.
 */
export function installKernel(repo: Repo, kernelsDir: string, stateroot: string, boot: BootFiles): boolean {
  const final = join(kernelsDir, kernelDirName(stateroot, boot.bootcsum));
  if (existsSync(final)) return false;
  const tmp = `${final}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o755 });
  for (const [name, checksum] of [
    ['vmlinuz', boot.kernel.vmlinuz],
    ['initramfs.img', boot.kernel.initramfs],
  ] as const) {
    const path = join(tmp, name);
    const fd = openSync(path, 'wx', 0o644);
    try {
      streamFileObject(repo, checksum, (chunk) => {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  fsyncDir(tmp);
  renameSync(tmp, final);
  fsyncDir(kernelsDir);
  return true;
}

/** Copies `from` to `path` (which must not exist) in the kernel, synced before returning. */
export function copyFileDurable(from: string, path: string): void {
  copyFileSync(from, path, constants.COPYFILE_EXCL);
  const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
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
