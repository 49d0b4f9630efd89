// pkgRefName: package refs escape the EVR (and anything unusual in name or arch) into valid refs.
import { describe, expect, it } from 'vitest';
import { invalidRefReason } from '../repo/index.js';
import { pkgRefName } from './import.js';

describe('pkgRefName', () => {
  it.each<[string, number | undefined, string, string, string, string]>([
    ['bash', undefined, '5.2.15', '3.fc39', 'x86_64', 'pkg/bash/0_3a5.2.15-3.fc39.x86_64'],
    ['bash', 0, '5.2.15', '3.fc39', 'x86_64', 'pkg/bash/0_3a5.2.15-3.fc39.x86_64'],
    [
      'arbor-basic',
      3,
      '1.2~rc1^git20260101',
      '4.fc99',
      'noarch',
      'pkg/arbor-basic/3_3a1.2_7erc1_5egit20260101-4.fc99.noarch',
    ],
    ['python3-foo_bar', 1, '2.0_1', '1', 'noarch', 'pkg/python3-foo_bar/1_3a2.0_5f1-1.noarch'],
    ['gcc-c++', 2, '13.2.1', '1+b2', 'aarch64', 'pkg/gcc-c++/2_3a13.2.1-1+b2.aarch64'],
    ['x', 1, '1..2', '1', 'noarch', 'pkg/x/1_3a1._2e2-1.noarch'],
    ['x', 1, '1.0', 'ré', 'noarch', 'pkg/x/1_3a1.0-r_c3_a9.noarch'],
    ['x', 1, '1 0', '1/2', 'noarch', 'pkg/x/1_3a1_200-1_2f2.noarch'],
  ])('%s %s:%s-%s.%s → %s', (name, epoch, version, release, arch, ref) => {
    expect(pkgRefName(name, epoch, version, release, arch)).toBe(ref);
    expect(invalidRefReason(ref)).toBeUndefined();
  });

  it('is unambiguous: different EVRs give different refs', () => {
    const evrs: [number, string, string][] = [
      [1, '1_3a2', '1'],
      [1, '1:2', '1'],
      [1, '1~2', '1'],
      [1, '1_7e2', '1'],
    ];
    const refs = new Set(evrs.map(([e, v, r]) => pkgRefName('p', e, v, r, 'noarch')));
    expect(refs.size).toBe(evrs.length);
  });
});
