// Paths inside a deployment, resolved without ever leaving it: links followed as inside a chroot
// (absolute targets start again at the deployment's root, `..` stops there), the layout
// directories that must be real directories (no link followed at all), and small files read
// through them with O_NOFOLLOW. Nothing here reads a byte outside the root it is given.
import { type Stats, closeSync, constants, fstatSync, lstatSync, openSync, readSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, ioError, quoteText } from '../common/errors.js';

/** Most links a path may pass through, as the kernel's limit for one lookup (40). */
const MAX_LINK_HOPS = 40;

export type Resolved =
  | { readonly ok: true; readonly path: string; readonly chain: readonly string[] }
  | { readonly ok: false; readonly missing: boolean; readonly why: string; readonly chain: readonly string[] };

/**
 * Resolves `path` inside `root` as a chroot would: absolute link targets start again at `root`,
 * `..` stops at it. `chain` lists the links followed (`/sbin -> usr/sbin`). The result is the host
 * path of the final file (no component of it below `root` is a link, the last one too unless
 * `followLast` is false), or why the lookup fails (a missing component, a loop, a non-directory).
 */
export function resolveInRoot(root: string, path: string, followLast = true): Resolved {
  const chain: string[] = [];
  let pending = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let hops = 0;
  for (let name = pending[0]; name !== undefined; name = pending[0]) {
    pending = pending.slice(1);
    if (name === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ...done, name);
    let st;
    try {
      st = lstatSync(here);
    } catch (error) {
      const code = errnoCode(error);
      // A name longer than NAME_MAX can only come from a link target: nothing has that name.
      if (code === 'ENOENT' || code === 'ENAMETOOLONG')
        return { ok: false, missing: true, why: `/${[...done, name].join('/')} does not exist`, chain };
      if (code === 'ENOTDIR') return { ok: false, missing: false, why: `/${done.join('/')} is not a directory`, chain };
      throw ioError('look up', here, error);
    }
    if (st.isSymbolicLink() && (pending.length > 0 || followLast)) {
      if (++hops > MAX_LINK_HOPS)
        return { ok: false, missing: false, why: `more than ${MAX_LINK_HOPS} links (a loop)`, chain };
      const target = readlinkSync(here);
      chain.push(`/${[...done, name].join('/')} -> ${target}`);
      const parts = target.split('/').filter((c) => c !== '' && c !== '.');
      if (target.startsWith('/')) done.length = 0;
      pending = [...parts, ...pending];
      continue;
    }
    if (pending.length > 0 && !st.isDirectory())
      return { ok: false, missing: false, why: `/${[...done, name].join('/')} is not a directory`, chain };
    done.push(name);
  }
  return { ok: true, path: join(root, ...done), chain };
}

/** What a non-directory is, in words: `a symlink to '/'`, `a regular file`, `a special file`. Control characters of a target are escaped. */
export function describeNonDirectory(
  entry: { readonly type: 'symlink'; readonly target: string } | { readonly type: 'file' | 'other' },
): string {
  if (entry.type === 'symlink') return `a symlink to ${quoteText(entry.target)}`;
  return entry.type === 'file' ? 'a regular file' : 'a special file';
}

/** What is at a layout path of a deployment, looked up with no link followed (realDirInRoot). */
export type RealDir =
  | { readonly kind: 'dir'; readonly path: string }
  | { readonly kind: 'missing' }
  /** `at` is the first component that is not a directory (`/usr` for `/usr/etc` when /usr is a link). */
  | { readonly kind: 'not-dir'; readonly at: string; readonly what: string };

/**
 * Looks up `rel` (`usr/etc`) below `root` one component at a time with lstat, following no link at
 * all: a directory only when every component is a real directory. Used for the paths the /etc merge
 * and config-diff read (/usr, /usr/etc, /etc), which a link must never redirect out of the deployment.
 */
export function realDirInRoot(root: string, rel: string): RealDir {
  let path = root;
  const parts = rel.split('/').filter((c) => c !== '' && c !== '.');
  for (const [i, name] of parts.entries()) {
    if (name === '..') throw new Error(`internal error: realDirInRoot: '${rel}' is not a plain relative path`);
    path = join(path, name);
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { kind: 'missing' };
      throw ioError('look up', path, error);
    }
    if (st.isDirectory()) continue;
    const at = `/${parts.slice(0, i + 1).join('/')}`;
    const what = st.isSymbolicLink()
      ? describeNonDirectory({ type: 'symlink', target: readlinkSync(path) })
      : describeNonDirectory({ type: st.isFile() ? 'file' : 'other' });
    return { kind: 'not-dir', at, what };
  }
  return { kind: 'dir', path };
}

/**
 * The bytes of the regular file at `path` inside `root` (links resolved as in a chroot, the final
 * file opened with O_NOFOLLOW), or null when there is none: missing, not a regular file, or larger
 * than `maxBytes`. For files whose absence has a default (os-release, modules.builtin).
 */
export function readFileInRoot(root: string, path: string, maxBytes: number): Buffer | null {
  const r = resolveInRoot(root, path);
  if (!r.ok) return null;
  let fd: number;
  try {
    // O_NONBLOCK: a fifo put there must not hang the command.
    fd = openSync(r.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    // ELOOP: the last component became a link since it was resolved.
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ELOOP') return null;
    throw ioError('read', r.path, error);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return null;
    const buf = Buffer.alloc(st.size);
    let got = 0;
    for (let n; got < buf.length && (n = readSync(fd, buf, got, buf.length - got, got)) > 0; ) got += n;
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
