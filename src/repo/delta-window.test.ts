// The window plan of patched files: windows cover the new content in order, and each window's
// source range stays inside the old content and within the bounds clients accept.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { PATCH_SLACK_BYTES, PATCH_WINDOW_BYTES, planPatchWindows } from './delta-window.js';
import { MAX_PATCH_SOURCE_BYTES, MAX_PATCH_WINDOW_BYTES } from './objects/index.js';

const MiB = 1024 * 1024;

describe('planPatchWindows', () => {
  test.prop([fc.integer({ min: 1, max: 2 ** 33 }), fc.integer({ min: 1, max: 2 ** 33 })])(
    'covers the new content in order with windows whose source ranges are inside the old content',
    (sourceSize, contentSize) => {
      const plans = planPatchWindows(sourceSize, contentSize);
      let next = 0;
      for (const p of plans) {
        expect(p.outputOffset).toBe(next);
        expect(p.outputSize).toBeGreaterThan(0);
        expect(p.outputSize).toBeLessThanOrEqual(Math.min(PATCH_WINDOW_BYTES, MAX_PATCH_WINDOW_BYTES));
        expect(p.sourceOffset).toBeGreaterThanOrEqual(0);
        expect(p.sourceOffset + p.sourceSize).toBeLessThanOrEqual(sourceSize);
        expect(p.sourceSize).toBeLessThanOrEqual(MAX_PATCH_SOURCE_BYTES);
        expect(p.center).toBeGreaterThanOrEqual(p.sourceOffset);
        expect(p.center).toBeLessThanOrEqual(p.sourceOffset + p.sourceSize);
        next += p.outputSize;
      }
      expect(next).toBe(contentSize);
    },
  );

  it('gives the first window the start of the old file and the last its end', () => {
    const plans = planPatchWindows(20 * MiB, 20 * MiB);
    expect(
      plans.map((p) => [p.outputOffset / MiB, p.outputSize / MiB, p.sourceOffset / MiB, p.sourceSize / MiB]),
    ).toEqual([
      [0, 4, 0, 6],
      [4, 4, 2, 8],
      [8, 4, 6, 8],
      [12, 4, 10, 8],
      [16, 4, 14, 6],
    ]);
  });

  it('centres each window at its proportional position when the file grew', () => {
    // Twice as big: the window at new offset 16 MiB sits around old offset 8 MiB.
    const window = planPatchWindows(16 * MiB, 32 * MiB).find((p) => p.outputOffset === 16 * MiB);
    expect(window).toEqual({
      outputOffset: 16 * MiB,
      outputSize: PATCH_WINDOW_BYTES,
      sourceOffset: 8 * MiB - PATCH_SLACK_BYTES,
      sourceSize: PATCH_WINDOW_BYTES + 2 * PATCH_SLACK_BYTES,
      center: 8 * MiB,
    });
  });
});
