// The one interface every bootloader backend implements, and the choice of backend for a /boot:
// forced by the `sysroot.bootloader` setting, else detected from its static files as ostree does.
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError, ioError } from '../common/errors.js';
import type { BootEntry } from './bls.js';
import { grub2Bootloader } from './grub2.js';
import { syslinuxBootloader } from './syslinux.js';
import { ubootBootloader } from './uboot.js';

/** `none` writes only the BLS entries (what systemd-boot reads); the others add their own file. */
const BOOTLOADER_NAMES = ['none', 'grub2', 'syslinux', 'uboot'] as const;
export type BootloaderName = (typeof BOOTLOADER_NAMES)[number];

/** What every backend implements; deploy/ picks one with detectBootloader(). */
export interface Bootloader {
  readonly name: BootloaderName;
  /** Whether this bootloader's static configuration is installed under `bootDir` (ostree's `query`). */
  isActive(bootDir: string): boolean;
  /**
   * Writes the bootloader's configuration for `entries` (default first) into `loaderDir`, the
   * staging `boot/loader.N` that swap.ts fsyncs and switches in; writes nothing else.
   */
  writeConfig(entries: readonly BootEntry[], loaderDir: string): void;
}

export interface BootloaderOptions {
  /**
   * Prepended to entry paths in generated configs: '/boot' when the bootloader reads the root
   * filesystem with /boot a directory in it, '' when it reads a separate boot partition.
   * detectBootloader decides it from the device numbers of /boot and its parent.
   */
  readonly pathPrefix?: string;
  /** Menu timeout in seconds (grub2, syslinux); default 5. */
  readonly timeoutSec?: number;
  /** grub2: also use the serial port UNIT at SPEED baud as console. */
  readonly serial?: { readonly unit: number; readonly speed: number } | undefined;
  /** grub2: the grubenv that holds the trial counter, as GRUB names it; default `PREFIX/grub/grubenv`. */
  readonly grubenvPath?: string;
}

/** What createBootloader hands a backend: the options with the path prefix settled. */
export type BackendOptions = BootloaderOptions & { readonly pathPrefix: string };

/** The Bootloader Specification-only backend: entries only, nothing to detect. */
const blsOnly: Bootloader = {
  name: 'none',
  isActive: () => true,
  writeConfig: () => undefined,
};

/** The backend `name` with `options` (pathPrefix defaults to '/boot'). */
export function createBootloader(name: BootloaderName, options: BootloaderOptions = {}): Bootloader {
  const full = { ...options, pathPrefix: options.pathPrefix ?? '/boot' };
  switch (name) {
    case 'none':
      return blsOnly;
    case 'grub2':
      return grub2Bootloader(full);
    case 'syslinux':
      return syslinuxBootloader(full);
    case 'uboot':
      return ubootBootloader(full);
  }
}

/**
 * '/boot' when `bootDir` is on the same filesystem as its parent (a directory of the root the
 * bootloader reads), '' when it is a mount point of its own (ostree-grub-generator's test).
 */
export function bootPathPrefix(bootDir: string): string {
  try {
    return statSync(bootDir).dev === statSync(dirname(bootDir)).dev ? '/boot' : '';
  } catch (error) {
    throw ioError('stat', bootDir, error);
  }
}

/**
 * The backend for the boot directory `bootDir` (SYSROOT/boot). `configured` is the
 * `sysroot.bootloader` setting: a BootloaderName forces that backend; missing or `auto` probes
 * like ostree, in its order: syslinux (`syslinux/syslinux.cfg`, `extlinux/extlinux.conf`), grub2
 * (`grub/grub.cfg`, `grub2/grub.cfg`, `efi/EFI/X/grub.cfg` for X other than BOOT), u-boot
 * (`uEnv.txt`, `loader/uEnv.txt`); when none is found, `none` (BLS entries only, for systemd-boot).
 */
export function detectBootloader(bootDir: string, configured?: string, options: BootloaderOptions = {}): Bootloader {
  const withPrefix = (): BootloaderOptions => ({
    ...options,
    pathPrefix: options.pathPrefix ?? bootPathPrefix(bootDir),
  });
  if (configured !== undefined && configured !== 'auto') {
    if (!(BOOTLOADER_NAMES as readonly string[]).includes(configured)) {
      throw new UsageError(
        'E_BOOTLOADER_UNKNOWN',
        `sysroot.bootloader is '${configured}', which is not a bootloader arbor knows`,
        {
          hint: `use one of auto, ${BOOTLOADER_NAMES.join(', ')}`,
        },
      );
    }
    return configured === 'none' ? blsOnly : createBootloader(configured as BootloaderName, withPrefix());
  }
  for (const name of ['syslinux', 'grub2', 'uboot'] as const) {
    // isActive does not depend on the options: probe first, work out the prefix for the winner.
    if (createBootloader(name).isActive(bootDir)) return createBootloader(name, withPrefix());
  }
  return blsOnly;
}
