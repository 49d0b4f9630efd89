// The remote repositories a host layers packages from: the enabled `.repo` files of its merge
// deployment's /etc/yum.repos.d (the running /etc on a booted host) with the defaults of its
// /etc/dnf/dnf.conf, cached under the stateroot's /var, `file://` URLs read inside that deployment.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, ioError } from '../common/errors.js';
import { type Deployment, type Sysroot, readFileInRoot, resolveInRoot } from '../deploy/index.js';
import {
  DNF_MAIN_DEFAULTS,
  type DnfMain,
  type EnabledRepos,
  type LayerRemotes,
  parseDnfMain,
  readEnabledRepos,
} from '../rpm-compose/index.js';

/** Where a deployment keeps its `.repo` files, as dnf reads them. */
const REPOS_DIR = '/etc/yum.repos.d';
/** The cache below the stateroot's /var (so the running host sees it as /var/cache/arbor/yum). */
const CACHE_DIR = 'var/cache/arbor/yum';
/** dnf's configuration, whose [main] sets install_weak_deps and the repositories' skip_if_unavailable. */
const DNF_CONF = '/etc/dnf/dnf.conf';
/** Bound on an os-release file (a few hundred bytes in practice). */
const MAX_OS_RELEASE_BYTES = 64 * 1024;
/** Bound on dnf.conf (a few hundred bytes in practice; dnf reads it whole too). */
const MAX_DNF_CONF_BYTES = 1024 * 1024;

/** A host's repositories: what layering and `refresh-md` take, and the `.repo` keys they ignore. */
export interface HostRepos extends LayerRemotes, EnabledRepos {
  readonly fileRoot: string;
  /** dnf.conf's install_weak_deps: whether layering installs Recommends and Supplements. */
  readonly installWeakDeps: boolean;
}

/**
 * The repositories of the stateroot's merge deployment (none without one), for `arch` (default:
 * the host's). `$releasever` is os-release's VERSION_ID of that deployment, as dnf derives it; its
 * dnf.conf [main] gives install_weak_deps and the default skip_if_unavailable (dnf's defaults without one).
 */
export async function readHostRepos(
  sysroot: Sysroot,
  stateroot: string,
  merge: Deployment | null,
  arch: string | null = null,
): Promise<HostRepos> {
  const cacheDir = join(sysroot.staterootDir(stateroot), CACHE_DIR);
  const { installWeakDeps } = DNF_MAIN_DEFAULTS;
  if (merge === null) return { configs: [], ignoredKeys: [], cacheDir, fileRoot: '/', installWeakDeps };
  const root = sysroot.deploymentPath(merge);
  const main = dnfMainOf(root);
  const dir = resolveInRoot(root, REPOS_DIR);
  const repos = dir.ok
    ? await readEnabledRepos(dir.path, arch, releaseverOf(root), main)
    : { configs: [], ignoredKeys: [] };
  return { ...repos, cacheDir, fileRoot: isRunningRoot(root) ? '/' : root, installWeakDeps: main.installWeakDeps };
}

/** The deployment's dnf.conf [main] settings; dnf's defaults when it has none. */
function dnfMainOf(root: string): DnfMain {
  const text = readFileInRoot(root, DNF_CONF, MAX_DNF_CONF_BYTES)?.toString('utf8');
  return text === undefined ? DNF_MAIN_DEFAULTS : parseDnfMain(text, join(root, DNF_CONF));
}

/** VERSION_ID of the deployment's os-release, or null when it has none. */
function releaseverOf(root: string): string | null {
  for (const file of ['/usr/lib/os-release', '/etc/os-release']) {
    const text = readFileInRoot(root, file, MAX_OS_RELEASE_BYTES)?.toString('utf8');
    const value = text === undefined ? undefined : /^VERSION_ID=(.*)$/m.exec(text)?.[1]?.replace(/^["']|["']$/g, '');
    if (value !== undefined && /^[A-Za-z0-9._-]+$/.test(value)) return value;
  }
  return null;
}

/**
 * Whether the deployment directory is the running system's root (a booted host sees it at both
 * paths): then its `file://` URLs are read as they are, else below the directory (`--sysroot`).
 */
function isRunningRoot(root: string): boolean {
  try {
    const here = statSync(root);
    const running = statSync('/');
    return here.dev === running.dev && here.ino === running.ino;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw ioError('read', root, error);
  }
}
