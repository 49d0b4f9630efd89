// The debugfs script that gives every inode of a root filesystem made by `mkfs.ext4 -d` the
// owner, mode, xattrs and times it must have (mkfs copies the staging files' own, which belong to
// whoever built the image and to the moment they were made). Pure: the caller writes it to a file.
import { UsageError } from '../common/errors.js';
import type { Xattr } from '../repo/index.js';

/** What one inode must look like in the image. */
export interface InodeSpec {
  /** Absolute path in the filesystem (`/` for its root). */
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  /** st_mode as it must be: type bits and permissions (setuid, setgid and sticky included). */
  readonly mode: number;
  /** Xattrs to set (values are bytes). */
  readonly xattrs: readonly Xattr[];
  /** Xattr names to remove (the bare-user header of repository objects). */
  readonly dropXattrs: readonly string[];
  /** atime and mtime, seconds since the epoch; ctime is the image's time. */
  readonly mtime: number;
  /**
   * What mkfs copied from the staged file: fields that already match are not written again (a
   * line costs 13 to 150 µs; a tree has hundreds of thousands). atime is always written, since
   * mkfs reading the file may move it.
   */
  readonly staged: {
    readonly uid: number;
    readonly gid: number;
    readonly mode: number;
    readonly mtime: number;
    /** Bytes: what mkfs's inode of a regular file or symlink holds. */
    readonly size: number;
  };
  /**
   * Replace the staged regular file with another kind of inode first: a bare-user repository
   * stores symlinks and device nodes as plain files, a bare one as what they are.
   */
  readonly replaceWith?:
    | { readonly kind: 'symlink'; readonly target: string }
    | { readonly kind: 'device'; readonly type: 'c' | 'b'; readonly major: number; readonly minor: number }
    | { readonly kind: 'fifo' };
}

/**
 * Quotes a path or value for debugfs's command parser, which splits on spaces and understands
 * double quotes only: names holding a quote or a line break cannot be passed (E_IMAGE_PATH_UNSUPPORTED).
 */
export function quoteDebugfs(text: string): string {
  if (/["\n\r\0]/.test(text)) {
    throw new UsageError(
      'E_IMAGE_PATH_UNSUPPORTED',
      `'${JSON.stringify(text).slice(1, -1)}' holds a double quote or a line break, which debugfs cannot address`,
      { hint: 'rename the file in the commit' },
    );
  }
  return `"${text}"`;
}

/**
 * The commands for SPECS, in order. `valueFile(bytes)` names a file holding an xattr value
 * (debugfs reads binary values only from files). `ctime` (seconds) goes on every inode last, so
 * nothing the earlier commands do leaves a time behind.
 */
export function renderDebugfsScript(
  specs: readonly InodeSpec[],
  ctime: number,
  valueFile: (value: Buffer) => string,
): string {
  const lines: string[] = [];
  for (const s of specs) {
    const p = quoteDebugfs(s.path);
    const r = s.replaceWith;
    if (r !== undefined) {
      lines.push(`rm ${p}`);
      if (r.kind === 'symlink') lines.push(`symlink ${p} ${quoteDebugfs(r.target)}`);
      else if (r.kind === 'fifo') lines.push(`mknod ${p} p`);
      else lines.push(`mknod ${p} ${r.type} ${r.major} ${r.minor}`);
    }
    // A replaced inode is new: none of the staged file's xattrs are on it.
    if (r === undefined) for (const name of s.dropXattrs) lines.push(`ea_rm ${p} ${quoteDebugfs(name)}`);
    for (const x of s.xattrs) lines.push(`ea_set -f ${quoteDebugfs(valueFile(x.value))} ${p} ${quoteDebugfs(x.name)}`);
    // The script depends on who built the image (their uid is in the staged files): the caller
    // resets the superblock's count of bytes written afterwards. `mode` carries the type bits too.
    // crtime is the image's time already (E2FSPROGS_FAKE_TIME). debugfs makes a symlink
    // root-owned, mode 0777, every time the image's; devices and fifos get everything set.
    const staged = r === undefined ? s.staged : r.kind === 'symlink' ? createdSymlink(ctime) : null;
    if (staged?.uid !== s.uid) lines.push(`sif ${p} uid ${s.uid}`);
    if (staged?.gid !== s.gid) lines.push(`sif ${p} gid ${s.gid}`);
    if (staged?.mode !== s.mode) lines.push(`sif ${p} mode 0${s.mode.toString(8)}`);
    if (staged?.mtime !== s.mtime) lines.push(`sif ${p} mtime @${s.mtime}`);
    lines.push(`sif ${p} atime @${s.mtime}`, `sif ${p} ctime @${ctime}`);
    if (staged === null) lines.push(`sif ${p} crtime @${ctime}`);
  }
  lines.push('');
  return lines.join('\n');
}

/** The inode `symlink` makes under E2FSPROGS_FAKE_TIME=EPOCH (libext2fs ext2fs_symlink). */
function createdSymlink(epoch: number): InodeSpec['staged'] {
  return { uid: 0, gid: 0, mode: 0o120777, mtime: epoch, size: 0 };
}
