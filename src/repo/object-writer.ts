// Hashing a file from disk and writing one file object into a staging directory, per repository
// mode. Used by Transaction on the main thread and by commit workers (worker_threads) alike.
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  openSync,
  readFileSync,
  readSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { ArborError, errnoCode, present } from '../common/errors.js';
import { type Checksum, StreamHasher, hashBytes } from '../common/hash.js';
import { native } from '../common/native.js';
import type { RepoMode } from './config.js';
import type { DevinoRow } from './index-db.js';
import { ArchiveObjectInflater, InflateError, MAX_FILE_HEADER_BYTES } from './bounded-inflate.js';
import { zstdModule } from './zstd.js';
import {
  type FileHeader,
  S_IFREG,
  type Xattr,
  decodeFileHeader,
  encodeFileHeader,
  fileType,
  isDevice,
  isRegular,
  isSymlink,
  sortXattrs,
} from './objects/index.js';

/** In bare-user repositories the true header of a file object lives in this xattr. */
export const BARE_USER_XATTR = 'user.arbor.meta';

/** Regular files up to this size are hashed and written from one buffer; bigger ones stream. */
export const WHOLE_FILE_LIMIT = 4 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/** Where a file's content comes from when it is stored. */
/** Content to store: bytes, a file to copy, or (`owned`) a file of the caller's in the staging directory to move. */
export type ContentSource = { readonly buffer: Buffer } | { readonly path: string; readonly owned?: boolean };

/** What writing needs to know about the repository. */
export interface StagingContext {
  readonly mode: RepoMode;
  readonly staging: string;
}

/** Reads xattrs of a path without following symlinks, sorted; ENOTSUP filesystems have none. */
export function readXattrs(path: string): Xattr[] {
  return sortXattrs(native.lgetxattrs(path).map(([name, value]) => ({ name, value })));
}

/**
 * The file header of an existing path from its lstat `st` (bare objects, trees being committed,
 * what a sandboxed script made): `owner` replaces st's uid/gid, `xattrs` the path's own xattrs.
 */
export function headerFromDisk(
  path: string,
  st: { mode: number; uid: number; gid: number; rdev: number; size: number },
  options: { owner?: { uid: number; gid: number }; xattrs?: readonly Xattr[] } = {},
): FileHeader {
  const device = isDevice(st.mode);
  return {
    uid: options.owner?.uid ?? st.uid,
    gid: options.owner?.gid ?? st.gid,
    mode: st.mode,
    rdevMajor: device ? native.major(st.rdev) : 0,
    rdevMinor: device ? native.minor(st.rdev) : 0,
    symlinkTarget: isSymlink(st.mode) ? readlinkSync(path) : '',
    xattrs: options.xattrs ?? readXattrs(path),
    size: isRegular(st.mode) ? st.size : 0,
  };
}

/** One read buffer reused for every small file (per thread): per-file allocations kept peak RSS high. */
let scratch = Buffer.allocUnsafe(1024 * 1024);
/** Likewise for streaming big files: a fresh 1 MiB buffer per file lingered until GC. */
let chunk: Buffer | undefined;

/**
 * Hashes a regular file's encoded header and content. Files up to WHOLE_FILE_LIMIT are read once
 * and their content returned (a view of a per-thread buffer, valid until the next call); bigger ones
 * are streamed and must be copied from the path. Fails if the file's size changed while read.
 */
export function hashFile(
  path: string,
  headerBytes: Buffer,
  size: number,
  openedFd?: number,
): { checksum: Checksum; content?: Buffer } {
  const fd = openedFd ?? openFileForHashing(path);
  try {
    if (size <= WHOLE_FILE_LIMIT) {
      // Header and content side by side in one buffer, hashed in one call: a hasher object per file
      // costs ≈ 2 KiB of native memory V8 does not see, which inflated peak RSS.
      const start = headerBytes.length;
      const need = start + size + 1;
      if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
      headerBytes.copy(scratch, 0);
      const got = readContent(fd, size, start, 0);
      if (got !== size) throw changedWhileReading(path);
      return { checksum: hashBytes(scratch.subarray(0, start + got)), content: scratch.subarray(start, start + got) };
    }
    const hasher = new StreamHasher().update(headerBytes);
    chunk ??= Buffer.allocUnsafe(CHUNK);
    let total = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, total);
      if (n === 0) break;
      hasher.update(n === CHUNK ? chunk : chunk.subarray(0, n));
      total += n;
    }
    if (total !== size) throw changedWhileReading(path);
    return { checksum: hasher.digest() };
  } finally {
    if (openedFd === undefined) closeSync(fd);
  }
}

/** A regular file of at most WHOLE_FILE_LIMIT bytes, opened for hashing, with its encoded header. */
export interface SmallFile {
  readonly path: string;
  readonly fd: number;
  readonly headerBytes: Buffer;
  readonly size: number;
}

/** A file's content read and hashed (`content` is valid only during the callback), or why not. */
export type SmallFileHashed = { readonly checksum: Checksum; readonly content: Buffer } | { readonly error: unknown };

/** Files read in one submission fill about this many bytes (a bigger file gets one of its own). */
const GROUP_BYTES = 2 * 1024 * 1024;
/** Whether io_uring reads work in this thread: unknown until tried; ARBOR_IO_URING=0 turns them off. */
let batchReads: boolean | undefined = process.env.ARBOR_IO_URING === '0' ? false : undefined;

/**
 * Whether a file of `size` bytes about to be hashed should be read ahead (posix_fadvise) now:
 * files hashSmallFiles reads in one io_uring submission need not be.
 */
export function wantsReadahead(size: number): boolean {
  return size > WHOLE_FILE_LIMIT || batchReads === false;
}

/**
 * Hashes small files as hashFile does, calling `each(i, result)` for each in order. As many as
 * fit in a buffer of about GROUP_BYTES are read at once, by one io_uring submission (each file's
 * reads cost a system call and a device submission of their own otherwise); where io_uring is
 * unavailable, files are read one by one. Descriptors are the caller's to close.
 */
export function hashSmallFiles(
  files: readonly SmallFile[],
  each: (index: number, hashed: SmallFileHashed) => void,
): void {
  let first = 0;
  while (first < files.length) {
    // The group: files from `first` while they fit, at least one.
    let end = first;
    let bytes = 0;
    for (; end < files.length; end++) {
      const file = files[end] as SmallFile;
      const need = file.headerBytes.length + file.size + 1;
      if (end > first && bytes + need > GROUP_BYTES) break;
      bytes += need;
    }
    hashGroup(files, first, end, bytes, each);
    first = end;
  }
}

function hashGroup(
  files: readonly SmallFile[],
  first: number,
  end: number,
  bytes: number,
  each: (index: number, hashed: SmallFileHashed) => void,
): void {
  const count = end - first;
  if (scratch.length < bytes) scratch = Buffer.allocUnsafe(Math.max(bytes, scratch.length * 2));
  const fds = new Int32Array(count);
  const offsets = new Int32Array(count);
  const lengths = new Int32Array(count);
  const results = new Int32Array(count);
  let at = 0;
  for (let k = 0; k < count; k++) {
    const file = files[first + k] as SmallFile;
    file.headerBytes.copy(scratch, at);
    fds[k] = file.fd;
    offsets[k] = at + file.headerBytes.length;
    // One byte more than expected: getting it means the file grew.
    lengths[k] = file.size + 1;
    at += file.headerBytes.length + file.size + 1;
  }
  if (batchReads !== false) batchReads = native.readBatch(fds, scratch, offsets, lengths, results);
  for (let k = 0; k < count; k++) {
    const file = files[first + k] as SmallFile;
    const offset = offsets[k] as number;
    let hashed: SmallFileHashed;
    try {
      const got = batchReads
        ? finishRead(file, offset, results[k] as number)
        : readContent(file.fd, file.size, offset, 0);
      if (got !== file.size) throw changedWhileReading(file.path);
      hashed = {
        checksum: hashBytes(scratch.subarray(offset - file.headerBytes.length, offset + got)),
        content: scratch.subarray(offset, offset + got),
      };
    } catch (error) {
      hashed = { error };
    }
    each(first + k, hashed);
  }
}

/** What an io_uring read gave (`result`), completed by pread should it have stopped short. */
function finishRead(file: SmallFile, offset: number, result: number): number {
  if (result < 0) {
    // As Node reports a failed read: errno negative, code its name.
    const code = getSystemErrorName(result);
    throw Object.assign(new Error(`${code}: read '${file.path}'`), {
      code,
      errno: result,
      syscall: 'read',
      path: file.path,
    });
  }
  return result >= file.size ? result : readContent(file.fd, file.size, offset, result);
}

/**
 * Reads a file expected to hold `size` bytes into scratch at `offset`, on from byte `got` (what
 * was read already), and returns how many bytes it holds as far as that tells. It asks for one
 * byte more than expected: getting it means the file grew. A read that stops short at exactly
 * the expected size is at the end of the file (a regular file reads short only there): no second
 * read to see it return 0.
 */
function readContent(fd: number, size: number, offset: number, got: number): number {
  let total = got;
  for (;;) {
    const want = size + 1 - total;
    const n = readSync(fd, scratch, offset + total, want, total);
    if (n === 0) break;
    total += n;
    if (total > size || (n < want && total === size)) break;
  }
  return total;
}

/**
 * The encoded header of a file being committed (`what` names it, quoted), refused with
 * E_FILE_HEADER_TOO_LARGE past MAX_FILE_HEADER_BYTES: every pull refuses such an object, so a
 * commit must not make one.
 */
export function encodeCommittedHeader(header: FileHeader, what: string): Buffer {
  const bytes = encodeFileHeader(header);
  if (bytes.length > MAX_FILE_HEADER_BYTES)
    throw new ArborError(
      'E_FILE_HEADER_TOO_LARGE',
      `${what} has extended attributes and a symlink target that take ${bytes.length} bytes, more than the ${MAX_FILE_HEADER_BYTES} a file object's header may hold`,
      { hint: 'no pull would accept it: remove or shrink its extended attributes, then commit again' },
    );
  return bytes;
}

/** Opens a file of a tree for reading, refusing to follow a symlink swapped in since lstat. */
export function openFileForHashing(path: string): number {
  return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
}

function changedWhileReading(path: string): ArborError {
  return new ArborError('E_FILE_CHANGED', `'${path}' changed size while it was being read`, {
    hint: 'commit a tree that nothing is writing to',
  });
}

/**
 * Writes file object `checksum` as `staged` (a path in the staging directory) in the repository's
 * mode, and returns the devino row of the new inode (bare and bare-user). Throws EEXIST (as an errno
 * error) when another writer staged the same object first.
 */
export function writeStagedFile(
  ctx: StagingContext,
  staged: string,
  checksum: Checksum,
  header: FileHeader,
  headerBytes: Buffer,
  source: ContentSource,
): DevinoRow | undefined {
  switch (ctx.mode) {
    case 'archive': {
      const content =
        'buffer' in source ? source.buffer : isRegular(header.mode) ? readFileSync(source.path) : Buffer.alloc(0);
      writeFileSync(staged, zstdModule().compress(Buffer.concat([headerBytes, content])), { mode: 0o644, flag: 'wx' });
      return undefined;
    }
    case 'bare-user': {
      // Every object is a plain file we own; the true header (owner, type, full mode, xattrs) is in an xattr.
      const mode = isRegular(header.mode) ? (header.mode & 0o775) | 0o600 : 0o644;
      const fd = createRegular(staged, mode, isRegular(header.mode) ? source : { buffer: Buffer.alloc(0) });
      try {
        native.setxattr(fd, BARE_USER_XATTR, headerBytes);
        futimesSync(fd, 0, 0);
        return devinoRow(fstatSync(fd), checksum);
      } finally {
        closeSync(fd);
      }
    }
    case 'bare':
      return writeBare(ctx, staged, checksum, header, source);
  }
}

function writeBare(
  ctx: StagingContext,
  staged: string,
  checksum: Checksum,
  header: FileHeader,
  source: ContentSource,
): DevinoRow {
  if (fileType(header.mode) === S_IFREG) {
    // Made with its final permissions (a new file's descriptor is writable whatever its mode),
    // except setuid, setgid and sticky bits, set once the content is complete. What the file
    // was given (the umask, a setgid directory's group) is read back, and only what differs is
    // changed: for a tree of small files that spares two syscalls in nine per object.
    const perms = header.mode & 0o7777;
    const fd = createRegular(staged, perms & 0o7000 ? 0o600 : perms, source);
    try {
      const st = fstatSync(fd);
      // Order matters: chown clears setuid bits and file capabilities, so chmod and xattrs follow it.
      const chown = st.uid !== header.uid || st.gid !== header.gid;
      if (chown) fchownSync(fd, header.uid, header.gid);
      if (chown || (st.mode & 0o7777) !== perms) fchmodSync(fd, perms);
      for (const x of header.xattrs) native.setxattr(fd, x.name, x.value);
      futimesSync(fd, 0, 0);
      // What an lstat shows from now on (futimes changed the ctime only besides the mtime).
      return devinoRow(
        {
          dev: st.dev,
          ino: st.ino,
          mtimeMs: 0,
          size: st.size,
          mode: S_IFREG | perms,
          uid: header.uid,
          gid: header.gid,
        },
        checksum,
      );
    } catch (error) {
      throw bareWriteError(error, header);
    } finally {
      closeSync(fd);
    }
  }
  try {
    if (isSymlink(header.mode)) symlinkSync(header.symlinkTarget, staged);
    else native.mknod(staged, header.mode, header.rdevMajor, header.rdevMinor);
  } catch (error) {
    throw bareWriteError(error, header);
  }
  try {
    lchownSync(staged, header.uid, header.gid);
    // mknod applies the umask and chown clears setuid: set the exact bits last. The staged path
    // is a device node or fifo we just made in our own directory, so chmod cannot follow a link.
    if (!isSymlink(header.mode)) chmodSync(staged, header.mode & 0o7777);
    for (const x of header.xattrs) native.setxattr(staged, x.name, x.value);
    lutimesSync(staged, 0, 0);
    return devinoRow(lstatSync(staged), checksum);
  } catch (error) {
    throw bareWriteError(error, header);
  }
}

function createRegular(staged: string, mode: number, source: ContentSource): number {
  if ('path' in source) {
    // The kernel copies (copy_file_range): big contents never pass through JS buffers.
    if (source.owned) renameSync(source.path, staged);
    else copyFileSync(source.path, staged, constants.COPYFILE_EXCL);
    const fd = openSync(staged, constants.O_RDWR | constants.O_NOFOLLOW);
    fchmodSync(fd, mode);
    return fd;
  }
  const fd = openSync(staged, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    let written = 0;
    while (written < source.buffer.length) written += writeSync(fd, source.buffer, written);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

function devinoRow(
  st: { dev: number; ino: number; mtimeMs: number; size: number; mode: number; uid: number; gid: number },
  checksum: Checksum,
): DevinoRow {
  return {
    dev: st.dev,
    ino: st.ino,
    mtime: st.mtimeMs,
    size: st.size,
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    checksum,
  };
}

function bareWriteError(error: unknown, header: FileHeader): Error {
  if (errnoCode(error) === 'EPERM') {
    return new ArborError(
      'E_PERMISSION',
      `storing a file owned by ${header.uid}:${header.gid} with mode ${(header.mode & 0o7777).toString(8)} needs root in a bare repository`,
      {
        cause: error,
        hint: 'run as root, or use a bare-user repository (arbor init --mode bare-user)',
      },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Content up to this size is kept in memory while an archive object is verified; more goes to a file. */
const IN_MEMORY_CONTENT = 8 * 1024 * 1024;
/** Compressed bytes read from a spilled object per step. */
const READ_STEP = 1024 * 1024;

/** A verified archive object: its header, and its content in memory (null when at `contentPath` or not kept). */
interface OpenedArchiveObject {
  readonly header: FileHeader;
  readonly content: Buffer | null;
}

/**
 * Opens an archive-mode file object received from elsewhere, inflating it in bounded steps: its
 * header must arrive within MAX_FILE_HEADER_BYTES and say `contentSize` bytes (the size its
 * dirtree records), no content byte past that is produced, and the whole must hash to `checksum`.
 * Content up to IN_MEMORY_CONTENT is returned; bigger content is written to `contentPath` when
 * one is given (bare repositories need it) and only hashed otherwise. Memory stays bounded by
 * those constants whatever the frame claims. Returns what is wrong instead of throwing.
 */
function openArchiveObject(
  input: ContentSource,
  checksum: Checksum,
  contentSize: number,
  contentPath: string | null,
): OpenedArchiveObject | { problem: string } {
  const hasher = new StreamHasher();
  const kept: Buffer[] | null = contentSize <= IN_MEMORY_CONTENT ? [] : null;
  let fd: number | undefined;
  const inflater = new ArchiveObjectInflater(
    contentSize,
    {
      header: (bytes) => {
        hasher.update(bytes);
        if (kept === null && contentPath !== null)
          fd = openSync(contentPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      },
      content: (chunk) => {
        hasher.update(chunk);
        if (kept !== null) kept.push(Buffer.from(chunk));
        else if (fd !== undefined) for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at);
      },
    },
    `file ${checksum}`,
  );
  try {
    if ('buffer' in input) inflater.push(input.buffer);
    else readInSteps(input.path, (chunk) => inflater.push(chunk));
    const header = inflater.end();
    const actual = hasher.digest();
    if (actual !== checksum) return { problem: `hashes to ${actual}` };
    return { header, content: kept === null ? null : Buffer.concat(kept, header.size) };
  } catch (error) {
    if (error instanceof InflateError) return { problem: error.message };
    throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function readInSteps(path: string, onChunk: (chunk: Buffer) => void): void {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    const chunk = Buffer.allocUnsafe(READ_STEP);
    for (let n = readSync(fd, chunk, 0, READ_STEP, null); n > 0; n = readSync(fd, chunk, 0, READ_STEP, null))
      onChunk(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/**
 * Verifies a fetched archive object (see openArchiveObject) and writes it as `checksum` into the
 * staging directory in the repository's mode: archive repositories keep the server's compressed
 * bytes (a spilled file is moved), bare ones store the content. Returns the devino row to adopt,
 * or what is wrong with the object; the spilled file is consumed either way.
 */
export function stageArchiveObject(
  ctx: StagingContext,
  input: ContentSource,
  checksum: Checksum,
  contentSize: number,
): { devino: DevinoRow | undefined } | { problem: string } {
  // Random: a killed pull may have left a file of this object's name behind (staging is salvaged).
  const contentPath =
    ctx.mode === 'archive' ? null : join(ctx.staging, `content-${checksum}-${Math.random().toString(36).slice(2)}`);
  const staged = join(ctx.staging, `${checksum}.file`);
  try {
    const opened = openArchiveObject(input, checksum, contentSize, contentPath);
    if ('problem' in opened) return opened;
    if (ctx.mode === 'archive') {
      if ('buffer' in input) writeFileSync(staged, input.buffer, { mode: 0o644, flag: 'wx' });
      else renameSync(input.path, staged);
      return { devino: undefined };
    }
    const content: ContentSource =
      opened.content !== null
        ? { buffer: opened.content }
        : isRegular(opened.header.mode)
          ? { path: present(contentPath ?? undefined, 'the staged content path') }
          : { buffer: Buffer.alloc(0) };
    return { devino: writeStagedFile(ctx, staged, checksum, opened.header, encodeFileHeader(opened.header), content) };
  } finally {
    if (contentPath !== null) rmSync(contentPath, { force: true });
    if ('path' in input) rmSync(input.path, { force: true });
  }
}

/** An object the fetch helper inflated, as the root side received it: nothing of it is trusted yet. */
export interface ReceivedObject {
  readonly headerBytes: Buffer;
  /** The content in memory, or a staging file holding it (consumed either way). */
  readonly content: ContentSource;
  /** What header ‖ content hashed to as it arrived. */
  readonly hashed: Checksum;
}

/**
 * Stages an object the fetch helper inflated once it is known good: it must have hashed to
 * `checksum`, and only then is its header decoded, strictly (the helper's split between header and
 * content is believed no more than its bytes), and its size compared with `contentSize` (the
 * dirtree's). Archive repositories compress it again. Returns the devino row to adopt, or what is
 * wrong with it; a content file is removed either way.
 */
export function stageReceivedObject(
  ctx: StagingContext,
  checksum: Checksum,
  received: ReceivedObject,
  contentSize: number,
): { devino: DevinoRow | undefined } | { problem: string } {
  try {
    if (received.hashed !== checksum) return { problem: `hashes to ${received.hashed}` };
    let header: FileHeader;
    try {
      header = decodeFileHeader(received.headerBytes, `file ${checksum}`);
    } catch (error) {
      return { problem: `has a header that does not decode: ${(error as Error).message}` };
    }
    if (header.size !== contentSize)
      return { problem: `has a header saying ${header.size} content bytes, but its dirtree records ${contentSize}` };
    const staged = join(ctx.staging, `${checksum}.file`);
    return { devino: writeStagedFile(ctx, staged, checksum, header, received.headerBytes, received.content) };
  } finally {
    if ('path' in received.content) rmSync(received.content.path, { force: true });
  }
}
