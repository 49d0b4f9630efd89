// The header of a file object: everything about a non-directory except its content.
// A file object is header ‖ content, and its checksum hashes both (docs/format.md §file).
import { ByteReader, ByteWriter } from '../../common/bytes.js';
import { KIND_TAG, OBJECT_FORMAT_VERSION } from './kinds.js';
import { type Xattr, readXattrs, writeXattrs } from './xattrs.js';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

/** Metadata of a regular file, symlink, device node or fifo. */
export interface FileHeader {
  readonly uid: number;
  readonly gid: number;
  /** Type bits and permission bits, as st_mode. */
  readonly mode: number;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
  /** Non-empty for symlinks, empty otherwise. */
  readonly symlinkTarget: string;
  readonly xattrs: readonly Xattr[];
  /** Content length in bytes; 0 unless a regular file. */
  readonly size: number;
}

const FILE_TYPES = new Set([S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO]);

export const fileType = (mode: number): number => mode & S_IFMT;
export const isRegular = (mode: number): boolean => (mode & S_IFMT) === S_IFREG;
export const isSymlink = (mode: number): boolean => (mode & S_IFMT) === S_IFLNK;
export const isDevice = (mode: number): boolean => fileType(mode) === S_IFCHR || fileType(mode) === S_IFBLK;

/** Why a header violates the file-object invariants, or undefined when it is valid. */
function invalidHeaderReason(h: FileHeader): string | undefined {
  const type = fileType(h.mode);
  if (!FILE_TYPES.has(type)) return `unsupported file type ${(type >> 12).toString(8)}`;
  if ((h.mode & ~(S_IFMT | 0o7777)) !== 0) return 'mode has unknown bits';
  if ((type === S_IFLNK) !== h.symlinkTarget.length > 0) return 'symlink target must be present exactly for symlinks';
  if (h.symlinkTarget.includes('\0')) return 'symlink target contains NUL';
  if (type !== S_IFREG && h.size !== 0) return 'only regular files have content';
  if (!isDevice(h.mode) && (h.rdevMajor !== 0 || h.rdevMinor !== 0)) return 'only device nodes have rdev';
  return undefined;
}

/**
 * u8 kind=1, u8 version=2, u32 uid, u32 gid, u32 mode, u32 rdev major, u32 rdev minor,
 * symlink target (u32 length + UTF-8), xattrs, u64 content size. Content follows the header.
 */
export function encodeFileHeader(h: FileHeader): Buffer {
  const reason = invalidHeaderReason(h);
  if (reason) throw new RangeError(`invalid file header: ${reason}`);
  const out = new ByteWriter(64)
    .u8(KIND_TAG.file)
    .u8(OBJECT_FORMAT_VERSION)
    .u32(h.uid)
    .u32(h.gid)
    .u32(h.mode)
    .u32(h.rdevMajor)
    .u32(h.rdevMinor)
    .string(h.symlinkTarget);
  writeXattrs(out, h.xattrs);
  return out.u64(h.size).finish();
}

/** Reads a header from the front of `input`; the content (size bytes) is what remains after it. */
export function readFileHeader(input: ByteReader): FileHeader {
  if (input.u8() !== KIND_TAG.file) input.fail('not a file object');
  if (input.u8() !== OBJECT_FORMAT_VERSION) input.fail('unknown file object format version');
  const header: FileHeader = {
    uid: input.u32(),
    gid: input.u32(),
    mode: input.u32(),
    rdevMajor: input.u32(),
    rdevMinor: input.u32(),
    symlinkTarget: input.string(),
    xattrs: readXattrs(input),
    size: input.u64(),
  };
  const reason = invalidHeaderReason(header);
  if (reason) input.fail(reason);
  return header;
}

/** Decodes a header that must be exactly the given bytes (no content). */
export function decodeFileHeader(bytes: Buffer, what = 'file header'): FileHeader {
  const input = new ByteReader(bytes, what);
  const header = readFileHeader(input);
  input.end();
  return header;
}

/** Splits a whole file object (header ‖ content) and checks the content length. */
export function decodeFileObject(bytes: Buffer, what = 'file object'): { header: FileHeader; content: Buffer } {
  const input = new ByteReader(bytes, what);
  const header = readFileHeader(input);
  if (input.remaining !== header.size) input.fail(`content is ${input.remaining} bytes, header says ${header.size}`);
  return { header, content: input.raw(header.size) };
}
