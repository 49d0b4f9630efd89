// Mirroring the boot set onto the EFI System Partition (`[sysroot] esp=PATH`), where systemd-boot
// reads entries and kernels: FAT has no symlinks, so the loader.N swap cannot be used there. Order
// on every boot-set change: kernels the new entries name are copied first (temporary name, synced,
// renamed), then the entries switch by generations (writeBootSetEsp: at every instant the ESP
// shows a complete old or new set), then kernels nothing names any more go. A command killed
// between the sysroot's switch and the ESP's leaves the ESP on the old set, whose deployments and
// `arbor/boot.N` links still exist; the next command first brings the ESP up to the sysroot's set
// (resyncEsp), before it removes anything.
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, errnoCode, ioError, present } from '../common/errors.js';
import { fsyncDir } from '../common/fs-atomic.js';
import { type BootEntry, readBootEntries, readBootEntriesEsp, writeBootSetEsp } from '../bootloader/index.js';
import { copyFileDurable } from './kernel.js';
import type { Sysroot } from './sysroot.js';

/** Whether `path` is a directory; false when it does not exist. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw ioError('stat', path, error);
  }
}

/**
 * The ESP directory of `[sysroot] esp` (a path as the booted system sees it, e.g. /efi or
 * /boot/efi, taken inside the sysroot), or null when it is not set. E_ESP_MISSING when set but
 * not a directory (an ESP that is not mounted).
 */
export function sysrootEsp(sysroot: Sysroot): string | null {
  const setting = sysroot.repo.config.get('sysroot')?.get('esp');
  if (setting === undefined || setting === '') return null;
  if (!setting.startsWith('/'))
    throw new ArborError(
      'E_ESP_MISSING',
      `[sysroot] esp must be an absolute path (as the booted system mounts the ESP), got '${setting}'`,
    );
  const dir = join(sysroot.path, setting);
  if (!isDirectory(dir))
    throw new ArborError(
      'E_ESP_MISSING',
      `[sysroot] esp names '${setting}', which is not a directory in the sysroot ('${dir}')`,
      { hint: 'mount the EFI System Partition there, or change the setting' },
    );
  return dir;
}

/** The kernel directories entries name: `/arbor/STATEROOT-BOOTCSUM/vmlinuz` → `STATEROOT-BOOTCSUM`. */
function kernelDirsOf(entries: readonly BootEntry[]): Set<string> {
  const out = new Set<string>();
  for (const e of entries) {
    for (const path of [e.linux, e.initrd]) {
      const dir = path === undefined ? undefined : /^\/arbor\/([^/]+)\/[^/]+$/.exec(path)?.[1];
      if (dir !== undefined) out.add(dir);
    }
  }
  return out;
}

/** Makes the ESP show `entries` (default first): kernels in, entries switched, unused kernels out. */
export function syncEsp(sysroot: Sysroot, esp: string, entries: readonly BootEntry[]): void {
  const kernels = join(esp, 'arbor');
  const wanted = kernelDirsOf(entries);
  try {
    mkdirSync(kernels, { recursive: true });
    for (const name of wanted) {
      const final = join(kernels, name);
      if (isDirectory(final)) continue;
      const tmp = `${final}.tmp`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp);
      for (const file of readdirSync(join(sysroot.kernelsDir, name)))
        copyFileDurable(join(sysroot.kernelsDir, name, file), join(tmp, file));
      fsyncDir(tmp);
      renameSync(tmp, final);
      fsyncDir(kernels);
    }
  } catch (error) {
    if (error instanceof ArborError) throw error;
    throw ioError('copy kernels to the ESP at', kernels, error);
  }
  writeBootSetEsp(esp, entries);
  removeUnusedKernels(kernels, wanted);
}

/** Removes the kernel directories (and copies left half-made) under `kernels` that `wanted` does not name. */
function removeUnusedKernels(kernels: string, wanted: ReadonlySet<string>): void {
  try {
    const unused = readdirSync(kernels).filter((name) => !wanted.has(name));
    if (unused.length === 0) return;
    for (const name of unused) rmSync(join(kernels, name), { recursive: true, force: true });
    fsyncDir(kernels);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw ioError('remove unused kernels from the ESP at', kernels, error);
  }
}

/** An entry's text without its boot counter: what decides whether the ESP needs rewriting. */
const identity = (e: BootEntry): string =>
  JSON.stringify([e.title, e.version, e.sortKey, e.linux, e.initrd, e.options]);

/**
 * Brings the ESP up to the sysroot's current boot set when they differ (a command killed between
 * the two switches), and removes kernels a command killed after the switch left behind. Counters
 * alone do not count: the ESP's are the bootloader's own.
 */
export function resyncEsp(sysroot: Sysroot): void {
  const esp = sysrootEsp(sysroot);
  if (esp === null) return;
  const current = readBootEntries(sysroot.bootDir);
  const shown = readBootEntriesEsp(esp);
  const kernelsPresent = [...kernelDirsOf(current)].every((name) => isDirectory(join(esp, 'arbor', name)));
  if (
    kernelsPresent &&
    shown.length === current.length &&
    shown.every((e, i) => identity(e) === identity(present(current[i], `boot entry ${i}`)))
  ) {
    removeUnusedKernels(join(esp, 'arbor'), kernelDirsOf(current));
    return;
  }
  syncEsp(sysroot, esp, current);
}
