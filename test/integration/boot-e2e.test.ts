// Issue 6 end to end, with the real CLI: two commits (A, B) of a tree holding Debian's kernel and
// busybox, `arbor admin deploy` A, an admin change in A's /etc, `arbor upgrade` to B, then disk
// images of the sysroot booted in QEMU (TCG) three ways: direct kernel boot with the arguments of
// the generated default entry, systemd-boot under OVMF reading the generated BLS entries, and GRUB
// under SeaBIOS reading the generated grub.cfg. Each time the booted system must report B, a
// read-only /usr and the admin's /etc (carried over by the /etc merge). Then `arbor rollback` and
// the same three boots must report A. Gated on the console markers with generous timeouts only.
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatGrubenv, staticGrubCfg } from '../../src/bootloader/index.js';
import { present } from '../../src/common/errors.js';
import {
  BOOT_STATEROOT as STATEROOT,
  ETC_CHANGE,
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
  listEsp,
  readDefaultBootEntry,
  readEspFile,
} from '../support/boot-image.js';
import { BOOT_END_MARKER, ETC_MARKER_FILE, VAR_MARKER_FILE } from '../support/boot-tree.js';
import { IS_ROOT, arbor } from '../support/cli.js';
import { bootBios, bootUefi } from '../support/qemu.js';
import { useTempDir } from '../support/temp.js';

const BOOT_TEST_TIMEOUT_MS = 420_000; // one boot (300 s at most) plus building its image on a busy machine
const SETUP_TIMEOUT_MS = 900_000; // a first kernel download, two commits, deploy and upgrade
const REF = 'os/x86_64/test';
const KARGS = ['root=LABEL=sysroot', 'rw', 'console=ttyS0', 'quiet', 'panic=-1'];
// Root: the sysroot's repository is bare (root-owned checkouts), as on a real host.
const HAVE_BOOT_TOOLING = IS_ROOT && HAVE_QEMU_BOOT_TOOLING;

interface Commit {
  version: string;
  checksum: string;
  serial: number;
}

interface StatusDeployment {
  index: number;
  role: string;
  stateroot: string;
  checksum: string;
  serial: number;
  version: string | null;
  origin: string | null;
  kargs: string[];
  bootcsum: string;
}

const status = (sysroot: string): StatusDeployment[] =>
  (JSON.parse(arbor('status', '--sysroot', sysroot, '--json')) as { deployments: StatusDeployment[] }).deployments;

const deploymentDir = (sysroot: string, checksum: string): string =>
  join(sysroot, 'arbor/deploy', STATEROOT, 'deploy', `${checksum}.0`);

/** The `menuentry` blocks of a generated grub.cfg: title, linux line (path and arguments), initrd. */
function grubMenuEntries(cfg: string): { title: string; linux: string; args: string; initrd: string | null }[] {
  const out: { title: string; linux: string; args: string; initrd: string | null }[] = [];
  for (const m of cfg.matchAll(/^menuentry '([^']*)' \{\n([\s\S]*?)^\}$/gm)) {
    const body = m[2] as string;
    const linux = /^\s*linux (\S+) ?(.*)$/m.exec(body);
    out.push({
      title: m[1] as string,
      linux: linux?.[1] ?? '',
      args: linux?.[2] ?? '',
      initrd: /^\s*initrd (\S+)$/m.exec(body)?.[1] ?? null,
    });
  }
  return out;
}

/**
 * What the generated configuration says before any boot: status lists EXPECTED then OTHER, the
 * default BLS entry's arbor= resolves to EXPECTED's deployment, and the generated grub.cfg boots
 * the same kernel, initrd and arguments first. Returns the default entry.
 */
function expectGeneratedConfig(sysroot: string, expected: Commit, other: Commit): BlsEntry {
  const deployments = status(sysroot);
  expect(deployments.map((d) => [d.role, d.checksum, d.version])).toEqual([
    ['default', expected.checksum, expected.version],
    ['rollback', other.checksum, other.version],
  ]);
  for (const d of deployments) expect(d.kargs).toEqual(KARGS);

  const entry = readDefaultBootEntry(sysroot);
  const arg = /(?:^| )arbor=(\S+)/.exec(entry.options)?.[1];
  expect(arg, entry.options).toBeDefined();
  expect(realpathSync(join(sysroot, arg as string))).toBe(realpathSync(deploymentDir(sysroot, expected.checksum)));
  expect(entry.options).toBe([...KARGS, `arbor=${arg}`].join(' '));
  expect(entry.title).toContain(`Arbor Test OS ${expected.version}`);

  const menu = grubMenuEntries(readFileSync(join(sysroot, 'boot/loader/grub.cfg'), 'utf8'));
  expect(menu).toHaveLength(2);
  // GRUB reads the root partition, where /boot is a directory: every path carries /boot.
  expect(menu[0]).toEqual({
    title: entry.title,
    linux: `/boot${entry.linux}`,
    args: entry.options,
    initrd: `/boot${entry.initrd[0]}`,
  });
  expect(menu[1]?.title).toContain(`Arbor Test OS ${other.version}`);
  return entry;
}

/** Direct kernel boot: the default entry's kernel, initrd and options, the sysroot as the only disk. */
async function bootDefaultEntryDirectly(sysroot: string, work: string, expected: Commit): Promise<void> {
  const disk = join(work, `root-${expected.version}.img`);
  const booted = await bootDefaultEntry(sysroot, disk);
  rmSync(disk);
  expect(expectBootedDeployment(booted.result, expected)).toBe(booted.options);
}

/**
 * systemd-boot under OVMF on an ESP holding what Arbor itself wrote there (`[sysroot] esp=/efi`:
 * the entries of the current generation and the kernels they name).
 */
async function bootSystemdBoot(sysroot: string, work: string, expected: Commit): Promise<void> {
  const disk = join(work, `uefi-${expected.version}.img`);
  buildUefiDisk(sysroot, disk, { espTree: join(sysroot, 'efi') });
  const entries = listEsp(disk, '/loader/entries');
  expect(entries).toHaveLength(2);
  expect(entries[0]).toMatch(new RegExp(`^arbor-${STATEROOT}-g\\d+-0\\.conf$`));
  expect(entries[1]).toBe((entries[0] as string).replace(/-0\.conf$/, '-1.conf'));
  // The default entry has the highest file name and version (docs/deploy.md "Boot entries").
  expect(readEspFile(disk, `/loader/entries/${entries[1]}`).toString()).toMatch(
    new RegExp(`^title Arbor Test OS ${expected.version} `, 'm'),
  );
  const result = await bootUefi(disk, { marker: BOOT_END_MARKER });
  rmSync(disk);
  const cmdline = expectBootedDeployment(result, expected);
  // systemd-boot, not some fallback, started it: it names the initrd it loaded on the command line.
  expect(cmdline).toContain(readDefaultBootEntry(sysroot).options);
  expect(cmdline).toMatch(/(^| )initrd=\\arbor\\/);
}

/** GRUB under SeaBIOS: boot/grub/grub.cfg (installed once) runs the generated boot/loader/grub.cfg. */
async function bootGrub(sysroot: string, work: string, expected: Commit): Promise<void> {
  const disk = join(work, `bios-${expected.version}.img`);
  buildBiosGrubDisk(sysroot, disk);
  const result = await bootBios(disk, { marker: BOOT_END_MARKER });
  rmSync(disk);
  const cmdline = expectBootedDeployment(result, expected);
  const entry = readDefaultBootEntry(sysroot);
  expect(cmdline).toBe(`BOOT_IMAGE=/boot${entry.linux} ${entry.options}`);
}

describe.skipIf(!HAVE_BOOT_TOOLING)('arbor deploy, upgrade and rollback, booted in QEMU (TCG)', () => {
  const tmp = useTempDir('arbor-boot-e2e-');
  let sysroot = '';
  const A: Commit = { version: 'A', checksum: '', serial: 0 };
  const B: Commit = { version: 'B', checksum: '', serial: 0 };

  beforeAll(async () => {
    const { trees } = await prepareBootTrees(tmp.path, ['A', 'B']);

    sysroot = join(tmp.path, 'sysroot');
    arbor('admin', 'init-fs', sysroot);
    chmodSync(sysroot, 0o755);
    arbor('admin', 'os-init', '--sysroot', sysroot, STATEROOT);
    // What a bootloader installation writes once: GRUB's static grub.cfg that runs the boot set's
    // own (its presence makes arbor generate boot/loader.N/grub.cfg) and a grubenv.
    mkdirSync(join(sysroot, 'boot/grub'));
    writeFileSync(join(sysroot, 'boot/grub/grub.cfg'), staticGrubCfg('/boot'));
    writeFileSync(join(sysroot, 'boot/grub/grubenv'), formatGrubenv());
    writeFileSync(join(sysroot, 'arbor/deploy', STATEROOT, VAR_MARKER_FILE), `${VAR_CONTENT}\n`);
    // The ESP systemd-boot reads, kept by arbor itself (built into the UEFI disk's first partition).
    mkdirSync(join(sysroot, 'efi'));
    const config = join(sysroot, 'arbor/repo/config');
    writeFileSync(config, `${readFileSync(config, 'utf8')}\n[sysroot]\nesp=/efi\n`);

    const commit = (c: Commit): void => {
      const tree = present(trees.get(c.version), `the tree of ${c.version}`);
      c.checksum = arbor(
        'commit',
        '--repo',
        join(sysroot, 'arbor/repo'),
        '-b',
        REF,
        '-s',
        `Test OS ${c.version}`,
        '--tree',
        `dir=${tree}`,
        '--owner-uid',
        '0',
        '--owner-gid',
        '0',
        '--add-metadata',
        `version=${c.version}`,
      );
      expect(c.checksum).toMatch(/^[0-9a-f]{64}$/);
      rmSync(tree, { recursive: true });
    };

    commit(A);
    arbor(
      'admin',
      'deploy',
      '--sysroot',
      sysroot,
      '--stateroot',
      STATEROOT,
      ...KARGS.flatMap((k) => ['--karg', k]),
      REF,
    );
    expect(status(sysroot).map((d) => d.checksum)).toEqual([A.checksum]);
    // The admin's change, made in the deployment of A before the upgrade.
    writeFileSync(join(deploymentDir(sysroot, A.checksum), ETC_MARKER_FILE), `${ETC_CHANGE}\n`);

    commit(B);
    expect(arbor('upgrade', '--sysroot', sysroot)).toContain(`deployed ${B.checksum}.0`);
  }, SETUP_TIMEOUT_MS);

  describe('after the upgrade to B', () => {
    it('generates entries and a grub.cfg that boot B first, and B has the admin /etc by the merge', () => {
      expectGeneratedConfig(sysroot, B, A);
      const deployment = deploymentDir(sysroot, B.checksum);
      expect(existsSync(join(deployment, 'usr', ETC_MARKER_FILE))).toBe(false); // not in the tree: the merge carried it
      expect(readFileSync(join(deployment, ETC_MARKER_FILE), 'utf8')).toBe(`${ETC_CHANGE}\n`);
      expect(readFileSync(join(sysroot, 'boot/grub/grub.cfg'), 'utf8')).toContain('configfile /boot/loader/grub.cfg');
    });

    it(
      'direct kernel boot with the default entry arguments boots B',
      () => bootDefaultEntryDirectly(sysroot, tmp.path, B),
      BOOT_TEST_TIMEOUT_MS,
    );
    it(
      'systemd-boot under OVMF reading the entries arbor wrote on the ESP boots B',
      () => bootSystemdBoot(sysroot, tmp.path, B),
      BOOT_TEST_TIMEOUT_MS,
    );
    it(
      'GRUB under SeaBIOS reading the generated grub.cfg boots B',
      () => bootGrub(sysroot, tmp.path, B),
      BOOT_TEST_TIMEOUT_MS,
    );
  });

  describe('after arbor rollback', () => {
    beforeAll(() => {
      expect(arbor('rollback', '--sysroot', sysroot)).toContain(`default is now ${STATEROOT} ${A.checksum}.0`);
    });

    it('generates entries and a grub.cfg that boot A first', () => {
      expectGeneratedConfig(sysroot, A, B);
    });

    it(
      'direct kernel boot with the default entry arguments boots A',
      () => bootDefaultEntryDirectly(sysroot, tmp.path, A),
      BOOT_TEST_TIMEOUT_MS,
    );
    it(
      'systemd-boot under OVMF reading the entries arbor wrote on the ESP boots A',
      () => bootSystemdBoot(sysroot, tmp.path, A),
      BOOT_TEST_TIMEOUT_MS,
    );
    it(
      'GRUB under SeaBIOS reading the generated grub.cfg boots A',
      () => bootGrub(sysroot, tmp.path, A),
      BOOT_TEST_TIMEOUT_MS,
    );
  });
});
