// Reading small input files a user names (treefiles, their includes, first-boot configurations): regular
// files within a size bound. A config may name any path (/dev/zero, a FIFO, /etc/shadow), so nothing
// else is opened, memory stays bounded, and no error quotes what such a file holds.
import { type Stats, closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { UsageError, describeErrno, errnoCode } from './errors.js';

/** How one kind of input is read: its error code, its size bound, and who names it (for the hint). */
interface InputRules {
  readonly code: `E_${string}`;
  readonly maxBytes: number;
  /** Completes "… names regular files of at most N bytes", e.g. "a treefile names". */
  readonly names: string;
}

/**
 * Reads a regular file of at most `rules.maxBytes`; anything else is a UsageError with `rules.code`.
 * `what` names the file in messages, e.g. "treefile '/x/base.yaml' (included by /x/top.yaml)".
 * Symlinks are followed: configs are shared that way, and whoever wrote the link could have
 * named its target directly.
 */
export function readInputFile(path: string, what: string, rules: InputRules): Buffer {
  const { code, maxBytes, names } = rules;
  const refuse = (problem: string, cause?: unknown): never => {
    throw new UsageError(code, `${what} ${problem}`, {
      cause,
      hint: `${names} regular files of at most ${maxBytes} bytes`,
    });
  };
  const failed = (error: unknown): never =>
    errnoCode(error) === 'ENOENT'
      ? refuse('does not exist', error)
      : refuse(`cannot be read: ${describeErrno(error)}`, error);
  const check = (st: Stats): void => {
    if (!st.isFile()) refuse(`is not a regular file but ${typeName(st)}`);
    if (st.size > maxBytes) refuse(`is larger than ${maxBytes} bytes (${st.size})`);
  };
  // Checked before opening: opening a device can act (a tape rewinds), and opening a FIFO blocks.
  try {
    check(statSync(path));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    failed(error);
  }
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO swapped in after the check must not block the open.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    return failed(error);
  }
  try {
    const st = fstatSync(fd);
    check(st); // what was opened, in case the path changed since the check
    // One byte more than allowed, to notice a file that grows while it is read.
    const buffer = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) refuse(`is larger than ${maxBytes} bytes`);
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    return failed(error);
  } finally {
    closeSync(fd);
  }
}

function typeName(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'a special file';
}
