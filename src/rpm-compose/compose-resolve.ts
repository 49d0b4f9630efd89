// The first compose phases: the treefile's repositories loaded and its request resolved to the
// packages to install, then each chosen package's header read (with the local path it is read from).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, UsageError, assert, errnoCode, ioError } from '../common/errors.js';
import { forEachLimit } from '../common/for-each-limit.js';
import type { Repo } from '../repo/index.js';
import type { ComposeProgress } from './compose.js';
import { pkgRefName } from './import.js';
import { type RpmHead, readRpmHead } from './rpm/read.js';
import { solve } from './solve/depsolve.js';
import { type Candidate, type Universe, loadUniverse } from './solve/universe.js';
import type { Treefile } from './treefile.js';

export type Solved = ReturnType<typeof solve>;

export type Heads = ReadonlyMap<Candidate, RpmHead>;

export const headOf = (heads: Heads, c: Candidate): RpmHead => {
  const head = heads.get(c);
  assert(head !== undefined, `no header read for ${c.nevra}`);
  return head;
};

/** Loads the repositories the treefile names and resolves its request against them. */
export async function resolvePackages(
  treefile: Treefile,
  progress: (p: ComposeProgress) => void,
): Promise<{ universe: Universe; solved: Solved }> {
  for (const dir of treefile.repos) {
    try {
      if (!statSync(dir).isDirectory())
        throw new UsageError('E_COMPOSE_REPO_MISSING', `repository '${dir}' is not a directory`);
    } catch (error) {
      if (error instanceof ArborError) throw error;
      if (errnoCode(error) === 'ENOENT')
        throw new UsageError(
          'E_COMPOSE_REPO_MISSING',
          `repository '${dir}' does not exist (named in ${treefile.path})`,
        );
      throw ioError('read', dir, error);
    }
  }
  progress({ phase: 'resolve', done: 0, total: 1, detail: 'reading repositories' });
  const universe = await loadUniverse(treefile.repos);
  const solved = solve(universe, {
    packages: treefile.packages,
    exclude: treefile.excludePackages,
    installWeakDeps: treefile.installWeakDeps,
    arch: treefile.arch ?? hostArch(),
  });
  progress({ phase: 'resolve', done: 1, total: 1 });
  return { universe, solved };
}

/**
 * Reads every chosen package's header (16 files at a time): package files must be local, and their
 * headers give the digests the input hash and the import cache use. Also reads ahead the commits of
 * packages imported before, which the cache checks then read one by one.
 */
export async function readHeads(repo: Repo, packages: readonly Candidate[]): Promise<Heads> {
  const heads = new Map<Candidate, RpmHead>();
  await forEachLimit(packages, 16, async (c) => void heads.set(c, await readRpmHead(packagePath(c))));
  await forEachLimit(packages, 16, async (c) => {
    const commit = repo.db.getRef(pkgRefName(c.pkg.name, c.pkg.epoch, c.pkg.version, c.pkg.release, c.pkg.arch));
    if (commit !== undefined) await repo.readMetadataBytesAsync(commit, 'commit').catch(() => undefined); // read again (and reported) where used
  });
  return heads;
}

/** The architecture packages are chosen for when none is named: the host's, in rpm's words. */
export function hostArch(): string {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
}

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
