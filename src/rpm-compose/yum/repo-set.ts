// The remote repositories of one run (a compose or `refresh-md`): their `.repo` files read, one
// cache directory checked and shared, metadata refreshed, and the chosen packages fetched in parallel.
import { lstat, mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { ArborError, UsageError, errnoCode, ioError } from '../../common/errors.js';
import { forEachLimit } from '../../common/for-each-limit.js';
import type { Candidate, UniverseSource } from '../solve/universe.js';
import { FetcherPool, type RefreshReport, RemoteRepo } from './remote-repo.js';
import { DNF_MAIN_DEFAULTS, type DnfMain, type RepoVariables, type YumRepoConfig, parseRepoFile } from './repo-file.js';

/** Packages fetched at once: enough to fill a link, few enough to be polite to a mirror. */
const DOWNLOAD_CONCURRENCY = 4;

/**
 * Reads every `*.repo` file of a directory (in name order) into repository configs; an id defined
 * twice is E_YUM_REPO_INVALID. A missing directory has no repositories. `main` gives the defaults dnf.conf sets.
 */
export async function readRepoDir(
  dir: string,
  vars: RepoVariables,
  main: DnfMain = DNF_MAIN_DEFAULTS,
): Promise<{ repos: YumRepoConfig[]; ignoredKeys: string[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.repo')).sort();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return { repos: [], ignoredKeys: [] };
    throw ioError('read', dir, error);
  }
  const repos: YumRepoConfig[] = [];
  const ignoredKeys: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw ioError('read', path, error);
    }
    const parsed = parseRepoFile(text, path, vars, main);
    for (const repo of parsed.repos) {
      const twin = repos.find((r) => r.id === repo.id);
      if (twin)
        throw new UsageError(
          'E_YUM_REPO_INVALID',
          `${repo.source}: repository '${repo.id}' is also defined at ${twin.source}`,
          {
            hint: 'give each repository its own id',
          },
        );
      repos.push(repo);
    }
    ignoredKeys.push(...parsed.ignoredKeys.map((k) => `${path}: ${k}`));
  }
  return { repos, ignoredKeys };
}

/**
 * Creates the cache directory when missing (0700) and refuses one that another user owns or others
 * can write: its files are trusted once verified, and a default under the shared temp directory
 * must not be one an attacker prepared (E_YUM_CACHE_UNSAFE).
 */
export async function prepareCacheDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw ioError('create', path, error);
  }
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (error) {
    throw ioError('read', path, error);
  }
  const uid = process.getuid?.() ?? st.uid;
  const problem = !st.isDirectory()
    ? 'is not a directory (a symlink is refused)'
    : st.uid !== uid
      ? `is owned by uid ${st.uid}, not by this user (uid ${uid})`
      : (st.mode & 0o022) !== 0
        ? 'is writable by other users'
        : undefined;
  if (problem !== undefined)
    throw new ArborError('E_YUM_CACHE_UNSAFE', `package cache '${path}' ${problem}`, {
      hint: 'remove it, or name another directory with --cachedir',
    });
}

/** Failures of this machine rather than of the repository: skip_if_unavailable never hides them. */
const LOCAL_FAILURES = new Set(['E_IO', 'E_NO_SPACE', 'E_PERMISSION', 'E_YUM_CACHE_UNSAFE']);

/**
 * Refreshes one repository (RemoteRepo.refresh). With skip_if_unavailable=1, a failure of the
 * repository (unreachable, broken or badly signed metadata: dnf's "for any reason") is returned as
 * `skipped` instead of thrown, and the caller leaves the repository out, as dnf disables it.
 */
export async function refreshOrSkip(remote: RemoteRepo, force = false): Promise<RefreshReport> {
  try {
    return await remote.refresh(force);
  } catch (error) {
    if (!remote.config.skipIfUnavailable || !(error instanceof ArborError) || LOCAL_FAILURES.has(error.code))
      throw error;
    const skipped = { code: error.code, message: error.message };
    return { id: remote.config.id, fetched: false, revision: null, mirror: null, skipped };
  }
}

/** Remote repositories sharing one cache and one set of connections. */
export class RepoSet {
  readonly pool: FetcherPool;
  readonly remotes: readonly RemoteRepo[];
  readonly #byDir: ReadonlyMap<string, RemoteRepo>;

  /** `fileRoot`: where `file://` URLs are read (see FetcherPool). */
  constructor(configs: readonly YumRepoConfig[], cacheDir: string, nowMs: () => number = Date.now, fileRoot = '/') {
    this.pool = new FetcherPool(DOWNLOAD_CONCURRENCY, fileRoot);
    this.remotes = configs.map((config) => new RemoteRepo(config, cacheDir, this.pool, nowMs));
    this.#byDir = new Map(this.remotes.map((r) => [r.dir, r]));
  }

  /** Refreshes every repository's metadata (see refreshOrSkip), one after another. */
  async refresh(force: boolean, onRepo: (report: RefreshReport) => void = () => undefined): Promise<RefreshReport[]> {
    const reports: RefreshReport[] = [];
    for (const remote of this.remotes) {
      const report = await refreshOrSkip(remote, force);
      reports.push(report);
      onRepo(report);
    }
    return reports;
  }

  /** The universe's view of a remote repository: its cache directory and its configuration. */
  source(remote: RemoteRepo): UniverseSource {
    const { includepkgs, excludepkgs, priority, cost } = remote.config;
    const include = includepkgs.length > 0 ? picomatch([...includepkgs]) : null;
    const exclude = excludepkgs.length > 0 ? picomatch([...excludepkgs]) : null;
    return {
      dir: remote.dir,
      priority,
      cost,
      keep: (name, nevra) =>
        (include === null || include(name) || include(nevra)) &&
        !(exclude !== null && (exclude(name) || exclude(nevra))),
      beforeFilelists: () => remote.ensureFilelists(),
    };
  }

  /** How messages and reports name a candidate's repository: its id when remote, else its directory. */
  repoName(c: Candidate): string {
    return this.#byDir.get(c.repo)?.config.id ?? c.repo;
  }

  /** Whether a candidate comes from one of these repositories. */
  has(c: Candidate): boolean {
    return this.#byDir.has(c.repo);
  }

  /**
   * Fetches the remote ones among `candidates` (DOWNLOAD_CONCURRENCY at a time) and returns each
   * one's local file in the package cache; `onDone` counts them.
   */
  async fetchPackages(
    candidates: readonly Candidate[],
    onDone: (done: number) => void,
  ): Promise<Map<Candidate, string>> {
    const paths = new Map<Candidate, string>();
    const remote = candidates.filter((c) => this.has(c));
    await forEachLimit(remote, DOWNLOAD_CONCURRENCY, async (c) => {
      const repo = this.#byDir.get(c.repo) as RemoteRepo;
      paths.set(
        c,
        await repo.fetchPackage({
          nevra: c.nevra,
          href: c.pkg.location.href,
          base: c.pkg.location.base,
          checksum: c.pkg.checksum,
          sizeBytes: c.pkg.sizes.packageBytes,
        }),
      );
      onDone(paths.size);
    });
    return paths;
  }

  close(): void {
    this.pool.close();
  }
}
