// An /etc tree as the /etc merge sees it: every path's type, mode, owner, xattrs and content
// digest (never the content itself), and reading one from disk (lstat, no-follow xattrs).
import {
  type Stats,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { ArborError, errnoCode, ioError } from '../common/errors.js';
import { StreamHasher } from '../common/hash.js';
import { native } from '../common/native.js';

/** The path of the tree's root (the /etc directory itself); others are `a`, `a/b` (no leading `/` or `./`). */
export const ETC_ROOT = '.';

export type EtcEntryType = 'file' | 'dir' | 'symlink' | 'other';

interface EtcMeta {
  /** Permission bits, setuid/setgid/sticky included (`st_mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Every xattr (user, trusted, security, system), name → raw value. */
  readonly xattrs: ReadonlyMap<string, Uint8Array>;
}

/** One path of an /etc tree. Two entries are "the same" when every field is equal (see compareEtcEntries). */
export type EtcEntry =
  /** `digest` identifies the content (BLAKE3 hex from readEtcTree; any collision-free digest in pure tests). */
  | (EtcMeta & { readonly type: 'file'; readonly digest: string })
  | (EtcMeta & { readonly type: 'dir' })
  | (EtcMeta & { readonly type: 'symlink'; readonly target: string })
  /** A fifo, socket or device node: `format` is its `st_mode & S_IFMT`, `rdev` its raw device number. */
  | (EtcMeta & { readonly type: 'other'; readonly format: number; readonly rdev: number });

/**
 * path → entry. A well-formed tree has ETC_ROOT as a directory and every other path's parent in
 * it as a directory; an empty tree stands for "no /etc at all".
 */
export type EtcTree = ReadonlyMap<string, EtcEntry>;

/** The parent path of a non-root path (`a/b` → `a`, `a` → ETC_ROOT). */
export function etcParent(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? ETC_ROOT : path.slice(0, slash);
}

/** The path of `name` inside `dir`. */
function etcChild(dir: string, name: string): string {
  return dir === ETC_ROOT ? name : `${dir}/${name}`;
}

const CHUNK_BYTES = 64 * 1024;

/** BLAKE3 of an open regular file's bytes, read from offset 0 in 64 KiB chunks. */
function digestFd(fd: number): string {
  const hasher = new StreamHasher();
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  for (let position = 0, n; (n = readSync(fd, chunk, 0, chunk.length, position)) > 0; position += n)
    hasher.update(chunk.subarray(0, n));
  return hasher.digest();
}

/** Raised when a file changes between two reads of the same merge (an admin editing /etc meanwhile). */
export function changedError(path: string, what: string): ArborError {
  return new ArborError('E_ETC_CHANGED', `'${path}' changed while /etc was being merged (${what})`, {
    hint: 'nothing was switched; run the command again',
  });
}

const xattrMap = (pairs: [string, Buffer][]): Map<string, Uint8Array> => new Map(pairs);

/** Reads the entry at `path` (already lstat'ed as `st`); a regular file is opened once for content and xattrs. */
function readEntry(path: string, st: Stats): EtcEntry {
  const meta = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  if (st.isFile()) {
    // O_NONBLOCK: if a fifo replaced the file since lstat, opening it must not hang.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const fst = fstatSync(fd);
      if (!fst.isFile() || fst.ino !== st.ino) throw changedError(path, 'replaced while being read');
      return {
        type: 'file',
        mode: fst.mode & 0o7777,
        uid: fst.uid,
        gid: fst.gid,
        xattrs: xattrMap(native.fgetxattrs(fd)),
        digest: digestFd(fd),
      };
    } finally {
      closeSync(fd);
    }
  }
  const xattrs = xattrMap(native.lgetxattrs(path));
  if (st.isDirectory()) return { type: 'dir', ...meta, xattrs };
  if (st.isSymbolicLink()) return { type: 'symlink', ...meta, xattrs, target: readUtf8Link(path) };
  return { type: 'other', ...meta, xattrs, format: st.mode & constants.S_IFMT, rdev: st.rdev };
}

function readUtf8Link(path: string): string {
  const raw = readlinkSync(path, { encoding: 'buffer' });
  const target = raw.toString('utf8');
  // A string is all the rest of Arbor can carry; a lossy decode would silently retarget the link.
  if (!Buffer.from(target, 'utf8').equals(raw)) {
    throw new ArborError('E_NAME_ENCODING', `symlink '${path}' has a target that is not valid UTF-8`, {
      hint: 'recreate it with a UTF-8 target',
    });
  }
  return target;
}

function readUtf8Names(dir: string): string[] {
  const names = readdirSync(dir);
  // readdirSync decodes lossily (U+FFFD); only then is the raw listing worth reading.
  if (names.some((n) => n.includes('\uFFFD'))) {
    for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
      if (Buffer.from(raw.toString('utf8'), 'utf8').equals(raw)) continue;
      throw new ArborError(
        'E_NAME_ENCODING',
        `'${join(dir, raw.toString('utf8'))}' has a name that is not valid UTF-8`,
        {
          hint: 'rename it (convmv converts legacy encodings); Arbor merges /etc by UTF-8 names',
        },
      );
    }
  }
  return names;
}

/**
 * Reads the tree rooted at `dir` without following symlinks: lstat, xattrs and, for regular
 * files, a BLAKE3 digest of the content. Throws E_IO when `dir` is missing and E_ETC_INVALID
 * when it is not a directory.
 */
export function readEtcTree(dir: string): EtcTree {
  const tree = new Map<string, EtcEntry>();
  const visit = (rel: string, abs: string): void => {
    let entry: EtcEntry;
    let names: string[] = [];
    try {
      const st = lstatSync(abs);
      if (rel === ETC_ROOT && !st.isDirectory()) {
        throw new ArborError('E_ETC_INVALID', `'${abs}' is not a directory`, {
          hint: 'an /etc (or /usr/etc) must be a real directory, not a symlink',
        });
      }
      entry = readEntry(abs, st);
      if (entry.type === 'dir') names = readUtf8Names(abs);
    } catch (error) {
      if (error instanceof ArborError) throw error;
      // ENOENT below the root: removed between readdir and lstat, i.e. changed under us.
      if (rel !== ETC_ROOT && errnoCode(error) === 'ENOENT') throw changedError(abs, 'removed while being read');
      throw ioError('read', abs, error);
    }
    tree.set(rel, entry);
    for (const name of names.sort()) visit(etcChild(rel, name), join(abs, name));
  };
  visit(ETC_ROOT, dir);
  return tree;
}
