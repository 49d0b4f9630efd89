// readPackageList: a commit's `arbor.packages` metadata in the shape `db list` gives, and the
// diff `db diff` and `upgrade --preview` share.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { type Checksum, type MetadataValue, Repo, commitTree } from '../repo/index.js';
import { diffPackages, readPackageList } from './db.js';

const SHA = 'ab'.repeat(32);

describe('readPackageList', () => {
  const tmp = useTempDir('arbor-db-');
  let count = 0;
  /** A commit of an empty tree with `arbor.packages` set to `value` (absent when undefined). */
  const commitWith = async (value: MetadataValue | undefined): Promise<{ repo: Repo; commit: Checksum }> => {
    const dir = join(tmp.path, `case-${++count}`);
    mkdirSync(join(dir, 'tree'), { recursive: true });
    const repo = Repo.init(join(dir, 'repo'), 'bare-user');
    const metadata = new Map(value === undefined ? [] : [['arbor.packages', value] as const]);
    const { checksum } = await commitTree(repo, {
      branch: 'os',
      tree: { dir: join(dir, 'tree') },
      owner: { uid: 0, gid: 0 },
      timestamp: 0,
      metadata,
    });
    return { repo, commit: checksum };
  };
  const strings = (lines: string[]): MetadataValue => ({ type: 'strings', value: lines });

  it('reads NAME-EPOCH:VERSION-RELEASE.ARCH lines sorted by name and arch; epoch 0 reads as none', async () => {
    const { repo, commit } = await commitWith(
      strings([
        `web-app-2:1.4~rc1-3.fc40.x86_64 ${SHA}`,
        `bash-0:5.2.26-1.fc40.x86_64 ${SHA}`,
        `bash-0:5.2.26-1.fc40.i686 ${SHA}`,
      ]),
    );
    expect(readPackageList(repo, commit)).toEqual([
      {
        name: 'bash',
        epoch: null,
        version: '5.2.26',
        release: '1.fc40',
        arch: 'i686',
        nevra: 'bash-5.2.26-1.fc40.i686',
      },
      {
        name: 'bash',
        epoch: null,
        version: '5.2.26',
        release: '1.fc40',
        arch: 'x86_64',
        nevra: 'bash-5.2.26-1.fc40.x86_64',
      },
      {
        name: 'web-app',
        epoch: 2,
        version: '1.4~rc1',
        release: '3.fc40',
        arch: 'x86_64',
        nevra: 'web-app-2:1.4~rc1-3.fc40.x86_64',
      },
    ]);
    repo.close();
  });

  it('is null for a commit without a package list', async () => {
    const { repo, commit } = await commitWith(undefined);
    expect(readPackageList(repo, commit)).toBeNull();
    repo.close();
  });

  it.each<[string, MetadataValue, RegExp]>([
    ['a string instead of a list', { type: 'string', value: `bash-0:5.2-1.x86_64 ${SHA}` }, /is not a list of strings/],
    ['a line without an epoch', strings([`bash-5.2-1.x86_64 ${SHA}`]), /malformed entry 1/],
    [
      'a line without the header digest',
      strings([`ok-0:1-1.noarch ${SHA}`, 'bash-0:5.2-1.x86_64']),
      /malformed entry 2/,
    ],
    ['a line without an arch', strings([`bash-0:5.2-1 ${SHA}`]), /malformed entry 1/],
  ])('refuses %s with E_PACKAGE_LIST_INVALID (exit 3)', async (_, value, message) => {
    const { repo, commit } = await commitWith(value);
    expect(() => readPackageList(repo, commit)).toThrow(
      expect.objectContaining({ code: 'E_PACKAGE_LIST_INVALID', exit: 3, message: expect.stringMatching(message) }),
    );
    repo.close();
  });

  it('diffs by name and arch: an arch added beside an upgraded one is added, not changed', async () => {
    const a = await commitWith(
      strings([`bash-0:5.2-1.x86_64 ${SHA}`, `gone-0:1-1.noarch ${SHA}`, `old-1:2-1.noarch ${SHA}`]),
    );
    const b = await commitWith(
      strings([`bash-0:5.3-1.x86_64 ${SHA}`, `bash-0:5.3-1.i686 ${SHA}`, `old-0:9-1.noarch ${SHA}`]),
    );
    const diff = diffPackages(readPackageList(a.repo, a.commit) ?? [], readPackageList(b.repo, b.commit) ?? []);
    expect(diff).toMatchObject({
      added: [{ nevra: 'bash-5.3-1.i686' }],
      removed: [{ nevra: 'gone-1-1.noarch' }],
      upgraded: [{ name: 'bash', arch: 'x86_64', from: '5.2-1', to: '5.3-1' }],
      downgraded: [{ name: 'old', arch: 'noarch', from: '1:2-1', to: '9-1' }],
    });
    a.repo.close();
    b.repo.close();
  });
});
