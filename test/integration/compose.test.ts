// `arbor compose tree` end to end, through the CLI with packages built by rpmbuild: the commit
// holds exactly the resolved packages (the real rpm reads its database and verifies its files),
// in an image-based layout; imports are cached; bad input fails with its code and moves no ref.
import { spawnSync } from 'node:child_process';
import {
  type Dirent,
  copyFileSync,
  cpSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Repo } from '../../src/repo/index.js';
import { type CliResult, IS_ROOT, arbor, runCli } from '../support/cli.js';
import {
  HAVE_CREATEREPO,
  HAVE_RPMBUILD,
  type PackageDef,
  buildPackages,
  createRepo,
  makeRepo,
} from '../support/rpmgen.js';
import { KERNEL_PACKAGE } from '../support/layering-base.js';
import { useTempDir } from '../support/temp.js';

const KVER = '6.1.0-1.test';

/** The system a treefile composes: user database, shell, systemd targets, kernel, an app with its library. */
const BASE: PackageDef[] = [
  {
    name: 'setup',
    version: '2.14',
    files: {
      '/etc': { dir: true },
      '/etc/passwd': {
        content: 'root:x:0:0:root:/root:/bin/sh\nappuser:x:1001:1002::/var/lib/webapp:/sbin/nologin\n',
        config: true,
      },
      '/etc/group': { content: 'root:x:0:\nappgroup:x:1002:\n', config: true },
      '/boot': { dir: true },
      '/home': { dir: true },
      '/opt': { dir: true },
      '/root': { dir: true, mode: 0o550 },
      '/srv': { dir: true },
      '/var': { dir: true },
      '/var/lib': { dir: true },
      '/var/log': { dir: true },
    },
  },
  {
    name: 'shell',
    version: '5.2',
    requires: ['setup'],
    files: { '/bin/sh': { content: '#!fake shell\n', mode: 0o755 } },
  },
  {
    name: 'units',
    version: '255',
    files: {
      '/usr/lib/systemd/system/multi-user.target': '[Unit]\nDescription=Multi-User System\n',
      '/usr/lib/systemd/system/graphical.target': '[Unit]\nDescription=Graphical\n',
    },
  },
  KERNEL_PACKAGE,
  { name: 'libcore', version: '2.0', provides: ['libcore.so.2'], files: { '/usr/lib64/libcore.so.2': 'library\n' } },
  {
    name: 'webapp',
    epoch: 2,
    version: '1.4',
    release: '3',
    requires: ['libcore.so.2', '/bin/sh', 'units'],
    recommends: ['webapp-extras'],
    files: {
      '/usr/bin/webapp': { content: '#!/bin/sh\necho web\n', mode: 0o755, owner: 'appuser', group: 'appgroup' },
      '/etc/webapp/webapp.conf': { content: 'port=8080\n', config: true },
      '/usr/lib/systemd/system/webapp.service':
        '[Unit]\nDescription=Web app\n[Service]\nExecStart=/usr/bin/webapp\n[Install]\nWantedBy=multi-user.target\n',
      '/usr/share/doc/webapp/README': 'read me\n',
      '/usr/share/webapp/index.html': '<h1>hi</h1>\n',
      '/usr/share/webapp/debug.log': 'noise\n',
      '/var/lib/webapp': { dir: true, mode: 0o750 },
      '/var/lib/webapp/current': { symlink: '/usr/share/webapp' },
      '/var/log/webapp': { dir: true },
    },
  },
  { name: 'webapp-extras', files: { '/usr/share/webapp/extras/plugin.js': 'plugin\n' } },
  {
    name: 'tools',
    version: '1.0',
    requires: ['libcore.so.2'],
    files: { '/usr/bin/webtool': { content: '#!/bin/sh\n', mode: 0o755 }, '/usr/share/doc/tools/NEWS': 'news\n' },
  },
  // In the repository, wanted by nothing: never composed.
  { name: 'unrelated', files: { '/usr/share/unrelated/x': 'x\n' } },
];

/** tools 1.0-2: the update of one package. */
const UPDATE: PackageDef = {
  name: 'tools',
  version: '1.0',
  release: '2',
  requires: ['libcore.so.2'],
  files: {
    '/usr/bin/webtool': { content: '#!/bin/sh\necho v2\n', mode: 0o755 },
    '/usr/share/doc/tools/NEWS': 'news 2\n',
  },
};

/** Packages that break a compose, or place a kernel differently; named only by the cases that use them. */
const EXTRA: PackageDef[] = [
  { name: 'conflicter', files: { '/usr/share/webapp/index.html': 'other content\n' } },
  { name: 'needs-missing', requires: ['libmissing.so.9 >= 2'] },
  {
    name: 'badowner',
    files: { '/usr/bin/badowner': { content: 'x\n', mode: 0o755, owner: 'ghostuser', group: 'root' } },
  },
  {
    name: 'kernel-boot',
    version: '6.2.0',
    files: {
      '/boot/vmlinuz-6.2.0-boot': 'boot kernel\n',
      '/boot/initramfs-6.2.0-boot.img': 'boot initramfs\n',
      '/boot/config-6.2.0-boot': 'CONFIG_X=y\n',
      '/usr/lib/modules/6.2.0-boot/modules.dep': '\n',
    },
  },
  { name: 'kernel-bare', version: '6.3.0', files: { '/usr/lib/modules/6.3.0-bare/vmlinuz': 'bare kernel\n' } },
  {
    name: 'kernel-other',
    version: '6.4.0',
    files: {
      '/usr/lib/modules/6.4.0-other/vmlinuz': 'other\n',
      '/usr/lib/modules/6.4.0-other/initramfs.img': 'other initramfs\n',
    },
  },
  { name: 'usr-etc', files: { '/usr/etc/stray.conf': 'x\n' } },
];

/** setup 2.14-2: the same users with other ids. */
const SETUP_RENUMBERED: PackageDef = {
  name: 'setup',
  version: '2.14',
  release: '2',
  files: {
    '/etc': { dir: true },
    '/etc/passwd': {
      content: 'root:x:0:0:root:/root:/bin/sh\nappuser:x:1005:1006::/var/lib/webapp:/sbin/nologin\n',
      config: true,
    },
    '/etc/group': { content: 'root:x:0:\nappgroup:x:1006:\n', config: true },
  },
};

/** What `packages: [setup, kernel, webapp, tools]` pulls in: requirements and webapp's recommendation. */
const EXPECTED_NAMES = ['kernel', 'libcore', 'setup', 'shell', 'tools', 'units', 'webapp', 'webapp-extras'];

interface Resolved {
  nevra: string;
  repo: string;
  why: string;
  packageBytes: number;
  installedBytes: number;
  imported: boolean;
}

interface ComposeJson {
  ref: string;
  commit: string | null;
  parent: string | null;
  changed: boolean;
  version: string | null;
  inputHash: string;
  packages: number;
  imported: number;
  cached: number;
  importBytes: { download: number; installed: number };
  kernel: { version: string; initramfs: boolean } | null;
  removedFiles: number;
  droppedVarFiles: string[];
  phaseMs: Record<string, number>;
  resolved: Resolved[];
}

interface LsRow {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  path: string;
  target?: string;
}

/** Every file under a directory (relative paths, sorted): objects, refs and the index of a repository. */
function filesUnder(root: string): string[] {
  return (readdirSync(root, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

/** Text as a literal inside a RegExp. */
const esc = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const nameOf = (nevra: string): string => (/^(.+)-[^-]+-[^-]+$/.exec(nevra) as RegExpExecArray)[1] as string;

function rpm(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('rpm', args, { encoding: 'utf8' });
}

/** `NAME-EPOCH:VERSION-RELEASE.ARCH HEADERSHA256` as rpm reads them from the package file. */
function headerLine(file: string): string {
  const r = rpm('-qp', '--qf', '%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH} %{SHA256HEADER}', file);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe.skipIf(!HAVE_RPMBUILD || !HAVE_CREATEREPO)('arbor compose tree', () => {
  const tmp = useTempDir('arbor-compose-');
  const dir = (name: string): string => join(tmp.path, name);
  /** The package files of the main repository, by NEVRA as the compose reports it. */
  const files = new Map<string, string>();

  beforeAll(() => {
    const paths = makeRepo(dir('main'), BASE);
    for (const [i, d] of BASE.entries())
      files.set(
        `${d.name}-${d.epoch ? `${d.epoch}:` : ''}${d.version ?? '1'}-${d.release ?? '1'}.noarch`,
        paths[i] as string,
      );
    makeRepo(dir('updates'), [UPDATE]);
    makeRepo(dir('extra'), EXTRA);
    makeRepo(dir('setup-renumbered'), [SETUP_RENUMBERED]);
  });

  let repoCount = 0;
  /** A fresh bare-user repository (owners kept in xattrs, so no root is needed to store them). */
  const newRepo = (): string => {
    const path = dir(`repo-${++repoCount}`);
    Repo.init(path, 'bare-user').close();
    return path;
  };

  /** Writes a treefile (JSON is YAML) composing the base system with its edits; `fields` override. */
  const treefile = (name: string, fields: Record<string, unknown> = {}): string => {
    const path = dir(`${name}.yaml`);
    const base = {
      ref: 'test/os',
      repos: [dir('main')],
      packages: ['setup', 'kernel', 'webapp', 'tools'],
      units: ['webapp.service'],
      'default-target': 'multi-user.target',
      'remove-files': ['usr/share/doc/**'],
      'remove-from-packages': [['webapp', '^/usr/share/webapp/debug\\.log$']],
    };
    writeFileSync(path, JSON.stringify({ ...base, ...fields }, null, 2));
    return path;
  };

  const composeRaw = (repo: string, file: string, ...flags: string[]): CliResult =>
    runCli(['compose', 'tree', '--repo', repo, ...flags, file]);
  const compose = (repo: string, file: string, ...flags: string[]): ComposeJson => {
    const r = composeRaw(repo, file, '--json', ...flags);
    if (r.exitCode !== 0) throw new Error(`compose ${file} exited ${r.exitCode}:\n${r.stderr}`);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as ComposeJson;
  };
  /** Every ref and its commit, read in-process: the state the commands under test leave behind. */
  const refs = (path: string): Record<string, string> => {
    const repo = Repo.open(path);
    try {
      return Object.fromEntries(repo.db.listRefs().map((r) => [r.name, r.checksum]));
    } finally {
      repo.close();
    }
  };
  const metadata = (repo: string, rev: string): Record<string, unknown> =>
    (JSON.parse(arbor('show', '--repo', repo, '--json', rev)) as { metadata: Record<string, unknown> }).metadata;
  const listing = (repo: string, rev: string): Map<string, LsRow> =>
    new Map((JSON.parse(arbor('ls', '--repo', repo, '-R', '--json', rev, '/')) as LsRow[]).map((r) => [r.path, r]));

  describe('a full compose', () => {
    let repo = '';
    let result: ComposeJson;
    let tree: Map<string, LsRow>;
    beforeAll(() => {
      repo = newRepo();
      result = compose(
        repo,
        treefile('full', {
          version: '1.0',
          'add-commit-metadata': { 'build.source': 'ci', 'build.number': 7, 'build.release': true },
        }),
      );
      tree = listing(repo, 'test/os');
    });

    it('commits exactly what the treefile pulls in to its ref, and says why each package is there', () => {
      expect(result).toMatchObject({
        ref: 'test/os',
        parent: null,
        changed: true,
        version: '1.0',
        packages: 8,
        imported: 8,
        cached: 0,
      });
      expect(refs(repo)['test/os']).toBe(result.commit);
      expect(result.resolved.map((p) => nameOf(p.nevra)).sort()).toEqual(EXPECTED_NAMES);
      const why = Object.fromEntries(result.resolved.map((p) => [nameOf(p.nevra), p.why]));
      expect(why).toMatchObject({
        setup: "requested as 'setup'",
        webapp: "requested as 'webapp'",
        libcore: "required by webapp-2:1.4-3.noarch ('libcore.so.2')",
        shell: "required by webapp-2:1.4-3.noarch ('/bin/sh')",
        'webapp-extras': "recommended by webapp-2:1.4-3.noarch ('webapp-extras')",
      });
      for (const p of result.resolved) expect(p.repo).toBe(dir('main'));
      // Install order: what a package requires comes first.
      const order = result.resolved.map((p) => nameOf(p.nevra));
      expect(order.indexOf('setup')).toBeLessThan(order.indexOf('shell'));
      expect(order.indexOf('libcore')).toBeLessThan(order.indexOf('webapp'));
      expect(result.kernel).toEqual({ version: KVER, initramfs: true });
    });

    it('records version, input hash, kernel, each package with its header SHA-256, and add-commit-metadata', () => {
      const meta = metadata(repo, 'test/os');
      expect(meta).toMatchObject({
        version: '1.0',
        'arbor.compose.input-hash': result.inputHash,
        'arbor.linux': KVER,
        'build.source': 'ci',
        'build.number': 7,
        'build.release': true,
      });
      expect(result.inputHash).toMatch(/^[0-9a-f]{64}$/);
      expect(meta).not.toHaveProperty('arbor.compose.scripts-skipped');
      const expected = result.resolved.map((p) => headerLine(files.get(p.nevra) as string));
      expect(meta['arbor.packages']).toEqual(expected);
      expect(expected.map((line) => line.split(' ')[0]).sort()).toEqual(
        expect.arrayContaining(['setup-0:2.14-1.noarch', 'webapp-2:1.4-3.noarch']),
      );
      for (const line of expected) expect(line).toMatch(/^\S+-\d+:\S+ [0-9a-f]{64}$/);
    });

    it('moves /etc to /usr/etc, turns /var into tmpfiles.d lines and state directories into links', () => {
      expect(tree.has('/etc')).toBe(false);
      for (const path of ['/usr/etc/passwd', '/usr/etc/group', '/usr/etc/webapp/webapp.conf'])
        expect(tree.get(path)?.type, path).toBe('-');
      expect(arbor('cat', '--repo', repo, 'test/os', '/usr/etc/webapp/webapp.conf')).toBe('port=8080');
      expect([...tree.keys()].filter((p) => p.startsWith('/var/'))).toEqual([]);
      expect(tree.get('/var')?.type).toBe('d');
      for (const [path, target] of [
        ['/home', 'var/home'],
        ['/root', 'var/roothome'],
        ['/opt', 'var/opt'],
        ['/srv', 'var/srv'],
        ['/mnt', 'var/mnt'],
      ]) {
        expect(tree.get(path as string), path).toMatchObject({ type: 'l', target });
      }
      const tmpfiles = arbor('cat', '--repo', repo, 'test/os', '/usr/lib/tmpfiles.d/arbor-var.conf')
        .split('\n')
        .filter((l) => !l.startsWith('#'));
      expect(tmpfiles.sort()).toEqual(
        [
          'L /var/lib/rpm - - - - ../../usr/share/rpm',
          'L /var/lib/webapp/current - - - - /usr/share/webapp',
          'd /var/home 0755 0 0 - -',
          'd /var/lib 0755 0 0 - -',
          'd /var/lib/webapp 0750 0 0 - -',
          'd /var/log 0755 0 0 - -',
          'd /var/log/webapp 0755 0 0 - -',
          // No package shipped /mnt: its link target still gets a directory.
          'd /var/mnt 0755 0 0 - -',
          'd /var/opt 0755 0 0 - -',
          'd /var/roothome 0550 0 0 - -',
          'd /var/srv 0755 0 0 - -',
        ].sort(),
      );
      expect(result.droppedVarFiles).toEqual([]);
    });

    it('enables the unit from its [Install] section, links default.target and applies remove-files and remove-from-packages', () => {
      expect(tree.get('/usr/etc/systemd/system/multi-user.target.wants/webapp.service')).toMatchObject({
        type: 'l',
        target: '/usr/lib/systemd/system/webapp.service',
      });
      expect(tree.get('/usr/etc/systemd/system/default.target')).toMatchObject({
        type: 'l',
        target: '/usr/lib/systemd/system/multi-user.target',
      });
      expect([...tree.keys()].filter((p) => p.startsWith('/usr/share/doc/'))).toEqual([]);
      expect(tree.has('/usr/share/webapp/debug.log')).toBe(false);
      expect(tree.get('/usr/share/webapp/index.html')?.type).toBe('-');
      expect(tree.get('/usr/share/webapp/extras/plugin.js')?.type).toBe('-');
      expect(tree.has('/usr/share/unrelated')).toBe(false);
      expect(tree.get(`/usr/lib/modules/${KVER}/vmlinuz`)?.type).toBe('-');
      expect(tree.get(`/usr/lib/modules/${KVER}/initramfs.img`)?.type).toBe('-');
    });

    it("gives files the owners named in the tree's own /etc/passwd and /etc/group", () => {
      expect(tree.get('/usr/bin/webapp')).toMatchObject({ type: '-', mode: '0755', uid: 1001, gid: 1002 });
      expect(tree.get('/usr/bin/webtool')).toMatchObject({ uid: 0, gid: 0 });
    });

    it('has an rpm database that lists the resolved packages to the real rpm and `arbor db list`', () => {
      const db = dir('full-rpmdb');
      arbor('checkout', '--repo', repo, '--user-mode', '--subpath', '/usr/share/rpm', 'test/os', db);
      const r = rpm('--dbpath', db, '-qa', '--qf', '%{NEVRA}\\n');
      expect(r.status, r.stderr).toBe(0);
      const nevras = result.resolved.map((p) => p.nevra).sort();
      expect(r.stdout.trim().split('\n').sort()).toEqual(nevras);
      expect(arbor('db', 'list', '--repo', repo, 'test/os').split('\n').sort()).toEqual(nevras);
    });

    // rpm -V --root chroots, and checking out files of uid 1001 needs root too.
    it.skipIf(!IS_ROOT)(
      'verifies with rpm -V: only mtimes (checkouts have mtime 0) and what the compose moved or removed differ',
      () => {
        const root = dir('full-checkout');
        arbor('checkout', '--repo', repo, 'test/os', root);
        // What a deployment does: /etc made from /usr/etc, so rpm finds the config files and user names.
        cpSync(join(root, 'usr/etc'), join(root, 'etc'), { recursive: true, verbatimSymlinks: true });
        const r = rpm('--root', root, '--dbpath', '/usr/share/rpm', '-Va');
        expect(r.stderr).toBe('');
        expect(r.stdout.trim().split('\n').sort()).toEqual(
          [
            ...[
              '/bin/sh',
              '/usr/bin/webapp',
              '/usr/bin/webtool',
              `/usr/lib/modules/${KVER}/initramfs.img`,
              `/usr/lib/modules/${KVER}/vmlinuz`,
              '/usr/lib/systemd/system/graphical.target',
              '/usr/lib/systemd/system/multi-user.target',
              '/usr/lib/systemd/system/webapp.service',
              '/usr/lib64/libcore.so.2',
              '/usr/share/webapp/extras/plugin.js',
              '/usr/share/webapp/index.html',
            ].map((p) => `.......T.    ${p}`),
            ...['/etc/group', '/etc/passwd', '/etc/webapp/webapp.conf'].map((p) => `.......T.  c ${p}`),
            // Directories become links into /var.
            ...['/home', '/opt', '/root', '/srv'].map((p) => `....L....    ${p}`),
            // remove-from-packages, and /var content (now tmpfiles.d lines).
            ...[
              '/usr/share/webapp/debug.log',
              '/var/lib',
              '/var/lib/webapp',
              '/var/lib/webapp/current',
              '/var/log',
              '/var/log/webapp',
            ].map((p) => `missing     ${p}`),
            // remove-files (documentation).
            ...['/usr/share/doc/tools/NEWS', '/usr/share/doc/webapp/README'].map((p) => `missing   d ${p}`),
          ].sort(),
        );
      },
    );
  });

  describe('caching and recomposing', () => {
    it('reuses imported packages: a second compose imports none, an update imports only the new package', () => {
      const repo = newRepo();
      const file = treefile('cache');
      const first = compose(repo, file);
      expect(first).toMatchObject({ imported: 8, cached: 0 });
      const second = compose(repo, file);
      expect(second).toMatchObject({
        changed: true,
        parent: first.commit,
        packages: 8,
        imported: 0,
        cached: 8,
        importBytes: { download: 0, installed: 0 },
      });
      expect(second.commit).not.toBe(first.commit);
      expect(second.inputHash).toBe(first.inputHash);
      expect(refs(repo)['test/os']).toBe(second.commit);

      const third = compose(repo, treefile('cache-updates', { repos: [dir('main'), dir('updates')] }));
      expect(third).toMatchObject({ parent: second.commit, packages: 8, imported: 1, cached: 7 });
      expect(third.resolved.filter((p) => p.imported)).toMatchObject([
        { nevra: 'tools-1.0-2.noarch', repo: dir('updates') },
      ]);
      expect(third.inputHash).not.toBe(second.inputHash);
      const diff = JSON.parse(arbor('db', 'diff', '--repo', repo, '--json', 'test/os^', 'test/os'));
      expect(diff).toEqual({
        added: [],
        removed: [],
        upgraded: [{ name: 'tools', arch: 'noarch', from: '1.0-1', to: '1.0-2' }],
        downgraded: [],
      });
      expect(arbor('cat', '--repo', repo, 'test/os', '/usr/bin/webtool')).toBe('#!/bin/sh\necho v2');
      expect(Object.keys(refs(repo)).filter((r) => r.startsWith('pkg/tools/'))).toHaveLength(2);
    });

    it('recomposes after an update to the same root tree as a fresh compose of the same inputs', () => {
      const show = (repo: string, rev: string): { rootTree: string; rootMeta: string } =>
        JSON.parse(arbor('show', '--repo', repo, '--json', rev)) as { rootTree: string; rootMeta: string };
      const updates = { repos: [dir('main'), dir('updates')] };
      const repo = newRepo();
      compose(repo, treefile('recompose-first'));
      const recomposed = compose(repo, treefile('recompose-updated', updates));
      expect(recomposed).toMatchObject({ imported: 1, cached: 7 });
      const fresh = newRepo();
      const composed = compose(fresh, treefile('recompose-updated', updates));
      expect(composed).toMatchObject({ imported: 8, cached: 0, inputHash: recomposed.inputHash });
      const [a, b] = [show(repo, recomposed.commit as string), show(fresh, composed.commit as string)];
      expect(a.rootTree).toBe(b.rootTree);
      expect(a.rootMeta).toBe(b.rootMeta);
      expect(Object.keys(recomposed.phaseMs)).toEqual(
        expect.arrayContaining(['resolve', 'headers', 'import', 'assemble', 'rpmdb', 'commit']),
      );
    });

    it('--unless-changed makes no commit for the same inputs, and one after the treefile or a package changes', () => {
      const repo = newRepo();
      // A plain directory, so a package can be added without regenerating metadata.
      const packages = dir('unless-changed-rpms');
      mkdirSync(packages);
      for (const file of files.values()) copyFileSync(file, join(packages, basename(file)));
      const file = treefile('unless', { repos: [packages] });
      const first = compose(repo, file, '--unless-changed');
      expect(first).toMatchObject({ changed: true, parent: null });

      const same = compose(repo, file, '--unless-changed');
      expect(same).toMatchObject({
        changed: false,
        commit: first.commit,
        parent: first.commit,
        inputHash: first.inputHash,
        imported: 0,
      });
      expect(refs(repo)['test/os']).toBe(first.commit);
      const text = composeRaw(repo, file, '--unless-changed');
      expect(text).toMatchObject({
        exitCode: 0,
        stdout: `test/os unchanged: ${first.commit} (input hash ${first.inputHash.slice(0, 16)})\n`,
        stderr: '',
      });
      expect(refs(repo)['test/os']).toBe(first.commit);

      treefile('unless', { repos: [packages], 'add-commit-metadata': { 'build.id': 'b2' } });
      const edited = compose(repo, file, '--unless-changed');
      expect(edited).toMatchObject({ changed: true, parent: first.commit, imported: 0 });
      expect(refs(repo)['test/os']).toBe(edited.commit);
      expect(metadata(repo, 'test/os')['build.id']).toBe('b2');

      copyFileSync(join(dir('updates'), 'tools-1.0-2.noarch.rpm'), join(packages, 'tools-1.0-2.noarch.rpm'));
      const updated = compose(repo, file, '--unless-changed');
      expect(updated).toMatchObject({ changed: true, parent: edited.commit, imported: 1 });
      expect(updated.resolved.map((p) => p.nevra)).toContain('tools-1.0-2.noarch');
      expect(compose(repo, file, '--unless-changed')).toMatchObject({ changed: false, commit: updated.commit });
    });

    it('counts automatic-version-prefix up from the parent, and a fixed version wins', () => {
      const repo = newRepo();
      const file = treefile('autoversion', { 'automatic-version-prefix': '41' });
      const versions = [1, 2, 3].map(() => compose(repo, file).version);
      expect(versions).toEqual(['41', '41.1', '41.2']);
      expect(metadata(repo, 'test/os~2').version).toBe('41');
      const fixed = compose(repo, treefile('fixedversion', { 'automatic-version-prefix': '41', version: '41.fixed' }));
      expect(fixed.version).toBe('41.fixed');
      expect(JSON.parse(arbor('show', '--repo', repo, '--json', 'test/os'))).toMatchObject({
        subject: 'test/os 41.fixed',
        metadata: { version: '41.fixed' },
      });
    });
  });

  describe.skipIf(!IS_ROOT)('on a host', () => {
    it('`upgrade --preview` lists the package changes `db diff` lists for the same two commits', () => {
      const sysroot = dir('preview-sysroot');
      arbor('admin', 'init-fs', sysroot);
      arbor('admin', 'os-init', '--sysroot', sysroot, 'os');
      const repo = join(sysroot, 'arbor', 'repo');
      const first = compose(repo, treefile('preview'));
      arbor(
        'admin',
        'deploy',
        '--sysroot',
        sysroot,
        '--stateroot',
        'os',
        '--origin-ref',
        'test/os',
        '--no-preflight',
        'test/os',
      );
      const second = compose(repo, treefile('preview-updates', { repos: [dir('main'), dir('updates')] }));
      const dbDiff = runCli(['db', 'diff', '--repo', repo, first.commit as string, second.commit as string]);
      expect(dbDiff).toMatchObject({ exitCode: 0, stdout: 'Upgraded:\n  tools.noarch 1.0-1 -> 1.0-2\n' });
      const preview = runCli(['upgrade', '--preview', '--sysroot', sysroot]);
      expect(preview).toMatchObject({ exitCode: 0, stderr: '' });
      expect(preview.stdout).toBe(`upgrade available: test/os ${second.commit}\n${dbDiff.stdout}`);
      // The commits' package lists (arbor.packages) and their rpm databases give one answer in --json too.
      const json = JSON.parse(arbor('upgrade', '--preview', '--json', '--sysroot', sysroot)) as { packages: unknown };
      expect(json.packages).toEqual(
        JSON.parse(arbor('db', 'diff', '--json', '--repo', repo, first.commit as string, second.commit as string)),
      );
    });
  });

  describe('--dry-run', () => {
    it('prints the resolved set with why and what would be imported, and creates no ref', () => {
      const repo = newRepo();
      expect(refs(repo)).toEqual({});
      const empty = filesUnder(repo);
      const r = composeRaw(repo, treefile('dry'), '--dry-run');
      expect(r).toMatchObject({ exitCode: 0, stderr: '' });
      const lines = r.stdout.trim().split('\n');
      expect(lines).toContain("import webapp-2:1.4-3.noarch  (requested as 'webapp')");
      expect(lines).toContain(
        "import webapp-extras-1-1.noarch  (recommended by webapp-2:1.4-3.noarch ('webapp-extras'))",
      );
      expect(lines).toContain("import libcore-2.0-1.noarch  (required by webapp-2:1.4-3.noarch ('libcore.so.2'))");
      expect(
        lines
          .filter((l) => l.startsWith('import '))
          .map((l) => nameOf(l.split(' ')[1] as string))
          .sort(),
      ).toEqual(EXPECTED_NAMES);
      const composed = [...files.entries()].filter(([nevra]) => nameOf(nevra) !== 'unrelated').map(([, f]) => f);
      const bytes = composed.reduce((n, f) => n + readFileSync(f).length, 0);
      const installed = composed.reduce((n, f) => n + Number(rpm('-qp', '--qf', '%{SIZE}', f).stdout), 0);
      expect(installed).toBeLessThan(1024);
      expect(lines).toContain(
        `8 packages; to import: 8 (${(bytes / 1024).toFixed(1)} KiB to read, ${installed} B installed)`,
      );
      expect(lines.at(-1)).toMatch(/^inputs changed since the current commit \(input hash [0-9a-f]{16}\)$/);
      expect(refs(repo)).toEqual({});
      expect(filesUnder(repo)).toEqual(empty);

      // After a compose: only the update would be imported; still nothing written.
      const done = compose(repo, treefile('dry'));
      const before = refs(repo);
      const written = filesUnder(repo);
      const same = composeRaw(repo, treefile('dry'), '--dry-run').stdout.trim().split('\n');
      expect(same.filter((l) => l.startsWith('cached '))).toHaveLength(8);
      expect(same.slice(-2)).toEqual([
        '8 packages; to import: 0 (0 B to read, 0 B installed)',
        'inputs unchanged since the current commit',
      ]);
      const json = JSON.parse(
        composeRaw(repo, treefile('dry-updates', { repos: [dir('main'), dir('updates')] }), '--dry-run', '--json')
          .stdout,
      ) as ComposeJson;
      expect(json).toMatchObject({ commit: null, parent: done.commit, changed: true, imported: 1, cached: 7 });
      expect(json.resolved.filter((p) => p.imported).map((p) => p.nevra)).toEqual(['tools-1.0-2.noarch']);
      expect(json.importBytes.download).toBe(readFileSync(join(dir('updates'), 'tools-1.0-2.noarch.rpm')).length);
      expect(refs(repo)).toEqual(before);
      expect(filesUnder(repo)).toEqual(written);
    });
  });

  describe('the kernel', () => {
    const composeKernel = (
      name: string,
      packages: string[],
      extra: Record<string, unknown> = {},
    ): { repo: string; file: string } => ({
      repo: newRepo(),
      file: treefile(name, {
        repos: [dir('main'), dir('extra')],
        packages,
        units: [],
        'default-target': undefined,
        'remove-from-packages': [],
        ...extra,
      }),
    });

    it('moves vmlinuz-KVER, initramfs-KVER.img and config-KVER from /boot to /usr/lib/modules/KVER', () => {
      const { repo, file } = composeKernel('kernel-boot', ['setup', 'kernel-boot']);
      expect(compose(repo, file).kernel).toEqual({ version: '6.2.0-boot', initramfs: true });
      const tree = listing(repo, 'test/os');
      expect([...tree.keys()].filter((p) => p.startsWith('/boot'))).toEqual(['/boot']);
      expect([...tree.keys()].filter((p) => p.startsWith('/usr/lib/modules/')).sort()).toEqual(
        [
          '/usr/lib/modules/6.2.0-boot',
          ...['config', 'initramfs.img', 'modules.dep', 'vmlinuz'].map((f) => `/usr/lib/modules/6.2.0-boot/${f}`),
        ].sort(),
      );
      expect(arbor('cat', '--repo', repo, 'test/os', '/usr/lib/modules/6.2.0-boot/vmlinuz')).toBe('boot kernel');
      expect(arbor('cat', '--repo', repo, 'test/os', '/usr/lib/modules/6.2.0-boot/initramfs.img')).toBe(
        'boot initramfs',
      );
      expect(metadata(repo, 'test/os')['arbor.linux']).toBe('6.2.0-boot');
    });

    it('composes a container tree without a kernel', () => {
      const { repo, file } = composeKernel('kernel-container', ['setup', 'webapp'], { container: true });
      const result = compose(repo, file);
      expect(result.kernel).toBeNull();
      expect(refs(repo)['test/os']).toBe(result.commit);
      expect(metadata(repo, 'test/os')).not.toHaveProperty('arbor.linux');
    });

    it.each([
      [
        'no kernel',
        ['setup', 'webapp'],
        /^error\[E_COMPOSE_NO_KERNEL\]: the composed tree has no kernel .*\n  during: applying the treefile\nhint: .*container: true/,
      ],
      [
        'two kernels',
        ['setup', 'kernel', 'kernel-other'],
        /^error\[E_COMPOSE_KERNELS\]: the composed tree has 2 kernels \(6\.1\.0-1\.test, 6\.4\.0-other\)/,
      ],
      [
        'a kernel without initramfs',
        ['setup', 'kernel-bare'],
        /^error\[E_COMPOSE_NO_INITRAMFS\]: kernel 6\.3\.0-bare has no initramfs at \/usr\/lib\/modules\/6\.3\.0-bare\/initramfs\.img/,
      ],
    ])('exits 1 with %s and leaves the ref as it was', (_what, packages, message) => {
      const { repo, file } = composeKernel(`kernel-${packages.join('-')}`, ['setup', 'kernel']);
      const good = compose(repo, file);
      treefile(basename(file, '.yaml'), {
        repos: [dir('main'), dir('extra')],
        packages,
        units: [],
        'default-target': undefined,
        'remove-from-packages': [],
      });
      const r = composeRaw(repo, file);
      expect(r).toMatchObject({ exitCode: 1, stdout: '' });
      expect(r.stderr).toMatch(message);
      expect(refs(repo)['test/os']).toBe(good.commit);
    });
  });

  describe('bad input', () => {
    let repo = '';
    let good = '';
    beforeAll(() => {
      repo = newRepo();
      good = compose(repo, treefile('bad-base')).commit as string;
      // Repodata whose primary.xml.gz no longer matches the checksum in repomd.xml.
      cpSync(dir('main'), dir('corrupt-repodata'), { recursive: true });
      const primary = readdirSync(join(dir('corrupt-repodata'), 'repodata')).find((f) =>
        f.endsWith('-primary.xml.gz'),
      ) as string;
      const bytes = readFileSync(join(dir('corrupt-repodata'), 'repodata', primary));
      for (const i of [bytes.length >> 1, (bytes.length >> 1) + 1]) bytes[i] = (bytes[i] as number) ^ 0xff;
      writeFileSync(join(dir('corrupt-repodata'), 'repodata', primary), bytes);
      // A directory of packages, one cut short in its payload.
      mkdirSync(dir('truncated-rpms'));
      for (const file of files.values()) copyFileSync(file, join(dir('truncated-rpms'), basename(file)));
      const tools = join(dir('truncated-rpms'), 'tools-1.0-1.noarch.rpm');
      truncateSync(tools, readFileSync(tools).length - 40);
      // A yum repository whose packages live on a server.
      mkdirSync(dir('remote'));
      for (const file of files.values()) copyFileSync(file, join(dir('remote'), basename(file)));
      createRepo(dir('remote'), ['--baseurl', 'http://example.invalid/repo']);
      // A yum repository where one package was rebuilt (other content, another requirement) after createrepo_c ran.
      cpSync(dir('main'), dir('stale-repodata'), { recursive: true });
      const rebuilt = buildPackages(dir('rebuilt'), [
        { ...(BASE.find((d) => d.name === 'tools') as PackageDef), requires: ['libcore.so.2', 'not-in-any-repo'] },
      ]);
      copyFileSync(rebuilt[0] as string, join(dir('stale-repodata'), 'tools-1.0-1.noarch.rpm'));
      mkdirSync(dir('bad-scratch'));
    });

    /** Each case: the treefile text (FILE is its path), the exit status and what stderr must say. */
    const CASES: [string, () => string, number, (file: string) => RegExp][] = [
      [
        'an unknown key',
        () => `ref: test/os\nrepos: [${dir('main')}]\npackages: [setup, kernel]\ncontainr: true\n`,
        2,
        (f) =>
          new RegExp(
            `^error\\[E_TREEFILE_INVALID\\]: ${esc(f)}:4:1: unknown key 'containr' \\(did you mean 'container'\\?\\)`,
          ),
      ],
      [
        'a value of the wrong type',
        () => `ref: test/os\nrepos: [${dir('main')}]\npackages: setup\n`,
        2,
        (f) =>
          new RegExp(
            `^error\\[E_TREEFILE_INVALID\\]: ${esc(f)}:3:11: 'packages' must be a list of strings, got the string "setup"`,
          ),
      ],
      [
        'no ref',
        () => `repos: [${dir('main')}]\npackages: [setup, kernel]\n`,
        2,
        (f) => new RegExp(`^error\\[E_TREEFILE_INVALID\\]: ${esc(f)}: 'ref' is required`),
      ],
      [
        'a repository that does not exist',
        () => `ref: test/os\nrepos: [${dir('nowhere')}]\npackages: [setup, kernel]\n`,
        2,
        () => new RegExp(`^error\\[E_COMPOSE_REPO_MISSING\\]: repository '${esc(dir('nowhere'))}' does not exist`),
      ],
      [
        'corrupt repodata',
        () => `ref: test/os\nrepos: [${dir('corrupt-repodata')}]\npackages: [setup, kernel]\n`,
        3,
        () =>
          new RegExp(
            `^error\\[E_REPODATA_CHECKSUM\\]: repodata '${esc(dir('corrupt-repodata'))}/repodata/[0-9a-f]{64}-primary\\.xml\\.gz' has sha256 [0-9a-f]{64}, repomd\\.xml says [0-9a-f]{64}`,
          ),
      ],
      [
        'a truncated package',
        () => `ref: test/os\nrepos: [${dir('truncated-rpms')}]\npackages: [setup, kernel, tools]\n`,
        3,
        () =>
          new RegExp(
            `^error\\[E_RPM_MALFORMED\\]: package '${esc(dir('truncated-rpms'))}/tools-1\\.0-1\\.noarch\\.rpm': truncated in the payload`,
          ),
      ],
      [
        'an unsatisfiable requirement',
        () => `ref: test/os\nrepos: [${dir('main')}, ${dir('extra')}]\npackages: [setup, kernel, needs-missing]\n`,
        1,
        () =>
          /^error\[E_SOLVE_UNSATISFIABLE\]: cannot install 'needs-missing': needs-missing-1-1\.noarch requires 'libmissing\.so\.9 >= 2', but nothing provides it/,
      ],
      [
        'a request for no package',
        () => `ref: test/os\nrepos: [${dir('main')}]\npackages: [setup, kernel, nosuch]\n`,
        1,
        () => /^error\[E_SOLVE_UNSATISFIABLE\]: cannot install 'nosuch': no package matches 'nosuch'/,
      ],
      [
        'two packages shipping one path',
        () => `ref: test/os\nrepos: [${dir('main')}, ${dir('extra')}]\npackages: [setup, kernel, webapp, conflicter]\n`,
        1,
        () =>
          /^error\[E_COMPOSE_FILE_CONFLICT\]: 1 file conflict\(s\) between packages:\n {2}\/usr\/share\/webapp\/index\.html: conflicter-1-1\.noarch and webapp-2:1\.4-3\.noarch /,
      ],
      [
        'a unit that is not in the tree',
        () => `ref: test/os\nrepos: [${dir('main')}]\npackages: [setup, kernel, webapp]\nunits: [nosuch.service]\n`,
        2,
        () => /^error\[E_COMPOSE_UNIT\]: unit 'nosuch\.service' \(named in .*\) is not in the tree/,
      ],
      [
        'remove-from-packages naming a package not composed',
        () =>
          `ref: test/os\nrepos: [${dir('main')}]\npackages: [setup, kernel]\nremove-from-packages: [[webapp, '^/usr/bin/']]\n`,
        2,
        (f) =>
          new RegExp(
            `^error\\[E_TREEFILE_INVALID\\]: ${esc(f)}: remove-from-packages names 'webapp', which is not in the composed set`,
          ),
      ],
      [
        'a default-target that is not in the tree',
        () => `ref: test/os\nrepos: [${dir('main')}]\npackages: [setup, kernel]\ndefault-target: graphical.target\n`,
        2,
        () => /^error\[E_COMPOSE_UNIT\]: default-target 'graphical\.target' is not in the tree/,
      ],
      [
        'a package shipping /usr/etc',
        () => `ref: test/os\nrepos: [${dir('main')}, ${dir('extra')}]\npackages: [setup, kernel, usr-etc]\n`,
        1,
        () => /^error\[E_COMPOSE_LAYOUT\]: the tree has both \/etc and \/usr\/etc/,
      ],
      [
        'a repository whose packages are remote',
        () => `ref: test/os\nrepos: [${dir('remote')}]\npackages: [setup, kernel]\n`,
        2,
        () =>
          /^error\[E_COMPOSE_REPO_REMOTE\]: package [^ ]+ lives at 'http:\/\/example\.invalid\/repo', which is not a local path/,
      ],
      // dnf refuses such a package ("does not match intended download"): its dependencies were solved from other metadata.
      [
        'a package that does not match its repodata checksum',
        () => `ref: test/os\nrepos: [${dir('stale-repodata')}]\npackages: [setup, kernel, tools]\n`,
        3,
        () => new RegExp(`^error\\[E_RPM_CHECKSUM\\]: .*${esc(dir('stale-repodata'))}/tools-1\\.0-1\\.noarch\\.rpm`),
      ],
      [
        'a file owned by a user the tree does not define',
        () => `ref: test/os\nrepos: [${dir('main')}, ${dir('extra')}]\npackages: [setup, kernel, badowner]\n`,
        1,
        () =>
          /^error\[E_RPM_OWNER\]: package '.*badowner-1-1\.noarch\.rpm': '\/usr\/bin\/badowner' is owned by user 'ghostuser'/,
      ],
    ];

    it.each(CASES)('rejects %s with its exit status and code, and moves no ref', (what, text, exit, message) => {
      const file = dir(`bad-${what.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, text());
      const r = composeRaw(repo, file, '--tmpdir', dir('bad-scratch'));
      onTestFinished(() => {
        // Keep the cases independent when one wrongly succeeds.
        if (r.exitCode === 0) arbor('reset', '--repo', repo, 'test/os', good);
      });
      expect(r.stderr).toMatch(message(file));
      expect(r).toMatchObject({ exitCode: exit, stdout: '' });
      // Scratch space and the transaction's staging are gone.
      expect(readdirSync(dir('bad-scratch'))).toEqual([]);
      expect(readdirSync(join(repo, 'tmp'))).toEqual([]);
      // Only the package cache may grow.
      const after = refs(repo);
      expect(Object.keys(after).filter((name) => !name.startsWith('pkg/'))).toEqual(['test/os']);
      expect(after['test/os']).toBe(good);
    });

    it('refuses a --tmpdir that does not exist before resolving anything', () => {
      const r = composeRaw(repo, treefile('bad-base'), '--tmpdir', dir('no-such-scratch'));
      expect(r).toMatchObject({ exitCode: 2, stdout: '' });
      expect(r.stderr).toMatch(/^error\[E_USAGE\]: --tmpdir: '.*no-such-scratch' is not a directory/);
    });
  });

  describe('owners', () => {
    it("takes owners the tree does not define from --passwd, and the tree's own before it", () => {
      const repo = newRepo();
      const passwd = dir('host-passwd');
      // appuser has another uid on the host: the tree's /etc/passwd (1001) wins.
      writeFileSync(
        passwd,
        'root:x:0:0::/root:/bin/sh\nghostuser:x:4242:4242::/:/sbin/nologin\nappuser:x:555:555::/:/sbin/nologin\n',
      );
      const file = treefile('owners', {
        repos: [dir('main'), dir('extra')],
        packages: ['setup', 'kernel', 'webapp', 'badowner'],
      });
      compose(repo, file, '--passwd', passwd);
      const tree = listing(repo, 'test/os');
      expect(tree.get('/usr/bin/badowner')).toMatchObject({ uid: 4242, gid: 0 });
      expect(tree.get('/usr/bin/webapp')).toMatchObject({ uid: 1001, gid: 1002 });
    });

    it("maps owners by the composed tree's user database even when a package was imported under an earlier one", () => {
      const file = treefile('renumbered', { repos: [dir('main'), dir('setup-renumbered')] });
      const fresh = newRepo();
      compose(fresh, file);
      expect(listing(fresh, 'test/os').get('/usr/bin/webapp')).toMatchObject({ uid: 1005, gid: 1006 });
      // The same treefile where webapp is already in the package cache, imported when appuser was 1001.
      const reused = newRepo();
      compose(reused, treefile('renumbered-before'));
      const result = compose(reused, file);
      // setup is new; webapp is imported again because the ids its owner names map to changed.
      expect(result.resolved.filter((p) => p.imported).map((p) => p.nevra)).toEqual([
        'setup-2.14-2.noarch',
        'webapp-2:1.4-3.noarch',
      ]);
      expect(arbor('cat', '--repo', reused, 'test/os', '/usr/etc/passwd')).toContain('appuser:x:1005:1006:');
      expect(listing(reused, 'test/os').get('/usr/bin/webapp')).toMatchObject({ uid: 1005, gid: 1006 });
    });

    describe('with --passwd', () => {
      const file = (): string =>
        treefile('passwd-change', {
          repos: [dir('main'), dir('extra')],
          packages: ['setup', 'kernel', 'badowner'],
          units: [],
          'default-target': undefined,
          'remove-from-packages': [],
        });
      const passwd = (uid: number): string => {
        const path = dir(`passwd-${uid}`);
        writeFileSync(path, `root:x:0:0::/root:/bin/sh\nghostuser:x:${uid}:${uid}::/:/sbin/nologin\n`);
        return path;
      };

      it('maps owners by the file given, even for a package imported under another', () => {
        const repo = newRepo();
        compose(repo, file(), '--passwd', passwd(4242));
        expect(listing(repo, 'test/os').get('/usr/bin/badowner')).toMatchObject({ uid: 4242 });
        compose(repo, file(), '--passwd', passwd(5000));
        expect(listing(repo, 'test/os').get('/usr/bin/badowner')).toMatchObject({ uid: 5000 });
      });

      it('counts another file as changed input for --unless-changed', () => {
        const repo = newRepo();
        const a = compose(repo, file(), '--passwd', passwd(4242));
        const b = compose(repo, file(), '--unless-changed', '--passwd', passwd(5000));
        expect(b.inputHash).not.toBe(a.inputHash);
        expect(b).toMatchObject({ changed: true, parent: a.commit });
      });
    });
  });

  describe('kinds of repository', () => {
    it('composes from a plain directory of .rpm files, and from a mix of one and a yum repository, the same tree', () => {
      const repo = newRepo();
      const main = compose(repo, treefile('kind-main', { ref: 'test/main' }));
      mkdirSync(dir('plain'));
      for (const file of files.values()) copyFileSync(file, join(dir('plain'), basename(file)));
      // The base system as plain files, the application as a yum repository.
      mkdirSync(dir('mix-plain'));
      mkdirSync(dir('mix-yum'));
      for (const [nevra, file] of files)
        copyFileSync(
          file,
          join(
            dir(['setup', 'shell', 'units', 'kernel'].includes(nameOf(nevra)) ? 'mix-plain' : 'mix-yum'),
            basename(file),
          ),
        );
      createRepo(dir('mix-yum'));

      const plain = compose(repo, treefile('kind-plain', { ref: 'test/plain', repos: [dir('plain')] }));
      const mix = compose(repo, treefile('kind-mix', { ref: 'test/mix', repos: [dir('mix-plain'), dir('mix-yum')] }));
      const nevras = (r: ComposeJson): string[] => r.resolved.map((p) => p.nevra).sort();
      expect(nevras(plain)).toEqual(nevras(main));
      expect(nevras(mix)).toEqual(nevras(main));
      expect(new Set(plain.resolved.map((p) => p.repo))).toEqual(new Set([dir('plain')]));
      expect(Object.fromEntries(mix.resolved.map((p) => [nameOf(p.nevra), p.repo]))).toMatchObject({
        setup: dir('mix-plain'),
        kernel: dir('mix-plain'),
        webapp: dir('mix-yum'),
        tools: dir('mix-yum'),
      });
      // Same packages (same header digests), so nothing is imported again.
      expect(plain.imported).toBe(0);
      expect(mix.imported).toBe(0);
      for (const ref of ['test/plain', 'test/mix']) {
        const diff = JSON.parse(arbor('diff', '--repo', repo, '--json', 'test/main', ref)) as {
          entries: { path: string }[];
        };
        // The rpm database records the install time, so only it may differ.
        expect(
          diff.entries.map((e) => e.path).filter((p) => p !== '/usr/share/rpm/rpmdb.sqlite'),
          ref,
        ).toEqual([]);
        expect(arbor('db', 'list', '--repo', repo, ref)).toBe(arbor('db', 'list', '--repo', repo, 'test/main'));
      }
    });
  });
});
