// Reading the files a treefile names (itself, its includes, its postprocess-script): regular files
// of at most 1 MiB, through the common bounded reader.
import { readInputFile } from '../common/input-file.js';

/** The largest treefile, include or postprocess-script read, in bytes (real ones are a few KiB). */
const MAX_TREEFILE_INPUT_BYTES = 1024 * 1024;

/** Reads a regular file of at most `maxBytes`; anything else is E_TREEFILE_INVALID. `what` names it in messages. */
export function readTreefileInput(path: string, what: string, maxBytes = MAX_TREEFILE_INPUT_BYTES): Buffer {
  return readInputFile(path, what, { code: 'E_TREEFILE_INVALID', maxBytes, names: 'a treefile names' });
}
