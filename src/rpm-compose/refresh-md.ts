// `arbor refresh-md`: the remote repositories of a treefile or of a `.repo` directory brought up
// to date in the metadata cache compose reads, without resolving or composing anything.
import { type RepoOptions, baseArch, hostArch, treefileRepos, yumCacheDir } from './compose-resolve.js';
import type { Treefile } from './treefile.js';
import type { RefreshReport } from './yum/remote-repo.js';
import type { YumRepoConfig } from './yum/repo-file.js';
import { RepoSet, prepareCacheDir, readRepoDir } from './yum/repo-set.js';

/** Which repositories to refresh: a treefile's, or every enabled one of a directory of `.repo` files. */
export type RefreshSource =
  | { readonly treefile: Treefile }
  | { readonly reposDir: string; readonly arch: string | null; readonly releasever: string | null };

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
 * metadata_expire, unless `force`); local directories a treefile names are left alone.
 */
export async function refreshMetadata(
  source: RefreshSource,
  options: RepoOptions & { readonly force: boolean; readonly onRepo?: (report: RefreshReport) => void },
): Promise<RefreshResult> {
  let configs: YumRepoConfig[];
  let ignoredKeys: string[] = [];
  if ('treefile' in source) {
    configs = (await treefileRepos(source.treefile)).flatMap((r) => (r.kind === 'remote' ? [r.config] : []));
  } else {
    const read = await readRepoDir(source.reposDir, {
      basearch: baseArch(source.arch ?? hostArch()),
      releasever: source.releasever,
    });
    configs = read.repos.filter((r) => r.enabled);
    ignoredKeys = read.ignoredKeys;
  }
  const cacheDir = yumCacheDir(options);
  if (configs.length > 0) await prepareCacheDir(cacheDir);
  const remotes = new RepoSet(configs, cacheDir);
  try {
    const repos = await remotes.refresh(options.force, options.onRepo);
    return { cacheDir, repos, ignoredKeys, requests: remotes.pool.requests };
  } finally {
    remotes.close();
  }
}
