// A real kernel for boot tests: Debian's linux-image-amd64, fetched once into a cache shared by
// runs and test files (/var/tmp/arbor-test-cache/kernel), and the plain busybox initramfs that
// boots it from a virtio disk into an Arbor deployment (data/initramfs/).
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { native } from '../../src/common/native.js';
import { busyboxApplets, staticBusybox } from './boot-tree.js';
import { ROOT } from './cli.js';
import { runTool, runToolBytes } from './tool.js';

/** Where downloaded and derived test inputs are kept between runs (ARBOR_TEST_CACHE overrides). */
export const TEST_CACHE_DIR = process.env.ARBOR_TEST_CACHE ?? '/var/tmp/arbor-test-cache';
const KERNEL_CACHE_DIR = join(TEST_CACHE_DIR, 'kernel');
/** The modules a guest needs to mount an ext4 root from a virtio-blk disk (plus their dependencies). */
const BOOT_MODULES = ['virtio_pci', 'virtio_blk', 'ext4'];
// Only these parts of the 70 MB package are unpacked (59 MB instead of ~400 MB); they hold every
// dependency of BOOT_MODULES, which modprobe below would report missing otherwise.
const DEB_MEMBERS = [
  './boot/vmlinuz-*',
  './lib/modules/*/modules.*',
  './lib/modules/*/kernel/drivers/virtio/*',
  './lib/modules/*/kernel/drivers/block/*',
  './lib/modules/*/kernel/fs/*',
  './lib/modules/*/kernel/lib/*',
  './lib/modules/*/kernel/crypto/*',
  './lib/modules/*/kernel/arch/x86/crypto/*',
];
const LOCK_TIMEOUT_MS = 15 * 60_000;

export interface TestKernel {
  /** The kernel release, e.g. `6.1.0-56-amd64`. */
  readonly kver: string;
  readonly vmlinuzPath: string;
  /** Laid out like /lib/modules/KVER, holding only the modules in loadOrder. */
  readonly modulesDir: string;
  /** Module files relative to modulesDir (`kernel/drivers/virtio/virtio_ring.ko`, …), in insmod order. */
  readonly loadOrder: readonly string[];
}

function readCachedKernel(): TestKernel | null {
  const currentPath = join(KERNEL_CACHE_DIR, 'current');
  if (!existsSync(currentPath)) return null;
  const kver = readFileSync(currentPath, 'utf8').trim();
  const dir = join(KERNEL_CACHE_DIR, kver);
  const orderPath = join(dir, 'load-order');
  if (!existsSync(orderPath)) return null;
  const loadOrder = readFileSync(orderPath, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
  return { kver, vmlinuzPath: join(dir, 'vmlinuz'), modulesDir: join(dir, 'modules'), loadOrder };
}

/** The binary package linux-image-amd64 currently depends on, e.g. `linux-image-6.1.0-56-amd64`. */
function kernelPackageName(): string {
  const depends = runTool('apt-cache', ['depends', 'linux-image-amd64']);
  const match = /Depends: (linux-image-[0-9][^\s<>]*)/.exec(depends);
  if (!match) throw new Error(`apt-cache knows no kernel for linux-image-amd64 (run apt-get update):\n${depends}`);
  return match[1] as string;
}

/** Downloads and unpacks the kernel into the cache; the caller holds the lock. */
function fetchIntoCache(): TestKernel {
  const work = mkdtempSync(join(KERNEL_CACHE_DIR, 'fetch-'));
  try {
    const isRoot = process.getuid?.() === 0;
    // As root, apt drops to _apt for downloads and warns that _apt cannot write here.
    const sandbox = isRoot ? ['-o', 'APT::Sandbox::User=root'] : [];
    try {
      runTool('apt-get', ['download', '-q', ...sandbox, kernelPackageName()], { cwd: work });
    } catch (error) {
      // Stale package lists name a kernel the archive has replaced (each security update does):
      // refresh them once, as setup.sh would, and ask again.
      if (!isRoot) throw error;
      runTool('apt-get', ['update', '-qq']);
      runTool('apt-get', ['download', '-q', ...sandbox, kernelPackageName()], { cwd: work });
    }
    const deb = readdirSync(work).find((name) => name.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download left no .deb in ${work}`);
    const unpacked = join(work, 'x');
    mkdirSync(unpacked);
    runTool('bash', [
      '-c',
      'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "${@:3}"',
      'bash',
      join(work, deb),
      unpacked,
      ...DEB_MEMBERS,
    ]);
    const vmlinuz = readdirSync(join(unpacked, 'boot')).find((name) => name.startsWith('vmlinuz-'));
    if (vmlinuz === undefined) throw new Error(`${deb} has no /boot/vmlinuz-*`);
    const kver = vmlinuz.slice('vmlinuz-'.length);

    // The package ships no modules.dep (its postinst runs depmod); make one for the unpacked subset.
    runTool('depmod', ['-b', unpacked, kver]);
    const shown = runTool('modprobe', ['-d', unpacked, '-S', kver, '-a', '--show-depends', ...BOOT_MODULES]);
    const moduleRoot = join(unpacked, 'lib/modules', kver) + '/';
    const loadOrder: string[] = [];
    for (const line of shown.split('\n')) {
      const m = /^insmod (\S+)/.exec(line);
      if (!m) continue; // `builtin NAME` lines: nothing to load
      const path = m[1] as string;
      if (!path.startsWith(moduleRoot) || !path.endsWith('.ko')) {
        // busybox insmod in the initramfs takes plain .ko only; a compressed module needs unpacking first
        throw new Error(`modprobe named '${path}', not a plain .ko under ${moduleRoot}`);
      }
      const relative = path.slice(moduleRoot.length);
      if (!loadOrder.includes(relative)) loadOrder.push(relative);
    }
    if (loadOrder.length === 0)
      throw new Error(`modprobe --show-depends ${BOOT_MODULES.join(' ')} named no module:\n${shown}`);

    const out = join(work, 'out');
    for (const relative of loadOrder) {
      mkdirSync(dirname(join(out, 'modules', relative)), { recursive: true });
      copyFileSync(moduleRoot + relative, join(out, 'modules', relative));
    }
    copyFileSync(join(unpacked, 'boot', vmlinuz), join(out, 'vmlinuz'));
    writeFileSync(join(out, 'load-order'), loadOrder.map((line) => `${line}\n`).join(''));

    const dir = join(KERNEL_CACHE_DIR, kver);
    rmSync(dir, { recursive: true, force: true }); // a partial copy from an interrupted fetch
    renameSync(out, dir);
    writeFileSync(join(work, 'current'), `${kver}\n`);
    renameSync(join(work, 'current'), join(KERNEL_CACHE_DIR, 'current'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const kernel = readCachedKernel();
  if (kernel === null) throw new Error(`kernel cache ${KERNEL_CACHE_DIR} incomplete right after the fetch`);
  return kernel;
}

/**
 * The Debian kernel for boot tests, downloaded (`apt-get download`, ~70 MB, a few seconds) on
 * first use only. Concurrent callers in other processes wait on a flock instead of fetching twice.
 */
export async function fetchTestKernel(): Promise<TestKernel> {
  const cached = readCachedKernel();
  if (cached) return cached;
  mkdirSync(KERNEL_CACHE_DIR, { recursive: true });
  const fd = openSync(join(KERNEL_CACHE_DIR, '.lock'), 'a');
  try {
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    // Polled rather than a blocking flock: blocking would freeze this worker's event loop.
    while (!native.flock(fd, true, false)) {
      if (Date.now() > deadline)
        throw new Error(`kernel cache ${KERNEL_CACHE_DIR} stayed locked for ${LOCK_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
    return readCachedKernel() ?? fetchIntoCache();
  } finally {
    closeSync(fd); // releases the flock
  }
}

/** The sources Arbor ships for the busybox initramfs (data/initramfs/). */
const INITRAMFS_INIT = join(ROOT, 'data/initramfs/busybox/init');
export const PREPARE_ROOT_SCRIPT = join(ROOT, 'data/initramfs/arbor-prepare-root');

/**
 * Writes a gzip-compressed newc cpio initramfs: static busybox with its applets in /bin, the
 * kernel's boot modules under /lib/modules/KVER with their insmod order in /lib/modules/load-order
 * (absolute paths), data/initramfs/busybox/init as /init and arbor-prepare-root as
 * /usr/lib/arbor/arbor-prepare-root. About 1.7 MB.
 */
export function buildBusyboxInitramfs(kernel: TestKernel, outPath: string): void {
  const stage = mkdtempSync(join(dirname(outPath), '.initramfs-'));
  try {
    for (const dir of [
      'bin',
      'dev',
      'proc',
      'sys',
      'run',
      'tmp',
      'sysroot',
      'newroot',
      'usr/lib/arbor',
      `lib/modules/${kernel.kver}`,
    ]) {
      mkdirSync(join(stage, dir), { recursive: true });
    }
    symlinkSync('bin', join(stage, 'sbin'));
    symlinkSync('../bin', join(stage, 'usr/bin'));
    symlinkSync('../bin', join(stage, 'usr/sbin'));
    copyFileSync(staticBusybox(), join(stage, 'bin/busybox'));
    chmodSync(join(stage, 'bin/busybox'), 0o755);
    for (const applet of busyboxApplets()) if (applet !== 'busybox') symlinkSync('busybox', join(stage, 'bin', applet));
    copyFileSync(INITRAMFS_INIT, join(stage, 'init'));
    chmodSync(join(stage, 'init'), 0o755);
    copyFileSync(PREPARE_ROOT_SCRIPT, join(stage, 'usr/lib/arbor/arbor-prepare-root'));
    chmodSync(join(stage, 'usr/lib/arbor/arbor-prepare-root'), 0o755);
    const order: string[] = [];
    for (const relative of kernel.loadOrder) {
      const target = join('lib/modules', kernel.kver, relative);
      mkdirSync(dirname(join(stage, target)), { recursive: true });
      copyFileSync(join(kernel.modulesDir, relative), join(stage, target));
      order.push(`/${target}\n`);
    }
    writeFileSync(join(stage, 'lib/modules/load-order'), order.join(''));

    // Sorted names and owner 0:0 make the archive depend on content only (and mtimes).
    const names = runTool('find', ['.', '-mindepth', '1'], { cwd: stage })
      .split('\n')
      .filter((n) => n !== '')
      .sort();
    const archive = runToolBytes('cpio', ['-o', '-H', 'newc', '-R', '0:0', '--reproducible', '--quiet'], {
      cwd: stage,
      input: `${names.join('\n')}\n`,
    });
    writeFileSync(outPath, gzipSync(archive, { level: 9 }));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
