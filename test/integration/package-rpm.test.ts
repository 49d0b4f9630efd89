// `npm run package:rpm` (scripts/package-rpm.sh): the arbor and nodejs RPMs built from this checkout,
// read back by the real rpm (what they require and provide, their files), installed into an empty
// root with rpm, and the installed CLI run with the packaged Node on a real repository.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, ROOT, runCli } from '../support/cli.js';
import { useTempDir } from '../support/temp.js';
import { compareEvr, parseEvr } from '../../src/rpm-compose/solve/evr.js';

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(command, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
};
const VERSION = PACKAGE.version;
const HAVE_TOOLS =
  spawnSync('rpmbuild', ['--version']).status === 0 && spawnSync('dpkg-query', ['-S', '/usr/bin/node']).status === 0;

describe.skipIf(!HAVE_TOOLS || !IS_ROOT)('npm run package:rpm', () => {
  const tmp = useTempDir('arbor-package-');
  let arborRpm = '';
  let nodeRpm = '';

  beforeAll(() => {
    const out = run('bash', [join(ROOT, 'scripts/package-rpm.sh'), '--out', join(tmp.path, 'rpms')], {
      ARBOR_RPM_PAYLOAD: 'w3.zstdio',
    });
    [arborRpm = '', nodeRpm = ''] = out.trim().split('\n');
    expect(arborRpm).toMatch(new RegExp(`/arbor-${VERSION.replace(/\./g, '\\.')}-1\\.x86_64\\.rpm$`));
    expect(nodeRpm).toMatch(/\/nodejs-[0-9.]+-1\.deb\.x86_64\.rpm$/);
  }, 300_000);

  it('declares what arbor needs: Node in the engines range, the C libraries of its addons, its script interpreters, the scriptlet sandbox', () => {
    const requires = run('rpm', ['-qpR', arborRpm]).split('\n');
    const engines = /^>=\s*(\S+)$/.exec(PACKAGE.engines.node)?.[1];
    expect(requires).toContain(`nodejs >= ${engines}`);
    expect(requires).toEqual(
      expect.arrayContaining([
        '/bin/sh',
        '/usr/bin/env',
        'libc.so.6()(64bit)',
        'libstdc++.so.6()(64bit)',
        'liblzma.so.5()(64bit)',
        'bubblewrap',
        '/usr/bin/unshare',
        '/usr/bin/mount',
      ]),
    );
    // No musl or foreign prebuilt binaries: every C library required is a versioned glibc-style soname.
    expect(requires.filter((r) => /^lib[^ ]*\.so($|\()/.test(r))).toEqual([]);
    const provides = run('rpm', ['-qpP', nodeRpm]).split('\n');
    const nodeVersion = /^nodejs = (\S+)$/m.exec(provides.join('\n'))?.[1] ?? '';
    expect(provides).toContain('/usr/bin/node');
    expect(compareEvr(parseEvr(nodeVersion.replace(/-.*/, '')), parseEvr(engines ?? ''))).toBeGreaterThanOrEqual(0);
  });

  it('ships the CLI, its bundled code with the worker scripts and without tests, the units, the health runner, the dracut module and initramfs pieces', () => {
    const files = run('rpm', ['-qpl', arborRpm]).split('\n');
    expect(files).toEqual(
      expect.arrayContaining([
        '/usr/bin/arbor',
        '/usr/lib/arbor/app/dist/cli/main.js',
        '/usr/lib/arbor/app/dist/cli/commit-worker.js',
        '/usr/lib/arbor/app/dist/cli/link-worker.js',
        '/usr/lib/arbor/app/dist/cli/store-worker.js',
        '/usr/lib/arbor/app/dist/cli/fetch-helper.js',
        '/usr/lib/arbor/app/build/Release/arbor_native.node',
        '/usr/lib/arbor/arbor-health',
        '/usr/lib/arbor/arbor-prepare-root',
        '/usr/lib/arbor/health.d',
        '/usr/lib/systemd/system/arbor-health.service',
        '/usr/lib/systemd/system/arbor-finalize-staged.service',
        '/usr/lib/systemd/system/arbor-finalize-staged.path',
        '/usr/lib/systemd/system/arbor-agent.service',
        '/usr/lib/systemd/system/arbor-agent.timer',
        '/usr/lib/arbor/app/data/firstboot/lib.sh',
        '/usr/lib/dracut/modules.d/50arbor/module-setup.sh',
      ]),
    );
    expect(
      files.filter((f) => /\.test\.js$|\/(typescript|vitest|dependency-cruiser|rolldown)\/|\/dist\/src\//.test(f)),
    ).toEqual([]);
    // Arbor's own reader agrees the packages are whole.
    expect(runCli(['rpm', 'check', arborRpm, nodeRpm])).toMatchObject({ exitCode: 0 });
  });

  it('installs with rpm into an empty root, and the installed arbor runs on the packaged node', () => {
    const root = join(tmp.path, 'root');
    mkdirSync(root);
    // --nodeps: the root has no C library package; the dependencies are checked above.
    run('rpm', ['--root', root, '-i', '--nodeps', '--noscripts', arborRpm, nodeRpm]);
    expect(run('rpm', ['--root', root, '-qa', '--qf', '%{NAME}\n']).split('\n').sort()).toEqual([
      '',
      'arbor',
      'nodejs',
    ]);
    expect(readlinkSync(join(root, 'usr/bin/arbor'))).toBe('../lib/arbor/app/bin/arbor.js');
    const node = join(root, 'usr/bin/node');
    const arbor = join(root, 'usr/bin/arbor');
    expect(run(node, [arbor, '--version']).trim()).toBe(VERSION);
    // A real round trip through every native piece: SQLite (repo.db), BLAKE3, zstd (archive mode), the addon.
    const tree = join(tmp.path, 'tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc/os-release'), 'NAME=Arbor\n');
    const repo = join(tmp.path, 'repo');
    run(node, [arbor, 'init', '--repo', repo, '--mode', 'archive']);
    run(node, [arbor, 'commit', '--repo', repo, '-b', 'os/main', '-s', 'one', '--tree', `dir=${tree}`]);
    expect(run(node, [arbor, 'cat', '--repo', repo, 'os/main', '/etc/os-release'])).toBe('NAME=Arbor\n');
    run(node, [arbor, 'fsck', '--repo', repo]);
    expect(existsSync(join(repo, 'repo.db'))).toBe(true);
  });
});
