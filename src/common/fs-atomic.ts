// Durable file replacement: write a temp file in the same directory, fsync, rename, fsync the dir.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoCode } from './errors.js';

/** Replaces `path` atomically with `data`; readers see the old or the new bytes, never a mix. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(tmp);
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** fsync(2) on a directory, so renames and creations in it are durable. */
export function fsyncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } catch (error) {
    // Some filesystems (e.g. certain FUSE ones) reject fsync on directories; nothing more can be done there.
    if (errnoCode(error) !== 'EINVAL') throw error;
  } finally {
    closeSync(fd);
  }
}
