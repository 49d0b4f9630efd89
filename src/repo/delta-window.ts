// How a patched file is cut into windows: each window of the new content is a zstd frame whose
// dictionary is a bounded range of the old content around the same relative position, so
// generating and applying it needs one window and one source range in memory, never whole files.
import { MAX_PATCH_SOURCE_BYTES, MAX_PATCH_WINDOW_BYTES } from './objects/index.js';

/** New content bytes per window. */
export const PATCH_WINDOW_BYTES = 4 * 1024 * 1024;
/** Old content bytes on each side of a window's position that its frame may refer to. */
export const PATCH_SLACK_BYTES = 2 * 1024 * 1024;

/** zstd's magic for formatted dictionaries: a source range starting with it would not be read as raw content. */
export const ZSTD_DICT_MAGIC = Buffer.from([0x37, 0xa4, 0x30, 0xec]);

export interface WindowPlan {
  readonly outputOffset: number;
  readonly outputSize: number;
  readonly sourceOffset: number;
  readonly sourceSize: number;
  /** The old offset the window lines up with (its proportional position), inside the source range. */
  readonly center: number;
}

/**
 * Cuts `contentSize` new bytes into windows and gives each the old range around its proportional
 * position (so content that grew or shrank evenly still lines up), clipped to the old content.
 */
export function planPatchWindows(sourceSize: number, contentSize: number): WindowPlan[] {
  const plans: WindowPlan[] = [];
  for (let outputOffset = 0; outputOffset < contentSize; outputOffset += PATCH_WINDOW_BYTES) {
    const outputSize = Math.min(PATCH_WINDOW_BYTES, contentSize - outputOffset);
    const center = Math.floor((outputOffset / contentSize) * sourceSize);
    const start = Math.max(0, center - PATCH_SLACK_BYTES);
    const end = Math.min(sourceSize, center + outputSize + PATCH_SLACK_BYTES);
    plans.push({ outputOffset, outputSize, sourceOffset: start, sourceSize: end - start, center });
  }
  return plans;
}

// The plan must stay within what clients accept.
if (PATCH_WINDOW_BYTES > MAX_PATCH_WINDOW_BYTES || PATCH_WINDOW_BYTES + 2 * PATCH_SLACK_BYTES > MAX_PATCH_SOURCE_BYTES)
  throw new Error('internal error: patch windows exceed the bounds clients accept');
