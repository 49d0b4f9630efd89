// Rich (boolean) dependencies such as `(foo >= 1.0 or (bar if baz))`: a pure parser into an
// expression tree and a formatter back to rpm's text (docs/rpm.md).
import { UsageError } from '../../common/errors.js';

export type Comparison = '<' | '<=' | '=' | '>=' | '>';

/** A leaf: a capability name with an optional version comparison. */
interface SimpleDep {
  readonly op: 'dep';
  readonly name: string;
  readonly cmp?: Comparison;
  readonly evr?: string;
}

/**
 * `and`/`or`/`with` join two or more operands; `without` has exactly two. `if`/`unless` read
 * "THEN if COND [else OTHERWISE]", as in rpm's syntax, so `then` comes first.
 */
export type RichDep =
  | SimpleDep
  | { readonly op: 'and' | 'or' | 'with'; readonly args: readonly RichDep[] }
  | { readonly op: 'without'; readonly args: readonly [RichDep, RichDep] }
  | { readonly op: 'if' | 'unless'; readonly then: RichDep; readonly cond: RichDep; readonly else?: RichDep };

const OPERATORS = new Set(['and', 'or', 'if', 'else', 'with', 'without', 'unless']);
const COMPARISONS = new Set<string>(['<', '<=', '=', '>=', '>', '==']);

/** True when a dependency name is a rich dependency (rpm stores them with a leading parenthesis). */
export const isRichDep = (name: string): boolean => name.startsWith('(');

type Token = { kind: '(' | ')' | 'word'; text: string; at: number };

function tokenize(text: string, fail: (problem: string, at: number) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ kind: c, text: c, at: i });
      i++;
    } else {
      const start = i;
      // A word ends at whitespace or a parenthesis, except that a name may hold balanced parentheses
      // (`perl(Foo::Bar)`, `font(:lang=en)`): they belong to the word that opened them.
      let depth = 0;
      while (i < text.length) {
        const d = text[i]!;
        if (d === '(') {
          if (i === start) break;
          depth++;
        } else if (d === ')') {
          if (depth === 0) break;
          depth--;
        } else if ((d === ' ' || d === '\t' || d === '\n') && depth === 0) break;
        i++;
      }
      if (depth !== 0) fail('unbalanced parenthesis in a name', start);
      tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
    }
  }
  return tokens;
}

/** Parses a rich dependency; a syntax error is a UsageError naming the text and position. */
export function parseRichDep(text: string): RichDep {
  const fail = (problem: string, at: number): never => {
    throw new UsageError('E_RPM_RICH_DEP', `rich dependency '${text}': ${problem} at column ${at + 1}`);
  };
  const tokens = tokenize(text, fail);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const end = text.length;

  const parseOperand = (): RichDep => {
    const t = peek();
    if (t === undefined) return fail('expected a dependency', end);
    if (t.kind === '(') return parseGroup();
    if (t.kind === ')') return fail("unexpected ')'", t.at);
    if (OPERATORS.has(t.text)) return fail(`expected a dependency, found '${t.text}'`, t.at);
    pos++;
    const next = peek();
    if (next?.kind === 'word' && COMPARISONS.has(next.text)) {
      pos++;
      const evr = peek();
      if (evr?.kind !== 'word' || OPERATORS.has(evr.text))
        return fail(`expected a version after '${next.text}'`, evr?.at ?? end);
      pos++;
      return { op: 'dep', name: t.text, cmp: (next.text === '==' ? '=' : next.text) as Comparison, evr: evr.text };
    }
    return { op: 'dep', name: t.text };
  };

  const parseGroup = (): RichDep => {
    const open = peek()!;
    pos++;
    const first = parseOperand();
    let result: RichDep = first;
    const op = peek();
    if (op?.kind === 'word') {
      if (!OPERATORS.has(op.text) || op.text === 'else') return fail(`expected an operator, found '${op.text}'`, op.at);
      pos++;
      const second = parseOperand();
      if (op.text === 'if' || op.text === 'unless') {
        const elseTok = peek();
        if (elseTok?.kind === 'word' && elseTok.text === 'else') {
          pos++;
          result = { op: op.text, then: first, cond: second, else: parseOperand() };
        } else {
          result = { op: op.text, then: first, cond: second };
        }
      } else if (op.text === 'without') {
        result = { op: 'without', args: [first, second] };
      } else {
        const args = [first, second];
        // A chain repeats the same operator; mixing needs parentheses (rpm refuses `a and b or c`).
        for (let more = peek(); more?.kind === 'word' && more.text === op.text; more = peek()) {
          pos++;
          args.push(parseOperand());
        }
        result = { op: op.text as 'and' | 'or' | 'with', args };
      }
      const after = peek();
      if (after?.kind === 'word')
        return fail(`cannot mix '${after.text}' with '${op.text}' without parentheses`, after.at);
    }
    const close = peek();
    if (close?.kind !== ')') return fail(`missing ')' for the '(' at column ${open.at + 1}`, close?.at ?? end);
    pos++;
    return result;
  };

  const first = peek();
  if (first?.kind !== '(') return fail("a rich dependency starts with '('", first?.at ?? 0);
  const result = parseGroup();
  const rest = peek();
  if (rest !== undefined) return fail(`unexpected '${rest.text}' after the closing ')'`, rest.at);
  return result;
}

/** Formats a tree as rpm writes it: every operator group in parentheses, single spaces. */
export function formatRichDep(dep: RichDep): string {
  const operand = (d: RichDep): string => (d.op === 'dep' ? formatSimple(d) : formatRichDep(d));
  switch (dep.op) {
    case 'dep':
      return `(${formatSimple(dep)})`;
    case 'and':
    case 'or':
    case 'with':
    case 'without':
      return `(${dep.args.map(operand).join(` ${dep.op} `)})`;
    case 'if':
    case 'unless':
      return `(${operand(dep.then)} ${dep.op} ${operand(dep.cond)}${dep.else ? ` else ${operand(dep.else)}` : ''})`;
  }
}

function formatSimple(dep: SimpleDep): string {
  return dep.cmp ? `${dep.name} ${dep.cmp} ${dep.evr ?? ''}` : dep.name;
}
