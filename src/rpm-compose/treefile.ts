// Treefiles: what `arbor compose tree` builds, in YAML or JSON with the keys rpm-ostree users know.
// Validated strictly: an unknown key or a value of the wrong type is an error naming FILE:LINE:COL.
// `include` merges other treefiles first (lists concatenate, the including file's scalars win).
// An include may name any file, so errors quote a value only short and escaped, and never a line.
import { dirname, resolve } from 'node:path';
import { type Node, isMap, isScalar, isSeq } from 'yaml';
import { UsageError } from '../common/errors.js';
import { isKeyName, parseYamlSource, quote, similar } from '../common/yaml-source.js';
import { invalidRefReason } from '../repo/index.js';
import { readTreefileInput } from './treefile-input.js';

interface InitramfsSpec {
  /** dracut (run in the tree's sandbox), or none (the tree ships its own). */
  readonly generator: 'dracut' | 'none';
  readonly args: readonly string[];
}

export interface Treefile {
  /** The treefile (first of the chain), for messages. */
  readonly path: string;
  readonly ref: string;
  /**
   * Directories of RPMs or yum repositories, absolute (resolved against their treefile's
   * directory); `http(s)://` and `file://` URLs as written; a path that is not a directory names a
   * repository id of the `.repo` files in its directory.
   */
  readonly repos: readonly string[];
  /** What `$releasever` stands for in repository URLs. */
  readonly releasever: string | null;
  readonly packages: readonly string[];
  readonly excludePackages: readonly string[];
  readonly installWeakDeps: boolean;
  readonly arch: string | null;
  readonly removeFiles: readonly string[];
  /** [package, ...regexes of paths to drop from it]. */
  readonly removeFromPackages: readonly (readonly [string, ...string[]])[];
  /** Absolute path of a script run in the tree after assembly. */
  readonly postprocessScript: string | null;
  readonly postprocess: readonly string[];
  readonly addCommitMetadata: ReadonlyMap<string, string | number | boolean>;
  readonly units: readonly string[];
  readonly defaultTarget: string | null;
  readonly etcGroupMembers: readonly string[];
  readonly initramfs: InitramfsSpec | null;
  readonly container: boolean;
  readonly version: string | null;
  readonly automaticVersionPrefix: string | null;
  /** Every file read, in include order, with the bytes parsed: what the compose's input hash covers. */
  readonly sources: readonly TreefileSource[];
}

interface TreefileSource {
  /** Absolute. */
  readonly path: string;
  readonly bytes: Buffer;
}

type Kind =
  | 'string'
  | 'bool'
  | 'strings'
  | 'path'
  | 'repos'
  | 'metadata'
  | 'remove-from-packages'
  | 'initramfs'
  | 'include';

const KEYS: Record<string, Kind> = {
  ref: 'string',
  repos: 'repos',
  releasever: 'string',
  packages: 'strings',
  'exclude-packages': 'strings',
  'install-weak-deps': 'bool',
  arch: 'string',
  'remove-files': 'strings',
  'remove-from-packages': 'remove-from-packages',
  'postprocess-script': 'path',
  postprocess: 'strings',
  'add-commit-metadata': 'metadata',
  units: 'strings',
  'default-target': 'string',
  'etc-group-members': 'strings',
  initramfs: 'initramfs',
  include: 'include',
  container: 'bool',
  version: 'string',
  'automatic-version-prefix': 'string',
};

type Value =
  | string
  | boolean
  | string[]
  | Map<string, string | number | boolean>
  | (readonly [string, ...string[]])[]
  | InitramfsSpec;

/** Loads and validates a treefile with its includes. */
export function loadTreefile(path: string): Treefile {
  const merged = new Map<string, Value>();
  const sources: TreefileSource[] = [];
  loadInto(resolve(path), merged, sources, []);
  const where = resolve(path);
  const get = <T extends Value>(key: string): T | undefined => merged.get(key) as T | undefined;
  const ref = get<string>('ref');
  if (ref === undefined)
    throw new UsageError('E_TREEFILE_INVALID', `${where}: 'ref' is required (the branch to commit to)`);
  if (invalidRefReason(ref) !== undefined) {
    throw new UsageError('E_TREEFILE_INVALID', `${where}: 'ref' is not a valid ref name: ${quote(ref)}`, {
      hint: 'use letters, digits, . _ - + @ and / between components',
    });
  }
  const repos = get<string[]>('repos') ?? [];
  if (repos.length === 0)
    throw new UsageError(
      'E_TREEFILE_INVALID',
      `${where}: 'repos' is required: list the directories of RPMs or yum repositories to compose from`,
    );
  const packages = (get<string[]>('packages') ?? []).flatMap((p) => p.split(/\s+/)).filter((p) => p !== '');
  if (packages.length === 0)
    throw new UsageError('E_TREEFILE_INVALID', `${where}: 'packages' is required and must name at least one package`);
  return {
    path: where,
    ref,
    repos,
    releasever: get<string>('releasever') ?? null,
    packages,
    excludePackages: (get<string[]>('exclude-packages') ?? []).flatMap((p) => p.split(/\s+/)).filter((p) => p !== ''),
    installWeakDeps: get<boolean>('install-weak-deps') ?? true,
    arch: get<string>('arch') ?? null,
    removeFiles: get<string[]>('remove-files') ?? [],
    removeFromPackages: get<(readonly [string, ...string[]])[]>('remove-from-packages') ?? [],
    postprocessScript: get<string>('postprocess-script') ?? null,
    postprocess: get<string[]>('postprocess') ?? [],
    addCommitMetadata: get<Map<string, string | number | boolean>>('add-commit-metadata') ?? new Map(),
    units: get<string[]>('units') ?? [],
    defaultTarget: get<string>('default-target') ?? null,
    etcGroupMembers: get<string[]>('etc-group-members') ?? [],
    initramfs: get<InitramfsSpec>('initramfs') ?? null,
    container: get<boolean>('container') ?? false,
    version: get<string>('version') ?? null,
    automaticVersionPrefix: get<string>('automatic-version-prefix') ?? null,
    sources,
  };
}

function loadInto(path: string, merged: Map<string, Value>, sources: TreefileSource[], chain: readonly string[]): void {
  if (chain.includes(path))
    throw new UsageError('E_TREEFILE_INVALID', `include cycle: ${[...chain, path].join(' → ')}`);
  const what = chain.length > 0 ? `treefile '${path}' (included by ${chain[chain.length - 1]})` : `treefile '${path}'`;
  const bytes = readTreefileInput(path, what);
  const { doc, at } = parseYamlSource(path, bytes, what, 'E_TREEFILE_INVALID');
  if (!isMap(doc.contents))
    throw new UsageError(
      'E_TREEFILE_INVALID',
      `${at(doc.contents)}: a treefile is a mapping of keys (ref, repos, packages, …)`,
    );
  const dir = dirname(path);
  const local = new Map<string, Value>();
  let includes: string[] = [];
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    const kind = KEYS[key];
    if (kind === undefined) {
      if (!isKeyName(key))
        throw new UsageError(
          'E_TREEFILE_INVALID',
          `${at(keyNode)}: unknown key, not shown: it is not a key name (is this file a treefile?)`,
        );
      const known = Object.keys(KEYS).find((k) => similar(k, key));
      throw new UsageError(
        'E_TREEFILE_INVALID',
        `${at(keyNode)}: unknown key '${key}'${known ? ` (did you mean '${known}'?)` : ''}`,
      );
    }
    const valueNode = pair.value as Node | null;
    const where = at(valueNode ?? keyNode);
    const value = convert(kind, key, valueNode, where, dir, at);
    if (kind === 'include') includes = value as string[];
    else local.set(key, value);
  }
  for (const include of includes) loadInto(include, merged, sources, [...chain, path]);
  sources.push({ path, bytes });
  for (const [key, value] of local) {
    const previous = merged.get(key);
    if (Array.isArray(previous) && Array.isArray(value)) merged.set(key, [...previous, ...value] as Value);
    else if (previous instanceof Map && value instanceof Map) merged.set(key, new Map([...previous, ...value]));
    else merged.set(key, value);
  }
}

function convert(
  kind: Kind,
  key: string,
  node: Node | null,
  where: string,
  dir: string,
  at: (n: Node | null | undefined) => string,
): Value {
  const fail = (expected: string, n: Node | null = node): never => {
    const got =
      n === null
        ? 'nothing'
        : isSeq(n)
          ? 'a list'
          : isMap(n)
            ? 'a mapping'
            : isScalar(n)
              ? `${typeof n.value === 'string' ? 'the string' : typeof n.value} ${quote(n.value)}`
              : 'something else';
    throw new UsageError(
      'E_TREEFILE_INVALID',
      `${n === node ? where : at(n)}: '${key}' must be ${expected}, got ${got}`,
    );
  };
  const string = (n: Node | null, expected = 'a string'): string =>
    isScalar(n) && typeof n.value === 'string' && n.value !== '' ? n.value : fail(expected, n);
  const strings = (n: Node | null): string[] =>
    isSeq(n) ? n.items.map((item) => string(item as Node, 'a list of strings')) : fail('a list of strings');
  switch (kind) {
    case 'string':
      return isScalar(node) &&
        (typeof node.value === 'string' || typeof node.value === 'number') &&
        String(node.value) !== ''
        ? String(node.value)
        : fail('a string');
    case 'bool':
      return isScalar(node) && typeof node.value === 'boolean' ? node.value : fail('true or false');
    case 'strings':
      return strings(node);
    case 'path':
      return resolve(dir, string(node, 'a path'));
    case 'repos':
      return strings(node).map((p) => (/^(https?|file):\/\//.test(p) ? p : resolve(dir, p)));
    case 'include':
      return (isScalar(node) ? [string(node, 'a path')] : strings(node)).map((p) => resolve(dir, p));
    case 'metadata': {
      if (!isMap(node)) return fail('a mapping of keys to strings, numbers or booleans');
      const out = new Map<string, string | number | boolean>();
      for (const pair of node.items) {
        const k = pair.key as Node;
        const v = pair.value as Node | null;
        if (!isScalar(k) || typeof k.value !== 'string' || k.value === '') fail('a mapping with string keys', k);
        if (!isScalar(v) || !['string', 'number', 'boolean'].includes(typeof v.value))
          fail('a mapping of keys to strings, numbers or booleans', v);
        out.set((k as { value: string }).value, (v as { value: string | number | boolean }).value);
      }
      return out;
    }
    case 'remove-from-packages': {
      if (!isSeq(node)) return fail('a list of [package, regex, …] lists');
      return node.items.map((item) => {
        const list = isSeq(item as Node)
          ? strings(item as Node)
          : fail('a list of [package, regex, …] lists', item as Node);
        if (list.length < 2) fail('a list of [package, regex, …] lists, each with at least one regex', item as Node);
        for (const re of list.slice(1)) {
          try {
            new RegExp(re);
          } catch {
            fail(`valid regular expressions; ${quote(re)} is not`, item as Node);
          }
        }
        return list as unknown as readonly [string, ...string[]];
      });
    }
    case 'initramfs': {
      if (!isMap(node)) return fail('a mapping with generator (dracut or none) and args');
      let generator: 'dracut' | 'none' = 'dracut';
      let args: string[] = [];
      for (const pair of node.items) {
        const k = pair.key as Node;
        const name = isScalar(k) ? String(k.value) : '';
        if (name === 'generator') {
          const g = string(pair.value as Node, "'dracut' or 'none'");
          if (g !== 'dracut' && g !== 'none') fail("'dracut' or 'none'", pair.value as Node);
          generator = g as 'dracut' | 'none';
        } else if (name === 'args') args = strings(pair.value as Node);
        else
          throw new UsageError(
            'E_TREEFILE_INVALID',
            `${at(k)}: unknown key ${isKeyName(name) ? `'initramfs.${name}'` : 'in initramfs'} (known: generator, args)`,
          );
      }
      return { generator, args };
    }
  }
}
