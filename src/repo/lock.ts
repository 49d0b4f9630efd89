// Advisory repository locks (flock): writers share, prune and repair exclude; readers take none.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { BusyError } from '../common/errors.js';
import { native } from '../common/native.js';

export interface RepoLock {
  release(): void;
}

const sleep = (ms: number): void => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) as unknown as void;

/**
 * Takes the repository's `lock` file, shared (transactions) or exclusive (prune, fsck --repair),
 * waiting up to `timeoutMs`; then BusyError (exit 75).
 */
export function lockRepo(repoPath: string, exclusive: boolean, timeoutMs = 30_000): RepoLock {
  const fd = openSync(join(repoPath, 'lock'), 'a+', 0o644);
  const deadline = Date.now() + timeoutMs;
  while (!native.flock(fd, exclusive, false)) {
    if (Date.now() >= deadline) {
      closeSync(fd);
      throw new BusyError('E_REPO_LOCKED', `repository '${repoPath}' is locked by another arbor process`, {
        hint: exclusive
          ? 'wait for running commits and pulls to finish'
          : 'a prune or repair is running; retry when it ends',
      });
    }
    sleep(50);
  }
  // Closing the fd releases the flock; a killed process releases it too.
  return { release: () => closeSync(fd) };
}

/** Takes an exclusive lock on an existing file without waiting: false when someone holds it. */
export function tryLockFile(path: string): RepoLock | undefined {
  // Read-only, never O_CREAT: probing a dead staging dir must not create the `.lock` its young
  // owner is about to rename into place (ENOENT tells the caller there is none).
  const fd = openSync(path, 'r');
  if (native.flock(fd, true, false)) return { release: () => closeSync(fd) };
  closeSync(fd);
  return undefined;
}
