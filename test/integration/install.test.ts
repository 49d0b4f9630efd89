// `arbor install to-filesystem` into a directory standing in for a mounted root (its ESP a
// directory at boot/efi), and `install to-disk` onto a loop device (a plain file where the kernel
// has no loop devices): the same bytes as `image build --size`, and bad targets refused untouched.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, arbor, commitRootOwned, runCli, sh } from '../support/cli.js';
import { NOBODY, expectArborError, runCliAs } from '../support/repo-surgery.js';
import { KVER, writeOsTree } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';

const TOOLS = [
  'mkfs.ext4',
  'debugfs',
  'sfdisk',
  'mkfs.vfat',
  'mcopy',
  'blkid',
  'wipefs',
  'lsblk',
  'losetup',
  'findmnt',
];
const HAVE_TOOLS = IS_ROOT && TOOLS.every(hasCommand) && existsSync('/usr/lib/systemd/boot/efi/systemd-bootx64.efi');
const REF = 'os/x86_64/main';
const EPOCH = '1700000000';
const MiB = 1024 * 1024;

const sha256Of = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
/** A file of SIZE zero bytes (sparse). */
const zeroFile = (path: string, size: number): string => {
  writeFileSync(path, '');
  sh(`truncate -s ${size} '${path}'`);
  return path;
};
/** Names under DIR, recursively, sorted: what a refused install must leave as it was. */
const listing = (dir: string): string[] =>
  (readdirSync(dir, { recursive: true }) as string[]).map((n) => n.split('\\').join('/')).sort();

/** A loop device over FILE, or null where the kernel (or the container) gives none. */
function attachLoop(file: string): string | null {
  const r = spawnSync('losetup', ['--find', '--show', file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Detaches LOOP, first dropping the partitions `install to-disk` told the kernel about (they outlive the detach). */
function detachLoop(loop: string): void {
  spawnSync('partx', ['--delete', loop]);
  spawnSync('losetup', ['--detach', loop]);
}

/** Whether this machine attaches loop devices (tried once, on a scratch file, and detached again). */
function loopDevicesWork(): boolean {
  if (!IS_ROOT || !hasCommand('losetup')) return false;
  const dir = mkdtempSync(join(tmpdir(), 'arbor-loop-probe-'));
  try {
    const loop = attachLoop(zeroFile(join(dir, 'probe'), MiB));
    if (loop !== null) detachLoop(loop);
    return loop !== null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const HAVE_LOOP = loopDevicesWork();
/** Whether the kernel mounts FAT (a container's kernel may lack the module). */
const HAVE_VFAT = existsSync('/proc/filesystems') && /\tvfat$/m.test(readFileSync('/proc/filesystems', 'utf8'));

describe.skipIf(!HAVE_TOOLS)('arbor install', () => {
  const tmp = useTempDir('arbor-install-');
  const loops: string[] = [];
  const mounts: string[] = [];
  let repo = '';
  let commit = '';
  const install = (args: string[]) => runCli(['install', ...args], { env: { SOURCE_DATE_EPOCH: EPOCH } });

  beforeAll(() => {
    const tree = join(tmp.path, 'tree');
    mkdirSync(tree);
    writeOsTree(tree, {
      version: '1',
      etc: { hostname: 'installed\n' },
      files: { 'usr/bin/su': { data: 'setuid\n', mode: 0o4755 } },
    });
    repo = join(tmp.path, 'repo');
    arbor('init', '--repo', repo, '--mode', 'bare-user');
    commit = commitRootOwned(repo, REF, tree);
    const bare = join(tmp.path, 'no-kernel');
    mkdirSync(bare);
    writeOsTree(bare, { version: '1', kernel: null });
    commitRootOwned(repo, 'os/no-kernel', bare);
  });

  afterAll(() => {
    for (const m of mounts) spawnSync('umount', [m]);
    for (const l of loops) detachLoop(l);
  });

  /** A directory laid out as a freshly made root filesystem with its ESP mounted at boot/efi. */
  const freshRoot = (name: string): string => {
    const root = join(tmp.path, name);
    mkdirSync(join(root, 'boot/efi'), { recursive: true });
    mkdirSync(join(root, 'lost+found'));
    return root;
  };

  it('to-filesystem makes the directory a sysroot with systemd-boot, entries and kernel on the ESP', () => {
    const root = freshRoot('fs');
    const r = install(['to-filesystem', '--repo', repo, root, REF, '--karg', 'root=LABEL=newroot', '--json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const result = JSON.parse(r.stdout) as {
      espMount: string;
      commit: string;
      kargs: string[];
      deployment: { stateroot: string; checksum: string; serial: number; path: string };
    };
    // The ESP is a directory of the root filesystem here: nothing to mount at boot.
    expect(result).toMatchObject({
      espMount: '/boot/efi',
      espMountUnit: null,
      commit,
      kargs: ['rw', 'root=LABEL=newroot'],
    });
    expect(result.deployment).toMatchObject({ stateroot: 'os', checksum: commit, serial: 0 });

    // The repository is bare (real owners and modes), holds the ref, and knows where the ESP is.
    const config = readFileSync(join(root, 'arbor/repo/config'), 'utf8');
    expect(config).toMatch(/mode\s*=\s*bare\n/);
    expect(config).toMatch(/\[sysroot\]\nesp\s*=\s*\/boot\/efi/);
    expect(arbor('rev-parse', '--repo', join(root, 'arbor/repo'), REF)).toBe(commit);
    const su = statSync(join(root, result.deployment.path, 'usr/bin/su'));
    expect({ uid: su.uid, mode: su.mode & 0o7777 }).toEqual({ uid: 0, mode: 0o4755 });
    expect(readFileSync(join(root, result.deployment.path, 'etc/hostname'), 'utf8')).toBe('installed\n');

    // The ESP boots: systemd-boot as the removable-media default, one entry, and the kernel it names.
    const esp = join(root, 'boot/efi');
    expect(statSync(join(esp, 'EFI/BOOT/BOOTX64.EFI')).size).toBeGreaterThan(0);
    expect(readFileSync(join(esp, 'loader/loader.conf'), 'utf8')).toBe('timeout 0\n');
    const entries = readdirSync(join(esp, 'loader/entries'));
    expect(entries).toHaveLength(1);
    const entry = readFileSync(join(esp, 'loader/entries', entries[0] ?? ''), 'utf8');
    expect(entry).toMatch(/^options rw root=LABEL=newroot arbor=/m);
    const linux = /^linux (\S+)$/m.exec(entry)?.[1] ?? '';
    const initrd = /^initrd (\S+)$/m.exec(entry)?.[1] ?? '';
    expect(readFileSync(join(esp, linux), 'utf8')).toBe(`kernel ${KVER}\n`);
    expect(existsSync(join(esp, initrd))).toBe(true);

    // The host's own view of it: one deployment, the default.
    const status = JSON.parse(arbor('status', '--sysroot', root, '--json')) as {
      deployments: { checksum: string }[];
    };
    expect(status.deployments.map((d) => d.checksum)).toEqual([commit]);
  });

  it.each([
    ['a non-empty target', ['--karg', 'root=LABEL=x'], 'junk', 1, 'E_INSTALL_TARGET_NOT_EMPTY', 'junk'],
    ['a commit without a kernel', ['--karg', 'root=LABEL=x'], null, 1, 'E_DEPLOY_NO_KERNEL', 'no kernel'],
    [
      'grub-bios (no disk to put it on)',
      ['--bootloader', 'grub-bios'],
      null,
      2,
      'E_INSTALL_BOOTLOADER_UNSUPPORTED',
      '',
    ],
    ['no root= and no filesystem mounted there', [], null, 2, 'E_INSTALL_ROOT_UNKNOWN', 'root=UUID'],
  ] as const)('to-filesystem refuses %s and changes nothing', (_, extra, junk, exit, code, mention) => {
    const root = freshRoot(`refused-${code}`);
    if (junk !== null) writeFileSync(join(root, junk), 'x');
    const before = listing(root);
    const ref = code === 'E_DEPLOY_NO_KERNEL' ? 'os/no-kernel' : REF;
    expectArborError(install(['to-filesystem', '--repo', repo, root, ref, ...extra]), exit, code, mention);
    expect(listing(root)).toEqual(before);
  });

  it.skipIf(!HAVE_LOOP)(
    `to-filesystem into a mounted ext4 root (ESP: ${HAVE_VFAT ? 'a mounted FAT' : 'a mounted ext4 standing in for FAT, which this kernel cannot mount'}) boots it by its UUID and mounts its ESP`,
    () => {
      const loop = attachLoop(zeroFile(join(tmp.path, 'rootfs.raw'), 64 * MiB));
      if (loop === null) throw new Error('losetup worked a moment ago');
      loops.push(loop);
      sh(`mkfs.ext4 -q '${loop}'`);
      const uuid = sh(`blkid -o value -s UUID '${loop}'`).trim();
      const mnt = join(tmp.path, 'rootmnt');
      mkdirSync(mnt);
      sh(`mount '${loop}' '${mnt}'`);
      mounts.push(mnt);
      mkdirSync(join(mnt, 'boot/efi'), { recursive: true });
      // The ESP a filesystem of its own, as on a machine: a real FAT where the kernel mounts one (entries
      // and kernels are then written the way FAT allows), else an ext4 standing in for it.
      const espLoop = attachLoop(zeroFile(join(tmp.path, 'esp.raw'), 64 * MiB));
      if (espLoop === null) throw new Error('losetup worked a moment ago');
      loops.push(espLoop);
      sh(HAVE_VFAT ? `mkfs.vfat -F 32 -I '${espLoop}'` : `mkfs.ext4 -q '${espLoop}'`);
      const espUuid = sh(`blkid -o value -s UUID '${espLoop}'`).trim();
      sh(`mount '${espLoop}' '${join(mnt, 'boot/efi')}'`);
      mounts.unshift(join(mnt, 'boot/efi'));
      const r = install(['to-filesystem', '--repo', repo, mnt, REF, '--karg', 'quiet', '--json']);
      expect(r.stderr).toBe('');
      const result = JSON.parse(r.stdout) as { kargs: string[]; espMountUnit: string; deployment: { path: string } };
      expect(result.kargs).toEqual([`root=UUID=${uuid}`, 'rw', 'quiet']);
      // The booted system mounts the ESP where Arbor's commands write the entries: /sysroot/boot/efi.
      expect(result.espMountUnit).toBe('sysroot-boot-efi.mount');
      const units = join(mnt, result.deployment.path, 'etc/systemd/system');
      expect(readFileSync(join(units, 'sysroot-boot-efi.mount'), 'utf8')).toContain(
        `\nWhat=/dev/disk/by-uuid/${espUuid}\nWhere=/sysroot/boot/efi\n`,
      );
      expect(readlinkSync(join(units, 'local-fs.target.wants/sysroot-boot-efi.mount'))).toBe(
        '../sysroot-boot-efi.mount',
      );
      expect(existsSync(join(mnt, 'arbor/repo/config'))).toBe(true);
      const entries = readdirSync(join(mnt, 'boot/efi/loader/entries'));
      expect(entries).toHaveLength(1);
      const entry = readFileSync(join(mnt, 'boot/efi/loader/entries', entries[0] ?? ''), 'utf8');
      expect(readFileSync(join(mnt, 'boot/efi', /^linux (\S+)$/m.exec(entry)?.[1] ?? ''), 'utf8')).toBe(
        `kernel ${KVER}\n`,
      );
      expect(existsSync(join(mnt, 'boot/efi/EFI/BOOT/BOOTX64.EFI'))).toBe(true);
    },
  );

  it('to-filesystem refuses a user other than root, and a target that is not a directory', () => {
    const root = freshRoot('as-nobody');
    chmodSync(tmp.path, 0o755);
    chownSync(root, NOBODY.uid, NOBODY.gid);
    const asNobody = runCliAs(NOBODY, [
      'install',
      'to-filesystem',
      '--repo',
      repo,
      root,
      REF,
      '--karg',
      'root=LABEL=x',
    ]);
    expectArborError(asNobody, 1, 'E_INSTALL_NEEDS_ROOT');
    expect(listing(root)).toEqual(['boot', 'boot/efi', 'lost+found']);
    const file = join(tmp.path, 'a-file');
    writeFileSync(file, '');
    expectArborError(install(['to-filesystem', '--repo', repo, file, REF]), 2, 'E_INSTALL_TARGET_INVALID', file);
  });

  it('to-filesystem refuses a target without an ESP (exit 2), and one outside the target', () => {
    const root = join(tmp.path, 'no-esp');
    mkdirSync(root);
    expectArborError(install(['to-filesystem', '--repo', repo, root, REF]), 2, 'E_INSTALL_ESP_MISSING', 'boot/efi');
    const outside = join(tmp.path, 'outside-esp');
    mkdirSync(outside);
    const args = ['to-filesystem', '--repo', repo, '--esp', outside, root, REF];
    expectArborError(install(args), 2, 'E_INSTALL_ESP_OUTSIDE', outside);
    expect(readdirSync(root)).toEqual([]);
  });

  it(`to-disk writes the bytes image build writes for a disk of that size (on ${HAVE_LOOP ? 'a loop device' : 'a plain file: no loop devices here'})`, () => {
    const size = 192 * MiB;
    const backing = zeroFile(join(tmp.path, 'disk.raw'), size);
    const loop = attachLoop(backing);
    if (loop !== null) loops.push(loop);
    const device = loop ?? backing;
    const r = install(['to-disk', '--repo', repo, device, REF, '--json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const result = JSON.parse(r.stdout) as { device: string; size: number; partitions: { name: string }[] };
    expect(result).toMatchObject({ device, size });
    expect(result.partitions.map((p) => p.name)).toEqual(['esp', 'root']);
    if (loop !== null) detachLoop(loop);
    loops.splice(loops.indexOf(device), 1);

    const image = join(tmp.path, 'same.img');
    const built = runCli(['image', 'build', '--repo', repo, REF, '-o', image, '--size', String(size), '--json'], {
      env: { SOURCE_DATE_EPOCH: EPOCH },
    });
    expect(built.exitCode).toBe(0);
    expect(sha256Of(backing)).toBe((JSON.parse(built.stdout) as { sha256: string }).sha256);
  });

  it.skipIf(!HAVE_LOOP)('to-disk refuses a mounted device, naming the mount point', () => {
    const backing = zeroFile(join(tmp.path, 'mounted.raw'), 64 * MiB);
    const loop = attachLoop(backing);
    if (loop === null) throw new Error('losetup worked a moment ago');
    loops.push(loop);
    sh(`mkfs.ext4 -q '${loop}'`);
    const mnt = join(tmp.path, 'mnt');
    mkdirSync(mnt);
    sh(`mount '${loop}' '${mnt}'`);
    mounts.push(mnt);
    expectArborError(install(['to-disk', '--repo', repo, '--wipe', loop, REF]), 1, 'E_INSTALL_DEVICE_IN_USE', mnt);
    expect(readdirSync(mnt)).toEqual(['lost+found']);
  });

  it('to-disk refuses a device holding a filesystem unless --wipe, then installs over it', () => {
    const disk = zeroFile(join(tmp.path, 'used.raw'), 192 * MiB);
    sh(`mkfs.ext4 -q -F '${disk}'`);
    const before = sha256Of(disk);
    expectArborError(
      install(['to-disk', '--repo', repo, disk, REF]),
      1,
      'E_INSTALL_DEVICE_NOT_EMPTY',
      'ext4',
      '--wipe',
    );
    expect(sha256Of(disk)).toBe(before);
    const r = install(['to-disk', '--repo', repo, '--wipe', disk, REF]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(sh(`blkid -p -o value -s PTTYPE '${disk}'`).trim()).toBe('gpt');
  });

  it.skipIf(!HAVE_LOOP || !hasCommand('mkfs.xfs'))('to-disk --root-fs xfs writes an xfs root partition', () => {
    const disk = zeroFile(join(tmp.path, 'xfs.raw'), 512 * MiB);
    const r = install(['to-disk', '--repo', repo, '--root-fs', 'xfs', disk, REF, '--json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const result = JSON.parse(r.stdout) as {
      rootFs: string;
      rootFsUuid: string;
      partitions: { name: string; start: number; size: number }[];
    };
    expect(result.rootFs).toBe('xfs');
    const root = result.partitions.find((p) => p.name === 'root');
    const probe = sh(`blkid -p -o export -O ${root?.start} -S ${root?.size} '${disk}'`);
    expect(probe).toContain('TYPE=xfs');
    expect(probe).toContain(`UUID=${result.rootFsUuid.toLowerCase()}`);
  });

  it.each([
    ['too small a device', 'small', 1, 'E_INSTALL_DEVICE_TOO_SMALL', 'needs at least'],
    ['a commit without a kernel', 'nokernel', 1, 'E_DEPLOY_NO_KERNEL', 'no kernel'],
  ] as const)('to-disk refuses %s before writing a byte', (_, name, exit, code, mention) => {
    const disk = zeroFile(join(tmp.path, `${name}.raw`), (name === 'small' ? 16 : 192) * MiB);
    const ref = name === 'nokernel' ? 'os/no-kernel' : REF;
    expectArborError(install(['to-disk', '--repo', repo, disk, ref]), exit, code, mention);
    expect(sh(`cmp -s '${disk}' /dev/zero -n ${(name === 'small' ? 16 : 192) * MiB} && echo zero`).trim()).toBe('zero');
  });

  it('to-disk refuses a path that is not a device (exit 2)', () => {
    expectArborError(
      install(['to-disk', '--repo', repo, join(tmp.path, 'absent'), REF]),
      2,
      'E_INSTALL_DEVICE_INVALID',
    );
    expectArborError(install(['to-disk', '--repo', repo, tmp.path, REF]), 2, 'E_INSTALL_DEVICE_INVALID');
  });
});
