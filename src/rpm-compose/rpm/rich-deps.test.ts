// Rich dependency parsing: rpm's operators, nesting, names with parentheses, syntax errors, and
// the format/parse round trip.
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../common/errors.js';
import { type RichDep, formatRichDep, parseRichDep } from './rich-deps.js';

const dep = (name: string, cmp?: '<' | '<=' | '=' | '>=' | '>', evr?: string): RichDep => ({
  op: 'dep',
  name,
  ...(cmp && { cmp, evr }),
});

describe('parseRichDep', () => {
  it.each<[string, RichDep]>([
    ['(foo)', dep('foo')],
    ['(foo >= 1.0 or bar)', { op: 'or', args: [dep('foo', '>=', '1.0'), dep('bar')] }],
    ['(a and b and c)', { op: 'and', args: [dep('a'), dep('b'), dep('c')] }],
    ['(a if b)', { op: 'if', then: dep('a'), cond: dep('b') }],
    ['(a if b else c)', { op: 'if', then: dep('a'), cond: dep('b'), else: dep('c') }],
    ['(a unless b else c)', { op: 'unless', then: dep('a'), cond: dep('b'), else: dep('c') }],
    ['(a with b)', { op: 'with', args: [dep('a'), dep('b')] }],
    ['(a without b)', { op: 'without', args: [dep('a'), dep('b')] }],
    [
      '((a and b) or (c if d))',
      {
        op: 'or',
        args: [
          { op: 'and', args: [dep('a'), dep('b')] },
          { op: 'if', then: dep('c'), cond: dep('d') },
        ],
      },
    ],
    [
      '(perl(Foo::Bar) >= 1:2.0-1 or font(:lang=en))',
      { op: 'or', args: [dep('perl(Foo::Bar)', '>=', '1:2.0-1'), dep('font(:lang=en)')] },
    ],
    ['(  a   ==  1~rc1^2 )', dep('a', '=', '1~rc1^2')],
    ['(a < 2 and a > 1)', { op: 'and', args: [dep('a', '<', '2'), dep('a', '>', '1')] }],
  ])('parses %s', (text, tree) => {
    expect(parseRichDep(text)).toEqual(tree);
  });

  it.each([
    ['foo', /starts with '\('/],
    ['(foo', /missing '\)'/],
    ['(a and b or c)', /cannot mix 'or' with 'and'/],
    ['(a and)', /unexpected '\)' at column 7/],
    ['(and a)', /expected a dependency, found 'and'/],
    ['(a >= )', /expected a version/],
    ['(a b)', /expected an operator, found 'b'/],
    ['(a) b', /unexpected 'b'/],
    ['(a else b)', /expected an operator, found 'else'/],
    ['(perl(Foo and b)', /unbalanced|missing/],
    ['()', /unexpected '\)'/],
  ])('refuses %s with a UsageError saying where', (text, message) => {
    expect(() => parseRichDep(text)).toThrow(UsageError);
    expect(() => parseRichDep(text)).toThrow(message);
  });
});

const name = fc
  .stringMatching(/^[a-z][a-z0-9_.+-]{0,8}(\([a-z:]{1,5}\))?$/)
  .filter((n) => !['and', 'or', 'if', 'else', 'with', 'without', 'unless'].includes(n));
const simple: fc.Arbitrary<RichDep> = fc.oneof(
  name.map((n) => dep(n)),
  fc
    .tuple(name, fc.constantFrom('<', '<=', '=', '>=', '>' as const), fc.stringMatching(/^[0-9][0-9a-z.~^:-]{0,6}$/))
    .map(([n, c, v]) => dep(n, c, v)),
);
const tree: fc.Arbitrary<RichDep> = fc.letrec<{ node: RichDep }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    simple,
    fc
      .tuple(fc.constantFrom('and', 'or', 'with' as const), fc.array(tie('node'), { minLength: 2, maxLength: 3 }))
      .map(([op, args]) => ({ op, args })),
    fc.tuple(tie('node'), tie('node')).map(([a, b]) => ({ op: 'without' as const, args: [a, b] as const })),
    fc
      .tuple(
        fc.constantFrom('if', 'unless' as const),
        tie('node'),
        tie('node'),
        fc.option(tie('node'), { nil: undefined }),
      )
      .map(([op, then, cond, otherwise]) => ({
        op,
        then,
        cond,
        ...(otherwise && { else: otherwise }),
      })),
  ),
})).node;

test.prop([tree])('formatting then parsing gives the tree back', (t) => {
  expect(parseRichDep(formatRichDep(t))).toEqual(t);
});
