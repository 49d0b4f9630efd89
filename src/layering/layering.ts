// Package layering on a sysroot: the package directory that keeps every layered package file (so
// upgrades re-apply requests without fetching again), local files added to it, the derive step
// deploy and upgrade call (local repositories plus the host's), and what `status` shows.
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, errnoCode, ioError } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { type Deployment, type Derive, type DeriveTarget, type Sysroot, baseCommitOf } from '../deploy/index.js';
import type { Repo } from '../repo/index.js';
import { type LayerResult, findPackageFiles, layerTree, readPackageList, readRpmHead } from '../rpm-compose/index.js';
import { type HostRepos, readHostRepos } from './host-repos.js';
import {
  type LayerRequests,
  type LocalPackage,
  formatLayerRequests,
  hasRequests,
  parseLayerRequests,
} from './requests.js';

/** Where a sysroot keeps layered package files, as `SHA256.rpm`. */
const PACKAGE_DIR = 'arbor/layering/packages';

/** The sysroot's package directory, made when missing. */
export function packageDirOf(sysroot: Sysroot): string {
  const dir = join(sysroot.path, PACKAGE_DIR);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw ioError('create', dir, error);
  }
  return dir;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT')
      throw new ArborError('E_LAYER_FILE_MISSING', `package file '${path}' does not exist`, { cause: error });
    throw ioError('read', path, error);
  }
  return hash.digest('hex');
}

/** Copies a package file into the directory as SHA256.rpm (once: the name is its content). */
async function keepFile(dir: string, path: string): Promise<string> {
  const sha256 = await sha256File(path);
  const dest = join(dir, `${sha256}.rpm`);
  if (!existsSync(dest)) {
    const tmp = `${dest}.tmp-${process.pid}`;
    try {
      copyFileSync(path, tmp);
      renameSync(tmp, dest);
    } catch (error) {
      throw ioError('copy into the package directory', path, error);
    }
  }
  return sha256;
}

/** Reads and verifies package files the user names, and keeps them in the package directory. */
export async function storeLocalPackages(dir: string, paths: readonly string[]): Promise<LocalPackage[]> {
  const out: LocalPackage[] = [];
  for (const path of paths) {
    if (!existsSync(path))
      throw new ArborError('E_LAYER_FILE_MISSING', `package file '${path}' does not exist`, {
        hint: 'a name with a slash or ending in .rpm is read as a file',
      });
    const { pkg } = await readRpmHead(path);
    const nevra = `${pkg.name}-${pkg.epoch ? `${pkg.epoch}:` : ''}${pkg.version}-${pkg.release}.${pkg.arch}`;
    out.push({ sha256: await keepFile(dir, path), nevra });
  }
  return out;
}

/**
 * Package files for arguments, in order: a path as it is; NAME-[EPOCH:]VERSION-RELEASE[.ARCH] found in
 * the `--repo-dir` repositories or the host's enabled ones (of `target`'s merge deployment, fetched
 * and checked into the cache; the caller keeps the file in the package directory).
 */
export async function packageFilesOf(
  sysroot: Sysroot,
  target: DeriveTarget,
  repoDirs: readonly string[],
  args: readonly string[],
): Promise<string[]> {
  const specs = args.filter((a) => !isPackageFile(a));
  const remotes = specs.length > 0 ? await readHostRepos(sysroot, target.stateroot, target.merge) : undefined;
  const found = await findPackageFiles(specs, { repoDirs, ...(remotes !== undefined ? { remotes } : {}) });
  return args.map((a) => (isPackageFile(a) ? a : (found[specs.indexOf(a)] as string)));
}

/** Whether a command argument names a package file rather than a package. */
export const isPackageFile = (arg: string): boolean => arg.includes('/') || arg.endsWith('.rpm');

export interface DeriveOptions {
  /** Local repositories names are resolved in (besides the package directory and the host's repositories). */
  readonly repoDirs: readonly string[];
  /** The requests to apply; default: the merge deployment's (upgrade, rebase, deploy). */
  readonly requests?: LayerRequests;
  /** Called with what layering did, for the command's report. */
  readonly onResult?: (result: LayerResult) => void;
}

/** The derive step (DeployOptions.derive): the requests applied to the new base, committed. */
export function deriveWith(sysroot: Sysroot, options: DeriveOptions): Derive {
  return async (base, from, target) => {
    const requests = options.requests ?? parseLayerRequests(from, 'the merge deployment');
    // The new origin records the layering groups only, as a plain deploy records no extra groups.
    const extra = formatLayerRequests(new Map(), requests);
    // No requests: layerTree gives the base itself (and the report says so) without the directory.
    const packageDir = hasRequests(requests) ? packageDirOf(sysroot) : join(sysroot.path, PACKAGE_DIR);
    const result = await layerTree(sysroot.repo, base, toLayerRequest(requests), {
      repoDirs: options.repoDirs,
      ...(await remotesFor(sysroot, requests, target)),
      packageDir,
    });
    // Kept, so the next upgrade can re-apply the request without the repository.
    for (const p of result.added) if (p.repo !== packageDir) await keepFile(packageDir, p.path);
    options.onResult?.(result);
    return { commit: result.commit as Checksum, extra };
  };
}

/** A dry run: what applying `requests` to `base` would add, remove and replace (`target` as for Derive). */
export async function planLayer(
  sysroot: Sysroot,
  base: Checksum,
  requests: LayerRequests,
  repoDirs: readonly string[],
  target: DeriveTarget,
): Promise<LayerResult> {
  return layerTree(sysroot.repo, base, toLayerRequest(requests), {
    repoDirs,
    ...(await remotesFor(sysroot, requests, target)),
    packageDir: packageDirOf(sysroot),
    dryRun: true,
  });
}

/**
 * The host's repositories and dnf.conf settings, read only when there are requests: a deploy or
 * upgrade of a deployment without layering must not depend on them (nor fail on a broken file).
 */
async function remotesFor(
  sysroot: Sysroot,
  requests: LayerRequests,
  target: DeriveTarget,
): Promise<{ remotes?: HostRepos; installWeakDeps?: boolean }> {
  if (!hasRequests(requests)) return {};
  const remotes = await readHostRepos(sysroot, target.stateroot, target.merge);
  // dnf.conf's install_weak_deps is read afresh on every derive: the whole request is resolved
  // again each time, so a per-command choice would not survive the next upgrade.
  return { remotes, installWeakDeps: remotes.installWeakDeps };
}

const toLayerRequest = (r: LayerRequests) => ({
  packages: r.packages,
  localPackages: r.localPackages.map((p) => p.sha256),
  removals: r.removals,
  replacements: r.replacements.map((p) => p.sha256),
});

/** A deployment's layering in rpm-ostree's words; null when it has none. */
export interface LayeringStatus {
  readonly baseCommit: Checksum;
  readonly layeredPackages: readonly string[];
  readonly localPackages: readonly string[];
  readonly removedBasePackages: readonly string[];
  /** `FROM -> TO` NEVRAs. */
  readonly replacedBasePackages: readonly string[];
}

/** What `status` shows of a deployment's layering (from its origin and its commit's metadata). */
export function layeringStatus(repo: Repo, d: Deployment): LayeringStatus | null {
  const requests = parseLayerRequests(d.origin.extra, `${d.checksum}.${d.serial}.origin`);
  if (!hasRequests(requests)) return null;
  const baseCommit = baseCommitOf(repo, d.checksum);
  const basePackages = repo.hasObject(baseCommit, 'commit') ? (readPackageList(repo, baseCommit) ?? []) : [];
  const nevraOf = (name: string): string => basePackages.find((p) => p.name === name)?.nevra ?? name;
  return {
    baseCommit,
    layeredPackages: requests.packages,
    localPackages: requests.localPackages.map((p) => p.nevra),
    removedBasePackages: requests.removals.map(nevraOf),
    replacedBasePackages: requests.replacements.map(
      (p) => `${nevraOf(p.nevra.replace(/-[^-]+-[^-]+$/, ''))} -> ${p.nevra}`,
    ),
  };
}
