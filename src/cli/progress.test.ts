import { describe, expect, it } from 'vitest';
import { describePullProgress, formatBytes } from './progress.js';

const progress = { objects: 0, objectsNeeded: 0, bytes: 0, bytesTotal: null, scanning: false };

describe('progress text', () => {
  it('prints whole bytes and one decimal for larger units', () => {
    expect(formatBytes(684.78)).toBe('685 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });

  it('shows objects of the total when known, and only the count when a delta does not say', () => {
    expect(describePullProgress('receiving', { ...progress, objects: 5, objectsNeeded: 10, bytes: 2048 }, 2)).toBe(
      'receiving: 5/10 objects, 2.0 KiB, ~2 s left',
    );
    expect(describePullProgress('pulling', { ...progress, objects: 5, bytes: 2048, bytesTotal: 4096 }, 2)).toBe(
      'pulling: 5 objects, 2.0 KiB, 2 s left',
    );
    expect(describePullProgress('receiving', { ...progress, objects: 3, objectsNeeded: 9, scanning: true }, 1)).toBe(
      'receiving: 3/9+ objects, 0 B',
    );
  });
});
