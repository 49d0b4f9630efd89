// U-Boot backend: `uEnv.txt` in boot/loader.N (U-Boot imports it through the static symlink
// boot/uEnv.txt -> loader/uEnv.txt), numbered like ostree's: the default unnumbered, then 2, 3, ….
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, ioError } from '../common/errors.js';
import type { BackendOptions, Bootloader } from './bootloader.js';
import { type BootEntry, assertBootEntry } from './bls.js';
import { assertPathPrefix, pathExists } from './probe.js';

export interface UEnvOptions {
  /** Prepended to every path: '/boot' when U-Boot reads the root filesystem, '' for a boot partition. */
  readonly pathPrefix: string;
}

/**
 * uEnv.txt for `entries` (default first), `env import -t` text: per entry, with SUFFIX '' for
 * the default and I+1 for entry I > 0, `kernel_imageSUFFIX=PATH`, `ramdisk_imageSUFFIX=PATH`,
 * `fdt_fileSUFFIX=PATH` (devicetree) and `bootargsSUFFIX=OPTIONS`. The board's boot script decides
 * how to use them (ostree's layout, so existing scripts work).
 */
export function formatUEnv(entries: readonly BootEntry[], options: UEnvOptions): string {
  assertPathPrefix(options.pathPrefix);
  entries.forEach(assertBootEntry);
  const lines: string[] = [];
  entries.forEach((entry, i) => {
    const suffix = i === 0 ? '' : String(i + 1);
    lines.push(`kernel_image${suffix}=${options.pathPrefix}${entry.linux}`);
    if (entry.initrd !== undefined) lines.push(`ramdisk_image${suffix}=${options.pathPrefix}${entry.initrd}`);
    if (entry.devicetree !== undefined) lines.push(`fdt_file${suffix}=${options.pathPrefix}${entry.devicetree}`);
    lines.push(`bootargs${suffix}=${entry.options}`);
  });
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** The u-boot backend (ostree's query: boot/loader/uEnv.txt; also the boot/uEnv.txt link). */
export function ubootBootloader(options: BackendOptions): Bootloader {
  return {
    name: 'uboot',
    isActive: (bootDir) => pathExists(join(bootDir, 'uEnv.txt')) || pathExists(join(bootDir, 'loader/uEnv.txt')),
    writeConfig(entries, loaderDir) {
      const path = join(loaderDir, 'uEnv.txt');
      const text = formatUEnv(entries, options);
      try {
        writeFileSync(path, text);
      } catch (error) {
        throw error instanceof ArborError ? error : ioError('write', path, error);
      }
    },
  };
}
