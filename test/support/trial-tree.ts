// Boot trees for trial-boot tests (issue 7): a writeBootTree tree whose /sbin/init runs Arbor's
// data/health/arbor-health the way arbor-health.service would (the ESP mounted at /efi when the
// disk has one, the physical root at /sysroot), with a health check that passes or fails, or an
// init that dies before any check (a kernel panic). Plus the disk-side helpers those tests need:
// Debian's FAT modules for the guest, and the root partition of a disk image mounted on the host.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { writeBootTree } from './boot-tree.js';
import { ROOT } from './cli.js';
import { TEST_CACHE_DIR, type TestKernel } from './kernel.js';
import { runTool } from './tool.js';

/** Arbor's boot-time health runner, shipped in every trial tree as /usr/lib/arbor/arbor-health. */
export const ARBOR_HEALTH_SCRIPT = join(ROOT, 'data/health/arbor-health');
/** The health check every trial tree carries (healthy and failing-check trees). */
const HEALTH_CHECK_NAME = '10-service';
export const HEALTH_CHECK_PATH = `/usr/lib/arbor/health.d/${HEALTH_CHECK_NAME}`;
/** What the failing check prints: the reason `arbor status` must report. */
export const FAILING_CHECK_OUTPUT = 'service did not answer on port 8080: connection refused';

/**
 * The modules a guest needs: vfat and the code pages to mount the FAT ESP (Debian builds them as
 * modules), and the i6300esb watchdog (with the watchdog core) that ends a hung trial.
 */
const FAT_MODULES = ['vfat', 'nls_cp437', 'nls_utf8', 'nls_iso8859-1', 'nls_ascii', 'i6300esb'];
/** Seconds the hung init's watchdog waits (per stage of the i6300esb: about twice this in all). */
const WATCHDOG_HEARTBEAT_S = 5;

export interface FatModules {
  /** Laid out like /lib/modules/KVER. */
  readonly dir: string;
  /** Module files relative to dir, in insmod order. */
  readonly loadOrder: readonly string[];
}

/**
 * Debian's fat, vfat and NLS modules for KERNEL (the test kernel's cache holds only the boot
 * modules): `apt-get download` of the same kernel package once, kept next to the kernel cache.
 */
export function fetchFatModules(kernel: TestKernel): FatModules {
  const dir = join(TEST_CACHE_DIR, 'kernel', `${kernel.kver}-guest-modules`);
  const read = (): FatModules | null => {
    const order = join(dir, 'load-order');
    if (!existsSync(order)) return null;
    return {
      dir: join(dir, 'modules'),
      loadOrder: readFileSync(order, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    };
  };
  const cached = read();
  if (cached) return cached;
  mkdirSync(dirname(dir), { recursive: true });
  const work = mkdtempSync(join(dirname(dir), 'fetch-fat-'));
  try {
    const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
    runTool('apt-get', ['download', '-q', ...sandbox, `linux-image-${kernel.kver}`], { cwd: work });
    const deb = runTool('bash', ['-c', 'ls *.deb'], { cwd: work }).trim().split('\n')[0] as string;
    const unpacked = join(work, 'x');
    mkdirSync(unpacked);
    runTool('bash', [
      '-c',
      'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./lib/modules/*/modules.*" "./lib/modules/*/kernel/fs/fat/*" "./lib/modules/*/kernel/fs/nls/*" "./lib/modules/*/kernel/drivers/watchdog/*"',
      'bash',
      join(work, deb),
      unpacked,
    ]);
    runTool('depmod', ['-b', unpacked, kernel.kver]);
    const shown = runTool('modprobe', ['-d', unpacked, '-S', kernel.kver, '-a', '--show-depends', ...FAT_MODULES]);
    const moduleRoot = `${join(unpacked, 'lib/modules', kernel.kver)}/`;
    const loadOrder: string[] = [];
    for (const m of shown.matchAll(/^insmod (\S+)/gm)) {
      const path = m[1] as string;
      if (!path.startsWith(moduleRoot) || !path.endsWith('.ko'))
        throw new Error(`modprobe named '${path}', not a plain .ko under ${moduleRoot}`);
      const relative = path.slice(moduleRoot.length);
      if (!loadOrder.includes(relative)) loadOrder.push(relative);
    }
    const out = join(work, 'out');
    for (const relative of loadOrder) {
      mkdirSync(dirname(join(out, 'modules', relative)), { recursive: true });
      copyFileSync(moduleRoot + relative, join(out, 'modules', relative));
    }
    writeFileSync(join(out, 'load-order'), loadOrder.map((l) => `${l}\n`).join(''));
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const fetched = read();
  if (fetched === null) throw new Error(`FAT module cache ${dir} incomplete right after the fetch`);
  return fetched;
}

/**
 * healthy: its check passes; failing-check: its check fails; panic: init exits before any check;
 * hang: init arms the watchdog and hangs before any check (qemu's i6300esb ends the boot).
 */
export type TrialBehaviour = 'healthy' | 'failing-check' | 'panic' | 'hang';

export interface TrialTreeOptions {
  kernel: TestKernel;
  initramfsPath: string;
  version: string;
  behaviour: TrialBehaviour;
  fat: FatModules;
}

/**
 * The trial init: the boot tree's markers (ARBOR-VERSION, ARBOR-CMDLINE, ARBOR-BOOTED), then (panic)
 * ARBOR-PANIC and exit, which panics the kernel; the guest modules; (hang) ARBOR-HANG, the watchdog
 * opened and never fed; else the ESP mounted at /efi if there is one,
 * what the bootloader left (ARBOR-ESP-ENTRIES, ARBOR-SYSROOT-ENTRIES, ARBOR-GRUBENV), arbor-health
 * (which prints ARBOR-HEALTH … and reboots itself when the trial failed), ARBOR-HEALTH-EXIT,
 * ARBOR-DONE, poweroff.
 */
function renderTrialInit(version: string, behaviour: TrialBehaviour, kver: string): string {
  // The pause lets the serial driver send what init wrote before the panic stops its interrupts:
  // on a loaded CI machine the markers were cut off mid-line without it.
  const dies = behaviour === 'panic' ? 'echo "ARBOR-PANIC init exits before any health check"\nsleep 1\nexit 1\n' : '';
  // Opening /dev/watchdog starts it; nothing writes to it again.
  const hangs =
    behaviour === 'hang'
      ? 'echo "ARBOR-HANG init hangs before any health check, the watchdog armed"\nexec 3>/dev/watchdog\nwhile :; do sleep 3600; done\n'
      : '';
  return `#!/bin/sh
# Arbor trial-boot test init (test/support/trial-tree.ts).
export PATH=/usr/bin:/usr/sbin
[ -e /proc/cmdline ] || mount -t proc proc /proc
echo "ARBOR-VERSION=${version}"
echo "ARBOR-CMDLINE $(cat /proc/cmdline)"
arg=
set -f
for word in $(cat /proc/cmdline); do
  case $word in arbor=*) arg=\${word#arbor=} ;; esac
done
set +f
deployment=$(readlink -f "/sysroot$arg")
name=\${deployment##*/}
echo "ARBOR-BOOTED commit=\${name%.*} serial=\${name##*.}"
${dies}[ -d /sys/class ] || mount -t sysfs sysfs /sys
while read -r module; do
  case $module in */i6300esb.ko) param=heartbeat=${WATCHDOG_HEARTBEAT_S} ;; *) param= ;; esac
  insmod "/usr/lib/modules/${kver}/$module" $param 2>/dev/null || echo "trial-init: insmod $module failed"
done </usr/lib/arbor-test/fat-modules
${hangs}esp=
for try in 1 2 3 4 5 6 7 8 9 10; do
  esp=$(findfs LABEL=ESP 2>/dev/null) && break
  [ -b /dev/vda2 ] && break # the disk is there, without an ESP
  sleep 0.2
done
if [ -n "$esp" ] && mount -t vfat -o rw "$esp" /efi; then echo "ARBOR-ESP $esp"; else echo "ARBOR-ESP none"; fi
echo "ARBOR-ESP-ENTRIES $(ls /efi/loader/entries 2>/dev/null | tr '\\n' ' ')"
echo "ARBOR-SYSROOT-ENTRIES $(ls /sysroot/boot/loader/entries | tr '\\n' ' ')"
echo "ARBOR-GRUBENV $(grep '^arbor_' /sysroot/boot/grub/grubenv 2>/dev/null | tr '\\n' ' ')"
/usr/lib/arbor/arbor-health
echo "ARBOR-HEALTH-EXIT $?"
sync
umount /efi 2>/dev/null
echo "ARBOR-DONE"
poweroff -f
`;
}

function renderCheck(behaviour: TrialBehaviour): string {
  return behaviour === 'failing-check'
    ? `#!/bin/sh\necho "checking the service"\necho "${FAILING_CHECK_OUTPUT}"\nexit 1\n`
    : '#!/bin/sh\necho "service answers on port 8080"\nexit 0\n';
}

/** Writes a trial tree into DIR (existing, empty): writeBootTree plus the trial init, arbor-health, the check and the FAT modules. */
export function writeTrialTree(dir: string, options: TrialTreeOptions): void {
  const { kernel, fat } = options;
  writeBootTree(dir, { kernel, initramfsPath: options.initramfsPath, version: options.version });
  writeFileSync(join(dir, 'usr/sbin/init'), renderTrialInit(options.version, options.behaviour, kernel.kver), {
    mode: 0o755,
  });
  chmodSync(join(dir, 'usr/sbin/init'), 0o755);
  mkdirSync(join(dir, 'efi'));
  mkdirSync(join(dir, 'usr/lib/arbor/health.d'), { recursive: true });
  mkdirSync(join(dir, 'usr/lib/arbor-test'), { recursive: true });
  copyFileSync(ARBOR_HEALTH_SCRIPT, join(dir, 'usr/lib/arbor/arbor-health'));
  chmodSync(join(dir, 'usr/lib/arbor/arbor-health'), 0o755);
  writeFileSync(join(dir, 'usr/lib/arbor/health.d', HEALTH_CHECK_NAME), renderCheck(options.behaviour), {
    mode: 0o755,
  });
  for (const relative of fat.loadOrder) {
    const target = join(dir, 'usr/lib/modules', kernel.kver, relative);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(fat.dir, relative), target);
  }
  writeFileSync(join(dir, 'usr/lib/arbor-test/fat-modules'), fat.loadOrder.map((l) => `${l}\n`).join(''));
}

/** What one boot of a trial tree reported (see renderTrialInit). */
export interface TrialBootMarkers {
  version: string | null;
  cmdline: string | null;
  commit: string | null;
  serial: string | null;
  panicked: boolean;
  /** The init armed the watchdog and hung (hang trees). */
  hung: boolean;
  esp: string | null;
  espEntries: string[] | null;
  sysrootEntries: string[] | null;
  /** arbor_* variables of grubenv as the booted system found them (before arbor-health). */
  grubenv: Map<string, string> | null;
  /** The ARBOR-HEALTH line's verb (blessed, bless-failed, failed, not-on-trial) and the rest. */
  health: { verb: string; rest: string } | null;
  /** `ARBOR-HEALTH fallback from DEPLOYMENT tries-used=N` lines. */
  fallbacks: string[];
  healthExit: number | null;
  done: boolean;
  failure: string | null;
}

export function parseTrialMarkers(output: string): TrialBootMarkers {
  const text = output.replaceAll('\r', '');
  const one = (re: RegExp): string | null => re.exec(text)?.[1] ?? null;
  const list = (re: RegExp): string[] | null => {
    const v = one(re);
    return v === null ? null : v.split(/\s+/).filter((s) => s !== '');
  };
  const grub = one(/^ARBOR-GRUBENV ?(.*)$/m);
  const health = /^ARBOR-HEALTH (blessed|bless-failed|failed|not-on-trial) ?(.*)$/m.exec(text);
  const exit = one(/^ARBOR-HEALTH-EXIT (\d+)$/m);
  return {
    version: one(/^ARBOR-VERSION=(\S+)$/m),
    cmdline: one(/^ARBOR-CMDLINE (.*)$/m),
    commit: one(/^ARBOR-BOOTED commit=(\S*) /m),
    serial: one(/^ARBOR-BOOTED commit=\S* serial=(\S*)$/m),
    panicked: /^ARBOR-PANIC /m.test(text) && /Kernel panic/.test(text),
    hung: /^ARBOR-HANG /m.test(text),
    esp: one(/^ARBOR-ESP (\S+)$/m),
    espEntries: list(/^ARBOR-ESP-ENTRIES ?(.*)$/m),
    sysrootEntries: list(/^ARBOR-SYSROOT-ENTRIES ?(.*)$/m),
    grubenv:
      grub === null
        ? null
        : new Map(
            grub
              .split(/\s+/)
              .filter((s) => s.includes('='))
              .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string]),
          ),
    health: health ? { verb: health[1] as string, rest: health[2] as string } : null,
    fallbacks: [...text.matchAll(/^ARBOR-HEALTH fallback from (.*)$/gm)].map((m) => m[1] as string),
    healthExit: exit === null ? null : Number(exit),
    done: /^ARBOR-DONE$/m.test(text),
    failure: one(/(ARBOR-FAIL.*)$/m),
  };
}

/**
 * The end of a trial boot, whichever way it goes: the init finished, the initramfs gave up, or the
 * guest is going down (arbor-health's reboot, a panic): qemu exits by itself then (-no-reboot).
 */
export const TRIAL_END_MARKER = /^ARBOR-DONE\r?$|ARBOR-FAIL.*\n/m;

// ---------------------------------------------------------------------------------------------
// The root partition of a disk image, on the host

/** Byte offset and size of the GPT partition named NAME in DISK (sfdisk -J). */
export function partitionOf(disk: string, name: string): { offset: number; size: number } {
  const table = JSON.parse(runTool('sfdisk', ['-J', disk])) as {
    partitiontable: { sectorsize?: number; partitions: { start: number; size: number; name?: string }[] };
  };
  const sector = table.partitiontable.sectorsize ?? 512;
  const p = table.partitiontable.partitions.find((x) => x.name === name);
  if (p === undefined) throw new Error(`${disk} has no partition named '${name}'`);
  return { offset: p.start * sector, size: p.size * sector };
}

/**
 * Runs FN with the partition named NAME (default `sysroot`) of DISK mounted at a fresh directory
 * (read-only unless `writable`), then unmounts it (which flushes every write to DISK). The loop
 * device is writable either way: a read-only mount of a journaled filesystem a guest left without
 * unmounting replays the journal first, as the next boot would (a read-only loop device would
 * refuse the mount).
 */
export async function withPartitionMounted<T>(
  disk: string,
  fn: (mountpoint: string) => T | Promise<T>,
  options: { writable?: boolean; name?: string } = {},
): Promise<T> {
  const { offset, size } = partitionOf(disk, options.name ?? 'sysroot');
  const device = runTool('losetup', [
    '--find',
    '--show',
    '--offset',
    String(offset),
    '--sizelimit',
    String(size),
    disk,
  ]).trim();
  const mountpoint = mkdtempSync(join(dirname(disk), '.mnt-'));
  try {
    runTool('mount', ['-t', 'ext4', '-o', options.writable ? 'rw' : 'ro', device, mountpoint]);
  } catch (error) {
    rmSync(mountpoint, { recursive: true, force: true });
    spawnSync('losetup', ['--detach', device]);
    throw error;
  }
  // A lazy unmount would return before the loop device let go of the image.
  const unmount = (): string | null => {
    const r = spawnSync('umount', [mountpoint], { encoding: 'utf8' });
    if (r.status !== 0) return `umount ${mountpoint}: ${r.stderr}`;
    rmSync(mountpoint, { recursive: true, force: true });
    const d = spawnSync('losetup', ['--detach', device], { encoding: 'utf8' });
    if (d.status !== 0) return `losetup --detach ${device}: ${d.stderr}`;
    return null;
  };
  let result: T;
  try {
    result = await fn(mountpoint);
  } catch (error) {
    unmount(); // the failure of fn is the one to report
    throw error;
  }
  const problem = unmount();
  if (problem !== null) throw new Error(problem);
  return result;
}
