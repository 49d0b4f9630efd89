// A sysroot on a file system mounted read-only, as /sysroot is on a booted host: the commands that
// only look (status, status --json, admin config-diff, kargs) work and write nothing; those that
// change deployments fail with a clear error and exit 1, no stack trace; a read-write repository
// that only reads objects never creates its SQLite index files.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, sh } from '../support/cli.js';
import { type Commit, STATEROOT, TestSysroot } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';

describe.skipIf(!IS_ROOT || !hasCommand('mkfs.ext4'))('a sysroot mounted read-only', () => {
  const tmp = useTempDir('arbor-ro-sysroot-');
  let mnt = '';
  let s: TestSysroot;
  let v1: Commit;
  let v2: Commit;
  let mounted = false;

  beforeAll(() => {
    const image = join(tmp.path, 'sysroot.img');
    mnt = join(tmp.path, 'mnt');
    mkdirSync(mnt);
    sh(
      `truncate -s 96M '${image}' && PATH=$PATH:/usr/sbin:/sbin mkfs.ext4 -q '${image}' && mount -o loop '${image}' '${mnt}'`,
    );
    mounted = true;
    s = TestSysroot.create(join(mnt, 'sysroot'));
    const trees = join(tmp.path, 'trees');
    v1 = s.commit('os/main', { version: '1', etc: { hostname: 'h1\n', motd: 'm1\n' } }, trees);
    s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
    writeFileSync(join(s.deploymentDir(v1.checksum), 'etc/hostname'), 'admin-host\n');
    v2 = s.commit('os/main', { version: '2', etc: { hostname: 'h1\n', motd: 'm2\n' } }, trees);
    s.ok('upgrade');
    // A clean unmount checkpoints the WAL: repo.db-wal and -shm are gone, as after a shutdown.
    sh(`umount '${mnt}' && mount -o loop,ro '${image}' '${mnt}'`);
  });
  afterAll(() => {
    if (mounted) sh(`umount '${mnt}'`);
  });

  it('has no SQLite side files to open the index with', () => {
    expect(readdirSync(s.repo).filter((n) => n.startsWith('repo.db'))).toEqual(['repo.db']);
  });

  it('shows `status` and `status --json`', () => {
    const text = s.cli(['status']);
    expect(text).toMatchObject({ exitCode: 0, stderr: '' });
    expect(text.stdout).toContain(` 0 default ${STATEROOT} ${v2.checksum}.0`);
    expect(text.stdout).toContain(` 1 rollback ${STATEROOT} ${v1.checksum}.0`);
    expect(s.status().deployments.map((d) => [d.role, d.checksum, d.version])).toEqual([
      ['default', v2.checksum, '2'],
      ['rollback', v1.checksum, '1'],
    ]);
  });

  it('shows `admin config-diff` and `kargs`', () => {
    expect(s.cli(['admin', 'config-diff'])).toMatchObject({ exitCode: 0, stderr: '', stdout: 'M hostname\n' });
    expect(s.cli(['kargs'])).toMatchObject({ exitCode: 0, stderr: '' });
  });

  it.each([['rollback'], ['cleanup'], ['admin', 'undeploy', '1'], ['kargs', '--append', 'quiet']])(
    'refuses `%s` with E_SYSROOT_READ_ONLY, exit 1',
    (...args) => {
      const r = s.cli(args);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(
        /^error\[E_SYSROOT_READ_ONLY\]: sysroot '.*' is on a read-only file system: this command changes its deployments\n/,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
    },
  );

  it('refuses `upgrade --check`, which needs the index, with E_REPO_READ_ONLY', () => {
    const r = s.cli(['upgrade', '--check']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /^error\[E_REPO_READ_ONLY\]: the repository index '.*repo\.db' cannot be opened: its file system is read-only/,
    );
  });
});

describe('reading objects without the index', () => {
  const tmp = useTempDir('arbor-no-index-');
  // Root: TestSysroot commits root-owned trees into a bare repository.
  it.skipIf(!IS_ROOT)('does not create repo.db side files when a command reads only objects (status)', () => {
    const s = TestSysroot.create(join(tmp.path, 'sysroot'));
    s.commit('os/main', { version: '1' }, join(tmp.path, 'trees'));
    s.ok('admin', 'deploy', '--stateroot', STATEROOT, 'os/main');
    // Let the last writer's WAL be checkpointed and removed (it is, on close), then only read.
    const before = statSync(join(s.repo, 'repo.db')).mtimeMs;
    expect(existsSync(join(s.repo, 'repo.db-wal'))).toBe(false);
    s.ok('status');
    expect(existsSync(join(s.repo, 'repo.db-wal'))).toBe(false);
    expect(existsSync(join(s.repo, 'repo.db-shm'))).toBe(false);
    expect(statSync(join(s.repo, 'repo.db')).mtimeMs).toBe(before);
  });
});
