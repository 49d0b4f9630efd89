// The packages a compose may choose from: every repository's records, indexed by name, provided
// capability and file path. Loading is the only I/O of dependency solving: filelists.xml is read
// only when some dependency names a path that primary.xml does not list (createrepo_c keeps only
// the "primary" paths there), so the common case reads primary.xml alone.
import { type RepoPackage, readRepomd, streamFilelists, streamRepository } from '../repodata/index.js';
import { isRichDep, parseRichDep, type RichDep } from '../rpm/rich-deps.js';
import { present } from '../../common/errors.js';

/** One package of one repository, as the solver sees it. */
export interface Candidate {
  readonly pkg: RepoPackage;
  /** The repository directory it comes from. */
  readonly repo: string;
  /** Its position in the universe: repositories in order, packages in their metadata's order. */
  readonly id: number;
  /** name-[epoch:]version-release.arch (no epoch when it is 0). */
  readonly nevra: string;
  /** Every file path it ships (directories and ghosts included) once filelists are loaded. */
  readonly files: ReadonlySet<string>;
}

export interface Universe {
  readonly candidates: readonly Candidate[];
  readonly repos: readonly {
    readonly dir: string;
    readonly kind: 'repodata' | 'rpm-directory';
    readonly packages: number;
  }[];
  /** Name → candidates of that name. */
  readonly byName: ReadonlyMap<string, readonly Candidate[]>;
  /** Capability → candidates providing it (each package provides its own name too). */
  readonly byProvide: ReadonlyMap<string, readonly Candidate[]>;
  /** Path → candidates shipping it. */
  readonly byFile: ReadonlyMap<string, readonly Candidate[]>;
}

const formatNevra = (p: { name: string; epoch: number; version: string; release: string; arch: string }): string =>
  `${p.name}-${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}.${p.arch}`;

/** The capability and path names a dependency mentions (every leaf of a rich dependency). */
function dependencyNames(name: string): string[] {
  if (!isRichDep(name)) return [name];
  const out: string[] = [];
  const walk = (dep: RichDep): void => {
    switch (dep.op) {
      case 'dep':
        out.push(dep.name);
        break;
      case 'if':
      case 'unless':
        walk(dep.then);
        walk(dep.cond);
        if (dep.else) walk(dep.else);
        break;
      default:
        for (const arg of dep.args) walk(arg);
    }
  };
  walk(parseRichDep(name));
  return out;
}

/** A repository as the universe reads it: a directory, and what its configuration adds. */
export interface UniverseSource {
  readonly dir: string;
  /** dnf's priority (1–99, lower wins): a name offered by a lower number is taken from there only. */
  readonly priority: number;
  /** dnf's cost: the same NEVRA in repositories of one priority comes from the lowest cost. */
  readonly cost: number;
  /** Whether a package is offered at all (includepkgs/excludepkgs); all are when absent. */
  readonly keep?: (name: string, nevra: string) => boolean;
  /** Called before the directory's filelists.xml is read (a remote repository fetches it then). */
  readonly beforeFilelists?: () => Promise<void>;
}

/**
 * Reads every repository (in order; source packages left out) and indexes the packages. A plain
 * directory has priority 99 and cost 1000, dnf's defaults, so directories alone are read as before.
 */
export async function loadUniverse(sources: readonly (string | UniverseSource)[]): Promise<Universe> {
  const candidates: Candidate[] = [];
  const repos: Universe['repos'][number][] = [];
  const files = new Map<Candidate, Set<string>>();
  const bySource = sources.map(
    (s): UniverseSource => (typeof s === 'string' ? { dir: s, priority: 99, cost: 1000 } : s),
  );
  for (const source of bySource) {
    const { dir } = source;
    const read = await streamRepository(
      dir,
      (pkg) => {
        if (pkg.arch === 'src' || pkg.arch === 'nosrc') return;
        const nevra = formatNevra(pkg);
        if (source.keep && !source.keep(pkg.name, nevra)) return;
        const set = new Set(pkg.files.map((f) => f.path));
        const candidate: Candidate = { pkg, repo: dir, id: candidates.length, nevra, files: set };
        files.set(candidate, set);
        candidates.push(candidate);
      },
      { packageChecksums: true },
    );
    repos.push({ dir, ...read });
  }

  // Paths named by any dependency that no package's listed files cover: those need filelists.xml.
  const known = new Set<string>();
  for (const c of candidates) for (const path of c.files) known.add(path);
  const provided = new Set<string>();
  for (const c of candidates) for (const p of c.pkg.dependencies.provides) provided.add(p.name);
  let needFilelists = false;
  scan: for (const c of candidates) {
    for (const kind of ['requires', 'conflicts', 'recommends', 'supplements'] as const) {
      for (const dep of c.pkg.dependencies[kind]) {
        for (const name of dependencyNames(dep.name)) {
          if (name.startsWith('/') && !known.has(name) && !provided.has(name)) {
            needFilelists = true;
            break scan;
          }
        }
      }
    }
  }
  if (needFilelists) {
    for (const [index, repo] of repos.entries()) {
      if (repo.kind !== 'repodata') continue;
      await bySource[index]?.beforeFilelists?.();
      const byKey = new Map<string, Candidate>();
      for (const c of candidates) if (c.repo === repo.dir && c.pkg.checksum) byKey.set(c.pkg.checksum.value, c);
      await streamFilelists(repo.dir, await readRepomd(repo.dir), (entry) => {
        const c = byKey.get(entry.pkgid);
        if (!c) return;
        const set = present(files.get(c), "a candidate's file list");
        for (const f of entry.files) set.add(f.path);
      });
    }
  }

  return indexUniverse(preferByPriorityAndCost(candidates, new Map(bySource.map((s) => [s.dir, s]))), repos);
}

/** The universe of `kept` (ids are their positions), indexed by name, capability and path. */
export function indexUniverse(kept: Candidate[], repos: Universe['repos']): Universe {
  const byName = new Map<string, Candidate[]>();
  const byProvide = new Map<string, Candidate[]>();
  const byFile = new Map<string, Candidate[]>();
  const add = (map: Map<string, Candidate[]>, key: string, c: Candidate): void => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [c]);
    else if (list[list.length - 1] !== c) list.push(c);
  };
  for (const c of kept) {
    add(byName, c.pkg.name, c);
    add(byProvide, c.pkg.name, c);
    for (const p of c.pkg.dependencies.provides) add(byProvide, p.name, c);
    for (const path of c.files) add(byFile, path, c);
  }
  return { candidates: kept, repos, byName, byProvide, byFile };
}

/**
 * dnf's repository preferences, applied before solving: a package name offered by repositories
 * of several priorities is taken only from the best (lowest) one, and the same NEVRA offered by
 * several repositories of that priority only from the lowest cost (the first on a tie). With
 * equal settings everywhere, nothing is removed.
 */
function preferByPriorityAndCost(
  candidates: readonly Candidate[],
  sources: ReadonlyMap<string, UniverseSource>,
): Candidate[] {
  const of = (c: Candidate): UniverseSource => present(sources.get(c.repo), `source of ${c.nevra}`);
  const bestPriority = new Map<string, number>();
  for (const c of candidates)
    bestPriority.set(c.pkg.name, Math.min(bestPriority.get(c.pkg.name) ?? Infinity, of(c).priority));
  const cheapest = new Map<string, Candidate>();
  for (const c of candidates) {
    if (of(c).priority !== bestPriority.get(c.pkg.name)) continue;
    const seen = cheapest.get(c.nevra);
    if (seen === undefined || of(c).cost < of(seen).cost) cheapest.set(c.nevra, c);
  }
  const costs = new Set([...sources.values()].map((s) => s.cost));
  return candidates.filter(
    (c) => of(c).priority === bestPriority.get(c.pkg.name) && (costs.size === 1 || cheapest.get(c.nevra) === c),
  );
}
