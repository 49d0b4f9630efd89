// The import phase: which chosen packages are imported and which reuse their cached commits, in
// parallel lanes, the packages shipping /etc/passwd and /etc/group first so the rest use their owners.
import { availableParallelism } from 'node:os';
import { forEachLimit } from '../common/for-each-limit.js';
import { type Checksum, type Commit, type Repo, isSymlink } from '../repo/index.js';
import type { ComposeOptions, ComposeProgress } from './compose.js';
import { type Heads, type PackagePaths, type Solved, headOf, pathOf } from './compose-resolve.js';
import { ImportBatch, type OwnerMap, importedCommit, loadOwnerMap } from './import.js';
import type { Candidate, Universe } from './solve/universe.js';
import { present } from '../common/errors.js';

/**
 * Which packages importing reads and which it reuses. The packages shipping /etc/passwd and
 * /etc/group are imported first, so the rest map owners by the tree's own user database (as rpm
 * does when it installs into a root).
 */
export class ImportPlan {
  readonly #userDb: readonly Candidate[];
  readonly #hostOwners: OwnerMap;
  readonly #repoKind: ReadonlyMap<string, string>;

  constructor(
    readonly repo: Repo,
    universe: Universe,
    readonly solved: Solved,
    readonly heads: Heads,
    readonly paths: PackagePaths,
    options: ComposeOptions,
    /** Package commits read already (readHeads), by checksum. */
    readonly commits: ReadonlyMap<Checksum, Commit> = new Map(),
  ) {
    this.#userDb = solved.packages.filter((c) => c.files.has('/etc/passwd') || c.files.has('/etc/group'));
    this.#hostOwners = loadOwnerMap(options.passwd, options.group);
    this.#repoKind = new Map(universe.repos.map((r) => [r.dir, r.kind]));
  }

  /** Whether importing would reuse the package's cached commit (for dry runs). */
  isCached(c: Candidate): boolean {
    const owners = this.#userDb.includes(c) ? this.#hostOwners : this.#cachedOwners();
    return importedCommit(this.repo, headOf(this.heads, c), { owners, commits: this.commits }).commit !== null;
  }

  #cachedOwnersMemo: OwnerMap | undefined;
  #cachedOwners(): OwnerMap {
    if (this.#cachedOwnersMemo) return this.#cachedOwnersMemo;
    const commits = this.#userDb.map(
      (c) =>
        importedCommit(this.repo, headOf(this.heads, c), { owners: this.#hostOwners, commits: this.commits }).commit,
    );
    this.#cachedOwnersMemo = commits.every((c) => c !== null)
      ? treeOwners(this.repo, commits as Checksum[], this.#hostOwners, this.commits)
      : this.#hostOwners;
    return this.#cachedOwnersMemo;
  }

  /** Imports every package (or reuses its cached commit); returns each one's package commit. */
  async importAll(
    progress: (p: ComposeProgress) => void,
  ): Promise<{ commits: Map<Candidate, Checksum>; imported: Set<Candidate> }> {
    const commits = new Map<Candidate, Checksum>();
    const imported = new Set<Candidate>();
    const total = this.solved.packages.length;
    const importList = async (list: readonly Candidate[], owners: OwnerMap): Promise<void> => {
      // One batch (transaction) per lane: a batch is not for concurrent use.
      const lanes = Math.min(list.length, Math.max(2, availableParallelism()));
      const batches = Array.from(
        { length: lanes },
        () => new ImportBatch(this.repo, { owners, commits: this.commits }),
      );
      try {
        await forEachLimit(list, lanes, async (c, lane) => {
          progress({ phase: 'import', done: commits.size, total, detail: c.nevra });
          const expectedChecksum = this.#repoKind.get(c.repo) === 'repodata' ? c.pkg.checksum : null;
          const result = await present(batches[lane], `import lane ${lane}`).add(pathOf(this.paths, c), {
            expectedChecksum,
            head: headOf(this.heads, c),
          });
          commits.set(c, result.commit);
          if (!result.cached) imported.add(c);
        });
        for (const batch of batches) batch.finish();
      } catch (error) {
        for (const batch of batches) batch.abort();
        throw error;
      }
    };
    await importList(this.#userDb, this.#hostOwners);
    const owners = treeOwners(
      this.repo,
      this.#userDb.map((c) => present(commits.get(c), `commit of ${c.nevra}`)),
      this.#hostOwners,
      this.commits,
    );
    await importList(
      this.solved.packages.filter((c) => !commits.has(c)),
      owners,
    );
    progress({ phase: 'import', done: commits.size, total });
    return { commits, imported };
  }
}

/** Owners from the tree's /etc/passwd and /etc/group (first package that ships each), over the host's. */
function treeOwners(
  repo: Repo,
  commits: readonly Checksum[],
  fallback: OwnerMap,
  known: ReadonlyMap<Checksum, Commit>,
): OwnerMap {
  const users = new Map(fallback.users);
  const groups = new Map(fallback.groups);
  const parse = (text: string, into: Map<string, number>): void => {
    for (const line of text.split('\n')) {
      const fields = line.split(':');
      if (fields.length >= 3 && fields[0] && /^\d+$/.test(fields[2] ?? '')) into.set(fields[0], Number(fields[2]));
    }
  };
  for (const [path, into] of [
    ['/etc/passwd', users],
    ['/etc/group', groups],
  ] as const) {
    for (const commit of commits) {
      const content = readTreeFile(repo, (known.get(commit) ?? repo.readCommit(commit)).rootTree, path);
      if (content !== null) {
        parse(content.toString('utf8'), into);
        break;
      }
    }
  }
  return { users, groups };
}

/** The content of a regular file in a stored tree (following no symlinks), or null. */
function readTreeFile(repo: Repo, rootTree: Checksum, path: string): Buffer | null {
  const parts = path.split('/').filter((p) => p !== '');
  let tree = rootTree;
  for (const [i, part] of parts.entries()) {
    const dir = repo.readDirTree(tree);
    if (i === parts.length - 1) {
      const file = dir.files.find((f) => f.name === part);
      if (!file) return null;
      const { header, content } = repo.loadFile(file.checksum);
      return isSymlink(header.mode) ? null : content;
    }
    const sub = dir.dirs.find((d) => d.name === part);
    if (!sub) return null;
    tree = sub.tree;
  }
  return null;
}
