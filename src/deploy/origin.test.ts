// Origin files: the round trip, the strict reader (errors name a line and key, never a value) and
// refspecs by the ref rules, newline injection included.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { EMPTY_ORIGIN, type Origin, formatOrigin, parseOrigin, parseRefspec, refspecProblem } from './origin.js';

const SECRET = 'root:$6$s3cr3t-hash:19000:0:99999:7:::';

describe('origin files', () => {
  it('round-trips refspec, pin, allow-downgrade and unknown keys', () => {
    const text =
      '[origin]\nrefspec=fleet:os/x86_64/stable\nallow-downgrade=true\ncustom=1\n\n[arbor-transient]\npinned=true\n\n[other]\nk=v\n';
    const origin = parseOrigin(text, 'x');
    expect(origin).toMatchObject({ refspec: 'fleet:os/x86_64/stable', pinned: true, allowDowngrade: true });
    expect(parseOrigin(formatOrigin(origin), 'y')).toEqual(origin);
    expect(formatOrigin(origin)).toBe(text);
  });

  const component = fc
    .stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._+@-]{0,8}$/)
    .filter((c) => !c.includes('..') && !c.endsWith('.lock'));
  const refspec = fc
    .tuple(
      fc.option(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,6}$/), { nil: null }),
      fc.array(component, { minLength: 1, maxLength: 3 }),
    )
    .map(([remote, parts]) => `${remote === null ? '' : `${remote}:`}${parts.join('/')}`)
    .filter((r) => refspecProblem(r) === undefined);
  const value = fc.stringMatching(/^[!-~]([ -~]{0,10}[!-~])?$/);
  const origins: fc.Arbitrary<Origin> = fc.record({
    refspec: fc.option(refspec, { nil: null }),
    pinned: fc.boolean(),
    allowDowngrade: fc.boolean(),
    extra: fc
      .dictionary(
        fc.stringMatching(/^x[a-z]{0,5}$/),
        fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/), value, { minKeys: 1 }),
      )
      .map((groups) => new Map(Object.entries(groups).map(([g, kv]) => [g, new Map(Object.entries(kv))]))),
  });
  test.prop([origins])('reads back what it writes', (origin) => {
    expect(parseOrigin(formatOrigin(origin), 'p')).toEqual(origin);
  });

  it.each<[string, string, RegExp]>([
    ['a line outside a group', 'refspec=x\n', /line 1: expected \[group\] or key=value/],
    ['a line without =', '[origin]\nrefspec x\n', /line 2: expected/],
    ['a secret line', `[origin]\n${SECRET}\n`, /line 2: expected/],
    ['a secret key', `[origin]\n${SECRET}=x\n`, /line 2: the key is not letters/],
    ['a control character', '[origin]\nrefspec=os/main\u001b[2J\n', /line 2: it contains a control character/],
    ['a carriage return inside', '[origin]\nrefspec=a\rpinned=true\n', /line 2: it contains a control character/],
    ['a repeated key', '[arbor-transient]\npinned=false\npinned=true\n', /line 3: key 'pinned' appears twice/],
    [
      'a refspec the ref rules refuse',
      '[origin]\n\nrefspec=../../etc\n',
      /line 3: key 'refspec' is not a valid refspec$/,
    ],
    ['a flag that is not a boolean', '[arbor-transient]\npinned=yes\n', /line 2: key 'pinned' must be true or false/],
    ['a bad group name', '[ori]gin]\n', /line 1: the group name/],
  ])('refuses %s with E_ORIGIN_INVALID (exit 3), naming the line and never a value', (_, text, why) => {
    let error: unknown;
    try {
      parseOrigin(text, '/s/x.origin');
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'E_ORIGIN_INVALID', exit: 3 });
    const message = (error as Error).message;
    expect(message).toMatch(/^origin file '\/s\/x\.origin' line \d+: /);
    expect(message).toMatch(why);
    expect(message).not.toContain('s3cr3t');
    expect(message).not.toContain('etc');
    expect(message).not.toContain('yes');
  });

  it('refuses to write a refspec the ref rules refuse (a newline would inject a line)', () => {
    expect(() => formatOrigin({ ...EMPTY_ORIGIN, refspec: 'r:os/main\npinned=true' })).toThrow(
      expect.objectContaining({ code: 'E_REFSPEC_INVALID', exit: 2 }),
    );
    expect(() => formatOrigin({ ...EMPTY_ORIGIN, extra: new Map([['x', new Map([['k', 'a\nb']])]]) })).toThrow(
      /internal error/,
    );
  });
});

describe('refspecs', () => {
  it('splits REMOTE:REF and local refs', () => {
    expect(parseRefspec('r:a/b')).toEqual({ remote: 'r', ref: 'a/b' });
    expect(parseRefspec('a/b')).toEqual({ remote: null, ref: 'a/b' });
  });
  it.each([[':a'], ['r:'], ['r:a/../b'], ['r:a b'], ['r:a\npinned=true'], ['r:x.lock'], ['a:b:c']])(
    'refuses %j with E_REFSPEC_INVALID (exit 2)',
    (text) => {
      expect(() => parseRefspec(text)).toThrow(expect.objectContaining({ code: 'E_REFSPEC_INVALID', exit: 2 }));
    },
  );
  it('escapes control characters when it names the refspec', () => {
    expect(() => parseRefspec('r:a\npinned=true')).toThrow(
      "'r:a\\npinned=true' is not a valid refspec: it contains a control character",
    );
    expect(() => parseRefspec(':a')).toThrow(/REMOTE:REF/);
  });
});
