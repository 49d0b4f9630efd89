// The layering requests a deployment's origin records, in rpm-ostree's groups and keys:
// `[packages] requested=`, `requested-local=`, `[overrides] remove=`, `replace-local=`; lists are
// `;`-separated, local packages `SHA256:NEVRA`. Pure: parsing (strict), formatting and the edits.
import { ArborError, CorruptionError, UsageError, quoteText } from '../common/errors.js';

/** A package file kept in the sysroot's package directory, by its SHA-256 and NEVRA. */
export interface LocalPackage {
  readonly sha256: string;
  readonly nevra: string;
}

export interface LayerRequests {
  /** Names (or capabilities) resolved in the repositories: rpm-ostree's LayeredPackages. */
  readonly packages: readonly string[];
  /** Package files installed as they are: LocalPackages. */
  readonly localPackages: readonly LocalPackage[];
  /** Base package names taken out: RemovedBasePackages. */
  readonly removals: readonly string[];
  /** Package files that replace the base package of their name: ReplacedBasePackages. */
  readonly replacements: readonly LocalPackage[];
}

export const NO_REQUESTS: LayerRequests = { packages: [], localPackages: [], removals: [], replacements: [] };

type Extra = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** Where each list lives in the origin: [group, key]. */
const KEYS = {
  packages: ['packages', 'requested'],
  localPackages: ['packages', 'requested-local'],
  removals: ['overrides', 'remove'],
  replacements: ['overrides', 'replace-local'],
} as const;

/** A package name or capability as a request: one word or `CAP OP EVR`, no list separator or control character. */
const REQUEST = /^[A-Za-z0-9_.+/(][^;\u0000-\u001f\u007f]*$/;
/** A package name, as a removal names one. */
const NAME = /^[A-Za-z0-9_.+][A-Za-z0-9_.+-]*$/;
const LOCAL = /^([0-9a-f]{64}):([^;\s]+)$/;

/** True when nothing is layered, removed or replaced. */
export const hasRequests = (r: LayerRequests): boolean =>
  r.packages.length + r.localPackages.length + r.removals.length + r.replacements.length > 0;

/** The requests of an origin's extra groups; E_ORIGIN_INVALID (exit 3) for a malformed entry. */
export function parseLayerRequests(extra: Extra, where: string): LayerRequests {
  const list = (key: keyof typeof KEYS): string[] => {
    const [group, name] = KEYS[key];
    const value = extra.get(group)?.get(name) ?? '';
    return value
      .split(';')
      .map((v) => v.trim())
      .filter((v) => v !== '');
  };
  const invalid = (key: keyof typeof KEYS, i: number): never => {
    const [group, name] = KEYS[key];
    throw new CorruptionError(
      'E_ORIGIN_INVALID',
      `origin '${where}': entry ${i + 1} of [${group}] ${name} is malformed`,
      {
        hint: 'arbor writes this file: restore it, or `arbor override reset --all` and install again',
      },
    );
  };
  const names = (key: 'packages' | 'removals'): string[] =>
    list(key).map((v, i) => ((key === 'packages' ? REQUEST : NAME).test(v) ? v : invalid(key, i)));
  const locals = (key: 'localPackages' | 'replacements'): LocalPackage[] =>
    list(key).map((v, i) => {
      const m = LOCAL.exec(v);
      return m ? { sha256: m[1] as string, nevra: m[2] as string } : invalid(key, i);
    });
  return {
    packages: names('packages'),
    localPackages: locals('localPackages'),
    removals: names('removals'),
    replacements: locals('replacements'),
  };
}

/** The extra groups with the requests written in (other groups and keys kept; empty lists leave no key). */
export function formatLayerRequests(extra: Extra, requests: LayerRequests): Extra {
  const out = new Map([...extra].map(([g, keys]) => [g, new Map(keys)]));
  const lists: Record<keyof typeof KEYS, readonly string[]> = {
    packages: requests.packages,
    localPackages: requests.localPackages.map((p) => `${p.sha256}:${p.nevra}`),
    removals: requests.removals,
    replacements: requests.replacements.map((p) => `${p.sha256}:${p.nevra}`),
  };
  for (const [key, [group, name]] of Object.entries(KEYS) as [keyof typeof KEYS, readonly [string, string]][]) {
    const g = out.get(group) ?? new Map<string, string>();
    const values = lists[key];
    if (values.length > 0) g.set(name, `${values.join(';')};`);
    else g.delete(name);
    if (g.size > 0) out.set(group, g);
    else out.delete(group);
  }
  return out;
}

const nameOfNevra = (nevra: string): string => nevra.replace(/-[^-]+-[^-]+$/, '');

/** E_USAGE (exit 2) unless every argument is a request the origin can hold (a package name for removals). */
function assertNames(names: readonly string[], pattern: RegExp, what: string): void {
  for (const name of names)
    if (!pattern.test(name.trim()) || name.trim() !== name)
      throw new UsageError('E_USAGE', `${quoteText(name)} is not ${what}`, {
        hint: 'letters, digits and . _ + - (a capability may add an operator and a version); no ; or control characters',
      });
}

/** `install`: names and local files added; E_LAYER_REQUESTED when one is already layered. */
export function addPackages(
  r: LayerRequests,
  names: readonly string[],
  locals: readonly LocalPackage[],
): LayerRequests {
  assertNames(names, REQUEST, 'a package name or capability');
  for (const name of names) {
    if (r.packages.includes(name) || r.localPackages.some((p) => nameOfNevra(p.nevra) === name))
      throw new ArborError('E_LAYER_REQUESTED', `package '${name}' is already layered`, {
        hint: '`arbor status` lists the layered packages',
      });
  }
  for (const local of locals) {
    if (r.localPackages.some((p) => p.sha256 === local.sha256) || r.packages.includes(nameOfNevra(local.nevra)))
      throw new ArborError('E_LAYER_REQUESTED', `package '${local.nevra}' is already layered`, {
        hint: '`arbor uninstall` it first to layer another build',
      });
  }
  return { ...r, packages: [...r.packages, ...unique(names)], localPackages: [...r.localPackages, ...locals] };
}

/** `uninstall`: layered names (or local packages by name or NEVRA) taken out; E_LAYER_NOT_REQUESTED otherwise. */
export function removePackages(r: LayerRequests, names: readonly string[]): LayerRequests {
  let packages = [...r.packages];
  let localPackages = [...r.localPackages];
  for (const name of names) {
    const before = packages.length + localPackages.length;
    packages = packages.filter((p) => p !== name);
    localPackages = localPackages.filter((p) => p.nevra !== name && nameOfNevra(p.nevra) !== name);
    if (packages.length + localPackages.length === before)
      throw new ArborError('E_LAYER_NOT_REQUESTED', `package '${name}' is not layered`, {
        hint: '`arbor status` lists the layered packages; a base package is taken out with `arbor override remove`',
      });
  }
  return { ...r, packages, localPackages };
}

/** `override remove`: base package names added to the removals. */
export function addRemovals(r: LayerRequests, names: readonly string[]): LayerRequests {
  assertNames(names, NAME, 'a package name');
  for (const name of names)
    if (r.removals.includes(name))
      throw new ArborError('E_LAYER_REQUESTED', `base package '${name}' is already removed`);
  return { ...r, removals: [...r.removals, ...unique(names)] };
}

/** `override replace`: package files added to the replacements (one per name). */
export function addReplacements(r: LayerRequests, locals: readonly LocalPackage[]): LayerRequests {
  const names = new Set(locals.map((p) => nameOfNevra(p.nevra)));
  if (names.size !== locals.length) throw new UsageError('E_USAGE', 'name each package to replace once');
  const kept = r.replacements.filter((p) => !names.has(nameOfNevra(p.nevra)));
  return { ...r, replacements: [...kept, ...locals] };
}

/** `override reset`: the overrides of these base package names dropped (all with `all`). */
export function resetOverrides(r: LayerRequests, names: readonly string[], all: boolean): LayerRequests {
  if (all) return { ...r, removals: [], replacements: [] };
  for (const name of names) {
    if (!r.removals.includes(name) && !r.replacements.some((p) => nameOfNevra(p.nevra) === name))
      throw new ArborError('E_LAYER_NOT_REQUESTED', `base package '${name}' has no override`, {
        hint: '`arbor status` lists RemovedBasePackages and ReplacedBasePackages',
      });
  }
  return {
    ...r,
    removals: r.removals.filter((n) => !names.includes(n)),
    replacements: r.replacements.filter((p) => !names.includes(nameOfNevra(p.nevra))),
  };
}

const unique = (values: readonly string[]): string[] => [...new Set(values)];
