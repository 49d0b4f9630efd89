// Rewriting the inodes `mkfs.ext4 -d` made, in place in the inode tables: owner, mode, times and
// the in-inode xattrs, the metadata_csum checksum recomputed. One pass over the tables replaces
// a debugfs command per field per inode (the byte layouts are e2fsprogs' lib/ext2fs/ext2_fs.h).
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

const SUPERBLOCK_OFFSET = 1024;
const EXT4_MAGIC = 0xef53;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_CSUM_SEED = 0x2000;
const RO_COMPAT_METADATA_CSUM = 0x400;
/** 128 bytes of the classic inode, then i_extra_isize bytes (32: up to i_projid), then the xattr area. */
const GOOD_OLD_INODE_BYTES = 128;
const EXTRA_ISIZE = 32;
const XATTR_MAGIC = 0xea020000;
/** The first inode `mkfs -d` gives a staged entry: 11 is lost+found. */
const FIRST_POPULATED_INO = 12;
const ROOT_INO = 2;
const S_IFMT = 0o170000;

/** Where the inode tables are and how inodes are checksummed. */
interface Ext4Geometry {
  readonly blockBytes: number;
  readonly inodesCount: number;
  readonly inodesPerGroup: number;
  readonly inodeBytes: number;
  /** crc32c seed of metadata checksums; null without metadata_csum. */
  readonly csumSeed: number | null;
  /** First block of each group's inode table. */
  readonly inodeTableBlocks: readonly number[];
}

/**
 * Decodes what ext4Geometry needs from the superblock (1024 bytes at byte 1024) and the group
 * descriptors that follow it; null for anything this module does not handle (no 256-byte
 * inodes, a block size other than 4096).
 */
function decodeExt4Geometry(superblock: Buffer, readDescriptors: (offset: number, bytes: number) => Buffer) {
  if (superblock.length < 1024 || superblock.readUInt16LE(0x38) !== EXT4_MAGIC) return null;
  const blockBytes = 1024 << superblock.readUInt32LE(0x18);
  const inodesCount = superblock.readUInt32LE(0x0);
  const inodesPerGroup = superblock.readUInt32LE(0x28);
  const inodeBytes = superblock.readUInt16LE(0x58);
  const incompat = superblock.readUInt32LE(0x60);
  const roCompat = superblock.readUInt32LE(0x64);
  if (blockBytes !== 4096 || inodeBytes !== 256 || inodesPerGroup === 0) return null;
  const descBytes = incompat & INCOMPAT_64BIT ? superblock.readUInt16LE(0xfe) : 32;
  let csumSeed: number | null = null;
  if (roCompat & RO_COMPAT_METADATA_CSUM)
    csumSeed =
      incompat & INCOMPAT_CSUM_SEED
        ? superblock.readUInt32LE(0x270)
        : crc32cUpdate(0xffffffff, superblock.subarray(0x68, 0x78));
  const groups = Math.ceil(inodesCount / inodesPerGroup);
  // With 4 KiB blocks the descriptors start in block 1.
  const descriptors = readDescriptors(blockBytes, groups * descBytes);
  const inodeTableBlocks: number[] = [];
  for (let g = 0; g < groups; g++) {
    const d = descriptors.subarray(g * descBytes, (g + 1) * descBytes);
    const high = descBytes >= 64 ? d.readUInt32LE(0x28) : 0;
    inodeTableBlocks.push(high * 2 ** 32 + d.readUInt32LE(0x8));
  }
  return { blockBytes, inodesCount, inodesPerGroup, inodeBytes, csumSeed, inodeTableBlocks } satisfies Ext4Geometry;
}

/** What one inode must become. Times are seconds; each must fit ext4's 32-bit signed field. */
interface InodeRewrite {
  readonly uid: number;
  readonly gid: number;
  /** Type bits and permissions. */
  readonly mode: number;
  readonly atime: number;
  readonly mtime: number;
  readonly ctime: number;
  /** `user.NAME` xattrs to remove from the in-inode area (the bare-user header). */
  readonly dropUserXattrs: readonly string[];
}

/** What the staged file `mkfs -d` copied was: the inode there must show it. */
interface InodeExpectation {
  /** The S_IFMT bits. */
  readonly type: number;
  /** Regular files and symlinks: their size in bytes; null: not checked (directories). */
  readonly size: number | null;
}

/** Whether INODE (its table bytes) is in use and shows EXPECT's type and size. */
function inodeMatches(inode: Buffer, expect: InodeExpectation): boolean {
  if ((inode.readUInt16LE(0x0) & S_IFMT) !== expect.type) return false;
  if (inode.readUInt16LE(0x1a) === 0 || inode.readUInt32LE(0x14) !== 0) return false;
  const size = inode.readUInt32LE(0x6c) * 2 ** 32 + inode.readUInt32LE(0x4);
  return expect.size === null || size === expect.size;
}

/**
 * Rewrites INODE (its table bytes, inode number INO) as REWRITE says, in place, and recomputes
 * its checksum with CSUMSEED (null: no metadata_csum). Returns false, leaving INODE untouched,
 * when it cannot: another inode layout, a time out of range, a type change, or an xattr to drop
 * that is not in the inode's own area.
 */
function rewriteInode(inode: Buffer, ino: number, csumSeed: number | null, rewrite: InodeRewrite): boolean {
  if ((inode.readUInt16LE(0x0) & S_IFMT) !== (rewrite.mode & S_IFMT)) return false;
  if (inode.readUInt16LE(0x80) !== EXTRA_ISIZE) return false;
  for (const t of [rewrite.atime, rewrite.mtime, rewrite.ctime]) if (t < -(2 ** 31) || t >= 2 ** 31) return false;
  let xattrs: Buffer | null = null;
  if (rewrite.dropUserXattrs.length > 0) {
    xattrs = dropInodeXattrs(inode.subarray(GOOD_OLD_INODE_BYTES + EXTRA_ISIZE), rewrite.dropUserXattrs);
    if (xattrs === null) return false;
  }
  inode.writeUInt16LE(rewrite.mode, 0x0);
  inode.writeUInt16LE(rewrite.uid & 0xffff, 0x2);
  inode.writeUInt16LE(rewrite.uid >>> 16, 0x78);
  inode.writeUInt16LE(rewrite.gid & 0xffff, 0x18);
  inode.writeUInt16LE(rewrite.gid >>> 16, 0x7a);
  // Seconds in the 32-bit fields; the *_extra ones (nanoseconds, epoch bits) are 0 in this range.
  inode.writeInt32LE(rewrite.atime, 0x8);
  inode.writeInt32LE(rewrite.ctime, 0xc);
  inode.writeInt32LE(rewrite.mtime, 0x10);
  inode.writeUInt32LE(0, 0x84);
  inode.writeUInt32LE(0, 0x88);
  inode.writeUInt32LE(0, 0x8c);
  if (xattrs !== null) xattrs.copy(inode, GOOD_OLD_INODE_BYTES + EXTRA_ISIZE);
  if (csumSeed !== null) writeInodeChecksum(inode, ino, csumSeed);
  return true;
}

/**
 * The in-inode xattr area AREA (magic, entries, values at its end) without the `user.` entries
 * named in NAMES, laid out as libext2fs writes it (entries in order, values packed from the end,
 * hashes 0, the rest zero). Null when a name is not there or the area is not one it can read.
 */
export function dropInodeXattrs(area: Buffer, names: readonly string[]): Buffer | null {
  if (area.length < 8 || area.readUInt32LE(0) !== XATTR_MAGIC) return null;
  const body = area.subarray(4);
  const kept: { index: number; name: Buffer; value: Buffer }[] = [];
  const dropped = new Set<string>();
  let at = 0;
  while (at + 4 <= body.length && body.readUInt32LE(at) !== 0) {
    if (at + 16 > body.length) return null;
    const nameLen = body.readUInt8(at);
    const index = body.readUInt8(at + 1);
    const valueOffs = body.readUInt16LE(at + 2);
    const valueInum = body.readUInt32LE(at + 4);
    const valueSize = body.readUInt32LE(at + 8);
    const nameEnd = at + 16 + nameLen;
    if (valueInum !== 0 || nameEnd > body.length || valueOffs + valueSize > body.length) return null;
    const name = body.subarray(at + 16, nameEnd);
    const value = body.subarray(valueOffs, valueOffs + valueSize);
    if (index === 1 && names.includes(name.toString('latin1'))) dropped.add(name.toString('latin1'));
    else kept.push({ index, name, value });
    at = (nameEnd + 3) & ~3;
  }
  if (dropped.size !== names.length) return null;
  const out = Buffer.alloc(area.length);
  out.writeUInt32LE(XATTR_MAGIC, 0);
  const entries = out.subarray(4);
  let entry = 0;
  let end = entries.length;
  for (const x of kept) {
    end -= (x.value.length + 3) & ~3;
    x.value.copy(entries, end);
    entries.writeUInt8(x.name.length, entry);
    entries.writeUInt8(x.index, entry + 1);
    entries.writeUInt16LE(end, entry + 2);
    entries.writeUInt32LE(x.value.length, entry + 8);
    x.name.copy(entries, entry + 16);
    entry = (entry + 16 + x.name.length + 3) & ~3;
  }
  return out;
}

/** ext4's inode checksum: crc32c over the inode number, the generation and the inode with both checksum halves zeroed. */
function writeInodeChecksum(inode: Buffer, ino: number, seed: number): void {
  inode.writeUInt16LE(0, 0x7c);
  inode.writeUInt16LE(0, 0x82);
  const head = Buffer.alloc(8);
  head.writeUInt32LE(ino, 0);
  inode.copy(head, 4, 0x64, 0x68);
  const crc = crc32cUpdate(crc32cUpdate(seed, head), inode);
  inode.writeUInt16LE(crc & 0xffff, 0x7c);
  inode.writeUInt16LE(crc >>> 16, 0x82);
}

const CRC32C_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli) of BYTES continuing from CRC, without the usual inversions (ext2fs_crc32c_le). */
export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  let c = crc >>> 0;
  for (const b of bytes) c = (CRC32C_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

/** One inode to rewrite: the root (`/`) is inode 2, the Nth other entry in `mkfs -d` order is 11 + N. */
export interface PlannedRewrite {
  readonly expect: InodeExpectation;
  readonly rewrite: InodeRewrite | null;
}

/**
 * Rewrites the inodes of the ext4 filesystem at OFFSETBYTES in DISK. PLANNED lists every entry
 * `mkfs.ext4 -d` populated, the root first, then in its order (names sorted bytewise, depth
 * first, a hardlinked file once); a null rewrite leaves that inode as it is. Checks every inode
 * against its expectation first: when the tables do not match (another mkfs, another order),
 * nothing is written and null is returned. Otherwise returns, per entry, whether it was rewritten.
 */
export function rewriteExt4Inodes(
  disk: string,
  offsetBytes: number,
  planned: readonly PlannedRewrite[],
): boolean[] | null {
  const fd = openSync(disk, 'r+');
  try {
    const read = (offset: number, bytes: number): Buffer => {
      const b = Buffer.alloc(bytes);
      return readSync(fd, b, 0, bytes, offsetBytes + offset) === bytes ? b : Buffer.alloc(0);
    };
    const geometry = decodeExt4Geometry(read(SUPERBLOCK_OFFSET, 1024), read);
    if (geometry === null || planned.length === 0) return null;
    const { inodesPerGroup, inodeBytes, blockBytes } = geometry;
    const inoOf = (i: number): number => (i === 0 ? ROOT_INO : FIRST_POPULATED_INO + i - 1);
    // The tables up to the inode after the last populated one, which must be free.
    const upTo = Math.min(inoOf(planned.length - 1) + 1, geometry.inodesCount);
    const tables: Buffer[] = [];
    for (let g = 0; g * inodesPerGroup < upTo; g++) {
      const count = Math.min(inodesPerGroup, upTo - g * inodesPerGroup);
      const bytes = read((geometry.inodeTableBlocks[g] as number) * blockBytes, count * inodeBytes);
      if (bytes.length === 0) return null;
      tables.push(bytes);
    }
    const slot = (ino: number): Buffer => {
      const at = ((ino - 1) % inodesPerGroup) * inodeBytes;
      return (tables[Math.floor((ino - 1) / inodesPerGroup)] as Buffer).subarray(at, at + inodeBytes);
    };
    if (upTo > inoOf(planned.length - 1) && slot(upTo).readUInt16LE(0x1a) !== 0) return null;
    if (!planned.every((p, i) => inodeMatches(slot(inoOf(i)), p.expect))) return null;
    const rewritten = planned.map(
      (p, i) => p.rewrite !== null && rewriteInode(slot(inoOf(i)), inoOf(i), geometry.csumSeed, p.rewrite),
    );
    tables.forEach((table, g) => {
      writeSync(fd, table, 0, table.length, offsetBytes + (geometry.inodeTableBlocks[g] as number) * blockBytes);
    });
    return rewritten;
  } finally {
    closeSync(fd);
  }
}
