// The first compose phases: the treefile's repositories loaded (remote ones through the yum cache)
// and its request resolved, the chosen remote packages fetched, then each chosen package's header read.
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { UsageError, assert, errnoCode, inStep, ioError } from '../common/errors.js';
import { forEachLimit } from '../common/for-each-limit.js';
import type { Checksum, Commit, Repo } from '../repo/index.js';
import type { ComposeProgress } from './compose.js';
import { pkgRefName } from './import.js';
import { type RpmHead, readRpmHead } from './rpm/read.js';
import { solve } from './solve/depsolve.js';
import { type Candidate, type Universe, type UniverseSource, loadUniverse } from './solve/universe.js';
import type { Treefile } from './treefile.js';
import { type YumRepoConfig, urlRepoConfig } from './yum/repo-file.js';
import { RepoSet, prepareCacheDir, readRepoDir } from './yum/repo-set.js';

export type Solved = ReturnType<typeof solve>;

export type Heads = ReadonlyMap<Candidate, RpmHead>;

export const headOf = (heads: Heads, c: Candidate): RpmHead => {
  const head = heads.get(c);
  assert(head !== undefined, `no header read for ${c.nevra}`);
  return head;
};

/** Where remote repositories are cached, and whether their metadata is fetched even when fresh. */
export interface RepoOptions {
  /** Default: `arbor-yum-cache` under tmpDir (or the system temp dir). */
  readonly cacheDir?: string;
  readonly tmpDir?: string;
  readonly refresh?: boolean;
}

/** The package cache directory a compose or `refresh-md` uses with these options. */
export const yumCacheDir = (options: RepoOptions): string =>
  options.cacheDir ?? join(options.tmpDir ?? tmpdir(), 'arbor-yum-cache');

/** dnf's $basearch for an rpm architecture. */
export function baseArch(arch: string): string {
  if (/^i[3-6]86$/.test(arch)) return 'i386';
  if (arch.startsWith('armv7')) return 'armhfp';
  return arch;
}

/**
 * The repositories a treefile's `repos` names, in its order: an `http(s)://` or `file://` URL is a
 * remote repository with that baseurl; an existing directory is read in place, as before; any
 * other entry is a repository id from the `.repo` files in the directory of the treefile naming it
 * (as rpm-ostree reads them); naming one enables it, as in rpm-ostree.
 */
export async function treefileRepos(
  treefile: Treefile,
): Promise<({ kind: 'dir'; dir: string } | { kind: 'remote'; config: YumRepoConfig })[]> {
  const vars = { basearch: baseArch(treefile.arch ?? hostArch()), releasever: treefile.releasever };
  const repoFiles = new Map<string, YumRepoConfig[]>();
  const out: Awaited<ReturnType<typeof treefileRepos>> = [];
  for (const entry of treefile.repos) {
    if (/^(https?|file):\/\//.test(entry)) {
      out.push({ kind: 'remote', config: urlRepoConfig(entry, treefile.path, vars) });
      continue;
    }
    let isDir: boolean | null = null;
    try {
      isDir = statSync(entry).isDirectory();
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw ioError('read', entry, error);
    }
    if (isDir === true) {
      out.push({ kind: 'dir', dir: entry });
      continue;
    }
    if (isDir === false) throw new UsageError('E_COMPOSE_REPO_MISSING', `repository '${entry}' is not a directory`);
    const filesDir = dirname(entry);
    let configs = repoFiles.get(filesDir);
    if (configs === undefined) {
      configs = (await readRepoDir(filesDir, vars)).repos;
      repoFiles.set(filesDir, configs);
    }
    const config = configs.find((c) => c.id === basename(entry));
    if (config === undefined)
      throw new UsageError(
        'E_COMPOSE_REPO_MISSING',
        `repository '${entry}' does not exist, and no .repo file in '${filesDir}' defines '${basename(entry)}' (named in ${treefile.path})`,
      );
    // As in rpm-ostree, naming a repository in the treefile enables it, whatever its `enabled` says.
    out.push({ kind: 'remote', config });
  }
  return out;
}

/**
 * Loads the repositories the treefile names (remote ones refreshed into the cache first) and
 * resolves its request against them. The caller closes the returned RepoSet.
 */
export async function resolvePackages(
  treefile: Treefile,
  progress: (p: ComposeProgress) => void,
  options: RepoOptions = {},
): Promise<{ universe: Universe; solved: Solved; remotes: RepoSet }> {
  const repos = await treefileRepos(treefile);
  const configs = repos.flatMap((r) => (r.kind === 'remote' ? [r.config] : []));
  if (configs.length > 0) await prepareCacheDir(yumCacheDir(options));
  const remotes = new RepoSet(configs, yumCacheDir(options));
  try {
    progress({ phase: 'resolve', done: 0, total: 1, detail: 'reading repositories' });
    const sources: (string | UniverseSource)[] = [];
    let next = 0;
    for (const r of repos) {
      if (r.kind === 'dir') {
        sources.push(r.dir);
        continue;
      }
      const remote = remotes.remotes[next++] as RepoSet['remotes'][number];
      progress({ phase: 'resolve', done: 0, total: 1, detail: `refreshing ${remote.config.id}` });
      await inStep(`refreshing repository '${remote.config.id}'`, () => remote.refresh(options.refresh === true));
      sources.push(remotes.source(remote));
    }
    const universe = await loadUniverse(sources);
    const solved = solve(universe, {
      packages: treefile.packages,
      exclude: treefile.excludePackages,
      installWeakDeps: treefile.installWeakDeps,
      arch: treefile.arch ?? hostArch(),
    });
    progress({ phase: 'resolve', done: 1, total: 1 });
    return { universe, solved, remotes };
  } catch (error) {
    remotes.close();
    throw error;
  }
}

/** The local file of each chosen package: fetched into the cache for remote repositories, in place otherwise. */
export type PackagePaths = ReadonlyMap<Candidate, string>;

/** Fetches the chosen packages of remote repositories; local ones keep their path. */
export async function fetchPackages(
  remotes: RepoSet,
  packages: readonly Candidate[],
  progress: (p: ComposeProgress) => void,
): Promise<PackagePaths> {
  const total = packages.filter((c) => remotes.has(c)).length;
  const fetched = await remotes.fetchPackages(packages, (done) => progress({ phase: 'download', done, total }));
  return new Map(packages.map((c) => [c, fetched.get(c) ?? packagePath(c)]));
}

export const pathOf = (paths: PackagePaths, c: Candidate): string => {
  const path = paths.get(c);
  assert(path !== undefined, `no local path for ${c.nevra}`);
  return path;
};

/**
 * Reads every chosen package's header (16 files at a time): package files must be local, and their
 * headers give the digests the input hash and the import cache use. Also reads the commits of
 * packages imported before into `commits` (16 at a time, where the cache checks and the assembly
 * would read them one by one); one that cannot be read is left out, to be read and reported where used.
 */
export async function readHeads(
  repo: Repo,
  packages: readonly Candidate[],
  paths: PackagePaths,
  commits: Map<Checksum, Commit> = new Map(),
): Promise<Heads> {
  const heads = new Map<Candidate, RpmHead>();
  await forEachLimit(packages, 16, async (c) => void heads.set(c, await readRpmHead(pathOf(paths, c))));
  await forEachLimit(packages, 16, async (c) => {
    const commit = repo.db.getRef(pkgRefName(c.pkg.name, c.pkg.epoch, c.pkg.version, c.pkg.release, c.pkg.arch));
    if (commit === undefined) return;
    const read = await repo.readCommitAsync(commit).catch(() => undefined);
    if (read !== undefined) commits.set(commit, read);
  });
  return heads;
}

/** The architecture packages are chosen for when none is named: the host's, in rpm's words. */
export function hostArch(): string {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
}

/** The file of a package of a local repository (E_COMPOSE_REPO_REMOTE when its location is not local). */
export function packagePath(c: Candidate): string {
  const href = c.pkg.location.href;
  if (c.pkg.location.base !== null && !c.pkg.location.base.startsWith('file:')) {
    throw new UsageError(
      'E_COMPOSE_REPO_REMOTE',
      `package ${c.nevra} lives at '${c.pkg.location.base}', which is not a local path; compose reads local repositories`,
    );
  }
  const base = c.pkg.location.base !== null ? c.pkg.location.base.replace(/^file:\/\//, '') : c.repo;
  return join(base, href);
}
