// Package layering end to end through the CLI: a sysroot with a composed base deployment and a
// local yum repository of extra packages built by rpmbuild; `install`, `uninstall` and `override`
// make derived deployments the real rpm reads, and bad input leaves the boot set as it was.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import {
  BASE,
  BASE_NEVRS,
  HAVE_LAYERING_TOOLS,
  makeBaseSysroot,
  recomposeBase,
  rpmQa,
} from '../support/layering-base.js';
import { type PackageDef, buildPackages, makeRepo } from '../support/rpmgen.js';
import { type StatusJson, TestSysroot } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';

/** The repository of packages to layer: one with a dependency and a %post, and bad ones. */
const EXTRA: PackageDef[] = [
  {
    name: 'htop',
    version: '3.3',
    requires: ['libcore.so.2', 'htop-data'],
    files: {
      '/usr/bin/htop': { content: '#!/bin/sh\necho htop\n', mode: 0o755 },
      '/etc/htoprc': { content: 'color=1\n', config: true },
      '/var/lib/htop': { dir: true },
    },
    scripts: { post: 'echo "installed $1" > /usr/share/htop-post-ran' },
  },
  { name: 'htop-data', version: '3.3', files: { '/usr/share/htop/themes': 'dark\n' } },
  { name: 'vi-clone', files: { '/usr/bin/vi': { content: '#!/bin/sh\necho clone\n', mode: 0o755 } } },
  {
    name: 'breaks-post',
    files: { '/usr/share/breaks/x': 'x\n' },
    scripts: { post: 'echo failing on purpose >&2; exit 3' },
  },
  { name: 'vendor-opt', files: { '/opt/vendor/bin/tool': { content: 'x\n', mode: 0o755 } } },
  { name: 'anti-vim', conflicts: ['vim-minimal'], files: { '/usr/share/anti-vim/x': 'x\n' } },
  // Obsoletes a base package: layering must not swap it in for the base one unless asked, and then refuses.
  { name: 'vim-ng', obsoletes: ['vim-minimal'], provides: ['vim-minimal'], files: { '/usr/bin/vim-ng': 'x\n' } },
];

/** Package files installed by path (not in any repository). */
const LOCAL: PackageDef[] = [
  {
    name: 'agent',
    version: '1.0',
    requires: ['/bin/sh'],
    files: { '/usr/bin/agent': { content: 'agent\n', mode: 0o755 } },
  },
  {
    name: 'libcore',
    version: '2.0',
    release: '2',
    provides: ['libcore.so.2'],
    files: { '/usr/lib64/libcore.so.2': 'library 2\n' },
  },
];

interface StatusLayering {
  baseCommit: string;
  layeredPackages: string[];
  localPackages: string[];
  removedBasePackages: string[];
  replacedBasePackages: string[];
}

describe.skipIf(!HAVE_LAYERING_TOOLS)('package layering', () => {
  const tmp = useTempDir('arbor-layering-');
  const dir = (name: string): string => join(tmp.path, name);
  let template: TestSysroot;
  let copies = 0;
  const fresh = (): TestSysroot => template.copyTo(dir(`sysroot-${copies++}`));

  let baseCommit: string;
  let locals: string[];

  beforeAll(() => {
    ({ template, baseCommit } = makeBaseSysroot(tmp.path));
    makeRepo(dir('extra'), EXTRA);
    locals = buildPackages(dir('local'), LOCAL);
  }, 180_000);

  /** What a failed command must leave as it was; the package directory is a cache, as the repository is. */
  const listing = (s: TestSysroot): string[] => s.listing().filter((l) => !l.startsWith('arbor/layering/'));

  /** The default deployment's directory and status entry. */
  const newest = (s: TestSysroot) => {
    const d = s.status().deployments[0] as StatusJson['deployments'][number] & { layering: StatusLayering | null };
    return { d, root: s.deploymentDir(d.checksum, d.serial) };
  };

  it('installs a package with its dependency from a repository as a new deployment rpm lists', () => {
    const s = fresh();
    const r = s.cli(['install', '--repo-dir', dir('extra'), 'htop']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^change:\n  add htop-data-3\.3-1\.noarch \(required by htop-3\.3-1\.noarch \('htop-data'\); from \S+\/extra\)\n  add htop-3\.3-1\.noarch \(requested as 'htop'; from \S+\/extra\)\ndownload: \d+ bytes\n/,
    );
    expect(r.stdout).toContain('ran htop-3.3-1.noarch %post');
    const { d, root } = newest(s);
    expect(d.checksum).not.toBe(baseCommit);
    expect(rpmQa(root)).toEqual([...BASE_NEVRS, 'htop-3.3-1', 'htop-data-3.3-1'].sort());
    expect(readFileSync(join(root, 'usr/bin/htop'), 'utf8')).toBe('#!/bin/sh\necho htop\n');
    expect(readFileSync(join(root, 'usr/share/htop/themes'), 'utf8')).toBe('dark\n');
    expect(readFileSync(join(root, 'usr/share/htop-post-ran'), 'utf8')).toBe('installed 1\n');
    // rpm -V: every file as its header says, but mtimes (checkouts have mtime 0) and /var, which
    // tmpfiles.d makes at boot.
    const verify = spawnSync(
      'rpm',
      ['--root', root, '--dbpath', '/usr/share/rpm', '-V', '--nomtime', 'htop', 'htop-data'],
      { encoding: 'utf8' },
    );
    expect(verify.stderr).toBe('');
    expect(verify.stdout).toBe('missing     /var/lib/htop\n');
    // /etc defaults land in /usr/etc and reach the deployment's /etc by the merge; /var becomes tmpfiles.d.
    expect(readFileSync(join(root, 'etc/htoprc'), 'utf8')).toBe('color=1\n');
    expect(readFileSync(join(root, 'usr/lib/tmpfiles.d/arbor-layered.conf'), 'utf8')).toContain(
      'd /var/lib/htop 0755 0 0 - -',
    );
    expect(d.layering).toEqual({
      baseCommit,
      layeredPackages: ['htop'],
      localPackages: [],
      removedBasePackages: [],
      replacedBasePackages: [],
    });
    expect(readFileSync(`${root}.origin`, 'utf8')).toContain('[packages]\nrequested=htop;\n');
    // The base deployment stays, as the rollback.
    expect(s.status().deployments[1]?.checksum).toBe(baseCommit);
    expect(s.ok('status')).toContain(`BaseCommit: ${baseCommit}\n      LayeredPackages: htop`);
  });

  it('prints the transaction on a dry run and deploys nothing', () => {
    const s = fresh();
    const before = listing(s);
    const r = s.cli(['install', '--dry-run', '--json', '--repo-dir', dir('extra'), 'htop']);
    expect(r.exitCode, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as {
      base: string;
      dryRun: boolean;
      added: { nevra: string; why: string }[];
      downloadBytes: number;
    };
    expect(json.base).toBe(baseCommit);
    expect(json.added.map((p) => p.nevra)).toEqual(['htop-data-3.3-1.noarch', 'htop-3.3-1.noarch']);
    expect(json.downloadBytes).toBeGreaterThan(0);
    expect(listing(s)).toEqual(before);
  });

  it('installs a local package file, and uninstalling it gives back the base commit itself', () => {
    const s = fresh();
    const r = s.cli(['install', locals[0] as string]);
    expect(r.exitCode, r.stderr).toBe(0);
    const { d, root } = newest(s);
    expect(rpmQa(root)).toEqual([...BASE_NEVRS, 'agent-1.0-1'].sort());
    expect(d.layering?.localPackages).toEqual(['agent-1.0-1.noarch']);
    expect(readFileSync(`${root}.origin`, 'utf8')).toMatch(
      /\[packages\]\nrequested-local=[0-9a-f]{64}:agent-1\.0-1\.noarch;\n/,
    );
    const u = s.cli(['uninstall', 'agent']);
    expect(u.exitCode, u.stderr).toBe(0);
    expect(u.stdout).toContain('no package changes: the deployment is the base commit');
    const after = newest(s);
    expect(after.d.checksum).toBe(baseCommit);
    expect(after.d.layering).toBeNull();
  });

  it('removes and replaces base packages, and override reset --all returns to the base tree', () => {
    const s = fresh();
    expect(s.cli(['override', 'remove', 'vim-minimal']).exitCode).toBe(0);
    let { d, root } = newest(s);
    expect(rpmQa(root)).toEqual(BASE_NEVRS.filter((p) => !p.startsWith('vim-minimal')));
    expect(existsSync(join(root, 'usr/bin/vi'))).toBe(false);
    const r = s.cli(['override', 'replace', locals[1] as string]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('  replace libcore-2.0-1.noarch with libcore-2.0-2.noarch\n');
    ({ d, root } = newest(s));
    expect(rpmQa(root)).toEqual(['kernel-6.1.0-1.test', 'libcore-2.0-2', 'setup-2.14-1', 'shell-5.2-1']);
    expect(readFileSync(join(root, 'usr/lib64/libcore.so.2'), 'utf8')).toBe('library 2\n');
    expect(d.layering).toMatchObject({
      removedBasePackages: ['vim-minimal-9.0-1.noarch'],
      replacedBasePackages: ['libcore-2.0-1.noarch -> libcore-2.0-2.noarch'],
    });
    expect(s.ok('status')).toContain(
      '      RemovedBasePackages: vim-minimal-9.0-1.noarch\n      ReplacedBasePackages: libcore-2.0-1.noarch -> libcore-2.0-2.noarch\n',
    );
    expect(s.cli(['override', 'reset', 'vim-minimal']).exitCode).toBe(0);
    expect(rpmQa(newest(s).root)).toContain('vim-minimal-9.0-1');
    expect(s.cli(['override', 'reset', '--all']).exitCode).toBe(0);
    expect(newest(s).d.checksum).toBe(baseCommit);
  });

  it('re-applies the layered packages when the base is upgraded, from the kept package files', () => {
    const s = fresh();
    expect(s.cli(['install', '--repo-dir', dir('extra'), 'htop']).exitCode).toBe(0);
    // A new base: vim-minimal 9.1 (composed into the same ref the origin follows).
    const newBase = recompose(s, 'base-2', [{ ...(BASE[4] as PackageDef), version: '9.1' }]);
    // No --repo-dir: the packages come from the sysroot's package directory.
    const r = s.cli(['upgrade']);
    expect(r.exitCode, r.stderr).toBe(0);
    const { d, root } = newest(s);
    expect(d.layering?.baseCommit).toBe(newBase);
    expect(rpmQa(root)).toEqual(
      [...BASE_NEVRS.filter((p) => !p.startsWith('vim')), 'vim-minimal-9.1-1', 'htop-3.3-1', 'htop-data-3.3-1'].sort(),
    );
    expect(readFileSync(join(root, 'usr/share/htop-post-ran'), 'utf8')).toBe('installed 1\n');
    // Nothing newer: upgrade compares the base, not the derived commit.
    expect(s.cli(['upgrade']).stdout).toMatch(/^no upgrade available/);
  });

  it.each([
    ['a file the base owns', ['vi-clone'], 'E_LAYER_FILE_CONFLICT', /\/usr\/bin\/vi: vim-minimal-9\.0-1\.noarch/],
    ['a package conflicting with a base package', ['anti-vim'], 'E_SOLVE_UNSATISFIABLE', /anti-vim/],
    ['an unknown package', ['no-such-package'], 'E_SOLVE_UNSATISFIABLE', /no-such-package/],
    [
      'a failing %post',
      ['breaks-post'],
      'E_SCRIPTLET_FAILED',
      /%post of 'breaks-post-1-1\.noarch' failed with exit status 3/,
    ],
    ['a package writing /opt', ['vendor-opt'], 'E_LAYER_PATH', /\/opt/],
    ['a package already in the base', ['vim-minimal'], 'E_LAYER_IN_BASE', /vim-minimal/],
    ['a package obsoleting a base package', ['vim-ng'], 'E_LAYER_BASE_CHANGED', /'vim-minimal-9\.0-1\.noarch'/],
  ])('refuses %s and leaves the boot set as it was', (_what, args, code, message) => {
    const s = fresh();
    const before = listing(s);
    const r = s.cli(['install', '--repo-dir', dir('extra'), ...args]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`[${code}]`);
    expect(r.stderr).toMatch(message);
    expect(listing(s)).toEqual(before);
    expect(s.bootSetProblems()).toEqual([]);
  });

  it('refuses to uninstall what is not layered and to reset what has no override (exit 1, nothing changed)', () => {
    const s = fresh();
    const before = listing(s);
    for (const args of [
      ['uninstall', 'htop'],
      ['override', 'reset', 'vim-minimal'],
    ]) {
      const r = s.cli(args);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^error\[E_LAYER_NOT_REQUESTED\]/);
    }
    expect(s.cli(['override', 'reset']).exitCode).toBe(2);
    expect(listing(s)).toEqual(before);
  });

  /** Composes `os/base` again in the sysroot's repository with these packages over the base ones. */
  const recompose = (s: TestSysroot, name: string, defs: PackageDef[]): string =>
    recomposeBase(s, tmp.path, name, defs);

  it('keeps a replaced base package across an upgrade that does not touch it, and notes when the base moves past it', () => {
    const s = fresh();
    expect(s.cli(['override', 'replace', locals[1] as string]).exitCode).toBe(0);
    recompose(s, 'vim-9.2', [{ ...(BASE[4] as PackageDef), version: '9.2' }]);
    let r = s.cli(['upgrade']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('note:');
    expect(rpmQa(newest(s).root)).toEqual(expect.arrayContaining(['libcore-2.0-2', 'vim-minimal-9.2-1']));
    recompose(s, 'libcore-3', [{ ...(BASE[3] as PackageDef), release: '3' }]);
    r = s.cli(['upgrade']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      'note: the base moved past replacement libcore-2.0-2.noarch: it has libcore-2.0-3.noarch (the replacement still applies)\n',
    );
    expect(rpmQa(newest(s).root)).toContain('libcore-2.0-2');
  });

  it('shows the layered packages in db diff between the base and the derived commit', () => {
    const s = fresh();
    expect(s.cli(['install', '--repo-dir', dir('extra'), 'htop']).exitCode).toBe(0);
    const diff = runCli(['db', 'diff', baseCommit, newest(s).d.checksum, '--repo', s.repo]);
    expect(diff.exitCode, diff.stderr).toBe(0);
    expect(diff.stdout).toContain('htop-3.3-1.noarch');
    expect(diff.stdout).toContain('htop-data-3.3-1.noarch');
  });

  it('adds up successive installs on the pending deployment while the machine runs the base', () => {
    const s = fresh();
    const booted = s.bootedEnv(0, tmp.path);
    expect(s.cli(['install', locals[0] as string], booted).exitCode).toBe(0);
    const r = s.cli(['install', '--repo-dir', dir('extra'), 'htop'], booted);
    expect(r.exitCode, r.stderr).toBe(0);
    const { d, root } = newest(s);
    expect(d.layering).toMatchObject({ layeredPackages: ['htop'], localPackages: ['agent-1.0-1.noarch'] });
    expect(rpmQa(root)).toEqual(expect.arrayContaining(['agent-1.0-1', 'htop-3.3-1']));
    // The booted base deployment is kept.
    expect(s.status(booted).deployments.map((e) => e.checksum)).toContain(baseCommit);
  });

  it('fails an upgrade whose new base no longer satisfies a layered package, leaving the boot set as it was', () => {
    const s = fresh();
    expect(s.cli(['install', '--repo-dir', dir('extra'), 'htop']).exitCode).toBe(0);
    recompose(s, 'libcore-3-only', [
      {
        name: 'libcore',
        version: '3.0',
        provides: ['libcore.so.3'],
        files: { '/usr/lib64/libcore.so.3': 'library 3\n' },
      },
    ]);
    const before = listing(s);
    const r = s.cli(['upgrade']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^error\[E_SOLVE_UNSATISFIABLE\]: .*libcore\.so\.2/);
    expect(r.stderr).toContain('during: layering packages › resolving the layered packages');
    expect(listing(s)).toEqual(before);
  });

  it('replaces a base package by NAME-VERSION-RELEASE from a repository, and says when none matches', () => {
    const s = fresh();
    makeRepo(dir('libcore-repo'), [LOCAL[1] as PackageDef]);
    const missing = s.cli(['override', 'replace', '--repo-dir', dir('libcore-repo'), 'libcore-2.0-9']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(
      /^error\[E_LAYER_PACKAGE_MISSING\]: no enabled repository has 'libcore-2\.0-9' \(searched: .*libcore-repo\)/,
    );
    expect(missing.stderr).toContain('hint: the repositories have libcore-2.0-2.noarch\n');
    const r = s.cli(['override', 'replace', '--repo-dir', dir('libcore-repo'), 'libcore-2.0-2']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(rpmQa(newest(s).root)).toContain('libcore-2.0-2');
  });
});
