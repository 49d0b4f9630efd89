// The rules shared by both package sources: createrepo_c's EVR split and primary-file test, and
// the dependency lists it derives from a header (rpm-directory.ts).
import { describe, expect, it } from 'vitest';
import type { RpmDependency, RpmPackage } from '../rpm/package.js';
import { Sense } from '../rpm/tags.js';
import { isPrimaryPath, splitDependencyEvr } from './records.js';
import { repoDependencies } from './rpm-directory.js';
import { rpmFile } from '../../../test/support/rpm-values.js';

describe('splitDependencyEvr', () => {
  it.each<[string, ReturnType<typeof splitDependencyEvr>]>([
    ['1.0', { epoch: 0, ver: '1.0', rel: null }],
    ['1.0-3.fc40', { epoch: 0, ver: '1.0', rel: '3.fc40' }],
    ['2:1.0-3', { epoch: 2, ver: '1.0', rel: '3' }],
    ['2:1.0', { epoch: 2, ver: '1.0', rel: null }],
    ['1.0-3-4', { epoch: 0, ver: '1.0', rel: '3-4' }],
    ['1.0-', { epoch: 0, ver: '1.0', rel: null }],
    [':1.0', { epoch: 0, ver: '1.0', rel: null }],
    ['1~rc1^git2-1', { epoch: 0, ver: '1~rc1^git2', rel: '1' }],
    ['x:1.0', undefined],
  ])('splits %s', (evr, expected) => {
    expect(splitDependencyEvr(evr)).toEqual(expected);
  });
});

describe('isPrimaryPath', () => {
  it.each<[string, boolean]>([
    ['/etc/passwd', true],
    ['/usr/bin/sh', true],
    ['/opt/tool/sbin/daemon', true],
    ['/usr/lib/sendmail', true],
    ['/etc', false],
    ['/usr/lib/libc.so.6', false],
    ['/usr/share/doc/bin', false],
  ])('%s → %s', (path, expected) => {
    expect(isPrimaryPath(path)).toBe(expected);
  });
});

describe('repoDependencies', () => {
  const dep = (name: string, flags = 0, evr = ''): RpmDependency => ({ name, flags, ...(evr !== '' && { evr }) });
  const pkg = (dependencies: Partial<RpmPackage['dependencies']>, files: string[] = []): RpmPackage =>
    ({
      files: files.map(rpmFile),
      dependencies: {
        provides: [],
        requires: [],
        conflicts: [],
        obsoletes: [],
        recommends: [],
        suggests: [],
        supplements: [],
        enhances: [],
        ...dependencies,
      },
    }) as unknown as RpmPackage;
  const plain = (name: string, pre = false) => ({ name, flags: null, epoch: null, ver: null, rel: null, pre });

  it('drops what createrepo_c drops from requires', () => {
    const out = repoDependencies(
      pkg(
        {
          provides: [dep('self', Sense.Equal, '1.0-1'), dep('cap')],
          requires: [
            dep('rpmlib(PayloadIsZstd)', Sense.Less | Sense.Equal | Sense.RpmLib, '5.4.18-1'),
            dep('/usr/bin/own'), // a primary path the package ships
            dep('/usr/share/own'), // shipped but not primary: kept, as createrepo_c does
            dep('self', Sense.Equal, '1.0-1'), // provided by itself, same flags and EVR
            dep('self', Sense.Greater | Sense.Equal, '1.0'), // not the same: kept
            dep('sh', Sense.ScriptPre),
            dep('sh', Sense.ScriptPre), // repeat of the previous: dropped
            dep('sh'),
            dep('sh', Sense.ScriptPost | Sense.ScriptPre),
            dep('opt', Sense.MissingOk), // legacy weak dependency
          ],
        },
        ['/usr/bin/own', '/usr/share/own'],
      ),
    );
    expect(out.requires).toEqual([
      plain('/usr/share/own'),
      { name: 'self', flags: 'GE', epoch: 0, ver: '1.0', rel: null, pre: false },
      plain('sh', true),
      plain('sh'),
      plain('sh', true),
    ]);
    expect(out.recommends).toEqual([plain('opt')]);
    expect(out.provides).toEqual([
      { name: 'self', flags: 'EQ', epoch: 0, ver: '1.0', rel: '1', pre: false },
      plain('cap'),
    ]);
  });

  it('maps every comparison and skips an EVR with a non-numeric epoch', () => {
    const out = repoDependencies(
      pkg({
        conflicts: [
          dep('a', Sense.Less, '1'),
          dep('b', Sense.Less | Sense.Equal, '1'),
          dep('c', Sense.Equal, '3:1'),
          dep('d', Sense.Greater | Sense.Equal, '1'),
          dep('e', Sense.Greater, '1'),
          dep('f', Sense.Equal, 'x:1'),
        ],
      }),
    );
    expect(out.conflicts.map((d) => [d.name, d.flags, d.epoch])).toEqual([
      ['a', 'LT', 0],
      ['b', 'LE', 0],
      ['c', 'EQ', 3],
      ['d', 'GE', 0],
      ['e', 'GT', 0],
    ]);
  });
});
