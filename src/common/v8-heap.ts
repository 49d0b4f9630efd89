// V8 heap settings for host commands, set at run time (no re-exec): a young generation kept at
// its start size.
import { setFlagsFromString } from 'node:v8';

const FLAG = '--semi-space-growth-factor=1';
let small = false;

/**
 * Stops V8 from growing the young generation from here on (process-wide). Host commands make much
 * short-lived garbage (paths, decoded dirtrees), and V8 answers by growing the young generation to
 * 32 MiB and keeping it. Only the growth factor works at run time: the size flags are read once,
 * when the heap is made.
 */
export function keepYoungGenerationSmall(): void {
  small = true;
  setFlagsFromString(FLAG);
}

/**
 * To call once a worker thread is online: making its isolate raised the growth factor back to V8's
 * minimum of 2, for every isolate of the process, this one too.
 */
export function afterWorkerOnline(): void {
  if (small) setFlagsFromString(FLAG);
}
