// A pull into a repository whose disk fills up: a clear E_NO_SPACE naming where, exit 1, the
// remote ref unmoved, fsck clean; with room made, the same pull completes. The client repository
// lives on a small tmpfs (root only: mounting needs it).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, arbor, runCli } from '../support/cli.js';
import { HAVE_NGINX, type NginxServer, startNginx } from '../support/nginx.js';
import { Random } from '../support/random.js';
import { writeBulkTree } from '../support/bulk-tree.js';
import { useTempDir } from '../support/temp.js';
import { fsck, refsOf } from '../support/transfer.js';

/** Whether this machine lets us mount a tmpfs (root in a container may lack CAP_SYS_ADMIN). */
function canMountTmpfs(): boolean {
  if (!IS_ROOT) return false;
  const dir = mkdtempSync(join(tmpdir(), 'arbor-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!canMountTmpfs() || !HAVE_NGINX)('a pull that runs out of disk space', () => {
  const tmp = useTempDir('arbor-transfer-full-');
  let nginx: NginxServer;
  let mount: string;
  beforeAll(async () => {
    // ≈ 12 MiB of incompressible content each, more than the 6 MiB filesystem holds: in objects of
    // 1 MiB (verified and written by the pull's worker threads) and of 3 MiB (streamed to disk).
    for (const [name, largeBytes, largeFiles] of [
      ['workers', 1 << 20, 12],
      ['streamed', 3 << 20, 4],
    ] as const) {
      const tree = join(tmp.path, `tree-${name}`);
      writeBulkTree(tree, { smallFiles: 200, dirs: 5, largeFiles, largeBytes }, new Random(7));
      const server = join(tmp.path, 'srv', name);
      arbor('init', '--repo', server, '--mode', 'archive');
      arbor('commit', '--repo', server, '-b', 'os/main', '--tree', `dir=${tree}`);
      arbor('summary', '--repo', server, '--update');
    }
    nginx = await startNginx(join(tmp.path, 'srv'));
    mount = join(tmp.path, 'small');
    mkdirSync(mount);
  });
  afterAll(async () => {
    await nginx?.stop();
    if (mount) execFileSync('sh', ['-c', `umount -l '${mount}' 2>/dev/null || true`]);
  });

  it.each([
    ['workers', 'bare-user'],
    ['streamed', 'archive'],
  ])(
    'fails with E_NO_SPACE, keeps the repository clean, and completes once there is room (objects %s, %s client)',
    (name, mode) => {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mount]);
      const repo = join(mount, 'repo');
      arbor('init', '--repo', repo, '--mode', mode);
      arbor('remote', 'add', '--repo', repo, 'origin', `${nginx.url}/${name}`, '--no-sign-verify');
      const full = runCli(['pull', '--repo', repo, 'origin', 'os/main']);
      expect(full.exitCode, full.stderr).toBe(1);
      expect(full.stderr).toMatch(/^error\[E_NO_SPACE\]: .*no space left on device/m);
      expect(full.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(refsOf(repo)).toEqual({});
      expect(fsck(repo).exitCode).toBe(0);
      execFileSync('mount', ['-o', 'remount,size=64m', mount]);
      const retry = runCli(['pull', '--repo', repo, 'origin', 'os/main']);
      expect(retry.exitCode, retry.stderr).toBe(0);
      expect(Object.keys(refsOf(repo))).toEqual(['origin:os/main']);
      expect(fsck(repo).exitCode).toBe(0);
      execFileSync('umount', [mount]);
    },
  );
});
