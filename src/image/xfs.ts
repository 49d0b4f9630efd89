// An xfs root filesystem: made on a loop device over the root partition, mounted, filled with a
// copy of the staged sysroot and given every inode's planned metadata through the kernel. Needs
// root and loop devices: xfsprogs before 6.17 cannot populate a filesystem from a directory.
import { chmodSync, existsSync, lchownSync, lutimesSync, mkdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError } from '../common/errors.js';
import { native } from '../common/native.js';
import type { InodeSpec } from './debugfs-script.js';
import type { RootFsTarget } from './root-fs.js';
import { runTool } from './tool.js';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const LOOP_CONTROL = '/dev/loop-control';

/**
 * Throws E_IMAGE_ROOT_FS_NEEDS_ROOT, naming the reason, unless this process can make an xfs root
 * filesystem: it runs as root and the kernel offers loop devices. Writes nothing.
 */
export function assertXfsBuildable(): void {
  const why =
    process.getuid?.() !== 0
      ? 'it needs root (a loop device, mkfs.xfs and a mount)'
      : !existsSync(LOOP_CONTROL)
        ? `it needs loop devices and '${LOOP_CONTROL}' is missing`
        : null;
  if (why !== null)
    throw new ArborError('E_IMAGE_ROOT_FS_NEEDS_ROOT', `cannot build an xfs root filesystem: ${why}`, {
      hint: 'run it as root on a machine with loop devices, or use --root-fs ext4 (built without either)',
    });
}

/** SOURCE is copied in with its hardlinks. */
export interface XfsOptions extends RootFsTarget {
  /** Every inode of SOURCE (planRootInodes), applied after the copy. */
  readonly specs: readonly InodeSpec[];
  /** An empty directory's path to make and mount the filesystem at. */
  readonly mountPoint: string;
  /** Called once the copy is done and the inodes' metadata is being applied. */
  readonly onInodes?: () => void;
}

/**
 * Makes the xfs filesystem of O (see the file comment). Whatever fails, the filesystem is
 * unmounted and the loop device detached before this returns or throws.
 */
export function makeXfs(o: XfsOptions): void {
  const loop = runTool('losetup', [
    '--find',
    '--show',
    '--offset',
    String(o.offsetBytes),
    '--sizelimit',
    String(o.sizeBytes),
    o.disk,
  ])
    .stdout.toString('utf8')
    .trim();
  let mounted = false;
  try {
    // -K: a fresh sparse file needs no discard. The label and UUID are the ext4 path's.
    runTool('mkfs.xfs', ['-q', '-f', '-K', '-L', o.label, '-m', `uuid=${o.uuid.toLowerCase()}`, loop]);
    mkdirSync(o.mountPoint);
    // nouuid: another build of the same inputs (the same UUID) may be mounted at this moment.
    runTool('mount', ['-t', 'xfs', '-o', 'nouuid', loop, o.mountPoint]);
    mounted = true;
    // One cp for the whole tree keeps its hardlinks (objects and the deployment's files). Xattrs
    // are left behind: applyInodeSpecs sets the ones each inode keeps, without the bare-user header.
    runTool('cp', ['-a', '--no-preserve=xattr', '--', `${o.source}/.`, o.mountPoint]);
    o.onInodes?.();
    applyInodeSpecs(o.mountPoint, o.source, o.specs);
  } finally {
    try {
      if (mounted) unmount(o.mountPoint);
    } finally {
      runTool('losetup', ['--detach', loop]);
    }
  }
}

/** umount, and a lazy one when the filesystem is busy (a killed copy's child may still hold it a moment). */
function unmount(path: string): void {
  try {
    runTool('umount', [path]);
  } catch (error) {
    runTool('umount', ['--lazy', path]);
    throw error;
  }
}

/**
 * Gives each inode under ROOT (the mounted copy of SOURCE) its spec: replaced by a device, fifo or
 * symlink first, then owner, mode (after the owner: chown clears setuid), xattrs (after the owner:
 * chown clears security.capability) and times. ctime is the kernel's clock: xfs images are not
 * reproducible byte for byte.
 */
function applyInodeSpecs(root: string, source: string, specs: readonly InodeSpec[]): void {
  for (const spec of specs) {
    const path = spec.path === '/' ? root : join(root, spec.path);
    const r = spec.replaceWith;
    if (r !== undefined) {
      unlinkSync(path);
      if (r.kind === 'symlink') symlinkSync(r.target, path);
      else if (r.kind === 'fifo') native.mknod(path, 0o010000 | (spec.mode & 0o7777), 0, 0);
      else native.mknod(path, (r.type === 'c' ? 0o020000 : 0o060000) | (spec.mode & 0o7777), r.major, r.minor);
    }
    lchownSync(path, spec.uid, spec.gid);
    const type = spec.mode & S_IFMT;
    if (type !== S_IFLNK) chmodSync(path, spec.mode & 0o7777);
    for (const x of keptXattrs(spec, source)) native.setxattr(path, x.name, x.value);
    lutimesSync(path, spec.mtime, spec.mtime);
  }
}

/**
 * The xattrs SPEC's inode ends with, as mkfs.ext4 -d and debugfs give them: the staged file's own
 * (none for a replaced inode) but the dropped ones, then the spec's, which win.
 */
function keptXattrs(spec: InodeSpec, source: string): { name: string; value: Buffer }[] {
  const stagedType = spec.staged.mode & S_IFMT;
  const staged =
    spec.replaceWith === undefined && (stagedType === S_IFDIR || stagedType === S_IFREG)
      ? native.lgetxattrs(spec.path === '/' ? source : join(source, spec.path))
      : [];
  const set = new Set(spec.xattrs.map((x) => x.name));
  const drop = new Set(spec.dropXattrs);
  return [
    ...staged.filter(([name]) => !drop.has(name) && !set.has(name)).map(([name, value]) => ({ name, value })),
    ...spec.xattrs,
  ];
}
