// `arbor compose tree`: a treefile and package repositories in, one OS commit out. The pipeline
// (docs/compose.md): load the repositories, resolve the request, hash the inputs (and stop there
// with --unless-changed when nothing changed), import the chosen packages (each package is
// imported once and cached on its pkg/ ref), assemble their trees by object ids, run scriptlets
// and postprocess scripts in a sandbox, apply the treefile's edits (remove-files, units, default
// target, kernel and initramfs), write the rpm database, reshape for an image-based OS and commit.
// Everything before the final ref update happens in one transaction: a failure leaves the ref as
// it was (only the package cache may have grown).
import { tmpdir } from 'node:os';
import { inStep } from '../common/errors.js';
import { type Checksum, type Commit, type Repo, encodeCommit } from '../repo/index.js';
import { assemble } from './compose-assemble.js';
import { composeCommit, computeInputHash, nextVersion } from './compose-commit.js';
import { ImportPlan } from './compose-import.js';
import {
  type PackagePaths,
  type Solved,
  fetchPackages,
  headOf,
  readHeads,
  resolvePackages,
} from './compose-resolve.js';
import { writeTreeRpmdb } from './compose-rpmdb.js';
import { applyTreefile } from './compose-treefile.js';
import { postprocessTree } from './postprocess.js';
import type { Candidate, Universe } from './solve/universe.js';
import type { Treefile } from './treefile.js';

export interface ComposeOptions {
  /** Resolve and report only: nothing is imported or committed. */
  readonly dryRun?: boolean;
  /** Make no commit when the input hash equals the parent commit's. */
  readonly unlessChanged?: boolean;
  /** Skip every scriptlet (recorded in the commit metadata). */
  readonly noScripts?: boolean;
  /** passwd/group files for owners not in the tree's own /etc/passwd and /etc/group. */
  readonly passwd?: string;
  readonly group?: string;
  /** Where scratch directories go (default: the OS temp dir). */
  readonly tmpDir?: string;
  /** Where remote repositories' metadata and packages are cached (default: `arbor-yum-cache` under tmpDir). */
  readonly cacheDir?: string;
  /** Fetch remote metadata even when it is younger than metadata_expire. */
  readonly refresh?: boolean;
  readonly onProgress?: (progress: ComposeProgress) => void;
}

export interface ComposeProgress {
  readonly phase: 'resolve' | 'download' | 'import' | 'assemble' | 'scripts' | 'postprocess' | 'commit';
  readonly done: number;
  readonly total: number;
  readonly detail?: string;
}

interface ComposedPackage {
  readonly nevra: string;
  /** The repository it comes from: the directory, or the id of a remote repository. */
  readonly repo: string;
  readonly why: string;
  readonly packageBytes: number;
  readonly installedBytes: number;
  /** Whether it was (or, on a dry run, would be) read from the repository rather than reused. */
  readonly imported: boolean;
}

export interface ComposeResult {
  readonly ref: string;
  /** The new commit; the parent's when nothing changed; null on a dry run. */
  readonly commit: Checksum | null;
  readonly parent: Checksum | null;
  readonly changed: boolean;
  readonly version: string | null;
  readonly inputHash: string;
  readonly packages: readonly ComposedPackage[];
  /** On a dry run: what importing would read and write. */
  readonly importBytes: { readonly download: number; readonly installed: number };
  readonly scripts: { readonly ran: readonly string[]; readonly skipped: readonly string[] };
  readonly kernel: { readonly version: string; readonly initramfs: boolean } | null;
  readonly removedFiles: number;
  readonly droppedVarFiles: readonly string[];
  /** Wall time of each phase that ran, in milliseconds, in the order they ran. */
  readonly phaseMs: Readonly<Record<string, number>>;
}

/** Runs one phase under inStep, adding its wall time (ms) to `into` under `name`. */
async function timedStep<T>(
  into: Record<string, number>,
  name: string,
  step: string,
  run: () => Promise<T> | T,
): Promise<T> {
  const start = performance.now();
  try {
    return await inStep(step, async () => run());
  } finally {
    into[name] = Math.round((into[name] ?? 0) + performance.now() - start);
  }
}

/** Runs the compose (see the module comment); each phase below names itself in a failure. */
export async function composeTree(
  repo: Repo,
  treefile: Treefile,
  options: ComposeOptions = {},
): Promise<ComposeResult> {
  const progress = options.onProgress ?? ((): void => undefined);
  const phaseMs: Record<string, number> = {};
  const { universe, solved, remotes } = await timedStep(phaseMs, 'resolve', 'resolving packages', () =>
    resolvePackages(treefile, progress, options),
  );
  try {
    const paths = await timedStep(phaseMs, 'download', 'downloading packages', () =>
      fetchPackages(remotes, solved.packages, progress),
    );
    return await composeResolved(repo, treefile, options, progress, phaseMs, {
      universe,
      solved,
      paths,
      repoName: (c) => remotes.repoName(c),
    });
  } finally {
    remotes.close();
  }
}

async function composeResolved(
  repo: Repo,
  treefile: Treefile,
  options: ComposeOptions,
  progress: (p: ComposeProgress) => void,
  phaseMs: Record<string, number>,
  resolved: { universe: Universe; solved: Solved; paths: PackagePaths; repoName: (c: Candidate) => string },
): Promise<ComposeResult> {
  const { universe, solved, paths } = resolved;
  const pkgCommits = new Map<Checksum, Commit>();
  const heads = await timedStep(phaseMs, 'headers', 'reading package headers', () =>
    readHeads(repo, solved.packages, paths, pkgCommits),
  );
  const parent = repo.db.getRef(treefile.ref) ?? null;
  const parentMeta = parent === null ? null : repo.readCommit(parent).metadata;
  const inputHash = computeInputHash(
    treefile,
    solved.packages.map((c) => headOf(heads, c)),
    options,
  );
  const plan = new ImportPlan(repo, universe, solved, heads, paths, options, pkgCommits);
  const described = (imported: (c: Candidate) => boolean): ComposedPackage[] =>
    solved.packages.map((c) => ({
      nevra: c.nevra,
      repo: resolved.repoName(c),
      why: solved.why.get(c) ?? '',
      packageBytes: c.pkg.sizes.packageBytes,
      installedBytes: c.pkg.sizes.installedBytes,
      imported: imported(c),
    }));
  const base = {
    ref: treefile.ref,
    parent,
    inputHash,
    scripts: { ran: [], skipped: [] },
    kernel: null,
    removedFiles: 0,
    droppedVarFiles: [],
    phaseMs,
  };
  const unchanged = parentMeta?.get('arbor.compose.input-hash')?.value === inputHash;

  if (options.dryRun) {
    const packages = described((c) => !plan.isCached(c));
    const toImport = packages.filter((p) => p.imported);
    return {
      ...base,
      commit: null,
      changed: !unchanged,
      version: nextVersion(treefile, parentMeta),
      packages,
      importBytes: {
        download: sum(toImport.map((p) => p.packageBytes)),
        installed: sum(toImport.map((p) => p.installedBytes)),
      },
    };
  }
  if (options.unlessChanged && parent !== null && unchanged) {
    const version = parentMeta?.get('version');
    return {
      ...base,
      commit: parent,
      changed: false,
      version: version?.type === 'string' ? version.value : null,
      packages: described(() => false),
      importBytes: { download: 0, installed: 0 },
    };
  }

  const { commits, imported } = await timedStep(phaseMs, 'import', 'importing packages', () =>
    plan.importAll(progress),
  );
  const tx = repo.beginTransaction();
  try {
    const edit = await timedStep(phaseMs, 'assemble', 'assembling the tree', () =>
      assemble(tx, solved.packages, commits, { heads, commits: pkgCommits }, progress),
    );
    const tree = await timedStep(phaseMs, 'treefile', 'applying the treefile', () =>
      applyTreefile(tx, edit, treefile, solved.packages, heads, options, progress),
    );
    await timedStep(phaseMs, 'rpmdb', 'writing the rpm database', () =>
      writeTreeRpmdb(
        edit,
        solved.packages.map((c) => headOf(heads, c)),
        options.tmpDir ?? tmpdir(),
      ),
    );
    const post = await timedStep(phaseMs, 'postprocess', 'reshaping the tree for an image-based OS', () =>
      postprocessTree(tx, edit),
    );
    const root = await timedStep(phaseMs, 'write', 'writing the tree', () => edit.write());

    progress({ phase: 'commit', done: 0, total: 1 });
    const version = nextVersion(treefile, parentMeta);
    const checksum = await timedStep(phaseMs, 'commit', 'committing', () => {
      const commit = composeCommit(treefile, {
        parent,
        version,
        inputHash,
        root,
        packages: solved.packages,
        heads,
        skipped: tree.scripts.skipped,
        kernel: tree.kernel,
      });
      const written = tx.writeMetadata('commit', encodeCommit(commit));
      tx.commit([{ name: treefile.ref, checksum: written, expected: parent }]);
      return written;
    });
    return {
      ...base,
      commit: checksum,
      changed: true,
      version,
      packages: described((c) => imported.has(c)),
      importBytes: {
        download: sum([...imported].map((c) => c.pkg.sizes.packageBytes)),
        installed: sum([...imported].map((c) => c.pkg.sizes.installedBytes)),
      },
      scripts: tree.scripts,
      kernel: tree.kernel,
      removedFiles: tree.removedFiles,
      droppedVarFiles: post.droppedVarFiles,
    };
  } catch (error) {
    tx.abort();
    throw error;
  }
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
