// Package layering from a host's remote repositories: `.repo` files in the deployment's
// /etc/yum.repos.d naming createrepo_c repositories a real nginx serves, packages signed by the
// real rpmsign with keys gpg makes here, the key read from the deployment's /etc/pki. Installs
// check signatures and fail over between mirrors; every refusal leaves the boot set as it was; an
// upgrade re-applies the layer without fetching a package again (nginx's access log says so);
// skip_if_unavailable lets a down repository go; `override replace NAME-EVR` takes a repository build.
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { HAVE_GPG_SIGNING, TestKeys } from '../support/gpg.js';
import {
  BASE,
  BASE_NEVRS,
  HAVE_LAYERING_TOOLS,
  makeBaseSysroot,
  recomposeBase,
  rpmQa,
} from '../support/layering-base.js';
import { HAVE_NGINX, type NginxServer, readAccessLog, startNginx } from '../support/nginx.js';
import { type PackageDef, buildPackages, createRepo } from '../support/rpmgen.js';
import type { TestSysroot } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';

/** A layered package with a dependency and a %post, as a vendor repository would publish it. */
const REMOTE: PackageDef[] = [
  {
    name: 'htop',
    version: '3.3',
    requires: ['libcore.so.2', 'htop-data'],
    files: { '/usr/bin/htop': { content: '#!/bin/sh\necho htop\n', mode: 0o755 } },
    scripts: { post: 'echo "installed $1" > /usr/share/htop-post-ran' },
  },
  { name: 'htop-data', version: '3.3', files: { '/usr/share/htop/themes': 'dark\n' } },
];

/** Two builds of a base package (the base has 2.0-1): what `override replace NAME-EVR` picks from. */
const UPDATES: PackageDef[] = [
  { ...(BASE[3] as PackageDef), release: '1' },
  { ...(BASE[3] as PackageDef), release: '2', files: { '/usr/lib64/libcore.so.2': 'library 2\n' } },
];

/** Where the deployment keeps the repository key, named by `gpgkey=file://` as Fedora's .repo files do. */
const KEY_PATH = '/etc/pki/rpm-gpg/RPM-GPG-KEY-arbor-test';
/** A port nothing listens on: a mirror that is down. */
const DEAD = 'http://127.0.0.1:1/dead/';

describe.skipIf(!HAVE_LAYERING_TOOLS || !HAVE_NGINX || !HAVE_GPG_SIGNING)(
  'package layering from remote repositories',
  () => {
    const tmp = useTempDir('arbor-layer-remote-');
    const dir = (name: string): string => join(tmp.path, name);
    const srv = (name: string): string => join(tmp.path, 'srv', name);
    const log = (): string => dir('access.log');
    let keys: TestKeys;
    let nginx: NginxServer;
    let template: TestSysroot;
    let baseCommit: string;
    let copies = 0;
    const url = (path: string): string => `${nginx.url}/${path}`;

    beforeAll(async () => {
      ({ template, baseCommit } = makeBaseSysroot(tmp.path));
      keys = new TestKeys(tmp.path);
      keys.make('good');
      keys.make('other');
      const built = buildPackages(dir('built'), REMOTE);
      for (const [name, signer] of [
        ['signed', 'good'],
        ['wrong-key', 'other'],
        ['unsigned', null],
      ] as const) {
        mkdirSync(srv(name), { recursive: true });
        const rpms = built.map((path) => join(srv(name), basename(path)));
        for (const [i, path] of built.entries()) cpSync(path, rpms[i] as string);
        if (signer !== null) keys.signRpms(rpms, signer);
        createRepo(srv(name));
      }
      mkdirSync(srv('updates'));
      const updates = buildPackages(dir('built-updates'), UPDATES).map((path) => {
        cpSync(path, join(srv('updates'), basename(path)));
        return join(srv('updates'), basename(path));
      });
      keys.signRpms(updates, 'good');
      createRepo(srv('updates'));
      nginx = await startNginx(dir('srv'), { accessLog: log() });
    }, 180_000);
    afterAll(async () => {
      await nginx?.stop();
      keys?.stop();
    });

    /**
     * A copy of the template whose deployment has `repoFile` as /etc/yum.repos.d/test.repo and the
     * good key at KEY_PATH (only there: `file://` URLs of a host's .repo files are read inside it).
     */
    function host(repoFile: string): TestSysroot {
      const s = template.copyTo(dir(`sysroot-${copies++}`));
      const etc = join(s.deploymentDir(baseCommit), 'etc');
      mkdirSync(join(etc, 'yum.repos.d'), { recursive: true });
      writeFileSync(join(etc, 'yum.repos.d', 'test.repo'), repoFile);
      mkdirSync(join(etc, 'pki/rpm-gpg'), { recursive: true });
      cpSync(keys.publicKey('good'), join(etc, KEY_PATH.slice('/etc/'.length)));
      return s;
    }
    const signedRepo = (baseurls: string, id = 'vendor'): string =>
      `[${id}]\nname=Vendor\nbaseurl=${baseurls}\ngpgcheck=1\nrepo_gpgcheck=0\ngpgkey=file://${KEY_PATH}\n`;
    /** A repository whose only mirror is down, with `extra` lines (skip_if_unavailable=...). */
    const downRepo = (extra: string): string => `[flaky]\nbaseurl=${DEAD}\n${extra}`;

    /** Requests nginx logged since `from` (an index into the log), as `STATUS PATH`. */
    const requestsSince = (from: number): string[] =>
      readAccessLog(log())
        .slice(from)
        .map((e) => `${e.status} ${e.path}`);
    const logLength = (): number => readAccessLog(log()).length;

    /** The boot set and the deployments, which a refused command must leave as they were. */
    const bootState = (s: TestSysroot) => ({
      listing: s.listing().filter((l) => !l.startsWith('arbor/layering/')),
      entries: s.readBootSet().entries.map((e) => [e.fileName, e.entry.options]),
      deployments: s.status().deployments.map((d) => `${d.checksum}.${d.serial}`),
    });

    /** The default deployment and its directory. */
    const newest = (s: TestSysroot) => {
      const d = s.status().deployments[0] as { checksum: string; serial: number };
      return { d, root: s.deploymentDir(d.checksum, d.serial) };
    };

    it('installs a signed package and its dependency from the host repository, and an upgrade keeps it without fetching again', () => {
      const s = host(signedRepo(url('signed/')));
      const start = logLength();
      const r = s.cli(['install', 'htop']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/add htop-data-3\.3-1\.noarch \(required by htop-3\.3-1\.noarch.*; from vendor\)/);
      expect(r.stdout).toMatch(/add htop-3\.3-1\.noarch \(requested as 'htop'; from vendor\)/);
      expect(
        requestsSince(start)
          .filter((l) => l.endsWith('.rpm'))
          .sort(),
      ).toEqual(['200 /signed/htop-3.3-1.noarch.rpm', '200 /signed/htop-data-3.3-1.noarch.rpm']);
      const { d, root } = newest(s);
      expect(d.checksum).not.toBe(baseCommit);
      expect(rpmQa(root)).toEqual([...BASE_NEVRS, 'htop-3.3-1', 'htop-data-3.3-1'].sort());
      expect(readFileSync(join(root, 'usr/bin/htop'), 'utf8')).toBe('#!/bin/sh\necho htop\n');
      expect(readFileSync(join(root, 'usr/share/htop/themes'), 'utf8')).toBe('dark\n');
      expect(readFileSync(join(root, 'usr/share/htop-post-ran'), 'utf8')).toBe('installed 1\n');
      // The cache is the host's /var/cache/arbor/yum (the stateroot's /var), packages named by checksum.
      const cache = join(s.path, 'arbor/deploy', s.stateroot, 'var/cache/arbor/yum');
      expect(readdirSync(join(cache, 'packages')).sort()).toEqual([
        expect.stringMatching(/^sha256-[0-9a-f]{64}\.rpm$/),
        expect.stringMatching(/^sha256-[0-9a-f]{64}\.rpm$/),
      ]);

      // A new base (vim-minimal 9.1) composed into the ref the origin follows.
      recomposeBase(s, tmp.path, 'base-2', [{ ...(BASE[4] as PackageDef), version: '9.1' }]);
      const before = logLength();
      const u = s.cli(['upgrade']);
      expect(u.exitCode, u.stderr).toBe(0);
      expect(requestsSince(before).filter((l) => l.endsWith('.rpm'))).toEqual([]);
      const after = newest(s);
      expect(rpmQa(after.root)).toEqual(
        [
          ...BASE_NEVRS.filter((p) => !p.startsWith('vim')),
          'vim-minimal-9.1-1',
          'htop-3.3-1',
          'htop-data-3.3-1',
        ].sort(),
      );
      expect(readFileSync(join(after.root, 'usr/share/htop-post-ran'), 'utf8')).toBe('installed 1\n');
    });

    it('re-applies a layer from the checksum-named cache when the kept package files are gone', () => {
      const s = host(signedRepo(url('signed/')));
      expect(s.cli(['install', 'htop']).exitCode).toBe(0);
      rmSync(join(s.path, 'arbor/layering/packages'), { recursive: true });
      const before = logLength();
      // Deploying the base again re-applies the requests of the default deployment.
      const r = s.cli(['deploy', 'os/base']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(requestsSince(before).filter((l) => l.endsWith('.rpm'))).toEqual([]);
      expect(rpmQa(newest(s).root)).toContain('htop-3.3-1');
    });

    it('fails over to the next baseurl when the first mirror is down', () => {
      const s = host(signedRepo(`${DEAD} ${url('signed/')}`));
      const r = s.cli(['install', 'htop']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(rpmQa(newest(s).root)).toContain('htop-3.3-1');
    });

    it('fails over to the next mirror of a mirrorlist when the first is down, with the key over http', () => {
      writeFileSync(srv('mirrors'), `${DEAD}\n${url('signed/')}\n`);
      cpSync(keys.publicKey('good'), srv('RPM-GPG-KEY-good'));
      const s = host(`[vendor]\nmirrorlist=${url('mirrors')}\ngpgcheck=1\ngpgkey=${url('RPM-GPG-KEY-good')}\n`);
      const r = s.cli(['install', 'htop']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(rpmQa(newest(s).root)).toContain('htop-3.3-1');
    });

    it.each([
      [
        'an unsigned package',
        'unsigned/',
        () => /^error\[E_RPM_SIGNATURE\]: repository 'vendor': package 'htop(-data)?-3\.3-1\.noarch' is not signed/,
      ],
      [
        'a package signed by a key the repository does not list',
        'wrong-key/',
        () =>
          new RegExp(
            `^error\\[E_RPM_SIGNATURE\\]: repository 'vendor': package 'htop(-data)?-3\\.3-1\\.noarch': [A-Z]+ signature by key ID ${keys.keyId('other')}: key ID not among the keys`,
          ),
      ],
      [
        'every mirror down',
        `${DEAD} http://127.0.0.1:1/also-dead/`,
        () =>
          /^error\[E_YUM_REPO_UNREACHABLE\]: repository 'vendor': no mirror could give repodata\/repomd\.xml: http:\/\/127\.0\.0\.1:1\/dead\/: .*; http:\/\/127\.0\.0\.1:1\/also-dead\/: /,
      ],
    ])('refuses %s with gpgcheck=1 (exit 1), leaving the boot set as it was', (_what, path, message) => {
      const s = host(signedRepo(path.startsWith('http') ? path : url(path)));
      const before = bootState(s);
      const r = s.cli(['install', 'htop']);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message());
      expect(r.stderr).toContain('during: layering packages');
      expect(bootState(s)).toEqual(before);
      expect(s.bootSetProblems()).toEqual([]);
    });

    it("checks signatures of a repository without gpgcheck when dnf.conf's [main] says gpgcheck=1, as dnf does", () => {
      const repo = `[vendor]\nbaseurl=${url('unsigned/')}\n`;
      const unchecked = host(repo);
      expect(unchecked.cli(['install', 'htop']).exitCode).toBe(0);
      const s = host(repo);
      mkdirSync(join(s.deploymentDir(baseCommit), 'etc/dnf'), { recursive: true });
      writeFileSync(join(s.deploymentDir(baseCommit), 'etc/dnf/dnf.conf'), '[main]\ngpgcheck=True\n');
      const before = bootState(s);
      const r = s.cli(['install', 'htop']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(
        /^error\[E_RPM_SIGNATURE\]: repository 'vendor': package 'htop(-data)?-3\.3-1\.noarch' is not signed/,
      );
      expect(bootState(s)).toEqual(before);
    });

    it('refresh-md --sysroot fills the cache layering reads; a dry run then fetches no package', () => {
      const s = host(signedRepo(url('signed/')));
      const r = runCli(['refresh-md', '--sysroot', s.path, '--json']);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        cacheDir: join(s.path, 'arbor/deploy', s.stateroot, 'var/cache/arbor/yum'),
        repos: [{ id: 'vendor', fetched: true, mirror: url('signed/') }],
      });
      const before = bootState(s);
      const start = logLength();
      const plan = s.cli(['install', '--dry-run', '--json', 'htop']);
      expect(plan.exitCode, plan.stderr).toBe(0);
      expect((JSON.parse(plan.stdout) as { added: { nevra: string; repo: string }[] }).added).toEqual([
        expect.objectContaining({ nevra: 'htop-data-3.3-1.noarch', repo: 'vendor' }),
        expect.objectContaining({ nevra: 'htop-3.3-1.noarch', repo: 'vendor' }),
      ]);
      // Fresh metadata is not asked for again (filelists.xml is fetched once a resolve needs it), nor is a package.
      expect(requestsSince(start).filter((l) => l.endsWith('repomd.xml') || l.endsWith('.rpm'))).toEqual([]);
      expect(bootState(s)).toEqual(before);
    });

    it.each([
      ['skip_if_unavailable=1 in its .repo file', downRepo('skip_if_unavailable=1\n'), ''],
      ['skip_if_unavailable=True in dnf.conf [main]', downRepo(''), '[main]\nskip_if_unavailable=True\n'],
    ])(
      'installs from the other repositories with a warning when a repository is down and has %s',
      (_what, down, dnfConf) => {
        const s = host(`${signedRepo(url('signed/'))}\n${down}`);
        if (dnfConf !== '') {
          mkdirSync(join(s.deploymentDir(baseCommit), 'etc/dnf'), { recursive: true });
          writeFileSync(join(s.deploymentDir(baseCommit), 'etc/dnf/dnf.conf'), dnfConf);
        }
        const plan = s.cli(['install', '--dry-run', '--json', 'htop']);
        expect(plan.exitCode, plan.stderr).toBe(0);
        expect(JSON.parse(plan.stdout)).toMatchObject({
          added: [{ nevra: 'htop-data-3.3-1.noarch' }, { nevra: 'htop-3.3-1.noarch' }],
          skippedRepos: [
            {
              id: 'flaky',
              code: 'E_YUM_REPO_UNREACHABLE',
              message: expect.stringContaining(`no mirror could give repodata/repomd.xml: ${DEAD}: `),
            },
          ],
        });
        const r = s.cli(['install', 'htop']);
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stderr).toMatch(
          /^warning: repository 'flaky' skipped \(skip_if_unavailable=1\): error\[E_YUM_REPO_UNREACHABLE\]: repository 'flaky': no mirror could give repodata\/repomd\.xml: http:\/\/127\.0\.0\.1:1\/dead\/: /m,
        );
        expect(rpmQa(newest(s).root)).toContain('htop-3.3-1');
      },
    );

    it('fails on a down repository with skip_if_unavailable=0, even when dnf.conf [main] says True, leaving the boot set as it was', () => {
      const s = host(`${signedRepo(url('signed/'))}\n${downRepo('skip_if_unavailable=0\n')}`);
      mkdirSync(join(s.deploymentDir(baseCommit), 'etc/dnf'), { recursive: true });
      writeFileSync(join(s.deploymentDir(baseCommit), 'etc/dnf/dnf.conf'), '[main]\nskip_if_unavailable=True\n');
      const before = bootState(s);
      const r = s.cli(['install', 'htop']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^error\[E_YUM_REPO_UNREACHABLE\]: repository 'flaky': no mirror could give /);
      expect(bootState(s)).toEqual(before);
    });

    it('fails on a down repository by default (dnf 4: skip_if_unavailable=False)', () => {
      const s = host(`${signedRepo(url('signed/'))}\n${downRepo('')}`);
      const r = s.cli(['install', '--dry-run', 'htop']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^error\[E_YUM_REPO_UNREACHABLE\]: repository 'flaky'/);
    });

    it("upgrades from the kept package files while the layer's repository is down with skip_if_unavailable=1", () => {
      const s = host(signedRepo(url('signed/')));
      expect(s.cli(['install', 'htop']).exitCode).toBe(0);
      // The repository moves to a mirror that is down (a new URL: its metadata is not in the cache).
      const etc = join(newest(s).root, 'etc/yum.repos.d/test.repo');
      writeFileSync(etc, `${signedRepo(DEAD)}skip_if_unavailable=1\n`);
      recomposeBase(s, tmp.path, 'base-skip', [{ ...(BASE[4] as PackageDef), version: '9.1' }]);
      const u = s.cli(['upgrade']);
      expect(u.exitCode, u.stderr).toBe(0);
      expect(u.stderr).toContain("warning: repository 'vendor' skipped (skip_if_unavailable=1)");
      expect(rpmQa(newest(s).root)).toEqual(
        [
          ...BASE_NEVRS.filter((p) => !p.startsWith('vim')),
          'vim-minimal-9.1-1',
          'htop-3.3-1',
          'htop-data-3.3-1',
        ].sort(),
      );
      // refresh-md says the same and succeeds.
      const md = runCli(['refresh-md', '--sysroot', s.path]);
      expect(md.exitCode, md.stderr).toBe(0);
      expect(md.stderr).toMatch(
        /^warning: repository 'vendor' skipped \(skip_if_unavailable=1\): error\[E_YUM_REPO_UNREACHABLE\]/,
      );
    });

    it('replaces a base package with the exact build NAME-EVR names in the host repository, kept across an upgrade', () => {
      const s = host(signedRepo(url('updates/'), 'updates'));
      const start = logLength();
      const r = s.cli(['override', 'replace', 'libcore-2.0-2']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain('  replace libcore-2.0-1.noarch with libcore-2.0-2.noarch\n');
      expect(requestsSince(start).filter((l) => l.endsWith('.rpm'))).toEqual(['200 /updates/libcore-2.0-2.noarch.rpm']);
      const { d, root } = newest(s);
      expect(rpmQa(root)).toEqual(BASE_NEVRS.map((p) => (p === 'libcore-2.0-1' ? 'libcore-2.0-2' : p)));
      expect(readFileSync(join(root, 'usr/lib64/libcore.so.2'), 'utf8')).toBe('library 2\n');
      expect(readFileSync(`${root}.origin`, 'utf8')).toMatch(
        /\[overrides\]\nreplace-local=[0-9a-f]{64}:libcore-2\.0-2\.noarch;\n/,
      );
      expect((d as unknown as { layering: unknown }).layering).toMatchObject({
        replacedBasePackages: ['libcore-2.0-1.noarch -> libcore-2.0-2.noarch'],
      });
      expect(s.ok('status')).toContain('ReplacedBasePackages: libcore-2.0-1.noarch -> libcore-2.0-2.noarch\n');

      // An upgrade re-applies it from the kept file: nothing is fetched.
      recomposeBase(s, tmp.path, 'base-replace', [{ ...(BASE[4] as PackageDef), version: '9.1' }]);
      const before = logLength();
      const u = s.cli(['upgrade']);
      expect(u.exitCode, u.stderr).toBe(0);
      expect(requestsSince(before).filter((l) => l.endsWith('.rpm'))).toEqual([]);
      const after = newest(s);
      expect(rpmQa(after.root)).toContain('libcore-2.0-2');
      expect(rpmQa(after.root)).toContain('vim-minimal-9.1-1');
    });

    it('takes NAME-EPOCH:EVR.ARCH on a dry run, and refuses an EVR no enabled repository has, naming it and the builds there', () => {
      const s = host(signedRepo(url('updates/'), 'updates'));
      const plan = s.cli(['override', 'replace', '--dry-run', '--json', 'libcore-0:2.0-2.noarch']);
      expect(plan.exitCode, plan.stderr).toBe(0);
      expect(JSON.parse(plan.stdout)).toMatchObject({
        replaced: [{ from: 'libcore-2.0-1.noarch', to: 'libcore-2.0-2.noarch' }],
      });
      const before = bootState(s);
      const r = s.cli(['override', 'replace', 'libcore-2.0-9']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(
        /^error\[E_LAYER_PACKAGE_MISSING\]: no enabled repository has 'libcore-2\.0-9' \(searched: updates\)/,
      );
      expect(r.stderr).toContain('hint: the repositories have libcore-2.0-1.noarch, libcore-2.0-2.noarch');
      expect(bootState(s)).toEqual(before);
    });
  },
);
