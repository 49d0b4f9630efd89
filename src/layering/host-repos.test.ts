import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import type { Checksum } from '../common/hash.js';
import { type Deployment, Sysroot, initStateroot, initSysroot } from '../deploy/index.js';
import { readHostRepos } from './host-repos.js';

describe("a host's repositories", () => {
  const tmp = useTempDir('arbor-host-repos-');
  let count = 0;

  /** A sysroot whose deployment directory holds `files` (path below its root → text or a symlink). */
  function host(files: Record<string, string | { link: string }>): { sysroot: Sysroot; merge: Deployment } {
    const sysroot = initSysroot(join(tmp.path, `sysroot-${count++}`));
    initStateroot(sysroot, 'os');
    const merge: Deployment = {
      stateroot: 'os',
      checksum: 'c'.repeat(64) as Checksum,
      serial: 0,
      bootcsum: 'd'.repeat(64),
      kargs: [],
      origin: { refspec: null, pinned: false, allowDowngrade: false, extra: new Map() },
      version: null,
    };
    const root = sysroot.deploymentPath(merge);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      if (typeof content === 'string') writeFileSync(join(root, path), content);
      else symlinkSync(content.link, join(root, path));
    }
    return { sysroot, merge };
  }

  it("reads the enabled .repo files of the deployment's /etc, with its os-release VERSION_ID as $releasever", async () => {
    const { sysroot, merge } = host({
      'usr/lib/os-release': 'NAME=Test\nVERSION_ID="41"\n',
      'etc/yum.repos.d/a.repo':
        '[on]\nbaseurl=http://example.test/$releasever/$basearch/\nproxy=none\n\n[off]\nbaseurl=http://example.test/off/\nenabled=0\n',
    });
    const repos = await readHostRepos(sysroot, 'os', merge, 'x86_64');
    expect(repos.configs.map((c) => [c.id, c.baseurls])).toEqual([['on', ['http://example.test/41/x86_64/']]]);
    expect(repos.ignoredKeys).toEqual([expect.stringMatching(/a\.repo: on\.proxy$/)]);
    expect(repos.cacheDir).toBe(join(sysroot.path, 'arbor/deploy/os/var/cache/arbor/yum'));
    // Not the running root: file:// URLs are read below the deployment's directory.
    expect(repos.fileRoot).toBe(sysroot.deploymentPath(merge));
  });

  it("takes install_weak_deps and the repositories' defaults from the deployment's dnf.conf", async () => {
    const { sysroot, merge } = host({
      'etc/dnf/dnf.conf': '[main]\ngpgcheck=1\ninstall_weak_deps=False\nskip_if_unavailable=True\n',
      'etc/yum.repos.d/a.repo':
        '[a]\nbaseurl=http://example.test/a/\n[b]\nbaseurl=http://example.test/b/\nskip_if_unavailable=0\n',
    });
    const repos = await readHostRepos(sysroot, 'os', merge);
    expect(repos.installWeakDeps).toBe(false);
    expect(repos.configs.map((c) => [c.id, c.skipIfUnavailable, c.gpgcheck])).toEqual([
      ['a', true, true],
      ['b', false, true],
    ]);
  });

  it("has dnf's defaults without dnf.conf, and refuses a bad value in it naming the line", async () => {
    const plain = host({ 'etc/yum.repos.d/a.repo': '[a]\nbaseurl=http://example.test/a/\n' });
    const repos = await readHostRepos(plain.sysroot, 'os', plain.merge);
    expect(repos.installWeakDeps).toBe(true);
    expect(repos.configs.map((c) => c.skipIfUnavailable)).toEqual([false]);
    const bad = host({ 'etc/dnf/dnf.conf': '[main]\ninstall_weak_deps=perhaps\n' });
    await expect(readHostRepos(bad.sysroot, 'os', bad.merge)).rejects.toMatchObject({
      code: 'E_YUM_REPO_INVALID',
      message: expect.stringMatching(/etc\/dnf\/dnf\.conf:2: install_weak_deps must be 1 or 0/),
    });
  });

  it('follows an absolute link of /etc/yum.repos.d inside the deployment, not on the machine', async () => {
    const { sysroot, merge } = host({
      'usr/share/repos/b.repo': '[inside]\nbaseurl=http://example.test/b/\n',
      'etc/yum.repos.d': { link: '/usr/share/repos' },
    });
    const repos = await readHostRepos(sysroot, 'os', merge);
    expect(repos.configs.map((c) => c.id)).toEqual(['inside']);
  });

  it('has none without a merge deployment or without /etc/yum.repos.d', async () => {
    const { sysroot, merge } = host({ 'usr/lib/os-release': 'VERSION_ID=1\n' });
    expect((await readHostRepos(sysroot, 'os', merge)).configs).toEqual([]);
    expect(await readHostRepos(sysroot, 'os', null)).toMatchObject({ configs: [], installWeakDeps: true });
  });
});
