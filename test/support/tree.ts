// Test trees: build a tree holding every kind of file, owner, mode, xattr and name Arbor must
// keep, and list any tree in full (metadata and a sha256 of content) so two trees compare equal.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { native } from '../../src/common/native.js';

const S_IFMT = 0o170000;
const TYPE_NAMES: Record<number, EntryType> = {
  0o100000: 'file',
  0o040000: 'dir',
  0o120000: 'symlink',
  0o020000: 'char',
  0o060000: 'block',
  0o010000: 'fifo',
  0o140000: 'socket',
};

type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

/** Everything Arbor promises to keep about one path (mtimes and inode numbers excluded). */
export interface TreeEntry {
  /** Relative to the listed root; the root itself is '.'. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky, as 4 octal digits. */
  mode: string;
  uid: number;
  gid: number;
  /** Content bytes of regular files; 0 otherwise. */
  size: number;
  sha256?: string;
  target?: string;
  /** "major:minor" of device nodes. */
  rdev?: string;
  /** Every xattr (user, trusted, security), name → hex value. */
  xattrs: Record<string, string>;
}

/** Byte order of UTF-8 names, so listings sort the same whatever the locale. */
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Lists `root` recursively, without following symlinks, sorted by path bytes. */
export function listTree(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const visit = (rel: string): void => {
    const path = rel === '.' ? root : join(root, rel);
    const st = lstatSync(path);
    const type = TYPE_NAMES[st.mode & S_IFMT];
    if (!type) throw new Error(`unknown file type at ${path}`);
    const xattrs: Record<string, string> = {};
    for (const [name, value] of [...native.lgetxattrs(path)].sort((a, b) => byUtf8(a[0], b[0])))
      xattrs[name] = value.toString('hex');
    const entry: TreeEntry = {
      path: rel,
      type,
      mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
      uid: st.uid,
      gid: st.gid,
      size: type === 'file' ? st.size : 0,
      xattrs,
    };
    if (type === 'file') entry.sha256 = sha256File(path);
    if (type === 'symlink') entry.target = readlinkSync(path);
    if (type === 'char' || type === 'block') entry.rdev = `${native.major(st.rdev)}:${native.minor(st.rdev)}`;
    out.push(entry);
    if (type === 'dir') for (const name of readdirSync(path).sort(byUtf8)) visit(rel === '.' ? name : `${rel}/${name}`);
  };
  visit('.');
  return out.sort((a, b) => byUtf8(a.path, b.path));
}

/** sha256 of a file's content, read in 1 MiB chunks (the large test file does not fit one buffer comfortably). */
function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * What a `--user-mode` checkout of `listing` must look like: owned by the caller, no xattrs
 * applied, setuid/setgid dropped (sticky kept). Symlink modes are always 0777 on Linux.
 */
export function expectedUserMode(listing: readonly TreeEntry[], owner: { uid: number; gid: number }): TreeEntry[] {
  return listing.map((e) => ({
    ...e,
    uid: owner.uid,
    gid: owner.gid,
    mode: e.type === 'symlink' ? e.mode : (Number.parseInt(e.mode, 8) & 0o1777).toString(8).padStart(4, '0'),
    xattrs: {},
  }));
}

/** Drops the listed xattrs from every entry (e.g. `user.arbor.meta` carried by hardlinked bare-user objects). */
export function withoutXattrs(listing: readonly TreeEntry[], names: readonly string[]): TreeEntry[] {
  return listing.map((e) => ({
    ...e,
    xattrs: Object.fromEntries(Object.entries(e.xattrs).filter(([k]) => !names.includes(k))),
  }));
}

/** Deterministic pseudo-random bytes (xorshift32), so every run builds byte-identical trees. */
export function pseudoRandomBytes(length: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, length);
}

/**
 * Writes `sizeBytes` of incompressible-looking data fast: one pseudo-random 1 MiB block repeated,
 * each copy stamped with its index so no two MiB of the file are equal.
 */
export function writeLargeFile(path: string, sizeBytes: number, seed = 7): void {
  const block = pseudoRandomBytes(1 << 20, seed);
  const fd = openSync(path, 'wx', 0o644);
  try {
    for (let offset = 0, index = 0; offset < sizeBytes; offset += block.length, index++) {
      block.writeUInt32BE(index, 0);
      block.writeUInt32BE(index, block.length - 4);
      const n = Math.min(block.length, sizeBytes - offset);
      for (let done = 0; done < n; ) done += writeSync(fd, block, done, n - done);
    }
  } finally {
    closeSync(fd);
  }
}

export interface RichTreeOptions {
  /** Size of `files/large.bin`; 0 leaves it out. Default 0. */
  readonly largeFileBytes?: number;
  /** Character and block device nodes (they need root and cannot be checked out in user mode). Default true. */
  readonly devices?: boolean;
}

/** A VFS_CAP_REVISION_2 security.capability value granting cap_net_raw (bit 13) and cap_setuid (bit 7) as effective. */
const CAPABILITY_XATTR = Buffer.from('0100000280200000000000000000000000000000', 'hex');

/** Names of the files in `names/`: non-ASCII, whitespace, a newline, a leading dash, a backslash and a 255-byte name. */
const ODD_NAMES = [
  'grüße',
  '日本語',
  '🌳 tree',
  '\uff5e fullwidth tilde', // sorts before the emoji by UTF-8 bytes but after it by UTF-16 units
  'with space',
  'new\nline',
  '-leading-dash',
  'back\\slash',
  'ÿ',
  `${'é'.repeat(126)}abc`, // 255 bytes of UTF-8, the longest name Linux allows
] as const;

const DEEP_LEVELS = 64;

/**
 * Builds the rich tree at `root` (which must not exist). Needs root: it sets foreign owners,
 * trusted.* and security.* xattrs and makes device nodes. Returns nothing; list it with listTree.
 */
export function buildRichTree(root: string, options: RichTreeOptions = {}): void {
  const devices = options.devices ?? true;
  // Metadata is applied after everything exists: chown clears setuid and capabilities, a 0000
  // directory would (for a non-root reader) hide its children, and setgid directories pass
  // their group on to new entries.
  const meta: { path: string; uid: number; gid: number; mode?: number; xattrs?: Record<string, Buffer> }[] = [];
  const dir = (rel: string, mode = 0o755, uid = 0, gid = 0, xattrs?: Record<string, Buffer>): string => {
    const path = rel === '.' ? root : join(root, rel);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    meta.push({ path, uid, gid, mode, ...(xattrs && { xattrs }) });
    return path;
  };
  const file = (
    rel: string,
    content: string | Buffer,
    mode = 0o644,
    uid = 0,
    gid = 0,
    xattrs?: Record<string, Buffer>,
  ): string => {
    const path = join(root, rel);
    writeFileSync(path, content, { mode: 0o600, flag: 'wx' });
    meta.push({ path, uid, gid, mode, ...(xattrs && { xattrs }) });
    return path;
  };
  const symlink = (rel: string, target: string, uid = 0, gid = 0, xattrs?: Record<string, Buffer>): void => {
    const path = join(root, rel);
    symlinkSync(target, path);
    meta.push({ path, uid, gid, ...(xattrs && { xattrs }) });
  };
  const special = (
    rel: string,
    type: number,
    mode: number,
    major: number,
    minor: number,
    uid = 0,
    gid = 0,
    xattrs?: Record<string, Buffer>,
  ): void => {
    const path = join(root, rel);
    native.mknod(path, type | 0o600, major, minor);
    meta.push({ path, uid, gid, mode, ...(xattrs && { xattrs }) });
  };
  const x = (value: string | Buffer): Buffer => (typeof value === 'string' ? Buffer.from(value) : value);

  dir('.', 0o755, 0, 0, { 'user.root': x('top'), 'trusted.root': x(Buffer.from([0, 1, 2, 0xff])) });

  dir('files');
  file('files/plain.txt', 'hello, arbor\n');
  file('files/empty', '');
  file('files/empty-exec', '', 0o755, 1234, 5678);
  file('files/mode-0000', 'no permissions at all\n', 0o000);
  file('files/mode-0777', '#!/bin/sh\necho everyone\n', 0o777);
  file('files/mode-0444', 'read only\n', 0o444);
  file('files/setuid', '#!/bin/sh\nid\n', 0o4755);
  file('files/setgid', '#!/bin/sh\nid -g\n', 0o2755, 0, 5678);
  file('files/setuid-setgid-owned', '#!/bin/sh\n', 0o6750, 1234, 5678);
  file('files/sticky', 'sticky file\n', 0o1755);
  file('files/owned', 'owned by 1234:5678\n', 0o640, 1234, 5678);
  file('files/capability', '#!/bin/sh\nping\n', 0o755, 0, 0, { 'security.capability': CAPABILITY_XATTR });
  file('files/xattrs', 'has xattrs\n', 0o644, 0, 0, {
    'user.ascii': x('value'),
    'user.utf8': x('grüße 日本語'),
    'user.binary': x(Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x3d, 0x20])),
    'user.empty': x(''),
    'trusted.overlay.opaque': x('y'),
  });
  file('files/random.bin', pseudoRandomBytes(3 * (1 << 20) + 17, 42), 0o644);
  if (options.largeFileBytes) {
    writeLargeFile(join(root, 'files/large.bin'), options.largeFileBytes);
    meta.push({ path: join(root, 'files/large.bin'), uid: 0, gid: 0, mode: 0o644, xattrs: { 'user.large': x('yes') } });
  }

  dir('links');
  symlink('links/relative', '../files/plain.txt');
  symlink('links/absolute', '/etc/passwd');
  symlink('links/dangling', 'does/not/exist');
  symlink('links/to-dir', '../dirs');
  symlink('links/to-self', 'to-self');
  symlink('links/owned', 'relative', 1234, 5678, { 'trusted.link': x('on a symlink') });
  symlink('links/odd-target', 'target with\nnewline, ü and \\ backslash');

  dir('hard');
  const shared = file('hard/a', 'one inode, three names\n', 0o640, 1234, 5678, { 'user.shared': x('1') });

  dir('special');
  special('special/fifo', 0o010000, 0o640, 0, 0, 1234, 5678);
  if (devices) {
    special('special/null', 0o020000, 0o666, 1, 3);
    special('special/sda1', 0o060000, 0o660, 8, 1, 0, 6, { 'trusted.dev': x('block') });
    special('special/big-numbers', 0o020000, 0o600, 4095, 1048575);
  }

  dir('dirs');
  dir('dirs/mode-0640', 0o640);
  file('dirs/mode-0640/inside', 'in a 0640 directory\n');
  dir('dirs/mode-0000', 0o000);
  file('dirs/mode-0000/inside', 'in a 0000 directory\n');
  dir('dirs/mode-0777', 0o777);
  dir('dirs/sticky', 0o1777);
  file('dirs/sticky/tmpfile', 'x\n', 0o600, 1234, 5678);
  dir('dirs/setgid', 0o2775, 0, 5678);
  dir('dirs/setgid/child', 0o2755, 0, 5678);
  dir('dirs/owned', 0o750, 1234, 5678, { 'user.dir': x('d'), 'trusted.dir': x(Buffer.from([0xde, 0xad])) });
  dir('dirs/empty');

  dir('names');
  for (const name of ODD_NAMES) file(`names/${name}`, `${name}\n`);
  dir('names/ünï-dir');
  file('names/ünï-dir/日本語', 'nested unicode\n');

  let deep = 'deep';
  dir(deep);
  for (let i = 0; i < DEEP_LEVELS; i++) dir((deep = `${deep}/level-${String(i).padStart(2, '0')}`));
  file(`${deep}/leaf`, 'at the bottom\n');

  // Deepest first, so a directory's mode is set after everything inside it exists.
  for (const m of meta.sort((a, b) => b.path.length - a.path.length)) {
    lchownSync(m.path, m.uid, m.gid);
    if (m.mode !== undefined) chmodSync(m.path, m.mode);
    for (const [name, value] of Object.entries(m.xattrs ?? {})) native.setxattr(m.path, name, value);
  }
  // Hardlinks after the metadata: all names share the inode's owner, mode and xattrs.
  linkSync(shared, join(root, 'hard/b'));
  linkSync(shared, join(root, 'files/hard-c'));
}

/** Writes a small tree from a path → content map (directories are made as needed; mode 0644). */
export function writeTree(root: string, files: Record<string, string>): void {
  mkdirSync(root, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
  }
}
