// An image from `arbor image build`, made by an unprivileged user from a commit of Debian's kernel
// and busybox, booted through systemd-boot under OVMF (TCG): the booted system must report the
// image's deployment, found by the root=UUID= argument the build derived, with a read-only /usr.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOOT_END_MARKER, hasBootTreeTooling, parseBootMarkers, writeBootTree } from '../support/boot-tree.js';
import { IS_ROOT, arbor, commitRootOwned, sh } from '../support/cli.js';
import { TEST_CACHE_DIR, buildBusyboxInitramfs, fetchTestKernel } from '../support/kernel.js';
import { bootUefi, hasQemuTooling } from '../support/qemu.js';
import { NOBODY, runCliAs } from '../support/repo-surgery.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';

const CAN_GET_KERNEL = existsSync(join(TEST_CACHE_DIR, 'kernel/current')) || hasCommand('apt-get');
const HAVE_TOOLING =
  IS_ROOT &&
  hasQemuTooling() &&
  hasBootTreeTooling() &&
  CAN_GET_KERNEL &&
  ['mkfs.ext4', 'debugfs', 'sfdisk', 'mkfs.vfat', 'mcopy', 'setpriv'].every(hasCommand);
const REF = 'os/x86_64/image';

describe.skipIf(!HAVE_TOOLING)('an image built by arbor image build, booted in QEMU (TCG)', () => {
  const tmp = useTempDir('arbor-image-boot-');
  let repo = '';
  let commit = '';

  beforeAll(async () => {
    const kernel = await fetchTestKernel();
    const initrd = join(tmp.path, 'initramfs.img');
    buildBusyboxInitramfs(kernel, initrd);
    const tree = join(tmp.path, 'tree');
    mkdirSync(tree);
    writeBootTree(tree, { kernel, initramfsPath: initrd, version: 'IMG' });
    repo = join(tmp.path, 'repo');
    arbor('init', '--repo', repo, '--mode', 'bare-user');
    commit = commitRootOwned(repo, REF, tree, '--add-metadata', 'version=IMG');
    rmSync(tree, { recursive: true });
    sh(`chown -R ${NOBODY.uid}:${NOBODY.gid} '${tmp.path}'`);
  }, 600_000);

  it('systemd-boot under OVMF boots the image deployment from its root=UUID= filesystem', async () => {
    const disk = join(tmp.path, 'disk.img');
    const built = runCliAs(NOBODY, [
      'image',
      'build',
      '--repo',
      repo,
      REF,
      '-o',
      disk,
      '--json',
      ...['console=ttyS0', 'quiet', 'panic=-1'].flatMap((k) => ['--karg', k]),
    ]);
    expect(built.stderr).toBe('');
    const result = JSON.parse(built.stdout) as { rootFsUuid: string; deployment: { path: string } };
    const boot = await bootUefi(disk, { marker: BOOT_END_MARKER });
    const markers = parseBootMarkers(boot.output);
    const context = `serial console (${boot.elapsedMs} ms):\n${boot.output.slice(-6000)}`;
    expect(boot.timedOut, context).toBe(false);
    expect(markers.failure, context).toBeNull();
    expect(markers, context).toMatchObject({
      done: true,
      version: 'IMG',
      commit,
      serial: '0',
      rootMount: result.deployment.path,
      usrReadOnly: true,
      etcWritable: true,
    });
    // systemd-boot started it (it names the initrd it loaded) with the derived root= argument.
    expect(markers.cmdline).toContain(`root=UUID=${result.rootFsUuid.toLowerCase()} rw console=ttyS0`);
    expect(markers.cmdline).toMatch(/(^| )initrd=\\arbor\\/);
  }, 240_000);
});
