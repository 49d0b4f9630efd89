// `arbor compose tree`: a treefile and package repositories in, one OS commit out. The pipeline
// (docs/compose.md): load the repositories, resolve the request, hash the inputs (and stop there
// with --unless-changed when nothing changed), import the chosen packages (each package is
// imported once and cached on its pkg/ ref), assemble their trees by object ids, run scriptlets
// and postprocess scripts in a sandbox, apply the treefile's edits (remove-files, units, default
// target, kernel and initramfs), write the rpm database, reshape for an image-based OS and commit.
// Everything before the final ref update happens in one transaction: a failure leaves the ref as
// it was (only the package cache may have grown).
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { ArborError, UsageError, assert, errnoCode, inStep, inStepSync, ioError } from '../common/errors.js';
import { hashBytes } from '../common/hash.js';
import {
  type Checksum,
  type Commit,
  type MetadataValue,
  type Repo,
  type Transaction,
  TreeEditor,
  encodeCommit,
  isSymlink,
} from '../repo/index.js';
import { forEachLimit } from '../common/for-each-limit.js';
import { assembleTree, prefetchAssembly } from './assemble.js';
import { ImportBatch, type OwnerMap, importedCommit, loadOwnerMap, pkgRefName } from './import.js';
import { postprocessTree } from './postprocess.js';
import { type SandboxStep, runInTree } from './sandbox.js';
import { formatScriptletRef, runPostprocessScripts, runScriptlets } from './scriptlets.js';
import { type RpmHead, readRpmHead } from './rpm/read.js';
import { filesOfHeader } from './rpm/package.js';
import { writeRpmdb } from './rpmdb.js';
import { solve } from './solve/depsolve.js';
import { type Candidate, type Universe, loadUniverse } from './solve/universe.js';
import type { Treefile } from './treefile.js';
import { readTreefileInput } from './treefile-input.js';

/** Bumped when the same inputs would make a different tree (so --unless-changed recomposes). */
const COMPOSE_FORMAT = 1;

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
  readonly onProgress?: (progress: ComposeProgress) => void;
}

interface ComposeProgress {
  readonly phase: 'resolve' | 'import' | 'assemble' | 'scripts' | 'postprocess' | 'commit';
  readonly done: number;
  readonly total: number;
  readonly detail?: string;
}

interface ComposedPackage {
  readonly nevra: string;
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
}

/** Runs the compose (see the module comment); each phase below names itself in a failure. */
export async function composeTree(
  repo: Repo,
  treefile: Treefile,
  options: ComposeOptions = {},
): Promise<ComposeResult> {
  const progress = options.onProgress ?? ((): void => undefined);
  const { universe, solved } = await inStep('resolving packages', () => resolvePackages(treefile, progress));
  const heads = await inStep('reading package headers', () => readHeads(repo, solved.packages));
  const parent = repo.db.getRef(treefile.ref) ?? null;
  const parentMeta = parent === null ? null : repo.readCommit(parent).metadata;
  const inputHash = computeInputHash(
    treefile,
    solved.packages.map((c) => headOf(heads, c)),
    options,
  );
  const plan = new ImportPlan(repo, universe, solved, heads, options);
  const described = (imported: (c: Candidate) => boolean): ComposedPackage[] =>
    solved.packages.map((c) => ({
      nevra: c.nevra,
      repo: c.repo,
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

  const { commits, imported } = await inStep('importing packages', () => plan.importAll(progress));
  const scratch = mkdtempSync(join(options.tmpDir ?? tmpdir(), 'arbor-compose-'));
  const tx = repo.beginTransaction();
  try {
    const edit = await inStep('assembling the tree', () => assemble(tx, solved.packages, commits, progress));
    const headers = solved.packages.map((c) => headOf(heads, c).header);
    const tree = await inStep('applying the treefile', () =>
      applyTreefile(tx, edit, treefile, solved.packages, heads, options, progress),
    );
    inStepSync('writing the rpm database', () => {
      // Install time: SOURCE_DATE_EPOCH, else the newest build time, so equal inputs give equal trees.
      const installTime = Number(
        process.env.SOURCE_DATE_EPOCH ?? Math.max(0, ...solved.packages.map((c) => headOf(heads, c).pkg.buildTime)),
      );
      writeRpmdb(
        scratch,
        headers.map((header) => ({ header })),
        installTime,
      );
      edit.writeFile('/usr/share/rpm/rpmdb.sqlite', readFileSync(join(scratch, 'rpmdb.sqlite')), 0o644);
      // The link rpm's default path (/var/lib/rpm) resolves through.
      if (!edit.get('/var/lib/rpm')) edit.symlink('/var/lib/rpm', '../../usr/share/rpm');
    });
    const post = inStepSync('reshaping the tree for an image-based OS', () => postprocessTree(tx, edit));
    const root = edit.write();

    progress({ phase: 'commit', done: 0, total: 1 });
    const version = nextVersion(treefile, parentMeta);
    const checksum = inStepSync('committing', () => {
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
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

type Solved = ReturnType<typeof solve>;
type Heads = ReadonlyMap<Candidate, RpmHead>;

const headOf = (heads: Heads, c: Candidate): RpmHead => {
  const head = heads.get(c);
  assert(head !== undefined, `no header read for ${c.nevra}`);
  return head;
};

/** Loads the repositories the treefile names and resolves its request against them. */
async function resolvePackages(
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
async function readHeads(repo: Repo, packages: readonly Candidate[]): Promise<Heads> {
  const heads = new Map<Candidate, RpmHead>();
  await forEachLimit(packages, 16, async (c) => void heads.set(c, await readRpmHead(packagePath(c))));
  await forEachLimit(packages, 16, async (c) => {
    const commit = repo.db.getRef(pkgRefName(c.pkg.name, c.pkg.epoch, c.pkg.version, c.pkg.release, c.pkg.arch));
    if (commit !== undefined) await repo.readMetadataBytesAsync(commit, 'commit').catch(() => undefined); // read again (and reported) where used
  });
  return heads;
}

/**
 * Which packages importing reads and which it reuses. The packages shipping /etc/passwd and
 * /etc/group are imported first, so the rest map owners by the tree's own user database (as rpm
 * does when it installs into a root).
 */
class ImportPlan {
  readonly #userDb: readonly Candidate[];
  readonly #hostOwners: OwnerMap;
  readonly #repoKind: ReadonlyMap<string, string>;

  constructor(
    readonly repo: Repo,
    universe: Universe,
    readonly solved: Solved,
    readonly heads: Heads,
    options: ComposeOptions,
  ) {
    this.#userDb = solved.packages.filter((c) => c.files.has('/etc/passwd') || c.files.has('/etc/group'));
    this.#hostOwners = loadOwnerMap(options.passwd, options.group);
    this.#repoKind = new Map(universe.repos.map((r) => [r.dir, r.kind]));
  }

  /** Whether importing would reuse the package's cached commit (for dry runs). */
  isCached(c: Candidate): boolean {
    const owners = this.#userDb.includes(c) ? this.#hostOwners : this.#cachedOwners();
    return importedCommit(this.repo, headOf(this.heads, c), { owners }).commit !== null;
  }

  #cachedOwnersMemo: OwnerMap | undefined;
  #cachedOwners(): OwnerMap {
    if (this.#cachedOwnersMemo) return this.#cachedOwnersMemo;
    const commits = this.#userDb.map(
      (c) => importedCommit(this.repo, headOf(this.heads, c), { owners: this.#hostOwners }).commit,
    );
    this.#cachedOwnersMemo = commits.every((c) => c !== null)
      ? treeOwners(this.repo, commits as Checksum[], this.#hostOwners)
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
      const batches = Array.from({ length: lanes }, () => new ImportBatch(this.repo, { owners }));
      try {
        await forEachLimit(list, lanes, async (c, lane) => {
          progress({ phase: 'import', done: commits.size, total, detail: c.nevra });
          const expectedChecksum = this.#repoKind.get(c.repo) === 'repodata' ? c.pkg.checksum : null;
          const result = await (batches[lane] as ImportBatch).add(packagePath(c), {
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
      this.#userDb.map((c) => commits.get(c) as Checksum),
      this.#hostOwners,
    );
    await importList(
      this.solved.packages.filter((c) => !commits.has(c)),
      owners,
    );
    progress({ phase: 'import', done: commits.size, total });
    return { commits, imported };
  }
}

/** The union of the packages' trees, by object ids; conflicting files are refused together. */
async function assemble(
  tx: Transaction,
  packages: readonly Candidate[],
  commits: ReadonlyMap<Candidate, Checksum>,
  progress: (p: ComposeProgress) => void,
): Promise<TreeEditor> {
  progress({ phase: 'assemble', done: 0, total: 1 });
  const trees = packages.map((c) => ({ nevra: c.nevra, commit: commits.get(c) as Checksum }));
  const assembled = assembleTree(tx, trees, await prefetchAssembly(tx.repo, trees));
  if (assembled.conflicts.length > 0) {
    const lines = assembled.conflicts
      .slice(0, 20)
      .map((f) => `  ${f.path}: ${f.packages[0]} and ${f.packages[1]} (${f.reason})`);
    const more = assembled.conflicts.length > 20 ? `\n  ... and ${assembled.conflicts.length - 20} more` : '';
    throw new ArborError(
      'E_COMPOSE_FILE_CONFLICT',
      `${assembled.conflicts.length} file conflict(s) between packages:\n${lines.join('\n')}${more}`,
      {
        hint: 'drop one of the packages (exclude-packages) or remove the path from one with remove-from-packages',
      },
    );
  }
  return new TreeEditor(tx, assembled);
}

interface TreefileEdits {
  readonly scripts: { readonly ran: string[]; readonly skipped: string[] };
  readonly kernel: { readonly version: string; readonly initramfs: boolean } | null;
  readonly removedFiles: number;
}

/** remove-from-packages, scriptlets, postprocess scripts, remove-files, units, kernel and initramfs. */
async function applyTreefile(
  tx: Transaction,
  edit: TreeEditor,
  treefile: Treefile,
  packages: readonly Candidate[],
  heads: Heads,
  options: ComposeOptions,
  progress: (p: ComposeProgress) => void,
): Promise<TreefileEdits> {
  // remove-from-packages: paths of one package matching a regex (rpm-ostree's semantics).
  let removedFiles = 0;
  for (const [name, ...patterns] of treefile.removeFromPackages) {
    const found = packages.find((c) => c.pkg.name === name);
    if (!found)
      throw new UsageError(
        'E_TREEFILE_INVALID',
        `${treefile.path}: remove-from-packages names '${name}', which is not in the composed set`,
      );
    const regexes = patterns.map((p) => new RegExp(p));
    for (const file of filesOfHeader(headOf(heads, found).header, name)) {
      if (regexes.some((r) => r.test(file.path)) && edit.remove(file.path)) removedFiles++;
    }
  }

  progress({ phase: 'scripts', done: 0, total: 1 });
  const onStep = (step: SandboxStep): void => progress({ phase: 'scripts', done: 0, total: 1, detail: step.label });
  const report = await runScriptlets(
    tx,
    edit,
    packages.map((c) => ({ nevra: c.nevra, pkg: headOf(heads, c).pkg })),
    { noScripts: options.noScripts === true, onStep },
  );
  const scripts = { ran: report.ran.map(formatScriptletRef), skipped: report.skipped.map(formatScriptletRef) };
  await runPostprocessScripts(
    tx,
    edit,
    { postprocess: treefile.postprocess, postprocessScript: treefile.postprocessScript },
    { onStep },
  );

  progress({ phase: 'postprocess', done: 0, total: 1 });
  removedFiles += removeFiles(edit, treefile.removeFiles);
  enableUnits(tx, edit, treefile);
  checkEtcGroupMembers(tx, edit, treefile);
  const kernel = await placeKernel(tx, edit, treefile, onStep);
  return { scripts, kernel, removedFiles };
}

/** The commit object: treefile metadata, version, input hash, package list, kernel version. */
function composeCommit(
  treefile: Treefile,
  made: {
    parent: Checksum | null;
    version: string | null;
    inputHash: string;
    root: { tree: Checksum; meta: Checksum };
    packages: readonly Candidate[];
    heads: Heads;
    skipped: readonly string[];
    kernel: { version: string } | null;
  },
): Commit {
  const metadata = new Map<string, MetadataValue>();
  for (const [key, value] of treefile.addCommitMetadata) {
    metadata.set(
      key,
      typeof value === 'string'
        ? { type: 'string', value }
        : typeof value === 'number'
          ? { type: 'int', value }
          : { type: 'bool', value },
    );
  }
  if (made.version !== null) metadata.set('version', { type: 'string', value: made.version });
  metadata.set('arbor.compose.input-hash', { type: 'string', value: made.inputHash });
  metadata.set('arbor.packages', {
    type: 'strings',
    value: made.packages.map((c) => `${nevraWithEpoch(c)} ${headOf(made.heads, c).headerSha256}`),
  });
  if (made.skipped.length > 0)
    metadata.set('arbor.compose.scripts-skipped', { type: 'strings', value: [...made.skipped] });
  if (made.kernel) metadata.set('arbor.linux', { type: 'string', value: made.kernel.version });
  return {
    parent: made.parent,
    timestamp: Math.floor(Date.now() / 1000),
    subject: `${treefile.ref}${made.version !== null ? ` ${made.version}` : ''}`,
    body: `Composed from ${made.packages.length} packages.`,
    rootTree: made.root.tree,
    rootMeta: made.root.meta,
    metadata,
  };
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

function hostArch(): string {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
}

function packagePath(c: Candidate): string {
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

const nevraWithEpoch = (c: Candidate): string =>
  `${c.pkg.name}-${c.pkg.epoch}:${c.pkg.version}-${c.pkg.release}.${c.pkg.arch}`;

/**
 * The input hash: the compose format, every treefile read (in include order), the options that
 * change the tree, and each chosen package's header digest, in install order.
 */
function computeInputHash(treefile: Treefile, heads: readonly RpmHead[], options: ComposeOptions): string {
  const parts: Buffer[] = [Buffer.from(`arbor-compose ${COMPOSE_FORMAT}\0noScripts=${options.noScripts === true}\0`)];
  for (const source of treefile.sources) parts.push(Buffer.from(`${source.path}\0`), source.bytes, Buffer.from('\0'));
  if (treefile.postprocessScript !== null)
    parts.push(readTreefileInput(treefile.postprocessScript, `postprocess-script '${treefile.postprocessScript}'`));
  // Owner names the tree does not define come from these files, so they shape the tree too.
  for (const [flag, file] of [
    ['passwd', options.passwd],
    ['group', options.group],
  ] as const) {
    if (file === undefined) continue;
    try {
      parts.push(Buffer.from(`--${flag}\0`), readFileSync(file), Buffer.from('\0'));
    } catch (error) {
      throw ioError('read', file, error);
    }
  }
  for (const head of heads) parts.push(Buffer.from(`${head.headerSha256}\0`));
  return hashBytes(...parts);
}

/**
 * The commit's version: the treefile's `version`, or `automatic-version-prefix` counted up from
 * the parent's version as rpm-ostree does (PREFIX, then PREFIX.1, PREFIX.2...).
 */
function nextVersion(
  treefile: Pick<Treefile, 'version' | 'automaticVersionPrefix'>,
  parentMeta: ReadonlyMap<string, MetadataValue> | null,
): string | null {
  if (treefile.version !== null) return treefile.version;
  const prefix = treefile.automaticVersionPrefix;
  if (prefix === null) return null;
  const last = parentMeta?.get('version');
  const previous = last?.type === 'string' ? last.value : null;
  if (previous === null || (previous !== prefix && !previous.startsWith(`${prefix}.`))) return prefix;
  if (previous === prefix) return `${prefix}.1`;
  const n = Number(previous.slice(prefix.length + 1));
  return Number.isInteger(n) ? `${prefix}.${n + 1}` : `${prefix}.1`;
}

/** Owners from the tree's /etc/passwd and /etc/group (first package that ships each), over the host's. */
function treeOwners(repo: Repo, commits: readonly Checksum[], fallback: OwnerMap): OwnerMap {
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
      const content = readTreeFile(repo, repo.readCommit(commit).rootTree, path);
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

function editedFile(tx: Transaction, edit: TreeEditor, path: string): Buffer | null {
  const entry = edit.get(path);
  if (entry?.kind !== 'file') return null;
  const { header, content } = tx.loadFile(entry.checksum);
  return isSymlink(header.mode) ? null : content;
}

/** remove-files: globs over paths relative to the root (a leading '/' is allowed); a match removes the whole entry. */
function removeFiles(edit: TreeEditor, globs: readonly string[]): number {
  if (globs.length === 0) return 0;
  const match = picomatch(
    globs.map((g) => g.replace(/^\/+/, '')),
    { dot: true },
  );
  let removed = 0;
  const visit = (dir: string): void => {
    const listing = edit.list(dir);
    if (!listing) return;
    for (const name of [...listing.files, ...listing.dirs]) {
      const path = `${dir === '/' ? '' : dir}/${name}`;
      if (match(path.slice(1))) {
        edit.remove(path);
        removed++;
      } else if (listing.dirs.includes(name)) visit(path);
    }
  };
  visit('/');
  return removed;
}

const UNIT_DIRS = ['/usr/lib/systemd/system', '/lib/systemd/system', '/etc/systemd/system'];

/**
 * `units`: enabled the way `systemctl enable` does it, from each unit's [Install] section
 * (WantedBy=, RequiredBy=, Alias=, Also=); `default-target`: the default.target link.
 */
function enableUnits(tx: Transaction, edit: TreeEditor, treefile: Treefile): void {
  const done = new Set<string>();
  const enable = (unit: string, requestedBy: string): void => {
    if (done.has(unit)) return;
    done.add(unit);
    const template = /^([^@]+@)([^.]*)(\.[a-z]+)$/.exec(unit);
    const fileName = template && template[2] !== '' ? `${template[1]}${template[3]}` : unit;
    const dir = UNIT_DIRS.find((d) => edit.get(`${d}/${fileName}`)?.kind === 'file');
    if (dir === undefined)
      throw new UsageError(
        'E_COMPOSE_UNIT',
        `unit '${unit}' (${requestedBy}) is not in the tree (looked in ${UNIT_DIRS.join(', ')})`,
      );
    const text = editedFile(tx, edit, `${dir}/${fileName}`);
    if (text === null)
      throw new UsageError('E_COMPOSE_UNIT', `unit '${unit}' at ${dir}/${fileName} is not a regular file`);
    const install = parseInstallSection(text.toString('utf8'));
    const targetPath = `/usr/lib/systemd/system/${fileName}`;
    const linkTarget = dir === '/etc/systemd/system' ? `${dir}/${fileName}` : targetPath;
    let instance = unit;
    if (template && template[2] === '') {
      const def = install.get('DefaultInstance')?.[0];
      if (def === undefined)
        throw new UsageError(
          'E_COMPOSE_UNIT',
          `unit '${unit}' is a template without DefaultInstance; name an instance (e.g. ${template[1]}NAME${template[3]})`,
        );
      instance = `${template[1]}${def}${template[3]}`;
    }
    const wanted = [
      ...(install.get('WantedBy') ?? []).map((t) => [t, 'wants'] as const),
      ...(install.get('RequiredBy') ?? []).map((t) => [t, 'requires'] as const),
    ];
    const aliases = install.get('Alias') ?? [];
    if (wanted.length === 0 && aliases.length === 0 && (install.get('Also') ?? []).length === 0) {
      throw new UsageError(
        'E_COMPOSE_UNIT',
        `unit '${unit}' has nothing to enable: no WantedBy=, RequiredBy=, Alias= or Also= in its [Install] section`,
      );
    }
    for (const [target, kind] of wanted) {
      const link = `/etc/systemd/system/${target}.${kind}/${instance}`;
      edit.remove(link);
      edit.symlink(link, linkTarget);
    }
    for (const alias of aliases) {
      edit.remove(`/etc/systemd/system/${alias}`);
      edit.symlink(`/etc/systemd/system/${alias}`, linkTarget);
    }
    for (const also of install.get('Also') ?? []) enable(also, `Also= of ${unit}`);
  };
  for (const unit of treefile.units) enable(unit, `named in ${treefile.path}`);
  if (treefile.defaultTarget !== null) {
    const target = treefile.defaultTarget;
    if (!UNIT_DIRS.some((d) => edit.get(`${d}/${target}`)))
      throw new UsageError('E_COMPOSE_UNIT', `default-target '${target}' is not in the tree`);
    edit.remove('/etc/systemd/system/default.target');
    edit.symlink('/etc/systemd/system/default.target', `/usr/lib/systemd/system/${target}`);
  }
}

/** The [Install] section's settings (space-separated lists, repeated keys appended). */
function parseInstallSection(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let inInstall = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inInstall = line === '[Install]';
      continue;
    }
    if (!inInstall || line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const values = line
      .slice(eq + 1)
      .trim()
      .split(/\s+/)
      .filter((v) => v !== '');
    if (values.length === 0) out.set(key, []);
    else out.set(key, [...(out.get(key) ?? []), ...values]);
  }
  return out;
}

/**
 * etc-group-members: rpm-ostree moves groups to /usr/lib/group except these. Arbor keeps the
 * whole /etc/group (merged per machine at deploy time), so the listed groups are kept by
 * construction; they must exist.
 */
function checkEtcGroupMembers(tx: Transaction, edit: TreeEditor, treefile: Treefile): void {
  if (treefile.etcGroupMembers.length === 0) return;
  const group = editedFile(tx, edit, '/etc/group')?.toString('utf8') ?? '';
  const names = new Set(group.split('\n').map((l) => l.split(':')[0]));
  for (const name of treefile.etcGroupMembers) {
    if (!names.has(name))
      throw new UsageError(
        'E_TREEFILE_INVALID',
        `${treefile.path}: etc-group-members names group '${name}', which the tree's /etc/group does not have`,
      );
  }
}

/**
 * The kernel at /usr/lib/modules/KVER/vmlinuz with its initramfs.img beside it: moved there from
 * /boot (vmlinuz-KVER, initramfs-KVER.img) when a package put them there. Exactly one kernel;
 * none is allowed only for `container: true`.
 */
async function placeKernel(
  tx: Transaction,
  edit: TreeEditor,
  treefile: Treefile,
  onStep: (step: SandboxStep) => void,
): Promise<{ version: string; initramfs: boolean } | null> {
  for (const name of edit.list('/boot')?.files ?? []) {
    const m = /^vmlinuz-(.+)$/.exec(name);
    if (!m) continue;
    const kver = m[1] as string;
    const dir = `/usr/lib/modules/${kver}`;
    if (!edit.get(`${dir}/vmlinuz`)) edit.move(`/boot/${name}`, `${dir}/vmlinuz`);
    else edit.remove(`/boot/${name}`);
    for (const [from, to] of [
      [`initramfs-${kver}.img`, 'initramfs.img'],
      [`System.map-${kver}`, 'System.map'],
      [`config-${kver}`, 'config'],
    ] as const) {
      if (edit.get(`/boot/${from}`)?.kind !== 'file') continue;
      if (!edit.get(`${dir}/${to}`)) edit.move(`/boot/${from}`, `${dir}/${to}`);
      else edit.remove(`/boot/${from}`);
    }
  }
  const kernels = (edit.list('/usr/lib/modules')?.dirs ?? [])
    .filter((k) => edit.get(`/usr/lib/modules/${k}/vmlinuz`)?.kind === 'file')
    .sort();
  if (kernels.length === 0) {
    if (treefile.container) return null;
    throw new ArborError(
      'E_COMPOSE_NO_KERNEL',
      'the composed tree has no kernel (/usr/lib/modules/KVER/vmlinuz or /boot/vmlinuz-KVER)',
      {
        hint: "add the kernel package to 'packages', or set 'container: true' for a tree that is never booted",
      },
    );
  }
  if (kernels.length > 1)
    throw new ArborError(
      'E_COMPOSE_KERNELS',
      `the composed tree has ${kernels.length} kernels (${kernels.join(', ')}); a bootable tree has exactly one`,
    );
  const version = kernels[0] as string;
  const target = `/usr/lib/modules/${version}/initramfs.img`;
  if (treefile.initramfs?.generator === 'dracut') {
    // dracut from the tree, in the sandbox: what the tree ships decides what the initramfs holds.
    await runInTree(
      tx,
      edit,
      [
        {
          label: `dracut for kernel ${version}`,
          argv: ['dracut', '--no-hostonly', '--force', ...treefile.initramfs.args, '--kver', version, target],
          failureCode: 'E_COMPOSE_INITRAMFS',
          failureHint: "the tree's dracut failed; its output is above",
        },
      ],
      { onStep },
    );
  }
  const initramfs = edit.get(target)?.kind === 'file';
  if (!initramfs && !treefile.container) {
    throw new ArborError(
      'E_COMPOSE_NO_INITRAMFS',
      `kernel ${version} has no initramfs at /usr/lib/modules/${version}/initramfs.img`,
      {
        hint:
          treefile.initramfs?.generator === 'dracut'
            ? 'dracut ran but wrote no initramfs'
            : "ship it in a package, or set 'initramfs: {generator: dracut}' to generate it in the tree",
      },
    );
  }
  return { version, initramfs };
}
