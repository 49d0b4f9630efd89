// The kernel and initramfs of a commit: the boot checksum read in chunks names the same bytes a
// whole read would, /boot gets exactly those bytes, and a corrupt object is refused.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../../test/support/temp.js';
import { hashBytes } from '../common/hash.js';
import { commitTree } from '../repo/commit.js';
import { Repo } from '../repo/store.js';
import { bootChecksum, findKernel, installKernel, kernelDirName } from './kernel.js';

const KVER = '6.1.0-test';

describe('boot files', () => {
  const tmp = useTempDir('arbor-kernel-');

  /** A bare-user repository with one commit holding a kernel of `vmlinuz` and `initramfs` bytes. */
  async function commitKernel(
    vmlinuz: Buffer,
    initramfs: Buffer,
  ): Promise<{ repo: Repo; kernel: ReturnType<typeof findKernel> }> {
    const name = Math.random().toString(36).slice(2);
    const modules = join(tmp.path, `tree-${name}`, 'usr/lib/modules', KVER);
    mkdirSync(modules, { recursive: true });
    writeFileSync(join(modules, 'vmlinuz'), vmlinuz);
    writeFileSync(join(modules, 'initramfs.img'), initramfs);
    const repo = Repo.init(join(tmp.path, `repo-${name}`), 'bare-user');
    const { checksum } = await commitTree(repo, {
      branch: 'b',
      tree: { dir: join(tmp.path, `tree-${name}`) },
      timestamp: 0,
    });
    return { repo, kernel: findKernel(repo, checksum) };
  }

  // More than one 1 MiB chunk, not a multiple of it.
  const vmlinuz = Buffer.alloc(3 * 1024 * 1024 + 17, 'k');
  const initramfs = Buffer.from(Array.from({ length: 2 * 1024 * 1024 + 5 }, (_, i) => i % 251));

  it('names the kernel followed by the initramfs and installs exactly those bytes', async () => {
    const { repo, kernel } = await commitKernel(vmlinuz, initramfs);
    const boot = bootChecksum(repo, kernel);
    expect(boot).toMatchObject({
      bootcsum: hashBytes(vmlinuz, initramfs),
      vmlinuzBytes: vmlinuz.length,
      initramfsBytes: initramfs.length,
    });
    const kernels = join(tmp.path, 'boot-a');
    mkdirSync(kernels);
    expect(installKernel(repo, kernels, 'os', boot)).toBe(true);
    const dir = join(kernels, kernelDirName('os', boot.bootcsum));
    expect(readFileSync(join(dir, 'vmlinuz')).equals(vmlinuz)).toBe(true);
    expect(readFileSync(join(dir, 'initramfs.img')).equals(initramfs)).toBe(true);
    expect(installKernel(repo, kernels, 'os', boot)).toBe(false);
    repo.close();
  });

  it('refuses a kernel object whose content no longer matches its checksum', async () => {
    const { repo, kernel } = await commitKernel(vmlinuz, initramfs);
    const changed = Buffer.from(initramfs);
    const last = changed.length - 1;
    changed.writeUInt8(changed.readUInt8(last) ^ 1, last);
    writeFileSync(repo.objectPath(kernel.initramfs, 'file'), changed);
    expect(() => bootChecksum(repo, kernel)).toThrow(
      expect.objectContaining({ code: 'E_OBJECT_CORRUPT', message: expect.stringContaining(kernel.initramfs) }),
    );
    repo.close();
  });
});
