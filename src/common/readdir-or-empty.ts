// Listing a directory that may not exist yet (state directories, object fan-out, deltas): a missing
// directory has no entries, and every other failure is an error that names the directory.
import { readdirSync } from 'node:fs';
import { errnoCode, ioError } from './errors.js';

/** The names in `dir`, unsorted; [] when `dir` does not exist (ENOENT only), any other failure an ioError. */
export function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw ioError('read directory', dir, error);
  }
}
