// Directory objects: dirtree (the entries) and dirmeta (owner, mode, xattrs of a directory).
import { ByteReader, ByteWriter, compareUtf8 } from '../../common/bytes.js';
import { type Checksum, bytesToChecksum, checksumToBytes } from '../../common/hash.js';
import { S_IFDIR, S_IFMT } from './file-header.js';
import { KIND_TAG, OBJECT_FORMAT_VERSION } from './kinds.js';
import { invalidNameReason } from './names.js';
import { type Xattr, readXattrs, writeXattrs } from './xattrs.js';

export interface DirMeta {
  readonly uid: number;
  readonly gid: number;
  /** Includes S_IFDIR. */
  readonly mode: number;
  readonly xattrs: readonly Xattr[];
}

export interface DirTreeFile {
  readonly name: string;
  readonly checksum: Checksum;
  /**
   * Content bytes of the file object (its header's `size`: st_size of a regular file, else 0).
   * Signed with the tree, it bounds what a client downloads and inflates for the object.
   */
  readonly size: number;
}
interface DirTreeDir {
  readonly name: string;
  readonly tree: Checksum;
  readonly meta: Checksum;
}
export interface DirTree {
  readonly files: readonly DirTreeFile[];
  readonly dirs: readonly DirTreeDir[];
}

/** u8 kind=3, u8 version=2, u32 uid, u32 gid, u32 mode (S_IFDIR set), xattrs. */
export function encodeDirMeta(meta: DirMeta): Buffer {
  if ((meta.mode & S_IFMT) !== S_IFDIR || (meta.mode & ~(S_IFMT | 0o7777)) !== 0)
    throw new RangeError('dirmeta mode must be a directory mode');
  const out = new ByteWriter(32)
    .u8(KIND_TAG.dirmeta)
    .u8(OBJECT_FORMAT_VERSION)
    .u32(meta.uid)
    .u32(meta.gid)
    .u32(meta.mode);
  writeXattrs(out, meta.xattrs);
  return out.finish();
}

export function decodeDirMeta(bytes: Buffer, what = 'dirmeta'): DirMeta {
  const input = new ByteReader(bytes, what);
  if (input.u8() !== KIND_TAG.dirmeta) input.fail('not a dirmeta object');
  if (input.u8() !== OBJECT_FORMAT_VERSION) input.fail('unknown dirmeta format version');
  const meta = { uid: input.u32(), gid: input.u32(), mode: input.u32(), xattrs: readXattrs(input) };
  if ((meta.mode & S_IFMT) !== S_IFDIR || (meta.mode & ~(S_IFMT | 0o7777)) !== 0)
    input.fail('mode is not a directory mode');
  input.end();
  return meta;
}

const byName = (a: { name: string }, b: { name: string }): number => compareUtf8(a.name, b.name);

/**
 * u8 kind=2, u8 version=2; u32 n, n × (name, 32-byte file checksum, u64 content size); u32 m, m × (name,
 * 32-byte dirtree checksum, 32-byte dirmeta checksum); name = u32 length + UTF-8. Each list is
 * sorted by UTF-8 bytes and no name appears twice in the whole tree, so equal trees hash equal.
 */
export function encodeDirTree(tree: DirTree): Buffer {
  const files = [...tree.files].sort(byName);
  const dirs = [...tree.dirs].sort(byName);
  const seen = new Set<string>();
  for (const { name } of [...files, ...dirs]) {
    const reason = invalidNameReason(name);
    if (reason) throw new RangeError(`invalid dirtree entry: ${reason}`);
    if (seen.has(name)) throw new RangeError(`duplicate dirtree entry '${name}'`);
    seen.add(name);
  }
  const out = new ByteWriter(16 + files.length * 56 + dirs.length * 80).u8(KIND_TAG.dirtree).u8(OBJECT_FORMAT_VERSION);
  out.u32(files.length);
  for (const f of files) out.string(f.name).raw(checksumToBytes(f.checksum)).u64(f.size);
  out.u32(dirs.length);
  for (const d of dirs) out.string(d.name).raw(checksumToBytes(d.tree)).raw(checksumToBytes(d.meta));
  return out.finish();
}

export function decodeDirTree(bytes: Buffer, what = 'dirtree'): DirTree {
  const input = new ByteReader(bytes, what);
  if (input.u8() !== KIND_TAG.dirtree) input.fail('not a dirtree object');
  if (input.u8() !== OBJECT_FORMAT_VERSION) input.fail('unknown dirtree format version');
  const seen = new Set<string>();
  const readName = (previous: string | undefined): string => {
    const name = input.string();
    const reason = invalidNameReason(name);
    if (reason) input.fail(reason);
    if (previous !== undefined && compareUtf8(previous, name) >= 0)
      input.fail(`entry '${name}' is unsorted or duplicate`);
    if (seen.has(name)) input.fail(`entry '${name}' is both a file and a directory`);
    seen.add(name);
    return name;
  };
  const files: DirTreeFile[] = [];
  const nFiles = input.count(4 + 1 + 32 + 8);
  for (let i = 0; i < nFiles; i++) {
    const name = readName(files[i - 1]?.name);
    files.push({ name, checksum: bytesToChecksum(input.raw(32)), size: input.u64() });
  }
  const dirs: DirTreeDir[] = [];
  const nDirs = input.count(4 + 1 + 64);
  for (let i = 0; i < nDirs; i++) {
    const name = readName(dirs[i - 1]?.name);
    dirs.push({ name, tree: bytesToChecksum(input.raw(32)), meta: bytesToChecksum(input.raw(32)) });
  }
  input.end();
  return { files, dirs };
}
