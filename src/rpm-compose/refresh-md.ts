// `arbor refresh-md`: the remote repositories of a treefile or of a `.repo` directory (a host's
// too) brought up to date in the metadata cache compose or layering reads, resolving nothing.
import { type RepoOptions, baseArch, hostArch, treefileRepos, yumCacheDir } from './compose-resolve.js';
import type { Treefile } from './treefile.js';
import type { RefreshReport } from './yum/remote-repo.js';
import type { DnfMain, YumRepoConfig } from './yum/repo-file.js';
import { RepoSet, prepareCacheDir, readRepoDir } from './yum/repo-set.js';

/**
 * Which repositories to refresh: a treefile's, every enabled one of a directory of `.repo` files,
 * or those a host's layering uses (readEnabledRepos, `file://` URLs read below `fileRoot`).
 */
export type RefreshSource =
  | { readonly treefile: Treefile }
  | { readonly reposDir: string; readonly arch: string | null; readonly releasever: string | null }
  | { readonly host: EnabledRepos; readonly fileRoot: string };

/** The enabled repositories of a `.repo` directory, and the keys of its files Arbor ignores. */
export interface EnabledRepos {
  readonly configs: readonly YumRepoConfig[];
  readonly ignoredKeys: readonly string[];
}

/**
 * Reads the enabled repositories of a directory of `.repo` files for `arch` (default: the host's),
 * with dnf.conf's defaults `main` when given; none when the directory is missing.
 */
export async function readEnabledRepos(
  reposDir: string,
  arch: string | null,
  releasever: string | null,
  main?: DnfMain,
): Promise<EnabledRepos> {
  const read = await readRepoDir(reposDir, { basearch: baseArch(arch ?? hostArch()), releasever }, main);
  return { configs: read.repos.filter((r) => r.enabled), ignoredKeys: read.ignoredKeys };
}

/** What refresh-md did: per repository, and the keys of `.repo` files it ignored (as dnf does). */
export interface RefreshResult {
  readonly cacheDir: string;
  readonly repos: readonly RefreshReport[];
  readonly ignoredKeys: readonly string[];
  /** HTTP (or file) requests made. */
  readonly requests: number;
}

/**
 * Refreshes the metadata of the source's remote repositories in the cache (only those older than
 * metadata_expire, unless `force`); local directories a treefile names are left alone. A `.repo`
 * repository with skip_if_unavailable=1 that fails is reported as skipped, as dnf skips it.
 */
export async function refreshMetadata(
  source: RefreshSource,
  options: RepoOptions & { readonly force: boolean; readonly onRepo?: (report: RefreshReport) => void },
): Promise<RefreshResult> {
  const { configs, ignoredKeys }: EnabledRepos =
    'treefile' in source
      ? {
          // As compose reads them: a composed tree never goes without one of its repositories.
          configs: (await treefileRepos(source.treefile)).flatMap((r) =>
            r.kind === 'remote' ? [{ ...r.config, skipIfUnavailable: false }] : [],
          ),
          ignoredKeys: [],
        }
      : 'host' in source
        ? source.host
        : await readEnabledRepos(source.reposDir, source.arch, source.releasever);
  const cacheDir = yumCacheDir(options);
  if (configs.length > 0) await prepareCacheDir(cacheDir);
  const remotes = new RepoSet(configs, cacheDir, Date.now, 'host' in source ? source.fileRoot : '/');
  try {
    const repos = await remotes.refresh(options.force, options.onRepo);
    return { cacheDir, repos, ignoredKeys, requests: remotes.pool.requests };
  } finally {
    remotes.close();
  }
}
