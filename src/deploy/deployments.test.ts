import { describe, expect, it } from 'vitest';
import type { Checksum } from '../common/hash.js';
import {
  type Deployment,
  assertKargs,
  describeCommitPoint,
  editKargs,
  kargProblem,
  nextSerial,
  planCleanup,
  planDeploy,
  planDowngrade,
  planRollback,
  planUndeploy,
  rolesOf,
} from './deployments.js';
import { EMPTY_ORIGIN } from './origin.js';

const sum = (c: string): Checksum => c.repeat(64).slice(0, 64) as Checksum;
const dep = (c: string, extra: Partial<Deployment> = {}): Deployment => ({
  stateroot: 'os',
  checksum: sum(c),
  serial: 0,
  bootcsum: 'b',
  kargs: [],
  origin: EMPTY_ORIGIN,
  version: c,
  ...extra,
});
const names = (list: readonly Deployment[]): string[] => list.map((d) => d.version ?? '?');

describe('roles', () => {
  it('names booted, pending and rollback as rpm-ostree does', () => {
    const [a, b, c] = [dep('a'), dep('b'), dep('c')];
    expect(rolesOf([a, b, c], b)).toEqual(['pending', 'booted', 'rollback']);
    expect(rolesOf([a, b, c], a)).toEqual(['booted', 'rollback', 'other']);
    expect(rolesOf([a, b, c], null)).toEqual(['default', 'rollback', 'other']);
  });
});

describe('deploy', () => {
  it('puts the new deployment first and keeps booted, previous default and pinned ones', () => {
    const pinned = dep('p', { origin: { ...EMPTY_ORIGIN, pinned: true } });
    const list = [dep('a'), dep('b'), pinned, dep('c')];
    const { list: out, removed } = planDeploy(list, dep('n'), list[1] as Deployment);
    expect(names(out)).toEqual(['n', 'a', 'b', 'p']);
    expect(names(removed)).toEqual(['c']);
  });
  it('keeps everything with retain, and other stateroots always', () => {
    const other = dep('x', { stateroot: 'other' });
    expect(names(planDeploy([dep('a'), dep('b'), other], dep('n'), null).list)).toEqual(['n', 'a', 'x']);
    expect(names(planDeploy([dep('a'), dep('b'), other], dep('n'), null, { retain: true }).list)).toEqual([
      'n',
      'a',
      'b',
      'x',
    ]);
  });
});

describe('rollback', () => {
  it('makes the rollback deployment the default when the booted one is the default', () => {
    const [a, b, c] = [dep('a'), dep('b'), dep('c')];
    expect(names(planRollback([a, b, c], a).list)).toEqual(['b', 'a', 'c']);
  });
  it('puts the booted deployment back in front when another is pending', () => {
    const [a, b, c] = [dep('a'), dep('b'), dep('c')];
    expect(names(planRollback([a, b, c], b).list)).toEqual(['b', 'a', 'c']);
    expect(names(planRollback([a, b, c], c).list)).toEqual(['c', 'a', 'b']);
  });
  it('swaps the first two on a sysroot that is not booted, and twice is the identity', () => {
    const list = [dep('a'), dep('b'), dep('c')];
    const once = planRollback(list, null).list;
    expect(names(once)).toEqual(['b', 'a', 'c']);
    expect(names(planRollback(once, null).list)).toEqual(['a', 'b', 'c']);
  });
  it('refuses with a single deployment', () => {
    expect(() => planRollback([dep('a')], null)).toThrow(/no deployment to roll back to/);
  });
});

describe('undeploy and cleanup', () => {
  it('removes by index but never the booted deployment', () => {
    const [a, b] = [dep('a'), dep('b')];
    expect(names(planUndeploy([a, b], 1, a).list)).toEqual(['a']);
    expect(() => planUndeploy([a, b], 0, a)).toThrow(/booted/);
    expect(() => planUndeploy([a, b], 5, a)).toThrow(/no deployment 5/);
  });
  it('drops the pending one, or the rollback ones except pinned', () => {
    const pinned = dep('p', { origin: { ...EMPTY_ORIGIN, pinned: true } });
    const [a, b, c] = [dep('a'), dep('b'), dep('c')];
    expect(names(planCleanup([a, b, c], b, { pending: true }).list)).toEqual(['b', 'c']);
    expect(names(planCleanup([a, b, pinned, c], a, { rollback: true }).list)).toEqual(['a', 'p']);
    expect(names(planCleanup([a, b, c], null, { pending: true }).list)).toEqual(['a', 'b', 'c']);
  });
});

describe('serials and kernel arguments', () => {
  it('counts serials per commit', () => {
    expect(nextSerial([`${sum('a')}.0`, `${sum('a')}.3`, `${sum('b')}.7`, `${sum('a')}.1.origin`], sum('a'))).toBe(4);
    expect(nextSerial([], sum('a'))).toBe(0);
  });
  it('deletes, replaces and appends in that order', () => {
    expect(
      editKargs(['quiet', 'console=tty0', 'console=ttyS0', 'rw'], {
        delete: ['quiet'],
        replace: ['console=ttyS1'],
        append: ['debug'],
      }),
    ).toEqual(['console=ttyS1', 'rw', 'debug']);
    expect(editKargs(['a=1', 'a=2'], { delete: ['a=2'] })).toEqual(['a=1']);
    expect(() => editKargs(['a'], { delete: ['b'] })).toThrow(/'b' is not set/);
    expect(() => editKargs([], { append: ['arbor=/x'] })).toThrow(/managed by arbor/);
    expect(() => editKargs([], { replace: ['x=1'] })).toThrow(/cannot be replaced/);
  });
});

describe('kernel arguments', () => {
  it.each([
    ['quiet'],
    ['console=ttyS0,115200'],
    ['opt="a b"'],
    ['rd.break=pre-mount'],
    ['init=/usr/bin/hello'],
    ['x=""'],
  ])('accepts %s', (arg) => {
    expect(kargProblem(arg)).toBeUndefined();
  });
  it.each([
    ['a b', /whitespace/],
    ['a\tb', /control/],
    ['x=1\narbor=/evil', /control/],
    ['opt="a b', /double quotes/],
    ['o p="a b"', /double quotes/],
    ['"a b"', /double quotes/],
    ['opt="a"b"', /double quotes/],
    ['café', /non-ASCII/],
    ['', /empty/],
    ['arbor=/x', /managed by arbor/],
  ])('refuses %j', (arg, why) => {
    expect(kargProblem(arg)).toMatch(why);
    expect(() => assertKargs(['quiet', arg])).toThrow(expect.objectContaining({ code: 'E_KARG_INVALID', exit: 2 }));
  });
  it('names the argument with its control characters escaped', () => {
    expect(() => assertKargs(['a\nb'])).toThrow(
      "kernel argument 'a\\nb' cannot be used: it contains a control or non-ASCII character",
    );
  });
});

describe('downgrades', () => {
  const at = (
    timestamp: number,
    version: string | null = null,
  ): { checksum: Checksum; version: string | null; timestamp: number } => ({
    checksum: sum(String(timestamp % 10)),
    version,
    timestamp,
  });
  it('is a downgrade only when the next commit is strictly older', () => {
    expect(planDowngrade(at(200, '2.0'), at(100, '1.0'))).toEqual({ from: at(200, '2.0'), to: at(100, '1.0') });
    expect(planDowngrade(at(100), at(100))).toBeNull();
    expect(planDowngrade(at(100), at(200))).toBeNull();
    expect(planDowngrade(null, at(100))).toBeNull();
  });
  it('describes a commit by version and time, else by checksum', () => {
    expect(describeCommitPoint(at(1700000000, '2.0'))).toBe('2.0 (2023-11-14T22:13:20Z)');
    expect(describeCommitPoint(at(1700000000))).toBe(`${sum('0').slice(0, 12)} (2023-11-14T22:13:20Z)`);
  });
});
