import { copyFileSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { native } from '../common/native.js';
import { hasCommand, runTool } from '../../test/support/tool.js';
import { useTempDir } from '../../test/support/temp.js';
import { crc32cUpdate, dropInodeXattrs, type PlannedRewrite, rewriteExt4Inodes } from './ext4-inodes.js';

/** An in-inode xattr area (96 bytes, as in a 256-byte inode) holding ENTRIES, laid out as libext2fs does. */
function area(entries: [number, string, string][]): Buffer {
  const out = Buffer.alloc(96);
  out.writeUInt32LE(0xea020000, 0);
  let at = 4;
  let end = 96;
  for (const [index, name, value] of entries) {
    end -= (value.length + 3) & ~3;
    out.write(value, end, 'latin1');
    out.writeUInt8(name.length, at);
    out.writeUInt8(index, at + 1);
    out.writeUInt16LE(end - 4, at + 2);
    out.writeUInt32LE(value.length, at + 8);
    out.write(name, at + 16, 'latin1');
    at = (at + 16 + name.length + 3) & ~3;
  }
  return out;
}

describe('crc32cUpdate', () => {
  it('computes CRC-32C (the check value of "123456789" once inverted)', () => {
    expect((crc32cUpdate(0xffffffff, Buffer.from('123456789')) ^ 0xffffffff) >>> 0).toBe(0xe3069283);
  });
});

describe('dropInodeXattrs', () => {
  it('drops the named user xattr and packs the rest as libext2fs writes them', () => {
    const before = area([
      [1, 'arbor.meta', 'header-bytes'],
      [6, 'capability', 'cap'],
    ]);
    expect(dropInodeXattrs(before, ['arbor.meta'])).toEqual(area([[6, 'capability', 'cap']]));
  });

  it('leaves an empty area (its magic) when the only xattr goes', () => {
    expect(dropInodeXattrs(area([[1, 'arbor.meta', 'x']]), ['arbor.meta'])).toEqual(area([]));
  });

  it.each([
    ['the name is not there', area([[1, 'other', 'x']])],
    ['the name is in another namespace', area([[6, 'arbor.meta', 'x']])],
    ['the area has no magic', Buffer.alloc(96)],
  ])('refuses when %s', (_, input) => {
    expect(dropInodeXattrs(input, ['arbor.meta'])).toBeNull();
  });
});

describe.skipIf(!hasCommand('mkfs.ext4') || !hasCommand('debugfs'))('rewriteExt4Inodes', () => {
  const tmp = useTempDir('arbor-ext4-inodes-');
  const FS_BYTES = 8 * 1024 * 1024;
  const env = { E2FSPROGS_FAKE_TIME: '1700000000' };
  /** A staged tree and a filesystem made from it: `/`, b (header xattr), c (b's hardlink), d, d/a (two xattrs), l. */
  const makeFs = (name: string): { image: string; planned: PlannedRewrite[] } => {
    const tree = join(tmp.path, `${name}-tree`);
    mkdirSync(join(tree, 'd'), { recursive: true });
    writeFileSync(join(tree, 'b'), 'bee\n');
    native.setxattr(join(tree, 'b'), 'user.arbor.meta', Buffer.from('header of b'));
    linkSync(join(tree, 'b'), join(tree, 'c'));
    writeFileSync(join(tree, 'd/a'), 'a file\n');
    native.setxattr(join(tree, 'd/a'), 'user.keep', Buffer.from('kept'));
    native.setxattr(join(tree, 'd/a'), 'user.arbor.meta', Buffer.from('header of a'));
    symlinkSync('b', join(tree, 'l'));
    const image = join(tmp.path, `${name}.img`);
    writeFileSync(image, Buffer.alloc(0));
    runTool(
      'mkfs.ext4',
      [
        '-q',
        '-F',
        '-b',
        '4096',
        '-I',
        '256',
        '-O',
        'metadata_csum',
        '-N',
        '64',
        '-E',
        'root_owner=0:0',
        '-d',
        tree,
        image,
        `${FS_BYTES / 1024}k`,
      ],
      {
        env,
      },
    );
    const owner = { uid: 70000, gid: 70001, atime: 5, mtime: 5, ctime: 1700000000 };
    const planned: PlannedRewrite[] = [
      { expect: { type: 0o040000, size: null }, rewrite: { ...owner, mode: 0o040755, dropUserXattrs: [] } },
      { expect: { type: 0o100000, size: 4 }, rewrite: { ...owner, mode: 0o104711, dropUserXattrs: ['arbor.meta'] } },
      { expect: { type: 0o040000, size: null }, rewrite: { ...owner, mode: 0o041777, dropUserXattrs: [] } },
      { expect: { type: 0o100000, size: 7 }, rewrite: { ...owner, mode: 0o100600, dropUserXattrs: ['arbor.meta'] } },
      { expect: { type: 0o120000, size: 1 }, rewrite: null },
    ];
    return { image, planned };
  };
  const sif = (path: string, mode: string, meta = true): string[] => [
    ...(meta ? [`ea_rm ${path} user.arbor.meta`] : []),
    ...['uid 70000', 'gid 70001', `mode ${mode}`, 'atime @5', 'mtime @5', 'ctime @1700000000'].map(
      (field) => `sif ${path} ${field}`,
    ),
  ];

  it('writes the bytes debugfs writes for the same owners, modes, times and dropped xattrs', () => {
    const { image, planned } = makeFs('fs');
    const viaDebugfs = join(tmp.path, 'debugfs.img');
    copyFileSync(image, viaDebugfs);
    const script = [...sif('/', '040755', false), ...sif('/b', '0104711'), ...sif('/d', '041777', false)];
    writeFileSync(join(tmp.path, 'script'), [...script, ...sif('/d/a', '0100600'), ''].join('\n'));
    runTool('debugfs', ['-w', '-f', join(tmp.path, 'script'), viaDebugfs], { env });

    expect(rewriteExt4Inodes(image, 0, planned)).toEqual([true, true, true, true, false]);
    // debugfs also counts the kilobytes it wrote in the superblock: compare everything after it.
    expect(readFileSync(image).subarray(4096).equals(readFileSync(viaDebugfs).subarray(4096))).toBe(true);
    expect(runTool('debugfs', ['-R', 'ea_list /d/a', image])).toMatch(/^ *user\.keep \(4\) = "kept"$/m);
    runTool('e2fsck', ['-f', '-n', image]);
  });

  it('writes nothing and returns null when the inodes are not in the planned order', () => {
    const { image, planned } = makeFs('order');
    const before = readFileSync(image);
    const swapped = [planned[0], planned[2], planned[1], planned[3], planned[4]] as PlannedRewrite[];
    expect(rewriteExt4Inodes(image, 0, swapped)).toBeNull();
    expect(readFileSync(image).equals(before)).toBe(true);
  });
});
