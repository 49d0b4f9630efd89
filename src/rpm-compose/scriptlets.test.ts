import { describe, expect, it } from 'vitest';
import type { RpmPackage, RpmScript, RpmTrigger } from './rpm/index.js';
import { Sense } from './rpm/tags.js';
import { type ComposePackage, type PlannedScriptlet, formatScriptletRef, planScriptlets } from './scriptlets.js';
import { rpmFile } from '../../test/support/rpm-values.js';

const sh = (body: string): RpmScript => ({ body, interpreter: ['/bin/sh'], flags: 0 });

/** A package as far as planning reads it; trigger entries as the header holds them (sorted by name). */
function pkg(
  name: string,
  opts: { version?: string; files?: string[]; scripts?: RpmPackage['scripts']; triggers?: RpmTrigger[] } = {},
): ComposePackage {
  const p = {
    name,
    epoch: undefined,
    version: opts.version ?? '1',
    release: '1',
    arch: 'noarch',
    files: (opts.files ?? []).map(rpmFile),
    scripts: opts.scripts ?? {},
    triggers: opts.triggers ?? [],
  };
  return { nevra: `${name}-${p.version}-1.noarch`, pkg: p as unknown as RpmPackage };
}
/** rpm's TRIGGERINDEX: entries naming the same body share one script (as rpmbuild makes them). */
const scriptIndexes = new Map<string, number>();
const indexOf = (body: string): number => {
  if (!scriptIndexes.has(body)) scriptIndexes.set(body, scriptIndexes.size);
  return scriptIndexes.get(body) as number;
};
const fileTrigger = (type: 'file' | 'transfile', prefix: string, body: string, priority = 1000000): RpmTrigger => ({
  type,
  when: 'in',
  name: prefix,
  flags: Sense.TriggerIn,
  priority,
  index: indexOf(body),
  script: sh(body),
});
const pkgTrigger = (
  when: 'prein' | 'in',
  name: string,
  body: string,
  range?: { cmp: '<' | '>='; evr: string },
): RpmTrigger => ({
  type: 'package',
  when,
  name,
  flags:
    (when === 'in' ? Sense.TriggerIn : Sense.TriggerPreIn) |
    (range ? (range.cmp === '<' ? Sense.Less : Sense.Greater | Sense.Equal) : 0),
  ...range,
  index: indexOf(body),
  script: sh(body),
});

/** One line per planned scriptlet: "nevra %slot [set off by] args | stdin paths". */
const lines = (planned: readonly PlannedScriptlet[]): string[] =>
  planned.map(
    (p) =>
      `${formatScriptletRef(p)} ${p.args.join(' ')}${p.stdin !== undefined ? ` | ${p.stdin.trim().split('\n').join(' ')}` : ''}`,
  );

describe('planScriptlets', () => {
  // The order rpm 4.18 ran for these packages in one `rpm -i` (checked by hand with real packages;
  // test/integration/sandbox.test.ts checks the same against rpm). Arguments are rpm 4.20's: 4.18
  // passed file triggers only "0".
  const bb = pkg('bb', {
    files: ['/usr/lib/bb.txt'],
    scripts: { prein: sh('pre'), postin: sh('post'), posttrans: sh('posttrans') },
    triggers: [
      pkgTrigger('in', 'a', 'triggerin a'),
      pkgTrigger('prein', 'b', 'triggerprein b'),
      fileTrigger('file', '/usr/lib', 'ft usr-lib'),
      fileTrigger('file', '/usr/share', 'ft usr-share low', 100),
      fileTrigger('transfile', '/usr/lib', 'tft usr-lib'),
    ],
  });
  const a = pkg('a', {
    files: ['/usr/lib/a.so', '/usr/share/a.txt'],
    scripts: { prein: sh('pre'), postin: sh('post'), posttrans: sh('posttrans') },
    triggers: [pkgTrigger('in', 'bb', 'triggerin bb'), fileTrigger('file', '/usr/lib/bb', 'ft not a directory prefix')],
  });
  const b = pkg('b', { version: '2', files: ['/usr/lib/b.so'], scripts: { prein: sh('pre'), postin: sh('post') } });
  const c = pkg('c', {
    files: ['/usr/lib/c.so'],
    triggers: [fileTrigger('file', '/usr/lib', 'ft'), fileTrigger('transfile', '/usr/lib', 'tft')],
  });

  it('orders scripts and triggers of a fresh install as rpm does', () => {
    expect(lines(planScriptlets([bb, a, b, c]).run)).toEqual([
      'bb-1-1.noarch %pre 1',
      'bb-1-1.noarch %filetriggerin (set off by bb-1-1.noarch) 1 1 | /usr/lib/bb.txt',
      'bb-1-1.noarch %post 1',
      'a-1-1.noarch %pre 1',
      'bb-1-1.noarch %filetriggerin (set off by a-1-1.noarch) 1 1 | /usr/lib/a.so',
      'a-1-1.noarch %post 1',
      'bb-1-1.noarch %triggerin (set off by a-1-1.noarch) 1 1',
      'a-1-1.noarch %triggerin (set off by bb-1-1.noarch) 1 1',
      'bb-1-1.noarch %filetriggerin (set off by a-1-1.noarch) 1 1 | /usr/share/a.txt',
      'bb-1-1.noarch %triggerprein (set off by b-2-1.noarch) 1 0',
      'b-2-1.noarch %pre 1',
      'bb-1-1.noarch %filetriggerin (set off by b-2-1.noarch) 1 1 | /usr/lib/b.so',
      'b-2-1.noarch %post 1',
      'bb-1-1.noarch %filetriggerin (set off by c-1-1.noarch) 1 1 | /usr/lib/c.so',
      'c-1-1.noarch %filetriggerin (set off by c-1-1.noarch) 1 1 | /usr/lib/c.so',
      // Its own trigger over what was installed before it (rpm leaves its own files out here).
      'c-1-1.noarch %filetriggerin 1 1 | /usr/lib/bb.txt /usr/lib/a.so /usr/lib/b.so',
      'bb-1-1.noarch %posttrans 1',
      'a-1-1.noarch %posttrans 1',
      'bb-1-1.noarch %transfiletriggerin 1 | /usr/lib/bb.txt /usr/lib/a.so /usr/lib/b.so /usr/lib/c.so',
      'c-1-1.noarch %transfiletriggerin 1 | /usr/lib/bb.txt /usr/lib/a.so /usr/lib/b.so /usr/lib/c.so',
    ]);
  });

  it('runs file triggers by priority, high first, then by install order', () => {
    const x = pkg('x', {
      triggers: [fileTrigger('file', '/opt', 'low', 5), fileTrigger('file', '/opt', 'high', 20000)],
    });
    const y = pkg('y', { triggers: [fileTrigger('file', '/opt', 'top', 30000)] });
    const data = pkg('data', { files: ['/opt/d'], scripts: { postin: sh('post') } });
    expect(planScriptlets([x, y, data]).run.map((p) => p.script.body)).toEqual(['top', 'high', 'post', 'low']);
  });

  it('gives one trigger with several prefixes its paths prefix by prefix, once', () => {
    const t = pkg('t', { triggers: [fileTrigger('transfile', '/a', 'both'), fileTrigger('transfile', '/b', 'both')] });
    const data = pkg('data', { files: ['/a/1', '/b/2', '/c/3'] });
    expect(lines(planScriptlets([t, data]).run)).toEqual(['t-1-1.noarch %transfiletriggerin 1 | /a/1 /b/2']);
  });

  it('fires a package trigger only for versions in its range', () => {
    const watcher = pkg('w', { triggers: [pkgTrigger('in', 'lib', 'old lib', { cmp: '<', evr: '2' })] });
    expect(planScriptlets([watcher, pkg('lib', { version: '1' })]).run).toHaveLength(1);
    expect(planScriptlets([watcher, pkg('lib', { version: '2' })]).run).toHaveLength(0);
  });

  it('runs a trigger on two names once when both were installed before it', () => {
    const watcher = pkg('w', { triggers: [pkgTrigger('in', 'x', 'either'), pkgTrigger('in', 'y', 'either')] });
    expect(lines(planScriptlets([pkg('x'), pkg('y'), watcher]).run)).toEqual([
      'w-1-1.noarch %triggerin (set off by x-1-1.noarch) 1 1',
    ]);
    // Installed first, it fires for each package that sets it off later.
    expect(lines(planScriptlets([watcher, pkg('x'), pkg('y')]).run)).toEqual([
      'w-1-1.noarch %triggerin (set off by x-1-1.noarch) 1 1',
      'w-1-1.noarch %triggerin (set off by y-1-1.noarch) 1 1',
    ]);
  });

  it('counts installed instances of a name for $1, as multilib pairs see it', () => {
    const first = pkg('m', { scripts: { postin: sh('post'), posttrans: sh('posttrans') } });
    const second = { ...first, nevra: 'm-1-1.i686' };
    expect(lines(planScriptlets([first, second]).run)).toEqual([
      'm-1-1.noarch %post 1',
      'm-1-1.i686 %post 2',
      'm-1-1.noarch %posttrans 2',
      'm-1-1.i686 %posttrans 2',
    ]);
  });

  it('ignores %pretrans and says why', () => {
    const plan = planScriptlets([pkg('p', { scripts: { pretrans: { body: 'x', interpreter: ['<lua>'], flags: 0 } } })]);
    expect(plan.run).toEqual([]);
    expect(plan.ignored).toEqual([
      { nevra: 'p-1-1.noarch', scriptlet: '%pretrans', reason: expect.stringContaining('unpacks every package first') },
    ]);
  });
});
