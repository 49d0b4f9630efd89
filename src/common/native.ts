// Loads the small native addon (native/arbor_native.c) for syscalls Node 20 lacks:
// no-follow xattrs, mknod, syncfs, rename without replacing, batched reads (io_uring). Why hand-written: docs/dependencies.md.
import { createRequire } from 'node:module';

export interface NativeAddon {
  /** All xattrs of a path without following a final symlink, as [name, value] pairs. */
  lgetxattrs(path: string): [string, Buffer][];
  fgetxattrs(fd: number): [string, Buffer][];
  /** lsetxattr on a path (never follows a final symlink) or fsetxattr on an fd. */
  setxattr(target: string | number, name: string, value: Buffer): void;
  /** Makes a device node or fifo; mode carries the type bits. */
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** Flushes the whole filesystem that holds the directory `path`. */
  syncfs(path: string): void;
  /**
   * renameat2(RENAME_NOREPLACE): true when renamed, false when `to` exists (nothing changed).
   * Throws EINVAL where the filesystem lacks the flag.
   */
  renameNoReplace(from: string, to: string): boolean;
  /** posix_fadvise(WILLNEED) on a whole file: asynchronous readahead; advisory, never fails. */
  willneed(fd: number): void;
  /**
   * Reads file `fds[i]` from its start, up to `lengths[i]` bytes, into `buffer` at `offsets[i]`,
   * all in one io_uring submission; `results[i]` gets the byte count (short at the end of the
   * file) or -errno. False, with nothing read, where io_uring is unavailable.
   */
  readBatch(fds: Int32Array, buffer: Buffer, offsets: Int32Array, lengths: Int32Array, results: Int32Array): boolean;
  /** flock(2): true when taken, false when busy and `wait` is false. */
  flock(fd: number, exclusive: boolean, wait: boolean): boolean;
  major(rdev: number): number;
  minor(rdev: number): number;
}

const require = createRequire(import.meta.url);

function loadAddon(): NativeAddon {
  // Two levels below the package: the bundle (dist/cli) and the sources tests run (src/common); three:
  // tsc's output (dist/src/common). Nearest first, so the bundle never finds a build/ above the package.
  for (const relative of ['../../build/Release/arbor_native.node', '../../../build/Release/arbor_native.node']) {
    try {
      return require(relative) as NativeAddon;
    } catch (error) {
      if ((error as { code?: string }).code !== 'MODULE_NOT_FOUND') throw error;
    }
  }
  throw new Error('arbor_native.node is not built: run `npm install` (it runs node-gyp)');
}

export const native: NativeAddon = loadAddon();
