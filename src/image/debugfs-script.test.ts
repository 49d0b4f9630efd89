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

  it('removes the bare-user header, sets xattrs from value files, and replaces a stored symlink', () => {
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
    expect(script.split('\n').slice(0, 4)).toEqual([
      'rm "/o/ab.file"',
      'symlink "/o/ab.file" "../lib/x y"',
      'ea_rm "/o/ab.file" "user.arbor.meta"',
      'ea_set -f "/w/0102" "/o/ab.file" "security.capability"',
    ]);
    expect(script).toContain('sif "/o/ab.file" crtime @5');
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
