// `arbor image build` run as an unprivileged user (and once as root): the same bytes every time,
// the partition table and the root filesystem's inodes as a bare sysroot has them (read back with
// sfdisk --json, debugfs and mtools), and bad inputs refused before anything is left behind.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listFat, readFatFile } from '../../src/image/index.js';
import { ARBOR, type CliResult, IS_ROOT, arbor, commitRootOwned, runCli, sh } from '../support/cli.js';
import { NOBODY, expectArborError, runCliAs } from '../support/repo-surgery.js';
import { KVER, writeOsTree } from '../support/sysroot.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand, runTool } from '../support/tool.js';

const TOOLS = ['mkfs.ext4', 'debugfs', 'sfdisk', 'mkfs.vfat', 'mcopy', 'grub-mkimage', 'qemu-img', 'setpriv'];
const HAVE_TOOLS = IS_ROOT && TOOLS.every(hasCommand) && existsSync('/usr/lib/systemd/boot/efi/systemd-bootx64.efi');
const REF = 'os/x86_64/main';
const EPOCH = '1700000000';

interface ImageJson {
  size: number;
  partitions: { name: string; start: number; size: number; uuid: string }[];
  rootFsUuid: string;
  commit: string;
  deployment: { stateroot: string; checksum: string; serial: number; path: string };
  kargs: string[];
  sha256: string;
}

const sha256Of = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(!HAVE_TOOLS)('arbor image build', () => {
  const tmp = useTempDir('arbor-image-');
  let repo = '';
  let commit = '';
  let out = '';
  /** Runs `arbor image build` as nobody (or root) with SOURCE_DATE_EPOCH set. */
  const build = (args: string[], user: 'nobody' | 'root' = 'nobody', source = repo): CliResult => {
    const full = ['image', 'build', '--repo', source, ...args];
    if (user === 'root') return runCli(full, { env: { SOURCE_DATE_EPOCH: EPOCH } });
    process.env.SOURCE_DATE_EPOCH = EPOCH; // runCliAs passes the environment on
    try {
      return runCliAs(NOBODY, full);
    } finally {
      delete process.env.SOURCE_DATE_EPOCH;
    }
  };
  const debugfs = (disk: string, offset: number, command: string): string =>
    runTool('debugfs', ['-R', command, `${disk}?offset=${offset}`]);

  beforeAll(() => {
    const tree = join(tmp.path, 'tree');
    mkdirSync(tree);
    writeOsTree(tree, {
      version: '1',
      etc: { hostname: 'imagehost\n', shadow: { file: 'root:*:1::::::\n', mode: 0o000 } },
      files: {
        'usr/bin/su': { data: 'setuid\n', mode: 0o4755 },
        'usr/share/doc/readme': 'content of a file\n',
        'usr/lib/libx.so': { link: 'libx.so.1' },
        // Its object's bare-user header is too long for the inode: mkfs gives it an xattr block.
        'usr/lib/liblong.so': { link: `../lib/${'long-target-'.repeat(8)}so.1` },
      },
    });
    repo = join(tmp.path, 'repo');
    arbor('init', '--repo', repo, '--mode', 'bare-user');
    commit = commitRootOwned(repo, REF, tree);
    out = join(tmp.path, 'out');
    mkdirSync(out);
    sh(`chown -R ${NOBODY.uid}:${NOBODY.gid} '${tmp.path}'`);
  });

  it('builds the same bytes as root and as an unprivileged user, and reports them', () => {
    const a = build([REF, '-o', join(out, 'a.img'), '--json'], 'root');
    const b = build([REF, '-o', join(out, 'b.img'), '--json']);
    expect(b.stderr).toBe('');
    const ja = JSON.parse(a.stdout) as ImageJson;
    const jb = JSON.parse(b.stdout) as ImageJson;
    expect(jb.sha256).toBe(ja.sha256);
    expect(sha256Of(join(out, 'b.img'))).toBe(jb.sha256);
    expect(sha256Of(join(out, 'a.img'))).toBe(ja.sha256);
    expect(jb).toMatchObject({ commit, deployment: { stateroot: 'os', checksum: commit, serial: 0 } });
    expect(jb.kargs).toEqual([`root=UUID=${jb.rootFsUuid.toLowerCase()}`, 'rw']);
    writeFileSync(join(out, 'b.json'), b.stdout);
  });

  it('builds the same bytes from an archive repository (pulled, verified) as from bare-user (hardlinked)', () => {
    const archive = join(tmp.path, 'archive');
    arbor('init', '--repo', archive, '--mode', 'archive');
    arbor('pull-local', '--repo', archive, repo, REF);
    sh(`chown -R ${NOBODY.uid}:${NOBODY.gid} '${archive}'`);
    const fromArchive = build([REF, '-o', join(out, 'c.img'), '--json'], 'nobody', archive);
    const fromBareUser = JSON.parse(readFileSync(join(out, 'b.json'), 'utf8')) as ImageJson;
    expect(fromArchive.stderr).toBe('');
    expect((JSON.parse(fromArchive.stdout) as ImageJson).sha256).not.toBe('');
    expect(sha256Of(join(out, 'c.img'))).toBe(fromBareUser.sha256);
    rmSync(join(out, 'c.img'));
  });

  it('writes the GPT it reports: an ESP and an x86-64 root partition with derived GUIDs', () => {
    const disk = join(out, 'b.img');
    const reported = JSON.parse(build([REF, '-o', disk, '--json', '--force']).stdout) as ImageJson;
    const table = JSON.parse(runTool('sfdisk', ['--json', disk])) as {
      partitiontable: { partitions: { start: number; size: number; type: string; uuid: string; name: string }[] };
    };
    expect(table.partitiontable.partitions).toEqual(
      reported.partitions.map((p, i) => ({
        node: `${disk}${i + 1}`,
        start: p.start / 512,
        size: p.size / 512,
        type: ['C12A7328-F81F-11D2-BA4B-00A0C93EC93B', '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709'][i],
        uuid: p.uuid,
        name: p.name,
      })),
    );
    expect(reported.size).toBe(readFileSync(disk).length);
  });

  it('makes the root filesystem a bare sysroot: owners 0:0, true modes, bare objects, the deployment', () => {
    const disk = join(out, 'b.img');
    const j = JSON.parse(build([REF, '-o', disk, '--json', '--force']).stdout) as ImageJson;
    const root = j.partitions.find((p) => p.name === 'root')?.start as number;
    const d = j.deployment.path;
    expect(debugfs(disk, root, `cat ${d}/usr/share/doc/readme`)).toBe('content of a file\n');
    expect(debugfs(disk, root, `cat ${d}/etc/hostname`)).toBe('imagehost\n');
    expect(debugfs(disk, root, 'cat /arbor/repo/config')).toMatch(/^mode=bare$/m);
    const stat = (path: string): string => debugfs(disk, root, `stat ${path}`);
    for (const [path, mode] of [
      [`${d}/usr/bin/su`, '04755'],
      [`${d}/etc/shadow`, '0000'],
      [`${d}/usr/etc/shadow`, '0000'],
      [`${d}/usr/bin/hello`, '0755'],
      ['/tmp', '01777'],
    ] as const) {
      expect(stat(path)).toMatch(new RegExp(`Mode:\\s+${mode}\\s`));
      expect(stat(path)).toMatch(/User:\s+0\s+Group:\s+0\s/);
    }
    // A deployment file is its object (a hardlink), with the object's mtime 0 and no bare-user xattr.
    expect(stat(`${d}/usr/bin/su`)).toMatch(/Links: 2/);
    expect(stat(`${d}/usr/bin/su`)).toMatch(/mtime: 0x00000000/);
    expect(debugfs(disk, root, `ea_list ${d}/usr/bin/su`)).not.toContain('user.arbor.meta');
    expect(stat(`${d}/usr/lib/libx.so`)).toMatch(/Type: symlink/);
    expect(stat(`${d}/usr/lib/liblong.so`)).toMatch(/Type: symlink/);
    expect(debugfs(disk, root, 'ls -l /boot/loader/entries')).toMatch(/arbor-os-0\.conf/);
    expect(runTool('e2fsck', ['-fn', `${disk}?offset=${root}`])).toContain('sysroot:');
  });

  it('puts systemd-boot, the entries and the kernels on the ESP', () => {
    const disk = join(out, 'b.img');
    const esp = 1024 * 1024;
    expect(listFat(disk, esp, '/EFI/BOOT')).toEqual(['BOOTX64.EFI']);
    const [entry] = listFat(disk, esp, '/loader/entries');
    const text = readFatFile(disk, esp, `/loader/entries/${entry}`).toString();
    expect(text).toMatch(/^options root=UUID=\S+ rw arbor=\/arbor\/boot\.\d\/os\//m);
    const linux = /^linux (\S+)$/m.exec(text)?.[1] as string;
    expect(readFatFile(disk, esp, linux).toString()).toBe(`kernel ${KVER}\n`);
  });

  it('keeps the ESP a valid FAT32 on a big disk (clusters sized for the partition, not the file)', () => {
    const disk = join(out, 'big.img');
    expect(build([REF, '-o', disk, '--size', '1G']).exitCode).toBe(0);
    expect(listFat(disk, 1024 * 1024, '/EFI/BOOT')).toEqual(['BOOTX64.EFI']);
    rmSync(disk);
  });

  it('installs GRUB for BIOS: boot.img in the MBR, core.img in a BIOS boot partition', () => {
    const disk = join(out, 'bios.img');
    const j = JSON.parse(build([REF, '-o', disk, '--bootloader', 'grub-bios', '--json']).stdout) as ImageJson;
    expect(j.partitions.map((p) => [p.name, p.size])).toEqual([
      ['bios-boot', 1024 * 1024],
      ['root', j.size - 3 * 1024 * 1024],
    ]);
    const mbr = readFileSync(disk).subarray(0, 512);
    const bootImg = readFileSync('/usr/lib/grub/i386-pc/boot.img');
    expect(mbr.subarray(0x60, 440)).toEqual(bootImg.subarray(0x60, 440));
    expect(mbr.readBigUInt64LE(0x5c)).toBe(2048n);
    const root = j.partitions[1]?.start as number;
    expect(debugfs(disk, root, 'cat /boot/loader/grub.cfg')).toMatch(/^menuentry /m);
  });

  it('configures the remote and its trusted key, and deploys from REMOTE:REF', () => {
    const keys = join(tmp.path, 'keys');
    arbor('keygen', '-o', keys);
    chownSync(`${keys}.pub`, NOBODY.uid, NOBODY.gid);
    const disk = join(out, 'remote.img');
    const j = JSON.parse(
      build([
        REF,
        '-o',
        disk,
        '--json',
        '--remote',
        'origin=http://updates.example.com/repo',
        `--sign-verify=ed25519=${keys}.pub`,
      ]).stdout,
    ) as ImageJson;
    const root = j.partitions.find((p) => p.name === 'root')?.start as number;
    const config = debugfs(disk, root, 'cat /arbor/repo/config');
    expect(config).toContain('[remote "origin"]');
    expect(config).toContain('url=http://updates.example.com/repo');
    expect(config).toContain('sign-verify=true');
    expect(config).toMatch(/verification-ed25519-keys=\S+/);
    expect(debugfs(disk, root, `cat ${j.deployment.path}.origin`)).toContain(`refspec=origin:${REF}`);
  });

  it('installs a first-boot configuration into the deployment, root-owned, with its kernel arguments in the entry', () => {
    const config = join(tmp.path, 'firstboot.yaml');
    writeFileSync(
      config,
      'hostname: node-1\nusers:\n  - name: core\n    ssh_authorized_keys: [ssh-ed25519 AAAAkey core@x]\n' +
        'systemd:\n  units:\n    - {name: debug-shell.service, mask: true}\nkernel_arguments:\n  should_exist: [quiet]\n',
    );
    chownSync(config, NOBODY.uid, NOBODY.gid);
    const disk = join(out, 'firstboot.img');
    const j = JSON.parse(build([REF, '-o', disk, '--json', '--config', config]).stdout) as ImageJson;
    const root = j.partitions.find((p) => p.name === 'root')?.start as number;
    const d = j.deployment.path;
    const stat = (path: string): string => debugfs(disk, root, `stat ${path}`);
    expect(stat(`${d}/etc/arbor/firstboot/apply`)).toMatch(/Mode:\s+0700\s/);
    expect(stat(`${d}/etc/arbor/firstboot/apply`)).toMatch(/User:\s+0\s+Group:\s+0\s/);
    expect(debugfs(disk, root, `cat ${d}/etc/arbor/firstboot/apply`)).toContain(
      "step 'user core' 'ensure_user' 'core'",
    );
    expect(stat(`${d}/etc/systemd/system-generators/arbor-firstboot-generator`)).toMatch(/Mode:\s+0755\s/);
    expect(debugfs(disk, root, `cat ${d}/etc/arbor/firstboot/units`)).toBe('mask debug-shell.service\n');
    expect(j.kargs).toContain('quiet');
    // The same configuration builds the same image; no configuration builds another one.
    const again = JSON.parse(
      build([REF, '-o', join(out, 'firstboot2.img'), '--json', '--config', config]).stdout,
    ) as ImageJson;
    expect(again.sha256).toBe(j.sha256);
  });

  it('writes qcow2 reproducibly', () => {
    const a = JSON.parse(build([REF, '-o', join(out, 'a.qcow2'), '--format', 'qcow2', '--json']).stdout) as ImageJson;
    const b = JSON.parse(build([REF, '-o', join(out, 'b.qcow2'), '--format', 'qcow2', '--json']).stdout) as ImageJson;
    expect(b.sha256).toBe(a.sha256);
    expect(runTool('qemu-img', ['info', '--output=json', join(out, 'a.qcow2')])).toContain('"format": "qcow2"');
  });

  describe('bad input: an error, and nothing left behind', () => {
    const listing = (): string[] => readdirSync(out).sort();

    it('refuses a --size too small, naming the size needed', () => {
      const before = listing();
      const r = build([REF, '-o', join(out, 'small.img'), '--size', '8M']);
      expectArborError(r, 2, 'E_IMAGE_TOO_SMALL', '--size 8.0 MiB is too small: this image needs at least');
      const needed = /needs at least [\d.]+ MiB \((\d+) bytes\)/.exec(r.stderr)?.[1];
      expect(listing()).toEqual(before);
      // Exactly what it said is enough.
      expect(build([REF, '-o', join(out, 'exact.img'), '--size', String(needed)]).exitCode).toBe(0);
    });

    it.each([
      [['--bootloader', 'lilo'], 'E_IMAGE_BOOTLOADER_UNKNOWN', "unknown bootloader 'lilo'"],
      [['--root-fs', 'btrfs'], 'E_IMAGE_ROOT_FS_UNSUPPORTED', "root filesystem 'btrfs' is not supported"],
      [['--size', 'lots'], 'E_USAGE', '--size'],
    ])('exits 2 for %j', (flags, code, message) => {
      const before = listing();
      expectArborError(build([REF, '-o', join(out, 'x.img'), ...flags]), 2, code, message);
      expect(listing()).toEqual(before);
    });

    it('refuses --root-fs xfs to an unprivileged user, naming why and hinting at ext4', () => {
      const before = listing();
      const r = build([REF, '-o', join(out, 'x.img'), '--root-fs', 'xfs']);
      expectArborError(r, 1, 'E_IMAGE_ROOT_FS_NEEDS_ROOT', 'cannot build an xfs root filesystem: it needs root');
      expect(r.stderr).toContain('--root-fs ext4');
      expect(listing()).toEqual(before);
    });

    it('refuses an existing output without --force and leaves it as it was', () => {
      const existing = join(out, 'existing.img');
      writeFileSync(existing, 'mine');
      chownSync(existing, NOBODY.uid, NOBODY.gid);
      expectArborError(build([REF, '-o', existing]), 2, 'E_IMAGE_OUTPUT_EXISTS', existing);
      expect(readFileSync(existing, 'utf8')).toBe('mine');
    });

    it('refuses an output in a directory that does not exist', () => {
      expectArborError(build([REF, '-o', join(out, 'missing/x.img')]), 2, 'E_IMAGE_OUTPUT_DIR', 'missing/x.img');
    });

    it('removes its temporary directory when interrupted', async () => {
      const before = listing();
      const args = ['image', 'build', '--repo', repo, REF, '-o', join(out, 'interrupted.img')];
      const child = spawn(
        'setpriv',
        [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', process.execPath, ARBOR, ...args],
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      // setpriv execs node: the child's pid is the build's. Interrupt it once its directory exists.
      const started = Date.now();
      while (!readdirSync(out).some((name) => name.startsWith('.interrupted.img.arbor-image-'))) {
        if (Date.now() - started > 60_000) throw new Error('the build made no temporary directory within 60 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(143);
      expect(listing()).toEqual(before);
    });

    it('refuses a commit without a kernel', () => {
      const tree = join(tmp.path, 'nokernel');
      mkdirSync(tree);
      writeOsTree(tree, { version: '2', kernel: null });
      commitRootOwned(repo, 'os/nokernel', tree);
      sh(`chown -R ${NOBODY.uid}:${NOBODY.gid} '${repo}'`);
      const before = listing();
      expectArborError(build(['os/nokernel', '-o', join(out, 'nokernel.img')]), 1, 'E_DEPLOY_NO_KERNEL');
      expect(listing()).toEqual(before);
    });
  });
});

const HAVE_XFS =
  HAVE_TOOLS && ['mkfs.xfs', 'xfs_repair', 'losetup', 'mount'].every(hasCommand) && existsSync('/dev/loop-control');

describe.skipIf(!HAVE_XFS)('arbor image build --root-fs xfs (root, a loop device)', () => {
  const tmp = useTempDir('arbor-image-xfs-');
  let repo = '';
  let commit = '';

  /** Attaches the root partition of DISK read-only, runs FN with the loop device, detaches it. */
  const withRootLoop = <T>(disk: string, j: ImageJson, fn: (loop: string) => T): T => {
    const root = j.partitions.find((p) => p.name === 'root');
    if (!root) throw new Error('no root partition');
    const loop = runTool('losetup', [
      '--find',
      '--show',
      '--read-only',
      '--offset',
      String(root.start),
      '--sizelimit',
      String(root.size),
      disk,
    ]).trim();
    try {
      return fn(loop);
    } finally {
      runTool('losetup', ['--detach', loop]);
    }
  };

  beforeAll(() => {
    const tree = join(tmp.path, 'tree');
    mkdirSync(tree);
    writeOsTree(tree, {
      version: '1',
      etc: { shadow: { file: 'root:*:1::::::\n', mode: 0o000 } },
      files: {
        'usr/bin/su': { data: 'setuid\n', mode: 0o4755 },
        'usr/bin/tool': { data: 'a tool\n', mode: 0o2750 },
        'usr/lib/libx.so': { link: 'libx.so.1' },
      },
    });
    // An owner other than root and xattrs (a security.* one too), as the commit records them.
    chownSync(join(tree, 'usr/bin/tool'), 1234, 5678);
    chmodSync(join(tree, 'usr/bin/tool'), 0o2750); // chown cleared the setgid bit
    runTool('setfattr', ['-n', 'security.arbor-test', '-v', 'label', join(tree, 'usr/bin/tool')]);
    runTool('setfattr', ['-n', 'user.arbor-test', '-v', 'value', join(tree, 'usr/bin/tool')]);
    repo = join(tmp.path, 'repo');
    arbor('init', '--repo', repo, '--mode', 'bare-user');
    commit = arbor('commit', '--repo', repo, '-b', REF, '-s', REF, '--tree', `dir=${tree}`).trim();
  });

  it('makes a clean xfs root filesystem holding the deployment with its owners, modes, hardlinks and xattrs', () => {
    const disk = join(tmp.path, 'xfs.img');
    const r = runCli([
      'image',
      'build',
      '--repo',
      repo,
      REF,
      '-o',
      disk,
      '--root-fs',
      'xfs',
      '--bootloader',
      'grub-bios',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const j = JSON.parse(r.stdout) as ImageJson & { rootFs: string; stepSeconds: Record<string, number> };
    expect(j).toMatchObject({ rootFs: 'xfs', commit, deployment: { checksum: commit } });
    expect(Object.keys(j.stepSeconds)).toEqual(['pull', 'deploy', 'measure', 'root-fs', 'inodes', 'boot', 'digest']);
    expect(sha256Of(disk)).toBe(j.sha256);
    // No loop device is left attached to the image, nothing of the build next to it.
    expect(runTool('losetup', ['--associated', disk])).toBe('');
    expect(readdirSync(tmp.path).filter((name) => name.includes('arbor-image'))).toEqual([]);
    withRootLoop(disk, j, (loop) => {
      const probed = runTool('blkid', ['-o', 'export', loop]);
      expect(probed).toMatch(/^TYPE=xfs$/m);
      expect(probed).toContain(`\nUUID=${j.rootFsUuid.toLowerCase()}\n`);
      runTool('xfs_repair', ['-n', loop]); // exits non-zero on any problem
      const mnt = join(tmp.path, 'mnt');
      mkdirSync(mnt);
      runTool('mount', ['-t', 'xfs', '-o', 'ro,nouuid,norecovery', loop, mnt]);
      try {
        const d = join(mnt, j.deployment.path);
        expect(readFileSync(join(d, 'usr/bin/tool'), 'utf8')).toBe('a tool\n');
        expect(runTool('stat', ['-c', '%u:%g %a %h %Y', join(d, 'usr/bin/tool')]).trim()).toBe('1234:5678 2750 2 0');
        expect(runTool('stat', ['-c', '%u:%g %a', join(d, 'usr/bin/su')]).trim()).toBe('0:0 4755');
        expect(runTool('stat', ['-c', '%a', join(d, 'etc/shadow'), join(d, 'usr/etc/shadow')])).toBe('0\n0\n');
        expect(runTool('stat', ['-c', '%F', join(d, 'usr/lib/libx.so')]).trim()).toBe('symbolic link');
        // The deployment's file is its repository object: one inode, as `arbor admin deploy` makes it.
        const object = runTool('find', [join(mnt, 'arbor/repo/objects'), '-samefile', join(d, 'usr/bin/tool')]);
        expect(object.trim()).toMatch(/\.file$/);
        const xattrs = runTool('getfattr', ['--absolute-names', '-d', '-m', '-', join(d, 'usr/bin/tool')]);
        expect(xattrs).toContain('security.arbor-test="label"');
        expect(xattrs).toContain('user.arbor-test="value"');
        expect(xattrs).not.toContain('user.arbor.meta');
        expect(readFileSync(join(mnt, 'arbor/repo/config'), 'utf8')).toMatch(/^mode=bare$/m);
        expect(readFileSync(join(mnt, 'boot/loader/grub.cfg'), 'utf8')).toMatch(/^menuentry /m);
      } finally {
        runTool('umount', [mnt]);
      }
    });
  });

  it('unmounts, detaches and removes everything when filling the filesystem fails', () => {
    const out = join(tmp.path, 'failing');
    const bin = join(tmp.path, 'failing-bin');
    mkdirSync(out);
    mkdirSync(bin);
    // The copy into the mounted filesystem is the step that fails: a cp first on PATH that refuses.
    writeFileSync(join(bin, 'cp'), '#!/bin/sh\necho "cp: no space left on device" >&2\nexit 1\n', { mode: 0o755 });
    const disk = join(out, 'x.img');
    const r = runCli(['image', 'build', '--repo', repo, REF, '-o', disk, '--root-fs', 'xfs'], {
      env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    });
    expectArborError(
      r,
      1,
      'E_IMAGE_TOOL_FAILED',
      'cp exited 1: cp: no space left on device',
      'during: writing the root filesystem',
    );
    expect(readdirSync(out)).toEqual([]);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(out);
    expect(runTool('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'])).not.toContain(out);
  });
});
