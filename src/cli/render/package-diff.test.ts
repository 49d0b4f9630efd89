import { describe, expect, it } from 'vitest';
import type { PackageEntry } from '../../rpm-compose/db.js';
import { renderPackageDiff } from './package-diff.js';

const entry = (name: string, version: string, arch = 'noarch'): PackageEntry => ({
  name,
  epoch: null,
  version,
  release: '1',
  arch,
  nevra: `${name}-${version}-1.${arch}`,
});

describe('renderPackageDiff', () => {
  it('lists upgraded, downgraded, removed and added packages by name.arch, in that order', () => {
    const diff = {
      added: [entry('new', '1.0', 'x86_64')],
      removed: [entry('gone', '2.0')],
      upgraded: [{ name: 'bash', arch: 'x86_64', from: '5.2-1', to: '1:5.3-1' }],
      downgraded: [{ name: 'tools', arch: 'noarch', from: '1.0-2', to: '1.0-1' }],
    };
    expect(renderPackageDiff(diff)).toBe(`Upgraded:
  bash.x86_64 5.2-1 -> 1:5.3-1
Downgraded:
  tools.noarch 1.0-2 -> 1.0-1
Removed:
  gone-2.0-1.noarch
Added:
  new-1.0-1.x86_64
`);
  });

  it('says when nothing changed', () => {
    expect(renderPackageDiff({ added: [], removed: [], upgraded: [], downgraded: [] })).toBe('no package changes\n');
  });
});
