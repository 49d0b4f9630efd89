// What the backends share besides the interface: probing /boot for their static files, and the
// checks of the options they all take. Kept apart from bootloader.ts, which imports every backend.
import { lstatSync, readdirSync } from 'node:fs';
import { ArborError, errnoCode, ioError } from '../common/errors.js';

/** lstat-based existence: a static config may be a symlink into `loader`, dangling or not. */
export function pathExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return false;
    throw ioError('stat', path, error);
  }
}

/** Names of the subdirectories of `dir` (none when it does not exist). */
export function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return [];
    throw ioError('read directory', dir, error);
  }
}

/** Throws unless `prefix` is '' or an absolute path without a trailing slash ('/boot'). */
export function assertPathPrefix(prefix: string): void {
  if (prefix !== '' && !/^(\/[A-Za-z0-9._-]+)+$/.test(prefix)) {
    throw new ArborError(
      'E_BOOTLOADER_CONFIG',
      `boot path prefix '${prefix}' must be '' or an absolute path like '/boot'`,
    );
  }
}

/** Throws unless `timeoutSec` is a whole number of seconds the configs can express. */
export function assertTimeout(timeoutSec: number): void {
  if (!Number.isSafeInteger(timeoutSec) || timeoutSec < 0 || timeoutSec > 86_400) {
    throw new ArborError(
      'E_BOOTLOADER_CONFIG',
      `boot menu timeout ${timeoutSec} s is not a whole number of seconds in 0..86400`,
    );
  }
}
