// The QEMU boot harness on a sysroot laid out by hand as docs/deploy.md describes (two deployments
// of a real Debian kernel and busybox, B the default): it boots by direct kernel boot with the
// default entry's arguments, through systemd-boot under OVMF and through GRUB under SeaBIOS, and
// each time the booted system must report deployment B, a read-only /usr and the admin's /etc.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashBytes } from '../../src/common/hash.js';
import {
  BOOT_STATEROOT as STATEROOT,
  ETC_CHANGE,
  type ExpectedDeployment,
  HAVE_QEMU_BOOT_TOOLING,
  VAR_CONTENT,
  bootDefaultEntry,
  expectBootedDeployment,
  prepareBootTrees,
} from '../support/boot-check.js';
import {
  type BlsEntry,
  buildBiosGrubDisk,
  buildUefiDisk,
  compareBootEntries,
  listEsp,
  parseBlsEntry,
  readBootEntries,
  readDefaultBootEntry,
  readEspFile,
} from '../support/boot-image.js';
import {
  BOOT_END_MARKER,
  ETC_MARKER_FILE,
  VAR_MARKER_FILE,
  hasBootTreeTooling,
  parseBootMarkers,
} from '../support/boot-tree.js';
import { IS_ROOT, ROOT } from '../support/cli.js';
import { PREPARE_ROOT_SCRIPT, type TestKernel } from '../support/kernel.js';
import { bootBios, bootUefi } from '../support/qemu.js';
import { useTempDir } from '../support/temp.js';
import { hasCommand } from '../support/tool.js';

const BOOT_TEST_TIMEOUT_MS = 360_000; // one boot (300 s at most) plus building an image
const KARGS = 'root=LABEL=sysroot rw console=ttyS0 quiet panic=-1';

/** A made-up commit checksum: 64 hex digits derived from NAME. */
const fakeChecksum = (name: string): string => createHash('sha256').update(`arbor-boot-harness ${name}`).digest('hex');

/**
 * Lays out SYSROOT per docs/deploy.md: DEPLOYMENTS in boot order (default first), each a copy of
 * its boot tree with /etc made from /usr/etc plus ETC_CHANGE, sharing one kernel directory;
 * boot.0 links and loader.0 entries, boot/loader -> loader.0; the stateroot's var.
 */
function laySysroot(
  sysroot: string,
  trees: ReadonlyMap<string, string>,
  kernel: TestKernel,
  deployments: readonly ExpectedDeployment[],
): void {
  const deployDir = join(sysroot, 'arbor/deploy', STATEROOT, 'deploy');
  mkdirSync(join(sysroot, 'arbor/repo'), { recursive: true });
  mkdirSync(deployDir, { recursive: true });
  mkdirSync(join(sysroot, 'arbor/deploy', STATEROOT, 'var'));
  writeFileSync(join(sysroot, 'arbor/deploy', STATEROOT, VAR_MARKER_FILE), `${VAR_CONTENT}\n`);
  mkdirSync(join(sysroot, 'boot/loader.0/entries'), { recursive: true });
  symlinkSync('loader.0', join(sysroot, 'boot/loader'));

  const bootSerials = new Map<string, number>();
  deployments.forEach((d, index) => {
    const tree = trees.get(d.version);
    if (tree === undefined) throw new Error(`no tree for version ${d.version}`);
    const name = `${d.checksum}.${d.serial}`;
    const root = join(deployDir, name);
    cpSync(tree, root, { recursive: true, verbatimSymlinks: true });
    cpSync(join(root, 'usr/etc'), join(root, 'etc'), { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(root, ETC_MARKER_FILE), `${ETC_CHANGE}\n`);
    writeFileSync(join(deployDir, `${name}.origin`), `[origin]\nrefspec=${STATEROOT}:test/${d.version}\n`);

    const modules = join(root, 'usr/lib/modules', kernel.kver);
    const vmlinuz = readFileSync(join(modules, 'vmlinuz'));
    const initramfs = readFileSync(join(modules, 'initramfs.img'));
    const bootcsum = hashBytes(Buffer.concat([vmlinuz, initramfs]));
    const kernelDir = join(sysroot, 'boot/arbor', `${STATEROOT}-${bootcsum}`);
    mkdirSync(kernelDir, { recursive: true });
    copyFileSync(join(modules, 'vmlinuz'), join(kernelDir, 'vmlinuz'));
    copyFileSync(join(modules, 'initramfs.img'), join(kernelDir, 'initramfs.img'));

    // SERIAL in boot.N counts deployments sharing this BOOTCSUM, in boot order.
    const bootSerial = bootSerials.get(bootcsum) ?? 0;
    bootSerials.set(bootcsum, bootSerial + 1);
    const linkDir = join(sysroot, 'arbor/boot.0', STATEROOT, bootcsum);
    mkdirSync(linkDir, { recursive: true });
    symlinkSync(`../../../deploy/${STATEROOT}/deploy/${name}`, join(linkDir, String(bootSerial)));

    const fileIndex = deployments.length - 1 - index; // the default gets the highest file name
    writeFileSync(
      join(sysroot, 'boot/loader.0/entries', `arbor-${STATEROOT}-${fileIndex}.conf`),
      [
        `title Arbor Test OS ${d.version} (arbor:${index})`,
        `version ${d.version}`,
        `sort-key arbor-${STATEROOT}`,
        `linux /arbor/${STATEROOT}-${bootcsum}/vmlinuz`,
        `initrd /arbor/${STATEROOT}-${bootcsum}/initramfs.img`,
        `options ${KARGS} arbor=/arbor/boot.0/${STATEROOT}/${bootcsum}/${bootSerial}`,
        '',
      ].join('\n'),
    );
  });

  // GRUB reading the root partition sees /boot as a directory: BLS paths get a /boot prefix there,
  // and none when it reads a separate /boot partition.
  const entries = readBootEntries(join(sysroot, 'boot/loader/entries'));
  writeFileSync(join(sysroot, 'boot/loader.0/grub.cfg'), renderGrubCfg(entries, '/boot'));
  writeFileSync(join(sysroot, 'boot/loader.0', GRUB_CFG_BOOT_PARTITION), renderGrubCfg(entries, ''));
  mkdirSync(join(sysroot, 'boot/grub'));
  writeFileSync(join(sysroot, 'boot/grub/grub.cfg'), 'configfile /boot/loader/grub.cfg\n');
}

/** The grub.cfg for a separate /boot partition, beside loader.N/grub.cfg. */
const GRUB_CFG_BOOT_PARTITION = 'grub-boot-partition.cfg';

/** A minimal stand-in for the grub2 generator: one menuentry per BLS entry, the first the default. */
function renderGrubCfg(entries: readonly BlsEntry[], pathPrefix: string): string {
  const menu = entries.map((e) =>
    [
      `menuentry '${e.title ?? e.file}' {`,
      `  linux ${pathPrefix}${e.linux} ${e.options}`,
      ...e.initrd.map((i) => `  initrd ${pathPrefix}${i}`),
      '}',
    ].join('\n'),
  );
  return ['set timeout=0', 'set default=0', ...menu, ''].join('\n');
}

describe('initramfs and dracut scripts', () => {
  it.each([
    ['sh', 'data/initramfs/arbor-prepare-root'],
    ['sh', 'data/initramfs/busybox/init'],
    ['sh', 'data/dracut/50arbor/arbor-pre-pivot.sh'],
    ['bash', 'data/dracut/50arbor/module-setup.sh'],
  ])('%s -n accepts %s', (shell, path) => {
    const r = spawnSync(shell, ['-n', join(ROOT, path)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('defines check, depends and install in the dracut module, and installs a pre-pivot hook', () => {
    const script = `. "$1"; for f in check depends install; do [ "$(type -t $f)" = function ] || echo "missing $f"; done`;
    const r = spawnSync('bash', ['-c', script, 'bash', join(ROOT, 'data/dracut/50arbor/module-setup.sh')], {
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(readFileSync(join(ROOT, 'data/dracut/50arbor/module-setup.sh'), 'utf8')).toMatch(
      /inst_hook pre-pivot \d+ "\$moddir\/arbor-pre-pivot\.sh"/,
    );
  });
});

describe('boot entry order (the systemd-boot model the harness predicts the default with)', () => {
  const entry = (file: string, fields: string[] = []): ReturnType<typeof parseBlsEntry> =>
    parseBlsEntry(file, fields.join('\n'));
  const order = (...entries: ReturnType<typeof parseBlsEntry>[]): string[] =>
    entries.sort(compareBootEntries).map((e) => e.file);

  it('orders by file name, descending and version-aware, without sort-keys', () => {
    expect(order(entry('arbor-os-1.conf'), entry('arbor-os-10.conf'), entry('arbor-os-2.conf'))).toEqual([
      'arbor-os-10.conf',
      'arbor-os-2.conf',
      'arbor-os-1.conf',
    ]);
  });

  it('orders by version, descending, when both entries have the same sort-key', () => {
    const older = entry('arbor-os-1.conf', ['sort-key arbor-os', 'version 9']);
    const newer = entry('arbor-os-0.conf', ['sort-key arbor-os', 'version 10']);
    expect(order(older, newer)).toEqual(['arbor-os-0.conf', 'arbor-os-1.conf']);
  });

  it('puts entries with a sort-key before those without, and exhausted boot counters last', () => {
    const plain = entry('z.conf');
    const keyed = entry('a.conf', ['sort-key x']);
    const exhausted = entry('zz+0-3.conf', ['sort-key x']);
    const trying = entry('b+2-1.conf', ['sort-key x']);
    expect(order(plain, exhausted, keyed, trying)).toEqual(['b+2-1.conf', 'a.conf', 'z.conf', 'zz+0-3.conf']);
  });
});

// The mount logic without a VM: a private mount namespace on the host, with util-linux's mount
// (what dracut ships) and with busybox's (what the test initramfs ships).
describe.skipIf(!IS_ROOT || !hasCommand('unshare') || !hasBootTreeTooling())(
  'arbor-prepare-root in a mount namespace',
  () => {
    const tmp = useTempDir('arbor-prepare-root-');
    const checksum = fakeChecksum('ns');

    function run(
      mountTool: 'util-linux' | 'busybox',
      cmdline: string,
      sameTarget = false,
    ): { status: number | null; out: string } {
      const base = join(
        tmp.path,
        `${mountTool}-${sameTarget ? 'same' : 'split'}-${Math.random().toString(36).slice(2)}`,
      );
      const physical = join(base, 'sysroot');
      const deployment = join(physical, 'arbor/deploy/os/deploy', `${checksum}.0`);
      for (const dir of ['usr', 'var', 'sysroot', 'etc']) mkdirSync(join(deployment, dir), { recursive: true });
      mkdirSync(join(physical, 'arbor/deploy/os/var'), { recursive: true });
      writeFileSync(join(physical, 'arbor/deploy/os/var/kept'), 'var\n');
      mkdirSync(join(physical, 'arbor/boot.0/os/b00t'), { recursive: true });
      symlinkSync(`../../../deploy/os/deploy/${checksum}.0`, join(physical, 'arbor/boot.0/os/b00t/0'));
      mkdirSync(join(base, 'newroot'));
      const bin = join(base, 'bin');
      mkdirSync(bin);
      if (mountTool === 'busybox')
        for (const t of ['mount', 'readlink', 'mkdir', 'rmdir', 'cat']) symlinkSync('/usr/bin/busybox', join(bin, t));
      const target = sameTarget ? physical : join(base, 'newroot');
      // The physical root must be a mount point, as in an initramfs: bind it onto itself first.
      const script = [
        'set -e',
        `mount --make-rprivate /`,
        `mount --bind "${physical}" "${physical}"`,
        `PATH="${bin}:$PATH" ARBOR_CMDLINE="${cmdline}" sh "${PREPARE_ROOT_SCRIPT}" "${physical}" "${target}"`,
        `echo "etc: $(ls -d "${target}/etc")"`,
        `echo "var: $(cat "${target}/var/kept")"`,
        `touch "${target}/usr/probe" 2>/dev/null && echo "usr: rw" || echo "usr: ro"`,
        `echo "sysroot: $(ls "${target}/sysroot/arbor/deploy/os")"`,
        `touch "${target}/etc/probe" && echo "etc: rw"`,
      ].join('\n');
      const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { encoding: 'utf8' });
      return { status: r.status, out: r.stdout + r.stderr };
    }

    it.each([
      ['util-linux', false],
      ['util-linux', true],
      ['busybox', false],
      ['busybox', true],
    ] as const)(
      'with %s mount (target = physical root: %s) mounts the deployment, its var and a read-only /usr',
      (tool, same) => {
        const r = run(tool, `quiet arbor=/arbor/boot.0/os/b00t/0 rw`, same);
        expect(r.out).toContain(`deployment os/${checksum}.0 on`);
        expect(r.out).toContain('var: var');
        expect(r.out).toContain('usr: ro');
        expect(r.out).toContain('sysroot: deploy\nvar');
        expect(r.out).toContain('etc: rw');
        expect(r.status, r.out).toBe(0);
      },
    );

    it.each([
      ['no arbor= argument', 'quiet rw', /no arbor= kernel argument/],
      ['a relative path', 'arbor=arbor/boot.0/os/b00t/0', /not an absolute path/],
      ['a missing link', 'arbor=/arbor/boot.0/os/b00t/7', /not a directory/],
      ['the stateroot var', 'arbor=/arbor/deploy/os/var', /not a deployment/],
      ['a path outside the deployments', 'arbor=/arbor/boot.0', /outside/],
    ])('fails with an ARBOR-FAIL line for %s', (_name, cmdline, message) => {
      const r = run('busybox', cmdline);
      expect(r.status).not.toBe(0);
      expect(r.out).toMatch(/^ARBOR-FAIL arbor-prepare-root: /m);
      expect(r.out).toMatch(message);
    });
  },
);

describe.skipIf(!HAVE_QEMU_BOOT_TOOLING)('booting a hand-laid sysroot in QEMU (TCG)', () => {
  const tmp = useTempDir('arbor-boot-');
  const A: ExpectedDeployment = { version: 'A', checksum: fakeChecksum('A'), serial: 0 };
  const B: ExpectedDeployment = { version: 'B', checksum: fakeChecksum('B'), serial: 0 };
  let sysroot = '';

  beforeAll(async () => {
    const { kernel, trees } = await prepareBootTrees(tmp.path, ['A', 'B']);
    sysroot = join(tmp.path, 'sysroot');
    mkdirSync(sysroot);
    chmodSync(sysroot, 0o755);
    laySysroot(sysroot, trees, kernel, [B, A]);
  }, 600_000);

  it(
    'direct kernel boot with the default entry boots deployment B with a read-only /usr and the admin /etc',
    async () => {
      expect(readDefaultBootEntry(sysroot).title).toContain('Arbor Test OS B');
      const booted = await bootDefaultEntry(sysroot, join(tmp.path, 'root.img'));
      expect(expectBootedDeployment(booted.result, B)).toBe(booted.options);
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  it(
    'the initramfs powers off with an ARBOR-FAIL line when arbor= names no deployment',
    async () => {
      const append = readDefaultBootEntry(sysroot).options.replace(/arbor=\S+/, `arbor=/arbor/deploy/${STATEROOT}/var`);
      const disk = join(tmp.path, 'root.img'); // the test before made it, unless filtered out
      const { result } = await bootDefaultEntry(sysroot, disk, { append, untilMarker: false });
      rmSync(disk); // images are 60–130 MB each; the temp dir would hold them all until the end // images are 60–130 MB each; the temp dir would hold them all until the end
      const markers = parseBootMarkers(result.output);
      expect(result.timedOut, result.output).toBe(false);
      expect(markers.failure, result.output).toMatch(/^ARBOR-FAIL arbor-prepare-root: .*not a deployment/);
      expect(markers.done).toBe(false);
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  it(
    'systemd-boot under OVMF boots the default BLS entry: deployment B',
    async () => {
      const disk = join(tmp.path, 'uefi.img');
      buildUefiDisk(sysroot, disk);
      expect(listEsp(disk, '/loader/entries')).toEqual([`arbor-${STATEROOT}-0.conf`, `arbor-${STATEROOT}-1.conf`]);
      expect(readEspFile(disk, `/loader/entries/arbor-${STATEROOT}-1.conf`).toString()).toContain('version B');
      const result = await bootUefi(disk, { marker: BOOT_END_MARKER });
      rmSync(disk);
      // systemd-boot, not some fallback, started it: it names the initrd it loaded on the command line.
      const cmdline = expectBootedDeployment(result, B);
      expect(cmdline).toContain(readDefaultBootEntry(sysroot).options);
      expect(cmdline).toMatch(/(^| )initrd=\\arbor\\/);
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  it(
    'GRUB under SeaBIOS boots the first menu entry of the grub.cfg: deployment B',
    async () => {
      const disk = join(tmp.path, 'bios.img');
      buildBiosGrubDisk(sysroot, disk);
      const result = await bootBios(disk, { marker: BOOT_END_MARKER });
      rmSync(disk);
      const cmdline = expectBootedDeployment(result, B);
      expect(cmdline).toContain(readDefaultBootEntry(sysroot).options);
      expect(cmdline).toMatch(/^BOOT_IMAGE=\/boot\/arbor\//);
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  it(
    'GRUB reading a separate /boot partition boots deployment B',
    async () => {
      const disk = join(tmp.path, 'bios-boot-partition.img');
      buildBiosGrubDisk(sysroot, disk, {
        separateBootPartition: true,
        grubCfgPath: `/loader/${GRUB_CFG_BOOT_PARTITION}`,
      });
      const result = await bootBios(disk, { marker: BOOT_END_MARKER });
      rmSync(disk);
      const cmdline = expectBootedDeployment(result, B);
      expect(cmdline).toMatch(/^BOOT_IMAGE=\/arbor\//);
    },
    BOOT_TEST_TIMEOUT_MS,
  );

  // docs/deploy.md gives every entry a sort-key; systemd-boot then orders by `version`, not by
  // file name. After a rollback the default (highest file name) may carry the older version:
  // readBootEntries must predict what systemd-boot really boots.
  it(
    'systemd-boot boots the highest version when every entry has a sort-key, whatever the file names say',
    async () => {
      const entriesDir = join(tmp.path, 'swapped-entries');
      mkdirSync(entriesDir);
      const real = join(sysroot, 'boot/loader/entries');
      copyFileSync(join(real, `arbor-${STATEROOT}-0.conf`), join(entriesDir, `arbor-${STATEROOT}-1.conf`));
      copyFileSync(join(real, `arbor-${STATEROOT}-1.conf`), join(entriesDir, `arbor-${STATEROOT}-0.conf`));
      const predicted = readBootEntries(entriesDir)[0];
      expect(predicted?.file).toBe(`arbor-${STATEROOT}-0.conf`);
      expect(predicted?.version).toBe('B');
      const disk = join(tmp.path, 'uefi-swapped.img');
      buildUefiDisk(sysroot, disk, { entriesDir });
      const result = await bootUefi(disk, { marker: BOOT_END_MARKER });
      rmSync(disk);
      expectBootedDeployment(result, B);
    },
    BOOT_TEST_TIMEOUT_MS,
  );
});
