// YAML input files with positions: parsed strictly (unique keys, one document, UTF-8), every error
// named FILE:LINE:COL, and the helpers their validators share to quote values without leaking the file.
// Used by treefiles and first-boot configurations.
import {
  type Document,
  type ErrorCode,
  LineCounter,
  type Node,
  type Pair,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
} from 'yaml';
import { UsageError } from './errors.js';

/** A parsed YAML file and where each of its nodes is, as `FILE:LINE:COL`. */
interface YamlSource {
  readonly doc: Document;
  readonly at: (node: Node | null | undefined) => string;
}

/**
 * Parses `bytes` (the file at `path`, called `what` in messages) as one YAML document; any syntax error
 * is a UsageError with `code`, named by position and described without quoting the file.
 */
export function parseYamlSource(path: string, bytes: Uint8Array, what: string, code: `E_${string}`): YamlSource {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new UsageError(code, `${what} is not UTF-8 text`);
  }
  const lines = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (node: Node | null | undefined): string => {
    const offset = node?.range?.[0];
    if (offset === undefined) return path;
    const { line, col } = lines.linePos(offset);
    return `${path}:${line}:${col}`;
  };
  const first = doc.errors[0];
  if (first) {
    // The library's own messages quote the source (a tag, an escape, a token): say what is wrong instead.
    const { line, col } = lines.linePos(first.pos[0]);
    throw new UsageError(code, `${path}:${line}:${col}: ${YAML_ERRORS[first.code]}`);
  }
  return { doc, at };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The checks every YAML config validator needs, each failing with a UsageError of `code` at the
 * offending node's FILE:LINE:COL: mappings with known keys only (with a did-you-mean), lists,
 * strings, one-line strings, integers, booleans.
 */
export class YamlValidator {
  constructor(
    readonly code: `E_${string}`,
    readonly at: (node: Node | null | undefined) => string,
  ) {}

  fail(node: Node | null | undefined, message: string): never {
    throw new UsageError(this.code, `${this.at(node)}: ${message}`);
  }

  /** A mapping with only `known` keys; the pairs by key. */
  mapping(node: unknown, what: string, known: readonly string[]): Map<string, Pair> {
    if (!isMap(node)) this.fail(node as Node, `${what} must be a mapping of keys (${known.join(', ')})`);
    const pairs = new Map<string, Pair>();
    for (const pair of node.items) {
      const keyNode = pair.key as Node;
      const key = isScalar(keyNode) && typeof keyNode.value === 'string' ? keyNode.value : '';
      if (!known.includes(key)) {
        if (!isKeyName(key)) this.fail(keyNode, `unknown key in ${what}, not shown: it is not a key name`);
        const guess = known.find((k) => similar(k, key));
        this.fail(keyNode, `unknown key '${key}' in ${what}${guess ? ` (did you mean '${guess}'?)` : ''}`);
      }
      pairs.set(key, pair);
    }
    return pairs;
  }

  list<T>(pair: Pair | undefined, key: string, each: (node: Node) => T): T[] {
    if (pair === undefined) return [];
    const node = pair.value as Node | null;
    if (!isSeq(node)) this.fail(node ?? (pair.key as Node), `'${key}' must be a list`);
    return node.items.map((item) => each(item as Node));
  }

  string(node: Node | null | undefined, what: string, pattern?: RegExp, expected?: string): string {
    if (!isScalar(node) || typeof node.value !== 'string')
      this.fail(node, `${what} must be a string${expected ? ` (${expected})` : ''}`);
    const value = node.value as string;
    if (value.includes('\0')) this.fail(node, `${what} must not contain a NUL byte`);
    if (pattern && !pattern.test(value)) this.fail(node, `${what} is not ${expected}: ${quote(value)}`);
    return value;
  }

  /** One line of printable text: no newline or other control character. */
  line(node: Node | null | undefined, what: string): string {
    const value = this.string(node, what);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
    if (/[\x00-\x1f\x7f]/.test(value)) this.fail(node, `${what} must be one line without control characters`);
    return value;
  }

  int(node: Node | null | undefined, what: string, min: number, max: number): number {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value))
      this.fail(node, `${what} must be an integer`);
    const value = node.value as number;
    if (value < min || value > max) this.fail(node, `${what} must be between ${min} and ${max}`);
    return value;
  }

  bool(node: Node | null | undefined, what: string): boolean {
    if (!isScalar(node) || typeof node.value !== 'boolean') this.fail(node, `${what} must be true or false`);
    return node.value as boolean;
  }
}

/** What each YAML syntax error means, in words that quote nothing of the file. */
const YAML_ERRORS: Record<ErrorCode, string> = {
  ALIAS_PROPS: 'an alias cannot carry an anchor or a tag',
  BAD_ALIAS: 'an alias that names no anchor before it',
  BAD_DIRECTIVE: 'a malformed % directive',
  BAD_DQ_ESCAPE: 'an invalid escape sequence in a double-quoted string',
  BAD_INDENT: 'bad indentation',
  BAD_PROP_ORDER: 'anchors and tags must come after the indicator',
  BAD_SCALAR_START: 'a plain value cannot start with this character (quote the value)',
  BLOCK_AS_IMPLICIT_KEY: 'a block collection cannot be an implicit key',
  BLOCK_IN_FLOW: 'a block collection inside a flow collection',
  DUPLICATE_KEY: 'map keys must be unique',
  IMPOSSIBLE: 'malformed YAML',
  KEY_OVER_1024_CHARS: 'an implicit key longer than 1024 characters',
  MISSING_CHAR: 'a character is missing (a closing quote or bracket, a comma, or a space after a colon)',
  MULTILINE_IMPLICIT_KEY: 'an implicit key spans lines (a missing colon or bad indentation?)',
  MULTIPLE_ANCHORS: 'a node with two anchors',
  MULTIPLE_DOCS: 'more than one YAML document',
  MULTIPLE_TAGS: 'a node with two tags',
  NON_STRING_KEY: 'a key that is not a string',
  // The library reports its parser running out of stack (deep nesting) with this code.
  RESOURCE_EXHAUSTION: 'collections nested too deeply',
  TAB_AS_INDENT: 'a tab used as indentation',
  TAG_RESOLVE_FAILED: 'an unknown tag',
  UNEXPECTED_TOKEN: 'unexpected text (bad indentation or a stray character?)',
  BAD_COLLECTION_TYPE: 'a tag that does not fit its collection',
};

/** A value as messages quote it: JSON, a string escaped and cut at 40 characters. */
export function quote(value: unknown): string {
  if (typeof value !== 'string') return String(JSON.stringify(value));
  const chars = Array.from(value);
  return `${JSON.stringify(chars.slice(0, 40).join(''))}${chars.length > 40 ? '…' : ''}`;
}

/** Looks like a key someone meant to write: short, letters, digits, `-` `_` `.`; anything else is not quoted. */
export const isKeyName = (key: string): boolean => /^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/.test(key);

/** Close enough to be a typo: one edit apart, or one contains the other. */
export function similar(a: string, b: string): boolean {
  if (b.length > 2 && (a.includes(b) || b.includes(a))) return true;
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const rest = (x: string, n: number): string => x.slice(i + n);
  return rest(a, 1) === rest(b, 1) || rest(a, 1) === rest(b, 0) || rest(a, 0) === rest(b, 1);
}
