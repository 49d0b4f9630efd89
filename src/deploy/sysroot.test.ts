import { describe, expect, it } from 'vitest';
import { sysrootCandidates } from './sysroot.js';

describe('sysrootCandidates', () => {
  it('looks for the physical root a booted host has at /sysroot first, then / itself', () => {
    expect(sysrootCandidates('/')).toEqual(['/sysroot', '/']);
  });

  it('takes any other path as it is', () => {
    expect(sysrootCandidates('/mnt/disk')).toEqual(['/mnt/disk']);
    expect(sysrootCandidates('/sysroot')).toEqual(['/sysroot']);
  });
});
