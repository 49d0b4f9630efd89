// The trial-boot state machine without QEMU: each transition, and whole sequences driven by a
// simulated bootloader and health check.
import { describe, expect, it } from 'vitest';
import type { Checksum } from '../common/hash.js';
import { type Deployment, planRollback } from './deployments.js';
import { EMPTY_ORIGIN } from './origin.js';
import {
  abandonTrials,
  bootChoice,
  countAttempt,
  failedBefore,
  planBless,
  planRollbackPastFailure,
  planFallback,
  planHealthFailure,
  planTrialDeploy,
} from './trial.js';

const dep = (v: string, trial?: { left: number; done: number }): Deployment => ({
  stateroot: 'os',
  checksum: v.repeat(64).slice(0, 64) as Checksum,
  serial: 0,
  bootcsum: 'b',
  kargs: [],
  origin: EMPTY_ORIGIN,
  version: v,
  trial,
});
const show = (list: readonly Deployment[]): string[] =>
  list.map((d) => `${d.version}${d.trial ? `+${d.trial.left}-${d.trial.done}` : ''}`);
const keepAll = (): boolean => true;

/** One boot: the bootloader picks an entry and counts the attempt of a trial; returns the booted deployment. */
function boot(list: Deployment[]): { list: Deployment[]; booted: Deployment } {
  const i = bootChoice(list);
  const chosen = list[i] as Deployment;
  if (i === 0 && chosen.trial) {
    const { tries } = countAttempt(chosen.trial);
    const counted = { ...chosen, trial: tries };
    return { list: [counted, ...list.slice(1)], booted: counted };
  }
  return { list, booted: chosen };
}

describe('transitions', () => {
  it('counts an attempt per boot and stops at zero', () => {
    expect(countAttempt({ left: 3, done: 0 })).toEqual({ tries: { left: 2, done: 1 }, boots: true });
    expect(countAttempt({ left: 1, done: 2 })).toEqual({ tries: { left: 0, done: 3 }, boots: true });
    expect(countAttempt({ left: 0, done: 3 })).toEqual({ tries: { left: 0, done: 3 }, boots: false });
  });
  it('boots the previous entry once the trial is exhausted', () => {
    expect(bootChoice([dep('c', { left: 0, done: 3 }), dep('b')])).toBe(1);
    expect(bootChoice([dep('c', { left: 1, done: 2 }), dep('b')])).toBe(0);
    expect(bootChoice([dep('c', { left: 0, done: 3 })])).toBe(0);
  });
  it('puts a new trial first and the last known-good deployment second', () => {
    const { list } = planTrialDeploy([dep('b'), dep('a')], dep('c'), dep('b'), 3, keepAll);
    expect(show(list)).toEqual(['c+3-0', 'b', 'a']);
  });
  it('upgrading during an unblessed trial falls back to the last good deployment, not the trial', () => {
    // b is on trial (booted, not yet blessed); a is the last good one.
    const booted = dep('b', { left: 2, done: 1 });
    const { list } = planTrialDeploy([booted, dep('a')], dep('c'), booted, 3, keepAll);
    expect(show(list)).toEqual(['c+3-0', 'a', 'b']);
  });
  it('blesses the booted trial and leaves the others alone', () => {
    const list = [dep('c', { left: 2, done: 1 }), dep('b')];
    expect(show(planBless(list, list[0] as Deployment))).toEqual(['c', 'b']);
    expect(show(planBless([dep('b')], dep('b')))).toEqual(['b']);
  });
  it('a failed health check uses up the tries', () => {
    const list = [dep('c', { left: 2, done: 1 }), dep('b')];
    expect(show(planHealthFailure(list, list[0] as Deployment))).toEqual(['c+0-1', 'b']);
  });
  it('after a fallback the good deployment leads and the failed trial follows without a counter', () => {
    const list = [dep('c', { left: 0, done: 3 }), dep('b'), dep('a')];
    const planned = planFallback(list, list[1] as Deployment);
    expect(show(planned?.list ?? [])).toEqual(['b', 'c', 'a']);
    expect(planned?.failed.version).toBe('c');
    expect(planFallback([dep('c', { left: 1, done: 2 }), dep('b')], dep('b'))).toBeNull();
    expect(planFallback(list, list[0] as Deployment)).toBeNull();
  });
  it('a rollback after a fallback passes over the failed trial', () => {
    const list = [dep('c', { left: 0, done: 1 }), dep('b'), dep('a')];
    const planned = planRollbackPastFailure(list, list[1] as Deployment);
    expect(show(planned.list)).toEqual(['a', 'b', 'c']);
    expect([planned.from.version, planned.to.version]).toEqual(['b', 'a']);
    const alone = [dep('c', { left: 0, done: 1 }), dep('b')];
    expect(() => planRollbackPastFailure(alone, alone[1] as Deployment)).toThrow(/no deployment to roll back to/);
  });
  it('a manual rollback during a trial abandons it', () => {
    const list = [dep('c', { left: 2, done: 1 }), dep('b')];
    expect(show(abandonTrials(planRollback(list, list[0] as Deployment).list))).toEqual(['b', 'c']);
  });
  it('remembers failed commits', () => {
    const f = {
      stateroot: 'os',
      checksum: 'x',
      serial: 0,
      version: null,
      when: 1,
      reason: 'tries-exhausted' as const,
      triesUsed: 3,
    };
    expect(failedBefore([f], 'x')).toBe(f);
    expect(failedBefore([f], 'y')).toBeUndefined();
  });
  it('refuses a trial without tries', () => {
    expect(() => planTrialDeploy([], dep('c'), null, 0, keepAll)).toThrow(/tries/);
  });
});

describe('sequences', () => {
  it('a healthy upgrade is blessed and boots without a counter from then on', () => {
    let list = planTrialDeploy([dep('a')], dep('b'), dep('a'), 3, keepAll).list;
    const first = boot(list);
    expect(first.booted.version).toBe('b');
    expect(show(first.list)).toEqual(['b+2-1', 'a']);
    list = planBless(first.list, first.booted);
    expect(show(list)).toEqual(['b', 'a']);
    expect(boot(list).booted.version).toBe('b');
  });
  it('a trial whose health check fails comes back to the good deployment by itself', () => {
    let list = planTrialDeploy([dep('b')], dep('c'), dep('b'), 3, keepAll).list;
    const trial = boot(list);
    list = planHealthFailure(trial.list, trial.booted); // the check fails, the machine reboots
    const next = boot(list);
    expect(next.booted.version).toBe('b');
    const after = planFallback(next.list, next.booted);
    expect(show(after?.list ?? [])).toEqual(['b', 'c']);
  });
  it('a trial that never reaches its health check falls back when its tries run out', () => {
    let list = planTrialDeploy([dep('b')], dep('c'), dep('b'), 3, keepAll).list;
    const booted: string[] = [];
    for (let n = 0; n < 4; n++) {
      const r = boot(list); // c panics each time: nothing blesses or records
      list = r.list;
      booted.push(r.booted.version as string);
    }
    expect(booted).toEqual(['c', 'c', 'c', 'b']);
    expect(show(list)).toEqual(['c+0-3', 'b']);
    const after = planFallback(list, dep('b'));
    expect(after?.failed.trial).toEqual({ left: 0, done: 3 });
    expect(show(after?.list ?? [])).toEqual(['b', 'c']);
  });
});
