// `arbor install to-disk` and `install to-filesystem`: the layout `image build` makes, written onto
// a machine's own disk (partitioned, formatted and populated at the planned offsets, as into an
// image file) or into a root filesystem the caller has made and mounted, with its ESP.
import { closeSync, fsyncSync, mkdtempSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { ArborError, UsageError, inStepSync } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { type DiskSummary, diskSummary, mib } from './build.js';
import { type InstallDevice, openInstallDevice, wipeDevice } from './device.js';
import {
  type LayoutOptions,
  installSystemdBoot,
  prepareLayout,
  stageDeployment,
  stageLayout,
  writeLayout,
} from './layout.js';
import { type ImageBootloader, MiB, imageKargs, planDisk } from './plan.js';
import { runTool } from './tool.js';
import { installEspMount } from './esp-mount.js';
import { assertXfsBuildable } from './xfs.js';

/** The deployment an install made, as results report it. */
interface InstalledDeployment {
  readonly stateroot: string;
  readonly checksum: Checksum;
  readonly serial: number;
  readonly path: string;
}

export interface InstallToDiskOptions extends Omit<LayoutOptions, 'sizeBytes'> {
  readonly device: string;
  /** Erase the filesystem or partition table found on DEVICE (`--wipe`) instead of refusing. */
  readonly wipe: boolean;
  /** Where the sysroot is staged (default: the system's temporary directory). */
  readonly workDir?: string;
  readonly onWorkDir?: (dir: string) => void;
}

/** The disk's summary (its `size`: DEVICE's size rounded down to a MiB) and the device. */
export interface InstallToDiskResult extends DiskSummary {
  readonly device: string;
}

/**
 * Writes the image layout onto DEVICE: the checks of openInstallDevice, the commit's, and the
 * size (E_INSTALL_DEVICE_TOO_SMALL) come before the first byte is written; then `--wipe`, the
 * GPT, the filesystems and the bootloader at the partitions' offsets. The bytes are those of
 * `image build --size <the device's size>` with the same inputs.
 */
export async function installToDisk(options: InstallToDiskOptions): Promise<InstallToDiskResult> {
  if (options.rootFs === 'xfs') assertXfsBuildable();
  const device = openInstallDevice(options.device, options.wipe);
  const sizeBytes = Math.floor(device.sizeBytes / MiB) * MiB;
  const layoutOptions: LayoutOptions = { ...options, sizeBytes };
  const prepared = prepareLayout(layoutOptions);
  const umask = process.umask(0o022);
  const work = mkdtempSync(join(options.workDir ?? tmpdir(), 'arbor-install-'));
  options.onWorkDir?.(work);
  try {
    const layout = await stageLayout(work, layoutOptions, prepared);
    if (layout.needBytes > sizeBytes)
      throw new ArborError(
        'E_INSTALL_DEVICE_TOO_SMALL',
        `'${device.path}' holds ${mib(device.sizeBytes)}: this system needs at least ${mib(layout.needBytes)}`,
        { hint: 'choose a larger device' },
      );
    const plan = planDisk(prepared.seed, options.bootloader, sizeBytes, layout.espSizeBytes);
    if (options.wipe) inStepSync('wiping the device', () => wipeDevice(device));
    await writeLayout({ disk: device.path, create: false, work }, plan, layout, prepared, options);
    syncDevice(device);
    return { device: device.path, ...diskSummary(options, plan, prepared, layout) };
  } finally {
    rmSync(work, { recursive: true, force: true });
    process.umask(umask);
  }
}

/** Flushes what the tools wrote to DEVICE, and has the kernel read its new partition table. */
function syncDevice(device: InstallDevice): void {
  const fd = openSync(device.path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // Best effort: a loop device without partition scanning has no partitions to update.
  if (device.isBlock) runTool('partx', ['--update', device.path], { allowStatus: [1] });
}

export interface InstallToFilesystemOptions extends Omit<LayoutOptions, 'sizeBytes'> {
  /** The mounted root filesystem: it becomes the sysroot. */
  readonly target: string;
  /** The ESP's directory (mounted inside TARGET); null: TARGET/boot/efi. */
  readonly esp: string | null;
  /** Install into a TARGET that holds other files (they are left as they are). */
  readonly force: boolean;
}

export interface InstallToFilesystemResult {
  readonly target: string;
  readonly esp: string;
  /** Where the booted host mounts the ESP (`[sysroot] esp`). */
  readonly espMount: string;
  /**
   * The mount unit installed in the deployment's /etc that mounts the ESP there at boot; null when
   * the ESP is no filesystem of its own (a directory of the root filesystem).
   */
  readonly espMountUnit: string | null;
  readonly bootloader: ImageBootloader;
  readonly commit: Checksum;
  readonly deployment: InstalledDeployment;
  readonly kargs: readonly string[];
}

/** Entries a fresh filesystem may hold besides the ESP's mount point. */
const ALLOWED_IN_EMPTY = new Set(['lost+found']);

/**
 * Makes TARGET (a mounted root filesystem) the sysroot `image build` would put on its root
 * partition, in place: init, the commit pulled into TARGET/arbor/repo (bare, every object
 * verified), the remote, the deployment and its entries, and systemd-boot with the entries and
 * kernels on the ESP. Every check comes first; a failure removes what the install added.
 */
export async function installToFilesystem(options: InstallToFilesystemOptions): Promise<InstallToFilesystemResult> {
  if (options.bootloader !== 'systemd-boot')
    throw new UsageError(
      'E_INSTALL_BOOTLOADER_UNSUPPORTED',
      `install to-filesystem cannot install ${options.bootloader}: it has no disk to write GRUB's boot code to`,
      { hint: 'use --bootloader systemd-boot, or install to-disk' },
    );
  const target = resolve(options.target);
  if (!statSync(target, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError('E_INSTALL_TARGET_INVALID', `'${options.target}' is not a directory`, {
      hint: 'mount the new root filesystem there first',
    });
  const esp = resolve(options.esp ?? join(target, 'boot/efi'));
  const espMount = `/${relative(target, esp).split(sep).join('/')}`;
  if (!statSync(esp, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError('E_INSTALL_ESP_MISSING', `the ESP '${esp}' is not a directory`, {
      hint: `mount the EFI System Partition at ${join(target, 'boot/efi')}, or name it with --esp`,
    });
  if (espMount === '/' || espMount.startsWith('/..'))
    throw new UsageError('E_INSTALL_ESP_OUTSIDE', `the ESP '${esp}' is not inside '${target}'`, {
      hint: 'mount the ESP inside the new root (e.g. at boot/efi), where the installed system mounts it too',
    });
  if (process.getuid?.() !== 0)
    throw new ArborError('E_INSTALL_NEEDS_ROOT', 'install to-filesystem needs root: it writes files of every owner', {
      hint: 'run it as root',
    });
  const espPath = espMount.slice(1).split('/');
  const foreign = foreignEntries(target, espPath);
  if (foreign.length > 0 && !options.force)
    throw new ArborError(
      'E_INSTALL_TARGET_NOT_EMPTY',
      `'${options.target}' is not empty: ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}`,
      { hint: 'install into an empty filesystem, or pass --force to install beside what is there' },
    );
  const rootUuid = options.kargs.some((k) => k.startsWith('root=')) ? null : mountedUuid(target);
  if (rootUuid === undefined)
    throw new UsageError('E_INSTALL_ROOT_UNKNOWN', `cannot tell which filesystem '${options.target}' is`, {
      hint: 'mount the root filesystem at that path, or pass --karg root=UUID=… (or root=LABEL=…)',
    });

  const prepared = prepareLayout({ ...options, sizeBytes: null });
  const kargs = imageKargs(options.kargs, rootUuid ?? '');
  const before = snapshot(target, espPath);
  const umask = process.umask(0o022);
  try {
    const deployment = await stageDeployment(target, { ...options, sizeBytes: null }, prepared, {
      kargs,
      repoMode: 'bare',
      espMount,
    });
    // The booted host mounts the ESP where Arbor writes its entries, when it is a filesystem of its own.
    const espUuid = mountedUuid(esp);
    const espMountUnit =
      espUuid === undefined
        ? null
        : inStepSync('installing the ESP mount', () =>
            installEspMount(join(target, deployment.path), `/dev/disk/by-uuid/${espUuid}`, espMount),
          );
    options.onProgress?.('boot', null);
    inStepSync('installing the bootloader', () => installSystemdBoot(esp));
    return {
      target,
      esp,
      espMount,
      espMountUnit,
      bootloader: options.bootloader,
      commit: prepared.commit,
      deployment,
      kargs,
    };
  } catch (error) {
    removeAdded(target, espPath, before);
    throw error;
  } finally {
    process.umask(umask);
  }
}

/** TARGET's entries other than lost+found and the directories leading to the ESP (whose content is its own). */
function foreignEntries(target: string, espPath: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string, rest: readonly string[], shown: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (dir === target && ALLOWED_IN_EMPTY.has(name)) continue;
      if (name === rest[0]) {
        if (rest.length > 1) walk(join(dir, name), rest.slice(1), `${shown}${name}/`);
        continue;
      }
      out.push(`${shown}${name}`);
    }
  };
  walk(target, espPath, '');
  return out;
}

/** The names in TARGET, in each directory on the way to the ESP, and in the ESP (see removeAdded). */
function snapshot(target: string, espPath: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let dir = target;
  for (const part of ['', ...espPath]) {
    dir = part === '' ? dir : join(dir, part);
    out.set(dir, new Set(readdirSync(dir)));
  }
  return out;
}

/** Removes what a failed install added to the directories SNAPSHOT listed (what was there stays). */
function removeAdded(target: string, espPath: readonly string[], before: Map<string, Set<string>>): void {
  for (const [dir, names] of snapshot(target, espPath))
    for (const name of names)
      if (!before.get(dir)?.has(name)) rmSync(join(dir, name), { recursive: true, force: true });
}

/** The UUID of the filesystem mounted at PATH (findmnt); undefined when PATH is not a mount point or it has none. */
function mountedUuid(path: string): string | undefined {
  const r = runTool('findmnt', ['--noheadings', '--output', 'UUID', '--mountpoint', path], { allowStatus: [1] });
  if (r.status === 1) return undefined;
  const uuid = r.stdout.toString('utf8').trim();
  return uuid === '' ? undefined : uuid;
}
