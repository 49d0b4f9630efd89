import { describe, expect, it } from 'vitest';
import { type InodeSpec, quoteDebugfs, renderDebugfsScript } from './debugfs-script.js';

const base: InodeSpec = {
  path: '/usr/bin/su',
  uid: 0,
  gid: 0,
  mode: 0o104755,
  xattrs: [],
  dropXattrs: [],
  mtime: 0,
  staged: { uid: 1000, gid: 1000, mode: 0o100755, mtime: 5, size: 0 },
};

describe('renderDebugfsScript', () => {
  it('sets owner, mode and times of every inode, ctime last', () => {
    expect(renderDebugfsScript([base], 1000, () => '')).toBe(
      [
        'sif "/usr/bin/su" uid 0',
        'sif "/usr/bin/su" gid 0',
        'sif "/usr/bin/su" mode 0104755',
        'sif "/usr/bin/su" mtime @0',
        'sif "/usr/bin/su" atime @0',
        'sif "/usr/bin/su" ctime @1000',
        '',
      ].join('\n'),
    );
  });

  it('replaces a stored symlink, sets its xattrs, and writes only what debugfs did not make right', () => {
    const script = renderDebugfsScript(
      [
        {
          ...base,
          path: '/o/ab.file',
          mode: 0o120777,
          dropXattrs: ['user.arbor.meta'],
          xattrs: [{ name: 'security.capability', value: Buffer.of(1, 2) }],
          replaceWith: { kind: 'symlink', target: '../lib/x y' },
        },
      ],
      5,
      (value) => `/w/${value.toString('hex')}`,
    );
    // The new symlink is root-owned, mode 0777, with the image's times: only atime and mtime move.
    expect(script).toBe(
      [
        'rm "/o/ab.file"',
        'symlink "/o/ab.file" "../lib/x y"',
        'ea_set -f "/w/0102" "/o/ab.file" "security.capability"',
        'sif "/o/ab.file" mtime @0',
        'sif "/o/ab.file" atime @0',
        'sif "/o/ab.file" ctime @5',
        '',
      ].join('\n'),
    );
  });

  it('removes the bare-user header and sets everything, crtime included, on a device it makes', () => {
    const script = renderDebugfsScript(
      [{ ...base, path: '/o/cd.file', mode: 0o020600, replaceWith: { kind: 'device', type: 'c', major: 1, minor: 3 } }],
      5,
      () => '',
    );
    expect(script.split('\n').slice(0, 2)).toEqual(['rm "/o/cd.file"', 'mknod "/o/cd.file" c 1 3']);
    expect(script).toContain('sif "/o/cd.file" mode 020600');
    expect(script).toContain('sif "/o/cd.file" crtime @5');
    expect(renderDebugfsScript([{ ...base, dropXattrs: ['user.arbor.meta'] }], 5, () => '')).toMatch(
      /^ea_rm "\/usr\/bin\/su" "user\.arbor\.meta"$/m,
    );
  });

  it('writes only atime and ctime when mkfs copied the rest right', () => {
    const same = { ...base, staged: { uid: 0, gid: 0, mode: 0o104755, mtime: 0, size: 0 } };
    expect(renderDebugfsScript([same], 9, () => '')).toBe('sif "/usr/bin/su" atime @0\nsif "/usr/bin/su" ctime @9\n');
  });

  it('refuses names debugfs cannot address', () => {
    expect(() => quoteDebugfs('a"b')).toThrow(expect.objectContaining({ code: 'E_IMAGE_PATH_UNSUPPORTED' }));
    expect(() => quoteDebugfs('a\nb')).toThrow(expect.objectContaining({ code: 'E_IMAGE_PATH_UNSUPPORTED' }));
  });
});
