// Assembling imported packages into one tree, checked against the real rpm: the union of packages
// A and B equals what `rpm -i --root` installs from the same files (owners, modes, contents,
// symlinks; rpm's own database left out), and a file conflict rpm refuses is reported naming both
// packages and the path.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Checksum, Repo, checkoutCommit, encodeCommit } from '../../src/repo/index.js';
import { assembleTree } from '../../src/rpm-compose/assemble.js';
import { IS_ROOT, arbor, tempDir } from '../support/cli.js';
import { listTree } from '../support/tree.js';
import { HAVE_RPMBUILD } from './rpm-fixtures.js';

/** Spec of a small noarch package with the given %install script and %files list. */
function spec(name: string, install: string, files: string): string {
  return `Name: ${name}
Version: 1.0
Release: 1
Summary: assemble test package ${name}
License: MIT
BuildArch: noarch
%description
Test package.
%install
${install}
%files
${files}
`;
}

const SPECS: Record<string, string> = {
  // Owns /usr/share/shared with mode 0750; a file identical to B's; a symlink.
  'asm-a': spec(
    'asm-a',
    `mkdir -p %{buildroot}/usr/share/shared %{buildroot}/usr/share/a
printf 'same in A and B\\n' > %{buildroot}/usr/share/shared/common.txt
printf 'only in A\\n' > %{buildroot}/usr/share/a/only-a
ln -s ../shared/common.txt %{buildroot}/usr/share/a/link`,
    `%dir %attr(0750,root,root) /usr/share/shared
/usr/share/shared/common.txt
/usr/share/a`,
  ),
  // Shares the identical file, does not own the directory, adds a script.
  'asm-b': spec(
    'asm-b',
    `mkdir -p %{buildroot}/usr/share/shared %{buildroot}/usr/bin
printf 'same in A and B\\n' > %{buildroot}/usr/share/shared/common.txt
printf '#!/bin/sh\\necho b\\n' > %{buildroot}/usr/bin/asm-b
chmod 0755 %{buildroot}/usr/bin/asm-b`,
    `/usr/share/shared/common.txt
%attr(4755,root,root) /usr/bin/asm-b`,
  ),
  // The same path as A's file with other content: rpm refuses A and C together.
  'asm-c': spec(
    'asm-c',
    `mkdir -p %{buildroot}/usr/share/shared
printf 'different in C\\n' > %{buildroot}/usr/share/shared/common.txt`,
    `/usr/share/shared/common.txt`,
  ),
};

describe.skipIf(!HAVE_RPMBUILD || !IS_ROOT)('assembling imported packages', () => {
  const tmp = tempDir();
  const repoPath = join(tmp.path, 'repo');
  const rpms = new Map<string, string>();
  const commits = new Map<string, Checksum>();
  beforeAll(() => {
    for (const [name, text] of Object.entries(SPECS)) {
      const specPath = join(tmp.path, `${name}.spec`);
      writeFileSync(specPath, text);
      const r = spawnSync(
        'rpmbuild',
        [
          '-bb',
          '--quiet',
          '--define',
          `_topdir ${tmp.path}/top`,
          '--define',
          `_rpmdir ${tmp.path}/rpms`,
          '--define',
          '_build_name_fmt %{NAME}.rpm',
          specPath,
        ],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`rpmbuild ${name}: ${r.stderr}`);
      rpms.set(name, join(tmp.path, 'rpms', `${name}.rpm`));
    }
    arbor('init', '--repo', repoPath, '--mode', 'bare');
    const out = JSON.parse(arbor('rpm', 'import', '--repo', repoPath, '--json', ...rpms.values())) as {
      ref: string;
      commit: Checksum;
    }[];
    [...rpms.keys()].forEach((name, i) => commits.set(name, out[i]!.commit));
  });
  afterAll(() => tmp.cleanup());

  const assemble = (names: string[]): ReturnType<typeof assembleTree> & { commit: Checksum } => {
    const repo = Repo.open(repoPath);
    try {
      const tx = repo.beginTransaction();
      const result = assembleTree(
        tx,
        names.map((n) => ({ nevra: `${n}-1.0-1.noarch`, commit: commits.get(n)! })),
      );
      const commit = tx.writeMetadata(
        'commit',
        encodeCommit({
          parent: null,
          timestamp: 0,
          subject: names.join('+'),
          body: '',
          rootTree: result.tree,
          rootMeta: result.meta,
          metadata: new Map(),
        }),
      );
      tx.commit([{ name: `test/${names.join('-')}`, checksum: commit }]);
      return { ...result, commit };
    } finally {
      repo.close();
    }
  };

  // In either order: the directory B has without listing it takes A's owner and mode (0750).
  it.each([[['asm-a', 'asm-b']], [['asm-b', 'asm-a']]])(
    'equals what rpm installs for A and B together, sharing the identical file (%j)',
    async (names) => {
      const result = assemble(names);
      expect(result.conflicts).toEqual([]);
      const ours = join(tmp.path, `ours-${names.join('-')}`);
      const repo = Repo.open(repoPath);
      try {
        await checkoutCommit(repo, result.commit, ours, { mode: 'copy' });
      } finally {
        repo.close();
      }
      const root = join(tmp.path, 'rpmroot');
      rmSync(root, { recursive: true, force: true });
      mkdirSync(root);
      const r = spawnSync(
        'rpm',
        ['--root', root, '-i', '--nodeps', '--noscripts', '--nosignature', rpms.get('asm-a')!, rpms.get('asm-b')!],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      // rpm's database (Debian's rpm keeps it in ~/.rpmdb, i.e. ROOT/root/.rpmdb) is not part of the packages.
      const strip = (entries: ReturnType<typeof listTree>) =>
        entries.filter((e) => !/^(root|var|usr\/lib\/sysimage)(\/|$)/.test(e.path));
      expect(strip(listTree(ours))).toEqual(strip(listTree(root)));
    },
  );

  it('reports the conflict rpm refuses, naming both packages and the path', () => {
    const r = spawnSync(
      'rpm',
      [
        '--root',
        join(tmp.path, 'rpmroot2'),
        '-i',
        '--test',
        '--nodeps',
        '--noscripts',
        '--nosignature',
        rpms.get('asm-a')!,
        rpms.get('asm-c')!,
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /\/usr\/share\/shared\/common\.txt conflicts between attempted installs of asm-a.* and asm-c/,
    );
    const result = assemble(['asm-a', 'asm-c']);
    expect(result.conflicts).toHaveLength(1);
    expect(result.conflicts[0]).toMatchObject({
      path: '/usr/share/shared/common.txt',
      packages: ['asm-a-1.0-1.noarch', 'asm-c-1.0-1.noarch'],
    });
    expect(result.conflicts[0]!.reason).toMatch(/16 bytes against .*15 bytes/);
  });
});
