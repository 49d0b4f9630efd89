import { describe, expect, it } from 'vitest';
import { type Release, decodeReleaseGraph, encodeReleaseGraph, pickRelease, rolloutShare } from './releases.js';

const c = (n: number) => String(n).repeat(64) as Release['commit'];
const r = (v: number, extra: Partial<Release> = {}): Release => ({
  version: String(v),
  ref: 'os/stable',
  commit: c(v),
  channel: 'stable',
  rollout: null,
  barrier: false,
  deadend: false,
  paused: null,
  ...extra,
});

describe('pickRelease', () => {
  it('takes the newest allowed release on the channel after the current one', () => {
    const g = { releases: [r(1), r(2), r(3, { channel: 'beta' }), r(4)] };
    expect(pickRelease(g, 'stable', c(1), 0.5, 0).release?.version).toBe('4');
    expect(pickRelease(g, 'beta', c(1), 0.5, 0).release?.version).toBe('3');
    expect(pickRelease(g, 'stable', c(4), 0.5, 0)).toEqual({
      release: null,
      why: "no release on channel 'stable' after the deployed one",
    });
  });

  it('stops at the first barrier, skips paused and dead-end releases, and admits by rollout position', () => {
    const g = {
      releases: [
        r(1),
        r(2, { barrier: true }),
        r(3),
        r(4, { deadend: true }),
        r(5, { paused: { reason: 'bad', when: 0 } }),
        r(6, { rollout: { start: 100, duration: 100 } }),
      ],
    };
    expect(pickRelease(g, 'stable', c(1), 0, 1000).release?.version).toBe('2');
    expect(pickRelease(g, 'stable', c(2), 0.9, 150).release?.version).toBe('3');
    expect(pickRelease(g, 'stable', c(2), 0.2, 150).release?.version).toBe('6');
    expect(pickRelease(g, 'stable', c(3), 0.9, 150)).toEqual({
      release: null,
      why: 'release 6 is rolling out (50 % of hosts so far; this host at 90 %)',
    });
  });

  it('computes the rollout share linearly, clamped', () => {
    const x = r(1, { rollout: { start: 100, duration: 200 } });
    expect([0, 100, 200, 300, 400].map((t) => rolloutShare(x, t))).toEqual([0, 0, 0.5, 1, 1]);
    expect(rolloutShare(r(1), 0)).toBe(1);
  });
});

describe('decodeReleaseGraph', () => {
  it('round-trips and refuses what it did not write', () => {
    const g = { releases: [r(1), r(2, { rollout: { start: 1, duration: 2 }, paused: { reason: 'x', when: 3 } })] };
    expect(decodeReleaseGraph(encodeReleaseGraph(g))).toEqual({ graph: g });
    for (const [text, error] of [
      ['[', 'it is not JSON'],
      ['{"version":2,"releases":[]}', 'it is not version 1'],
      [JSON.stringify({ version: 1, releases: [{ ...r(1), commit: 'x' }] }), 'release 0: bad commit'],
      [
        JSON.stringify({ version: 1, releases: [{ ...r(1), rollout: { start: 0, duration: 0 } }] }),
        'release 0: bad rollout',
      ],
      [JSON.stringify({ version: 1, releases: [r(1), r(1)] }), 'version 1 twice'],
    ])
      expect(decodeReleaseGraph(text as string)).toEqual({ error });
  });
});
