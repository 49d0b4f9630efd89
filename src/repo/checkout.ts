// Checking a commit out into a directory: hardlinks to objects where the repository allows,
// copies otherwise. Only names from verified dirtrees are joined, and every directory entered
// is one we made or one lstat proved a real directory, so no symlink leads outside DEST.
import {
  type Stats,
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fchownSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { ArborError, CorruptionError, UsageError, errnoCode, ioError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { native } from '../common/native.js';
import { favourMemory } from '../common/v8-heap.js';
import {
  childPath,
  type DirMeta,
  type DirTree,
  type FileHeader,
  isDevice,
  isRegular,
  isSymlink,
} from './objects/index.js';
import { type FailedLink, type LinkPool, createLinkPool } from './link-pool.js';
import { type Repo, WHOLE_FILE_LIMIT } from './store.js';

type CheckoutMode = 'auto' | 'hardlink' | 'copy';

export interface CheckoutOptions {
  /** auto: hardlink when the repository and filesystem allow, else copy. */
  readonly mode?: CheckoutMode;
  /** Check out only this path of the commit (a directory or a single file). */
  readonly subpath?: string;
  /** Write into an existing, non-empty destination, replacing files in the way. */
  readonly union?: boolean;
  /** Ignore owners and xattrs and drop setuid/setgid: what an unprivileged user can do. */
  readonly userMode?: boolean;
  /**
   * User mode from a bare-user repository: hardlink every regular object as stored (owner-readable,
   * its true mode in its xattr) instead of copying those whose mode differs. For a tree whose
   * true metadata is applied afterwards (a disk image's sysroot), so it links like a bare checkout.
   */
  readonly linkAsStored?: boolean;
  readonly onProgress?: (stats: Readonly<CheckoutStats>) => void;
}

export interface CheckoutStats {
  files: number;
  dirs: number;
  hardlinked: number;
  copiedBytes: number;
}

/** What a path inside a commit is: a directory (tree + meta) or a file object. */
export type TreeEntry =
  | { kind: 'dir'; tree: Checksum; meta: Checksum }
  | { kind: 'file'; checksum: Checksum; size: number };

/** Looks up `subpath` ("/usr/bin", "" for the root) through dirtrees, never through the filesystem. */
export function lookupPath(repo: Repo, commit: Checksum, subpath: string): TreeEntry {
  const c = repo.readCommit(commit);
  let entry: TreeEntry = { kind: 'dir', tree: c.rootTree, meta: c.rootMeta };
  const parts = subpath.split('/').filter((p) => p !== '' && p !== '.');
  for (const [i, part] of parts.entries()) {
    if (entry.kind !== 'dir') throw notFound(parts.slice(0, i).join('/'), commit, 'is not a directory');
    const tree = repo.readDirTree(entry.tree);
    const dir = tree.dirs.find((d) => d.name === part);
    const file = tree.files.find((f) => f.name === part);
    if (dir) entry = { kind: 'dir', tree: dir.tree, meta: dir.meta };
    else if (file) entry = { kind: 'file', checksum: file.checksum, size: file.size };
    else throw notFound(parts.slice(0, i + 1).join('/'), commit, 'does not exist');
  }
  return entry;
}

function notFound(path: string, commit: Checksum, what: string): ArborError {
  return new ArborError('E_PATH_NOT_FOUND', `'/${path}' ${what} in commit ${commit}`);
}

const PROGRESS_EVERY = 512;

/** Checks `commit` (or its `subpath`) out at `dest`, which must be absent or empty unless `union`. */
export async function checkoutCommit(
  repo: Repo,
  commit: Checksum,
  dest: string,
  options: CheckoutOptions = {},
): Promise<CheckoutStats> {
  const entry = lookupPath(repo, commit, options.subpath ?? '');
  return new Checkout(repo, dest, options).run(entry);
}

/**
 * Checks out a tree given by its root dirtree and dirmeta, such as one a TreeEditor wrote and no
 * commit names yet, at `dest` (absent or empty unless `union`). Its objects must be in the
 * repository, not only staged in a transaction (`Transaction.checkpoint()` publishes them).
 */
export async function checkoutTree(
  repo: Repo,
  root: { readonly tree: Checksum; readonly meta: Checksum },
  dest: string,
  options: CheckoutOptions = {},
): Promise<CheckoutStats> {
  return new Checkout(repo, dest, options).run({ kind: 'dir', tree: root.tree, meta: root.meta });
}

/**
 * Brings a checkout of `from` (made by checkoutTree, owners and all) to `to`, touching only what
 * differs: subtrees with equal dirtree and dirmeta checksums are skipped unread. For a cached
 * checkout that follows a changing tree (the compose sandbox's lower layer).
 */
export function updateCheckout(
  repo: Repo,
  dest: string,
  from: { readonly tree: Checksum; readonly meta: Checksum },
  to: { readonly tree: Checksum; readonly meta: Checksum },
  options: CheckoutOptions = {},
): CheckoutStats {
  const checkout = new Checkout(repo, dest, { ...options, union: true });
  checkout.update(from, to, dest);
  return checkout.stats;
}

class Checkout {
  readonly stats: CheckoutStats = { files: 0, dirs: 0, hardlinked: 0, copiedBytes: 0 };
  readonly #repo: Repo;
  readonly #dest: string;
  readonly #options: CheckoutOptions;
  readonly #isRoot = process.getuid?.() === 0;
  /** Decoded dirmeta by checksum: a whole OS tree has only a handful of distinct ones. */
  readonly #metas = new Map<Checksum, DirMeta>();
  /** With a link pool, directory metadata waits until every link below it is made. */
  readonly #deferredMeta: [string, DirMeta][] = [];
  #pool: LinkPool | undefined;
  #link: boolean;

  constructor(repo: Repo, dest: string, options: CheckoutOptions) {
    this.#repo = repo;
    this.#dest = dest;
    this.#options = options;
    const mode = options.mode ?? 'auto';
    // Hardlinks give the exact result only when the object inode carries the true metadata:
    // bare objects do; bare-user objects carry it in an xattr, fine only when owners are ignored.
    const linkable =
      repo.mode === 'bare'
        ? this.#isRoot || options.userMode === true
        : repo.mode === 'bare-user' && options.userMode === true;
    if (mode === 'hardlink' && !linkable) {
      throw new UsageError(
        'E_CHECKOUT_HARDLINK',
        `cannot hardlink from a ${repo.mode} repository${repo.mode === 'archive' ? '' : ' without --user-mode'}`,
        {
          hint:
            repo.mode === 'archive' ? 'archive objects are compressed: use --copy' : 'add --user-mode, or use --copy',
        },
      );
    }
    this.#link = mode !== 'copy' && linkable;
  }

  async run(entry: TreeEntry): Promise<CheckoutStats> {
    favourMemory();
    if (entry.kind === 'file') {
      this.#prepareFileTarget(this.#dest);
      this.#writeFile(entry.checksum, entry.size, this.#dest);
      return this.stats;
    }
    let st: Stats | undefined;
    try {
      st = lstatSync(this.#dest);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw ioError('inspect', this.#dest, error);
    }
    if (st) {
      if (!st.isDirectory()) throw new UsageError('E_CHECKOUT_TARGET', `'${this.#dest}' exists and is not a directory`);
      if (!this.#options.union && readdirSync(this.#dest).length > 0) {
        throw new UsageError('E_CHECKOUT_NOT_EMPTY', `'${this.#dest}' is not empty`, {
          hint: 'check out into a new directory, or add --union to write over it',
        });
      }
    } else {
      try {
        mkdirSync(this.#dest, 0o700);
      } catch (error) {
        throw ioError('create', this.#dest, error);
      }
    }
    // Bare hardlink checkouts are mostly link(2) calls: spread them over worker threads.
    if (this.#link && this.#repo.mode === 'bare' && !this.#options.userMode) this.#pool = createLinkPool();
    try {
      // Wait for the workers first: what their start does to the process (a young generation allowed
      // to grow again: v8-heap.ts) is undone before the walk makes its garbage.
      await this.#pool?.ready();
      // The walk pauses while the workers are behind: queued links hold two paths each, and a walk
      // run to its end before them held every path of the tree (33 MiB for 56k files).
      for (const _ of this.#walkDir(entry.tree, entry.meta, this.#dest)) await this.#pool?.lessBusy();
      if (this.#pool) {
        for (const failed of await this.#pool.drain()) this.#linkFailed(failed);
        for (const [path, meta] of this.#deferredMeta) this.#applyDirMeta(path, meta);
      }
    } finally {
      await this.#pool?.close();
    }
    return this.stats;
  }

  /** See updateCheckout. Runs without the link pool: an update touches few files. */
  update(
    from: { readonly tree: Checksum; readonly meta: Checksum },
    to: { readonly tree: Checksum; readonly meta: Checksum },
    path: string,
  ): void {
    if (from.tree === to.tree && from.meta === to.meta) return;
    if (from.tree !== to.tree) {
      const a = this.#repo.readDirTree(from.tree);
      const b = this.#repo.readDirTree(to.tree);
      const oldFiles = new Map(a.files.map((f) => [f.name, f.checksum]));
      const oldDirs = new Map(a.dirs.map((d) => [d.name, d]));
      const newNames = new Set([...b.files.map((f) => f.name), ...b.dirs.map((d) => d.name)]);
      const remove = (target: string): void => {
        try {
          rmSync(target, { recursive: true, force: true });
        } catch (error) {
          throw ioError('remove', target, error);
        }
      };
      for (const name of [...oldFiles.keys(), ...oldDirs.keys()]) if (!newNames.has(name)) remove(join(path, name));
      for (const file of b.files) {
        if (oldFiles.get(file.name) === file.checksum) continue;
        const target = join(path, file.name);
        remove(target);
        this.#writeFile(file.checksum, file.size, target);
      }
      for (const dir of b.dirs) {
        const target = join(path, dir.name);
        const old = oldDirs.get(dir.name);
        if (old !== undefined) {
          this.update(old, dir, target);
          continue;
        }
        remove(target);
        this.#makeDir(target);
        this.#writeDir(dir.tree, dir.meta, target);
      }
    }
    this.#applyDirMeta(path, this.#readDirMeta(to.meta));
  }

  /** A link a worker could not make: copy instead (another filesystem) or report. */
  #linkFailed(failed: FailedLink): void {
    const cause = Object.assign(new Error(failed.message), { code: failed.code });
    const checksum = checksumOfObjectPath(failed.object);
    if (failed.code === 'ENOENT')
      throw new CorruptionError('E_OBJECT_MISSING', `file ${checksum} is missing`, { cause, hint: 'run `arbor fsck`' });
    if ((failed.code === 'EXDEV' || failed.code === 'EMLINK') && this.#options.mode !== 'hardlink') {
      this.stats.hardlinked--;
      this.#copyFile(checksum, this.#repo.readFileHeader(checksum), failed.object, failed.target);
      return;
    }
    throw ioError('hardlink into', failed.target, cause);
  }

  #readDirMeta(checksum: Checksum): DirMeta {
    let meta = this.#metas.get(checksum);
    if (!meta) {
      meta = this.#repo.readDirMeta(checksum);
      this.#metas.set(checksum, meta);
    }
    return meta;
  }

  #applyDirMeta(path: string, meta: DirMeta): void {
    try {
      if (!this.#options.userMode) {
        if (this.#isRoot) lchownSync(path, meta.uid, meta.gid);
        for (const x of meta.xattrs) native.setxattr(path, x.name, x.value);
      }
      chmodSync(path, this.#permissions(meta.mode));
    } catch (error) {
      throw ioError('set owner and mode of', path, error);
    }
  }

  #writeDir(treeChecksum: Checksum, metaChecksum: Checksum, path: string): void {
    for (const _ of this.#walkDir(treeChecksum, metaChecksum, path));
  }

  /** Writes a directory and what is below it; yields whenever the link pool is backlogged. */
  *#walkDir(treeChecksum: Checksum, metaChecksum: Checksum, path: string): Generator<void> {
    const tree: DirTree = this.#repo.readDirTree(treeChecksum);
    this.#readAhead(tree);
    const meta = this.#readDirMeta(metaChecksum);
    for (const file of tree.files) {
      const target = childPath(path, file.name);
      if (this.#options.union) this.#prepareFileTarget(target);
      this.#writeFile(file.checksum, file.size, target);
      if (this.#pool?.backlogged) yield;
    }
    for (const dir of tree.dirs) {
      const target = childPath(path, dir.name);
      this.#makeDir(target);
      yield* this.#walkDir(dir.tree, dir.meta, target);
    }
    // Owner, mode and xattrs last: a read-only directory mode would stop us creating children.
    if (this.#pool) this.#deferredMeta.push([path, meta]);
    else this.#applyDirMeta(path, meta);
    this.stats.dirs++;
  }

  /**
   * Asks the kernel to read the subdirectories' dirtrees ahead (posix_fadvise WILLNEED): the walk
   * reads them one at a time, and on a cold cache each such read waited for the disk in turn.
   */
  #readAhead(tree: DirTree): void {
    if (tree.dirs.length < 2) return; // the only subdirectory is read next anyway
    for (const dir of tree.dirs) {
      let fd: number | undefined;
      try {
        fd = openSync(this.#repo.objectPath(dir.tree, 'dirtree'), 'r');
        native.willneed(fd);
      } catch {
        // Advisory only: reading the dirtree itself reports a missing or unreadable object.
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    }
  }

  #makeDir(path: string): void {
    try {
      mkdirSync(path, 0o700);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST' || !this.#options.union) throw ioError('create directory', path, error);
      // Union: reuse a real directory; replace anything else (a symlink here could lead outside DEST).
      if (!lstatSync(path).isDirectory()) {
        unlinkSync(path);
        mkdirSync(path, 0o700);
      }
    }
  }

  /** In union mode a file replaces whatever non-directory is in its way. */
  #prepareFileTarget(path: string): void {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw ioError('inspect', path, error);
    }
    if (st.isDirectory()) throw new UsageError('E_CHECKOUT_TARGET', `'${path}' is a directory in the way of a file`);
    if (!this.#options.union)
      throw new UsageError('E_CHECKOUT_TARGET', `'${path}' already exists`, { hint: 'add --union to replace it' });
    unlinkSync(path);
  }

  #permissions(mode: number): number {
    // Without ownership, setuid/setgid would hand the caller's identity to whoever runs the file.
    return this.#options.userMode ? mode & 0o1777 : mode & 0o7777;
  }

  /** Writes file object `checksum`, whose dirtree records `size` content bytes, at `target`. */
  #writeFile(checksum: Checksum, size: number, target: string): void {
    this.stats.files++;
    if (this.stats.files % PROGRESS_EVERY === 0) this.#options.onProgress?.(this.stats);
    const object = this.#repo.objectPath(checksum, 'file');
    // Bare objects carry the true metadata: link them unread, unless user mode must drop setuid/setgid.
    if (this.#pool) {
      this.#pool.link(object, target);
      this.stats.hardlinked++;
      return;
    }
    if (this.#link && this.#repo.mode === 'bare' && !this.#options.userMode && this.#tryLink(object, target)) return;
    const header = this.#repo.readFileHeader(checksum);
    // The header is read anyway: an object of another size than its tree records is not the one it names.
    if (header.size !== size)
      throw new CorruptionError(
        'E_OBJECT_CORRUPT',
        `file ${checksum} is corrupt: it holds ${header.size} content bytes, its dirtree records ${size}`,
      );
    // Otherwise link only an object whose own mode is what a copy would get: bare-user objects are
    // stored masked (and umask-dependent), and user mode drops setuid/setgid.
    const linkable =
      this.#link &&
      isRegular(header.mode) &&
      (this.#options.linkAsStored === true || (lstatSync(object).mode & 0o7777) === this.#permissions(header.mode));
    if (linkable && this.#tryLink(object, target)) return;
    try {
      this.#copyFile(checksum, header, object, target);
    } catch (error) {
      if (error instanceof ArborError) throw error;
      throw ioError('write', target, error);
    }
  }

  #tryLink(object: string, target: string): boolean {
    try {
      // link(2) does not follow a symlink object: the checkout gets the symlink itself.
      linkSync(object, target);
      this.stats.hardlinked++;
      return true;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EXDEV' || code === 'EMLINK') {
        if (this.#options.mode === 'hardlink') throw ioError('hardlink into', target, error);
        if (code === 'EXDEV') this.#link = false; // another filesystem: copy from now on
        return false;
      }
      if (code === 'ENOENT') {
        throw new CorruptionError('E_OBJECT_MISSING', `file ${checksumOfObjectPath(object)} is missing`, {
          cause: error,
          hint: 'run `arbor fsck`',
        });
      }
      throw ioError('hardlink into', target, error);
    }
  }

  #copyFile(checksum: Checksum, header: FileHeader, object: string, target: string): void {
    const userMode = this.#options.userMode === true;
    if (isSymlink(header.mode)) {
      symlinkSync(header.symlinkTarget, target);
      if (!userMode && this.#isRoot) lchownSync(target, header.uid, header.gid);
      if (!userMode) for (const x of header.xattrs) native.setxattr(target, x.name, x.value);
      return;
    }
    if (!isRegular(header.mode)) {
      // Device nodes need CAP_MKNOD; a fifo is made like any file, so user mode keeps it.
      if (isDevice(header.mode) && (userMode || !this.#isRoot)) {
        throw new ArborError('E_CHECKOUT_UNSUPPORTED', `'${target}' is a device node; creating it needs root`, {
          hint: 'check out as root, or leave it out with --subpath',
        });
      }
      native.mknod(target, header.mode, header.rdevMajor, header.rdevMinor);
      if (!userMode && this.#isRoot) lchownSync(target, header.uid, header.gid);
      chmodSync(target, this.#permissions(header.mode)); // a device node or fifo we just made: no link to follow
      if (!userMode) for (const x of header.xattrs) native.setxattr(target, x.name, x.value);
      return;
    }
    let fd: number;
    if (header.size > WHOLE_FILE_LIMIT && this.#repo.mode !== 'archive') {
      const actual = this.#repo.computeFileChecksum(checksum);
      if (actual !== checksum)
        throw new CorruptionError('E_OBJECT_CORRUPT', `file ${checksum} is corrupt: it hashes to ${actual}`);
      copyFileSync(object, target, constants.COPYFILE_EXCL);
      fd = openSync(target, constants.O_WRONLY | constants.O_NOFOLLOW);
    } else {
      // Copies read the content anyway, so they verify it too (hardlink checkouts trust objects, like ostree; fsck checks).
      const { content } = this.#repo.loadFile(checksum);
      fd = openSync(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      let written = 0;
      while (written < content.length) written += writeSync(fd, content, written);
    }
    try {
      if (!userMode && this.#isRoot) fchownSync(fd, header.uid, header.gid);
      fchmodSync(fd, this.#permissions(header.mode));
      if (!userMode) for (const x of header.xattrs) native.setxattr(fd, x.name, x.value);
    } finally {
      closeSync(fd);
    }
    this.stats.copiedBytes += header.size;
  }
}

/** objects/XX/REST.file → XXREST */
function checksumOfObjectPath(path: string): Checksum {
  const [name = '', prefix = ''] = path.split('/').reverse();
  return `${prefix}${name.split('.')[0]}` as Checksum;
}
