// Reading a small file that may be damaged or planted: a symlink (unless links are followed), a
// directory, fifo or device, or a file over its size bound is reported, never blocked on or read whole.
import { type Stats, closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync } from 'node:fs';
import { errnoCode, ioError } from './errors.js';

/** The file's bytes, what is wrong with what is at the path (worded to follow it), or null when nothing is. */
export type BoundedRead = { readonly bytes: Buffer } | { readonly problem: string } | null;

/**
 * Reads the regular file at `path` if it holds at most `maxBytes`: the path is checked with lstat
 * (stat with `followSymlinks`) before it is opened, so a device is never opened, and again on the
 * descriptor, opened with O_NOFOLLOW (unless following) and O_NONBLOCK so a fifo swapped in cannot
 * block. Returns null for ENOENT; other errno failures throw an E_IO ArborError.
 */
export function readBoundedFile(
  path: string,
  maxBytes: number,
  options: { followSymlinks?: boolean } = {},
): BoundedRead {
  const follow = options.followSymlinks === true;
  let st: Stats;
  try {
    st = follow ? statSync(path) : lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw ioError('read', path, error);
  }
  const problem = notRegular(st) ?? tooLarge(st.size, maxBytes);
  if (problem !== undefined) return { problem };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (follow ? 0 : constants.O_NOFOLLOW));
  } catch (error) {
    if (errnoCode(error) === 'ELOOP') return { problem: 'is a symlink' };
    if (errnoCode(error) === 'ENOENT') return null;
    throw ioError('read', path, error);
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile() || fst.ino !== st.ino || fst.dev !== st.dev) return { problem: 'was replaced while being read' };
    const sizeProblem = tooLarge(fst.size, maxBytes);
    if (sizeProblem !== undefined) return { problem: sizeProblem };
    // One byte more than the size: a file growing while read is cut at the bound, not followed.
    const buf = Buffer.alloc(Math.min(fst.size + 1, maxBytes + 1));
    let got = 0;
    for (let n; got < buf.length && (n = readSync(fd, buf, got, buf.length - got, got)) > 0; ) got += n;
    if (got > maxBytes) return { problem: `is larger than ${maxBytes} bytes` };
    return { bytes: buf.subarray(0, got) };
  } catch (error) {
    throw ioError('read', path, error);
  } finally {
    closeSync(fd);
  }
}

function notRegular(st: Stats): string | undefined {
  if (st.isSymbolicLink()) return 'is a symlink';
  if (st.isDirectory()) return 'is a directory';
  return st.isFile() ? undefined : 'is a special file';
}

const tooLarge = (size: number, maxBytes: number): string | undefined =>
  size > maxBytes ? `is larger than ${maxBytes} bytes` : undefined;
