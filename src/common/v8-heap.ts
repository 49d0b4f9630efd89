// V8 heap settings for host commands, set at run time (no re-exec): a young generation kept at
// its start size, and a full collection between two big phases of one command.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const FLAG = '--semi-space-growth-factor=1';
let small = false;

/**
 * Has V8 favour memory over speed from here on (process-wide), for a host command that walks a
 * big tree (pull, commit, checkout, deploy):
 * - the young generation stays at its start size: such commands make much short-lived garbage
 *   (paths, decoded dirtrees, frames), and V8 answers by growing it to 32 MiB and keeping it. Only
 *   the growth factor works at run time: the size flags are read once, when the heap is made;
 * - `--optimize-for-size` (V8's own switch for small devices): old space is collected sooner after
 *   what survived the last collection, instead of being let grow to a limit sized for this
 *   machine's RAM, which that garbage reaches long before any collection (measured: a commit of the
 *   2 GB bench tree peaked at 191 MiB, 151 MiB with this, and took no longer).
 */
export function favourMemory(): void {
  small = true;
  setFlagsFromString(FLAG);
  setFlagsFromString('--optimize-for-size');
}

/**
 * To call once a worker thread is online: making its isolate raised the growth factor back to V8's
 * minimum of 2, for every isolate of the process, this one too.
 */
export function afterWorkerOnline(): void {
  if (small) setFlagsFromString(FLAG);
}

let gc: (() => void) | undefined;

/**
 * Collects the whole heap now, freeing the buffers garbage still holds: between two phases of one
 * command (a pull, then a deploy) V8 would otherwise keep the first one's garbage while the second
 * one builds its own. A full collection of a heap this size takes milliseconds.
 */
export function collectGarbage(): void {
  if (gc === undefined) {
    // `gc` is installed in contexts made after --expose-gc is set: a new one gives it to us.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
