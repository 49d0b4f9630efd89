// Remote yum repositories end to end: real createrepo_c repositories served by a real nginx,
// packages built by rpmbuild and signed by rpmsign with a key gpg makes here. A compose from HTTP
// equals the compose from the same directory; mirrors fail over; checksums, signatures and the
// metadata cache are enforced, with requests counted in nginx's access log.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repo } from '../../src/repo/index.js';
import { type CliResult, runCli } from '../support/cli.js';
import { HAVE_GPG_SIGNING, TestKeys } from '../support/gpg.js';
import { HAVE_NGINX, type NginxServer, readAccessLog, startNginx } from '../support/nginx.js';
import { HAVE_CREATEREPO, HAVE_RPMBUILD, type PackageDef, buildPackages, createRepo } from '../support/rpmgen.js';
import { useTempDir } from '../support/temp.js';

const HAVE_TOOLS = HAVE_NGINX && HAVE_RPMBUILD && HAVE_CREATEREPO && HAVE_GPG_SIGNING;
const BASEARCH = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;

/** A small container tree: the app needs a library by a path only filelists.xml lists. */
const PACKAGES: PackageDef[] = [
  {
    name: 'setup',
    version: '2.14',
    files: {
      '/etc': { dir: true },
      '/etc/passwd': { content: 'root:x:0:0:root:/root:/bin/sh\n', config: true },
      '/etc/group': { content: 'root:x:0:\n', config: true },
    },
  },
  { name: 'shell', version: '5.2', requires: ['setup'], files: { '/bin/sh': { content: '#!fake\n', mode: 0o755 } } },
  { name: 'libcore', version: '2.0', files: { '/usr/lib64/libcore.so.2': 'library\n' } },
  {
    name: 'app',
    version: '1.4',
    requires: ['/usr/lib64/libcore.so.2', '/bin/sh'],
    files: { '/usr/bin/app': { content: '#!/bin/sh\necho app\n', mode: 0o755 } },
  },
];

interface ComposeJson {
  commit: string;
  packages: number;
}

describe.skipIf(!HAVE_TOOLS)('compose from remote yum repositories', () => {
  const tmp = useTempDir('arbor-yum-');
  const dir = (name: string): string => join(tmp.path, name);
  const srv = (name: string): string => join(tmp.path, 'srv', name);
  let keys: TestKeys;
  let nginx: NginxServer;
  const log = (): string => dir('access.log');
  const url = (path: string): string => `${nginx.url}/${path}`;

  /** A copy of the built packages signed by `signer`, as a repository at srv/NAME. */
  function signedRepo(name: string, signer: string, built: string): void {
    cpSync(built, srv(name), { recursive: true });
    const rpms = readdirSync(srv(name)).filter((f) => f.endsWith('.rpm'));
    keys.signRpms(
      rpms.map((f) => join(srv(name), f)),
      signer,
    );
    createRepo(srv(name));
  }

  /** Signs repodata/repomd.xml of srv/NAME (or other bytes, to make a bad signature) into repomd.xml.asc. */
  function signRepomd(name: string, signer: string, over?: string): void {
    const repomd = join(srv(name), 'repodata', 'repomd.xml');
    const input = over ?? repomd;
    const r = spawnSync(
      'gpg',
      [
        '--batch',
        '--yes',
        '--local-user',
        keys.fingerprint(signer),
        '--armor',
        '--detach-sign',
        '--output',
        `${repomd}.asc`,
        input,
      ],
      { env: { ...process.env, ...keys.env }, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(r.stderr);
  }

  beforeAll(async () => {
    keys = new TestKeys(tmp.path);
    for (const name of ['good', 'other']) keys.make(name);
    const built = dir('built');
    buildPackages(built, PACKAGES);
    mkdirSync(srv(BASEARCH), { recursive: true });
    cpSync(built, srv(`${BASEARCH}/os`), { recursive: true });
    createRepo(srv(`${BASEARCH}/os`));
    // The same repository on disk, where compose reads it in place.
    cpSync(srv(`${BASEARCH}/os`), dir('local'), { recursive: true });
    buildPackages(srv('newer'), [{ ...PACKAGES[3]!, version: '2.0' }]);
    createRepo(srv('newer'));
    cpSync(srv(`${BASEARCH}/os`), srv('copy'), { recursive: true });
    signedRepo('signed', 'good', built);
    signRepomd('signed', 'good');
    signedRepo('wrong-key', 'other', built);
    signedRepo('bad-asc', 'good', built);
    signRepomd('bad-asc', 'good', dir('good.asc'));
    // Damaged copies: a metadata file and a package changed in one byte, sizes kept.
    cpSync(srv(`${BASEARCH}/os`), srv('bad-primary'), { recursive: true });
    const primary = readdirSync(join(srv('bad-primary'), 'repodata')).find(
      (f) => f.endsWith('primary.xml.zst') || f.endsWith('primary.xml.gz'),
    )!;
    flip(join(srv('bad-primary'), 'repodata', primary), 40);
    cpSync(srv(`${BASEARCH}/os`), srv('bad-package'), { recursive: true });
    const app = readdirSync(srv('bad-package')).find((f) => f.startsWith('app-'))!;
    flip(join(srv('bad-package'), app), 2000);
    nginx = await startNginx(dir('srv'), { accessLog: log() });
  });
  afterAll(async () => {
    await nginx?.stop();
    keys?.stop();
  });

  function flip(path: string, offset: number): void {
    const bytes = readFileSync(path);
    bytes[offset]! ^= 0x01;
    writeFileSync(path, bytes);
  }

  let count = 0;
  /** A treefile in a directory of its own, with `.repo` files beside it; returns its path. */
  function treefile(repos: string[], repoFiles: Record<string, string> = {}): string {
    const d = dir(`case-${++count}`);
    mkdirSync(d);
    for (const [name, text] of Object.entries(repoFiles)) writeFileSync(join(d, name), text);
    const path = join(d, 'os.yaml');
    writeFileSync(path, JSON.stringify({ ref: 'test/os', repos, packages: ['app'], container: true }));
    return path;
  }
  const newRepo = (): string => {
    const path = dir(`repo-${++count}`);
    Repo.init(path, 'bare-user').close();
    return path;
  };
  const compose = (file: string, cache: string, ...flags: string[]): CliResult =>
    runCli(['compose', 'tree', '--repo', newRepo(), '--cachedir', cache, '--json', ...flags, file]);
  const show = (repo: string, commit: string): { rootTree: string; metadata: Record<string, unknown> } =>
    JSON.parse(runCli(['show', '--repo', repo, '--json', commit]).stdout);
  /** Requests nginx logged since `from` (an index into the log). */
  const requestsSince = (from: number): string[] =>
    readAccessLog(log())
      .slice(from)
      .map((e) => `${e.status} ${e.path}`);

  it('composes from an http repository the same tree as from the same repository on disk', () => {
    const httpRepo = newRepo();
    const httpFile = treefile([url('$basearch/os/')]);
    const fromHttp = runCli([
      'compose',
      'tree',
      '--repo',
      httpRepo,
      '--cachedir',
      dir('cache-same'),
      '--json',
      httpFile,
    ]);
    expect(fromHttp.stderr).toBe('');
    expect(fromHttp.exitCode).toBe(0);
    const localRepo = newRepo();
    const fromDisk = runCli(['compose', 'tree', '--repo', localRepo, '--json', treefile([dir('local')])]);
    expect(fromDisk.exitCode).toBe(0);
    const a = show(httpRepo, (JSON.parse(fromHttp.stdout) as ComposeJson).commit);
    const b = show(localRepo, (JSON.parse(fromDisk.stdout) as ComposeJson).commit);
    expect(a.rootTree).toBe(b.rootTree);
    expect(a.metadata['arbor.packages']).toEqual(b.metadata['arbor.packages']);
    expect((JSON.parse(fromHttp.stdout) as ComposeJson).packages).toBe(4);
  });

  it('makes no request within metadata_expire and fetches packages once, by checksum', () => {
    const file = treefile([url(`${BASEARCH}/os/`)]);
    const cache = dir('cache-count');
    const start = readAccessLog(log()).length;
    expect(compose(file, cache).exitCode).toBe(0);
    const first = requestsSince(start);
    expect(first).toEqual(
      expect.arrayContaining([
        `200 /${BASEARCH}/os/repodata/repomd.xml`,
        expect.stringMatching(/^200 .*-primary\.xml/),
        expect.stringMatching(/^200 .*-filelists\.xml/),
        expect.stringMatching(/^200 .*\/app-1\.4-1\.noarch\.rpm$/),
      ]),
    );
    const middle = readAccessLog(log()).length;
    expect(compose(file, cache).exitCode).toBe(0);
    expect(requestsSince(middle)).toEqual([]);
    // --refresh asks for repomd.xml again; unchanged, nothing else is fetched.
    const last = readAccessLog(log()).length;
    expect(compose(file, cache, '--refresh').exitCode).toBe(0);
    expect(requestsSince(last)).toEqual([`200 /${BASEARCH}/os/repodata/repomd.xml`]);
  });

  it('fetches again only the cache files that were damaged', () => {
    const file = treefile([url(`${BASEARCH}/os/`)]);
    const cache = dir('cache-damaged');
    expect(compose(file, cache).exitCode).toBe(0);
    const [repoDir] = readdirSync(join(cache, 'repos'));
    const cachedPrimary = readdirSync(join(cache, 'repos', repoDir!, 'repodata')).find((f) => f.includes('-primary.'))!;
    flip(join(cache, 'repos', repoDir!, 'repodata', cachedPrimary), 40);
    const cachedApp = readdirSync(join(cache, 'packages'))[0]!;
    flip(join(cache, 'packages', cachedApp), 3000);
    const start = readAccessLog(log()).length;
    const r = compose(file, cache);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const again = requestsSince(start);
    expect(again).toHaveLength(2);
    expect(again).toContain(`200 /${BASEARCH}/os/repodata/${cachedPrimary}`);
    expect(again.filter((r) => r.endsWith('.rpm'))).toHaveLength(1);
  });

  it('refresh-md --reposdir refreshes every enabled repository, with $releasever, and lists ignored keys', () => {
    const reposDir = dir('yum.repos.d');
    mkdirSync(reposDir);
    mkdirSync(srv('41'), { recursive: true });
    cpSync(srv(`${BASEARCH}/os`), srv(`41/${BASEARCH}`), { recursive: true });
    writeFileSync(
      join(reposDir, 'a.repo'),
      `[on]\nname=On\nbaseurl=${url('$releasever/$basearch/')}\nsslverify=0\n\n[off]\nbaseurl=http://127.0.0.1:1/\nenabled=0\n`,
    );
    writeFileSync(join(reposDir, 'notes.txt'), 'not a repo file\n');
    const r = runCli([
      'refresh-md',
      '--reposdir',
      reposDir,
      '--releasever',
      '41',
      '--cachedir',
      dir('cache-reposdir'),
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({
      repos: [{ id: 'on', fetched: true, mirror: url(`41/${BASEARCH}/`) }],
      ignoredKeys: [`${join(reposDir, 'a.repo')}: on.sslverify`],
    });
  });

  it('refresh-md fills the cache compose uses, and reports fresh metadata without fetching', () => {
    const file = treefile(['os'], {
      'os.repo': `[os]\nbaseurl=${url('$basearch/os/')}\nmetadata_expire=1h\nskip_if_unavailable=1\n`,
    });
    const cache = dir('cache-refresh');
    const r = runCli(['refresh-md', '--treefile', file, '--cachedir', cache, '--json']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({
      repos: [{ id: 'os', fetched: true, mirror: url(`${BASEARCH}/os/`) }],
    });
    const again = JSON.parse(runCli(['refresh-md', '--treefile', file, '--cachedir', cache, '--json']).stdout);
    expect(again).toMatchObject({ repos: [{ id: 'os', fetched: false }], requests: 0 });
    const forced = JSON.parse(
      runCli(['refresh-md', '--treefile', file, '--cachedir', cache, '--json', '--force']).stdout,
    );
    expect(forced).toMatchObject({ repos: [{ id: 'os', fetched: true }] });
    const start = readAccessLog(log()).length;
    expect(compose(file, cache).exitCode).toBe(0);
    expect(requestsSince(start).filter((r) => r.includes('/repodata/') && !r.includes('filelists'))).toEqual([]);
  });

  it.each(['mirrorlist', 'metalink'] as const)(
    'fails over to the second mirror of a %s when the first is down',
    (kind) => {
      const good = url(`${BASEARCH}/os/`);
      const dead = 'http://127.0.0.1:1/os/';
      const missing = url('nothing-here/');
      const repomd = readFileSync(join(srv(`${BASEARCH}/os`), 'repodata', 'repomd.xml'));
      const sha256 = createHash('sha256').update(repomd).digest('hex');
      const list =
        kind === 'mirrorlist'
          ? `# mirrors\n${dead}\n${missing}\n${good}\n`
          : `<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" xmlns:mm0="http://fedorahosted.org/mirrormanager">
 <files><file name="repomd.xml"><size>${repomd.length}</size>
  <verification><hash type="md5">00000000000000000000000000000000</hash><hash type="sha256">${sha256}</hash></verification>
  <resources>
   <url protocol="http" type="http" preference="100">${dead}repodata/repomd.xml</url>
   <url protocol="http" type="http" preference="99">${missing}repodata/repomd.xml</url>
   <url protocol="http" type="http" preference="98">${good}repodata/repomd.xml</url>
  </resources></file></files></metalink>\n`;
      writeFileSync(srv(`list-${kind}`), list);
      const file = treefile(['os'], { 'os.repo': `[os]\n${kind}=${url(`list-${kind}`)}\n` });
      const r = runCli(['refresh-md', '--treefile', file, '--cachedir', dir(`cache-${kind}`), '--json']);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toMatchObject({ repos: [{ id: 'os', fetched: true, mirror: good }] });
      expect(compose(file, dir(`cache-${kind}`)).exitCode).toBe(0);
    },
  );

  it('refuses a metalink mirror whose repomd.xml the metalink does not vouch for', () => {
    writeFileSync(
      srv('list-stale'),
      `<metalink version="3.0" xmlns="http://www.metalinker.org/"><files><file name="repomd.xml">
  <verification><hash type="sha256">${'ab'.repeat(32)}</hash></verification>
  <resources><url protocol="http" type="http">${url(`${BASEARCH}/os/`)}repodata/repomd.xml</url></resources>
  </file></files></metalink>\n`,
    );
    const file = treefile(['os'], { 'os.repo': `[os]\nmetalink=${url('list-stale')}\n` });
    const r = compose(file, dir('cache-stale'));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/^error\[E_REPODATA_CHECKSUM\]: .*repomd\.xml does not match the metalink's digests/);
  });

  it('fails naming the repository and every mirror when all mirrors are down', () => {
    writeFileSync(srv('list-dead'), 'http://127.0.0.1:1/a/\nhttp://127.0.0.1:1/b/\n');
    const file = treefile(['fedora'], { 'f.repo': `[fedora]\nmirrorlist=${url('list-dead')}\n` });
    const r = compose(file, dir('cache-dead'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /^error\[E_YUM_REPO_UNREACHABLE\]: repository 'fedora': no mirror could give repodata\/repomd\.xml: http:\/\/127\.0\.0\.1:1\/a\/: .*; http:\/\/127\.0\.0\.1:1\/b\/: /,
    );
  });

  it.each([
    [
      'primary.xml',
      'bad-primary',
      /^error\[E_REPODATA_CHECKSUM\]: http:.*\/bad-primary\/repodata\/.*primary\.xml.* has sha256 [0-9a-f]+, the metadata says/,
    ],
    [
      'a package',
      'bad-package',
      /^error\[E_RPM_CHECKSUM\]: http:.*\/bad-package\/app-1\.4-1\.noarch\.rpm has sha256 [0-9a-f]+, the metadata says/,
    ],
  ])('refuses %s whose checksum does not match (exit 3)', (_what, name, message) => {
    const r = compose(treefile([url(`${name}/`)]), dir(`cache-${name}`));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(message);
  });

  it('composes from a signed repository with gpgcheck and repo_gpgcheck', () => {
    const file = treefile(['signed'], {
      's.repo': `[signed]\nbaseurl=${url('signed/')}\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=file://${dir('good.asc')}\n`,
    });
    const r = compose(file, dir('cache-signed'));
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('fetches gpgkey over http', () => {
    cpSync(dir('good.asc'), srv('RPM-GPG-KEY-good'));
    const file = treefile(['signed'], {
      's.repo': `[signed]\nbaseurl=${url('signed/')}\ngpgcheck=1\ngpgkey=${url('RPM-GPG-KEY-good')}\n`,
    });
    expect(compose(file, dir('cache-httpkey')).exitCode).toBe(0);
  });

  it.each([
    ['unsigned', `${BASEARCH}/os/`, /^error\[E_RPM_SIGNATURE\]: repository 'r': package '[a-z]+-[^']+' is not signed/],
    [
      'signed by another key',
      'wrong-key/',
      /^error\[E_RPM_SIGNATURE\]: repository 'r': package '[a-z]+-[^']+': [A-Z]+ signature by key ID [0-9a-f]{16}: key ID not among the keys/,
    ],
  ])('refuses a package %s with gpgcheck=1', (_what, path, message) => {
    const file = treefile(['r'], {
      'r.repo': `[r]\nbaseurl=${url(path)}\ngpgcheck=1\ngpgkey=file://${dir('good.asc')}\n`,
    });
    const r = compose(file, dir(`cache-gpg-${path.replaceAll('/', '')}`));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(message);
  });

  it('refuses repomd.xml whose repomd.xml.asc does not verify with repo_gpgcheck=1', () => {
    const file = treefile(['r'], {
      'r.repo': `[r]\nbaseurl=${url('bad-asc/')}\nrepo_gpgcheck=1\ngpgkey=file://${dir('good.asc')}\n`,
    });
    const r = compose(file, dir('cache-bad-asc'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /^error\[E_REPODATA_SIGNATURE\]: repository 'r': repomd\.xml\.asc by key ID [0-9a-f]{16}: /,
    );
  });

  it.each([
    ['the newest version without priorities', '', 'app-2.0-1.noarch'],
    ['the version of the better priority', 'priority=10\n', 'app-1.4-1.noarch'],
  ])('takes %s', (_what, priority, nevra) => {
    const file = treefile(['os', 'newer'], {
      'r.repo': `[os]\nbaseurl=${url(`${BASEARCH}/os/`)}\n${priority}\n[newer]\nbaseurl=${url('newer/')}\n`,
    });
    const r = compose(file, dir(`cache-priority-${priority === '' ? 'none' : 'set'}`));
    expect(r.exitCode).toBe(0);
    const resolved = (JSON.parse(r.stdout) as { resolved: { nevra: string; repo: string }[] }).resolved;
    expect(resolved.find((p) => p.nevra.startsWith('app-'))).toEqual(
      expect.objectContaining({ nevra, repo: nevra.startsWith('app-2') ? 'newer' : 'os' }),
    );
  });

  it('fetches a package offered by two repositories of one priority from the lower cost', () => {
    const file = treefile(['dear', 'cheap'], {
      'r.repo': `[dear]\nbaseurl=${url('copy/')}\ncost=2000\n\n[cheap]\nbaseurl=${url(`${BASEARCH}/os/`)}\ncost=100\n`,
    });
    const start = readAccessLog(log()).length;
    expect(compose(file, dir('cache-cost')).exitCode).toBe(0);
    const rpms = requestsSince(start).filter((r) => r.endsWith('.rpm'));
    expect(rpms).toHaveLength(4);
    expect(rpms.every((r) => r.startsWith(`200 /${BASEARCH}/os/`))).toBe(true);
  });

  it('uses a repository the treefile names even when its .repo file disables it, as rpm-ostree does', () => {
    const file = treefile(['off'], { 'r.repo': `[off]\nbaseurl=${url(`${BASEARCH}/os/`)}\nenabled=0\n` });
    expect(compose(file, dir('cache-disabled')).exitCode).toBe(0);
  });

  it('leaves out packages excludepkgs names, and says why the request fails', () => {
    const file = treefile(['r'], { 'r.repo': `[r]\nbaseurl=${url('$basearch/os/')}\nexcludepkgs=libc*\n` });
    const r = compose(file, dir('cache-exclude'));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/^error\[E_SOLVE_UNSATISFIABLE\]: .*libcore\.so\.2/);
  });
});
