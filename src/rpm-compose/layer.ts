// Client-side package layering: a derived tree made from a composed base commit plus requested
// packages, minus removed base packages, with base packages replaced by local package files. The
// base's rpm database is the installed set; the solver resolves the request (in local and remote
// repositories) with every kept base package fixed; new packages are fetched, imported, overlaid
// and their scriptlets run as compose does.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArborError, inStep, inStepSync, present } from '../common/errors.js';
import {
  type Checksum,
  type Commit,
  type MetadataValue,
  type Repo,
  type TreeEditor,
  TreeEditor as Editor,
  encodeCommit,
  isRegular,
  lookupPath,
} from '../repo/index.js';
import { assemble } from './compose-assemble.js';
import { ImportPlan } from './compose-import.js';
import { headOf, hostArch, packagePath, readHeads } from './compose-resolve.js';
import { writeTreeRpmdb } from './compose-rpmdb.js';
import { readInstalledHeaders } from './db.js';
import { VAR_TMPFILES, varToTmpfiles } from './postprocess.js';
import { describeRepoPackage } from './repodata/rpm-directory.js';
import { encodeHeader } from './rpm/header.js';
import { type RpmHeader, TagType, decodeHeader } from './rpm/index.js';
import { SigTag } from './rpm/tags.js';
import { type RpmPackage, describePackage, filesOfHeader, fileType, isGhost, S_IFDIR } from './rpm/package.js';
import { formatScriptletRef, runScriptlets } from './scriptlets.js';
import { solve } from './solve/depsolve.js';
import { compareEvr } from './solve/evr.js';
import { type Candidate, type Universe, type UniverseSource, indexUniverse, loadUniverse } from './solve/universe.js';
import type { YumRepoConfig } from './yum/repo-file.js';
import { RepoSet, prepareCacheDir, refreshOrSkip } from './yum/repo-set.js';

/** What a derived tree adds to and takes from its base. */
export interface LayerRequest {
  /** Package names (or capabilities) resolved in the repositories. */
  readonly packages: readonly string[];
  /** SHA-256 digests of package files in the package directory, installed as they are. */
  readonly localPackages: readonly string[];
  /** Names of base packages taken out. */
  readonly removals: readonly string[];
  /** SHA-256 digests of package files in the package directory that replace the base package of their name. */
  readonly replacements: readonly string[];
}

/** Remote yum repositories (a host's `.repo` files) and the cache their metadata and packages go to. */
export interface LayerRemotes {
  readonly configs: readonly YumRepoConfig[];
  readonly cacheDir: string;
  /** Where `file://` URLs of the configs are read (see FetcherPool); default `/`. */
  readonly fileRoot?: string;
}

export interface LayerOptions {
  /** Local repositories (yum metadata or directories of packages) that names are resolved in. */
  readonly repoDirs: readonly string[];
  /** Remote repositories names are resolved in too, fetched and checked as compose fetches them. */
  readonly remotes?: LayerRemotes;
  /** Package files named `SHA256.rpm`: local packages, and packages kept from earlier layering. */
  readonly packageDir: string;
  /** The target architecture (default: the host's). */
  readonly arch?: string;
  /** dnf's install_weak_deps: Recommends and Supplements of new packages are installed (default true). */
  readonly installWeakDeps?: boolean;
  /** Resolve and report only: nothing is imported or committed. */
  readonly dryRun?: boolean;
  readonly tmpDir?: string;
}

interface LayeredPackage {
  readonly nevra: string;
  readonly name: string;
  /** The repository directory, a remote repository's id, or the package directory for local packages. */
  readonly repo: string;
  /** The package file it is read from (a remote package's in the cache; on a dry run, its location). */
  readonly path: string;
  readonly why: string;
  readonly packageBytes: number;
  readonly installedBytes: number;
}

export interface LayerResult {
  readonly base: Checksum;
  /** The derived commit; the base itself when the request changes nothing; null on a dry run. */
  readonly commit: Checksum | null;
  readonly added: readonly LayeredPackage[];
  readonly removed: readonly { readonly nevra: string; readonly why: string }[];
  readonly replaced: readonly { readonly from: string; readonly to: string }[];
  /** Bytes of package files read from the repositories (local files count nothing). */
  readonly downloadBytes: number;
  readonly scripts: readonly string[];
  /** Regular files packages put under /var: dropped, as compose drops them. */
  readonly droppedVarFiles: readonly string[];
  /** Replacements the base has caught up with: the same build (inactive, not applied) or a newer one. */
  readonly notes: readonly string[];
  /** Remote repositories left out because they could not be refreshed and say skip_if_unavailable=1. */
  readonly skippedRepos: readonly SkippedRepo[];
}

/** A repository skip_if_unavailable left out, and the failure that did it. */
interface SkippedRepo {
  readonly id: string;
  readonly code: string;
  readonly message: string;
}

/** The commit metadata keys a derived commit carries (docs/layering.md). */
const LAYER_META = {
  base: 'arbor.layer.base',
  packages: 'arbor.layer.packages',
  localPackages: 'arbor.layer.local-packages',
  removals: 'arbor.layer.removals',
  replacements: 'arbor.layer.replacements',
} as const;

/** The repository name installed packages carry in the solver, as dnf calls it. */
const INSTALLED = '@System';
/** Where a derived tree lists what layered packages put under /var (the base keeps VAR_TMPFILES). */
const LAYERED_TMPFILES = '/usr/lib/tmpfiles.d/arbor-layered.conf';
/** Top-level directories a layered package may write; the rest belong to the machine (see docs/layering.md). */
const LAYERABLE_TOP = new Set(['usr', 'etc', 'var']);

const isEmpty = (r: LayerRequest): boolean =>
  r.packages.length + r.localPackages.length + r.removals.length + r.replacements.length === 0;

/** Resolves the request on top of `base` and, unless a dry run, commits the derived tree (no ref moves). */
export async function layerTree(
  repo: Repo,
  base: Checksum,
  request: LayerRequest,
  options: LayerOptions,
): Promise<LayerResult> {
  const baseCommit = repo.readCommit(base);
  const empty = {
    base,
    added: [],
    removed: [],
    replaced: [],
    downloadBytes: 0,
    scripts: [],
    droppedVarFiles: [],
    notes: [],
    skippedRepos: [],
  };
  if (isEmpty(request)) return { ...empty, commit: options.dryRun ? null : base };

  const installed = inStepSync('reading the base rpm database', () => readInstalled(repo, base));
  const host = options.remotes;
  if (host !== undefined && host.configs.length > 0) await prepareCacheDir(host.cacheDir);
  const remotes = new RepoSet(host?.configs ?? [], host?.cacheDir ?? '', Date.now, host?.fileRoot);
  try {
    return await layerResolved(repo, base, baseCommit, installed, request, options, remotes, empty);
  } finally {
    remotes.close();
  }
}

/** layerTree once the installed set is read and the remote repositories are open. */
async function layerResolved(
  repo: Repo,
  base: Checksum,
  baseCommit: Commit,
  installed: readonly Installed[],
  request: LayerRequest,
  options: LayerOptions,
  remotes: RepoSet,
  empty: Omit<LayerResult, 'commit'>,
): Promise<LayerResult> {
  const resolved = await inStep('resolving the layered packages', () =>
    resolveLayer(installed, request, options, remotes),
  );
  // Remote packages are fetched (or found in the cache by checksum) and checked before anything is made.
  const fetched = options.dryRun
    ? new Map<Candidate, string>()
    : await inStep('downloading packages', () => remotes.fetchPackages(resolved.added, () => undefined));
  const pathOf = (c: Candidate): string => fetched.get(c) ?? (remotes.has(c) ? c.pkg.location.href : packagePath(c));
  const added: LayeredPackage[] = resolved.added.map((c) => ({
    nevra: c.nevra,
    name: c.pkg.name,
    repo: remotes.repoName(c),
    path: pathOf(c),
    why: resolved.why.get(c) ?? '',
    packageBytes: c.pkg.sizes.packageBytes,
    installedBytes: c.pkg.sizes.installedBytes,
  }));
  const removed = resolved.removed.map((p) => ({ nevra: p.nevra, why: 'override remove' }));
  const replaced = resolved.replaced.map(([from, to]) => ({ from: from.nevra, to: to.nevra }));
  const downloadBytes = added.filter((p) => p.repo !== options.packageDir).reduce((a, p) => a + p.packageBytes, 0);
  const { notes, skippedRepos } = resolved;
  if (options.dryRun) return { ...empty, commit: null, added, removed, replaced, downloadBytes, notes, skippedRepos };

  const paths = new Map(resolved.added.map((c) => [c, pathOf(c)]));
  const pkgCommits = new Map<Checksum, Commit>();
  const heads = await inStep('reading package headers', () => readHeads(repo, resolved.added, paths, pkgCommits));
  const scratch = mkdtempSync(join(options.tmpDir ?? tmpdir(), 'arbor-layer-'));
  try {
    // Owners of the new files come from the base's user database, as rpm installing into the root would map them.
    const passwd = join(scratch, 'passwd');
    const group = join(scratch, 'group');
    writeFileSync(passwd, readBaseFile(repo, base, '/usr/etc/passwd'));
    writeFileSync(group, readBaseFile(repo, base, '/usr/etc/group'));
    const solvedNew = { packages: resolved.added, why: resolved.why };
    const plan = new ImportPlan(repo, resolved.universe, solvedNew, heads, paths, { passwd, group }, pkgCommits);
    const { commits } = await inStep('importing packages', () => plan.importAll(() => undefined));

    const tx = repo.beginTransaction();
    try {
      const edit = new Editor(tx, { tree: baseCommit.rootTree, meta: baseCommit.rootMeta });
      // Packages and scriptlets see /etc where rpm puts it; it returns to /usr/etc below.
      edit.move('/usr/etc', '/etc');
      const gone = [...resolved.removed, ...resolved.replaced.map(([from]) => from)];
      const kept = installed.filter((p) => !gone.includes(p));
      // Paths a new package shares with a replaced one go too: the overlay puts the new files back.
      removePackageFiles(
        edit,
        gone,
        kept.map((p) => p.header),
      );
      if (resolved.added.length > 0) {
        const layer = await inStep('assembling the layered packages', () =>
          assemble(tx, resolved.added, commits, { heads, commits: pkgCommits }, () => undefined),
        );
        inStepSync('adding the layered packages to the base tree', () => overlay(layer, edit, installed));
      }
      const report = await inStep('running scriptlets', () =>
        runScriptlets(
          tx,
          edit,
          resolved.added.map((c) => ({ nevra: c.nevra, pkg: headOf(heads, c).pkg })),
          {
            failureHint:
              'layering fails on any failing scriptlet, as compose does; the booted deployment is untouched (uninstall the package or fix it)',
          },
        ),
      );
      inStepSync('writing the rpm database', () =>
        writeTreeRpmdb(edit, [...kept, ...resolved.added.map((c) => headOf(heads, c))], options.tmpDir ?? tmpdir()),
      );
      edit.move('/etc', '/usr/etc');
      const droppedVarFiles = layeredVar(tx.repo, base, edit, tx);
      const root = edit.write();
      const metadata = new Map<string, MetadataValue>(baseCommit.metadata);
      metadata.delete('arbor.compose.input-hash');
      metadata.set('arbor.packages', {
        type: 'strings',
        value: [
          ...kept.map((p) => p.line),
          ...resolved.added.map((c) => packageLine(headOf(heads, c).pkg, headOf(heads, c).headerSha256)),
        ],
      });
      metadata.set(LAYER_META.base, { type: 'string', value: base });
      for (const key of ['packages', 'localPackages', 'removals', 'replacements'] as const)
        if (request[key].length > 0) metadata.set(LAYER_META[key], { type: 'strings', value: [...request[key]] });
      const commit: Commit = {
        parent: null,
        // The base's time: a derived commit is as old as its base, so downgrade checks compare bases.
        timestamp: baseCommit.timestamp,
        subject: `${baseCommit.subject} with layered packages`,
        body: describeLayer(added, removed, replaced),
        rootTree: root.tree,
        rootMeta: root.meta,
        metadata,
      };
      const checksum = inStepSync('committing', () => {
        const written = tx.writeMetadata('commit', encodeCommit(commit));
        tx.commit([]);
        return written;
      });
      return {
        ...empty,
        commit: checksum,
        added,
        removed,
        replaced,
        downloadBytes,
        scripts: report.ran.map(formatScriptletRef),
        droppedVarFiles,
        notes,
        skippedRepos,
      };
    } catch (error) {
      tx.abort();
      throw error;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The package files `specs` name exactly, NAME-VERSION-RELEASE with an optional EPOCH: and .ARCH
 * (`override replace` by version), in the local repositories and the enabled remote ones: a remote
 * package is fetched into the cache and checked (checksum; signature with gpgcheck=1) as layering
 * fetches packages. E_LAYER_PACKAGE_MISSING names a spec no repository has, and the builds they do have.
 */
export async function findPackageFiles(
  specs: readonly string[],
  options: { readonly repoDirs: readonly string[]; readonly remotes?: LayerRemotes; readonly arch?: string },
): Promise<string[]> {
  if (specs.length === 0) return [];
  const host = options.remotes;
  if (host !== undefined && host.configs.length > 0) await prepareCacheDir(host.cacheDir);
  const remotes = new RepoSet(host?.configs ?? [], host?.cacheDir ?? '', Date.now, host?.fileRoot);
  try {
    const { sources, skippedRepos } = await refreshRemotes(remotes);
    const universe = await loadUniverse([...options.repoDirs, ...sources]);
    const searched = [...remotes.remotes.map((r) => r.config.id), ...options.repoDirs];
    const arch = options.arch ?? hostArch();
    const found = specs.map((spec) => {
      const matches = universe.candidates.filter((c) => specNames(c).includes(spec));
      // Without .ARCH, the build for this machine (or noarch) over another architecture's.
      const match = matches.find((c) => c.pkg.arch === arch || c.pkg.arch === 'noarch') ?? matches[0];
      if (match === undefined) throw packageMissing(spec, universe.candidates, searched, skippedRepos);
      return match;
    });
    const fetched = await inStep('downloading packages', () => remotes.fetchPackages(found, () => undefined));
    return found.map((c) => fetched.get(c) ?? packagePath(c));
  } finally {
    remotes.close();
  }
}

/** The ways a command line may name one build: NAME-[EPOCH:]VERSION-RELEASE[.ARCH]. */
function specNames(c: Candidate): string[] {
  const { name, epoch, version, release, arch } = c.pkg;
  const evr = [`${version}-${release}`, `${epoch}:${version}-${release}`];
  return evr.flatMap((e) => [`${name}-${e}`, `${name}-${e}.${arch}`]);
}

/** E_LAYER_PACKAGE_MISSING for `spec`, listing the repositories searched and the builds of names it could mean. */
function packageMissing(
  spec: string,
  candidates: readonly Candidate[],
  searched: readonly string[],
  skipped: readonly SkippedRepo[],
): ArborError {
  const builds = [...new Set(candidates.filter((c) => spec.startsWith(`${c.pkg.name}-`)).map((c) => c.nevra))].sort();
  const where = searched.length === 0 ? 'none: no enabled repository and no --repo-dir' : searched.join(', ');
  const left = skipped.length === 0 ? '' : `; skipped as unavailable: ${skipped.map((r) => r.id).join(', ')}`;
  return new ArborError('E_LAYER_PACKAGE_MISSING', `no enabled repository has '${spec}' (searched: ${where}${left})`, {
    hint:
      builds.length > 0
        ? `the repositories have ${builds.slice(0, 10).join(', ')}${builds.length > 10 ? ', ...' : ''}`
        : "name a build as NAME-VERSION-RELEASE[.ARCH] (`arbor db list` shows the base's), or pass ./FILE.rpm",
  });
}

/** One installed package of the base, as the rpm database holds it. */
interface Installed {
  readonly header: RpmHeader;
  readonly pkg: RpmPackage;
  readonly nevra: string;
  /** Its line in `arbor.packages` (docs/compose.md). */
  readonly line: string;
}

/**
 * The signature header installed packages are described with: rpm keeps none in its database, and
 * a header needs one entry; the payload size says nothing about an unpacked package.
 */
const installedSignature = (): RpmHeader =>
  decodeHeader(encodeHeader([{ tag: SigTag.PayloadSize, data: { type: TagType.Int32, value: [0] } }]), {
    pkg: 'an installed package',
    part: 'signature',
  });

function readInstalled(repo: Repo, base: Checksum): Installed[] {
  // The header digests come from the base's package list (the installed headers lack them).
  const listed = repo.readCommit(base).metadata.get('arbor.packages');
  const lines = listed?.type === 'strings' ? listed.value : [];
  const signature = installedSignature();
  return readInstalledHeaders(repo, base).map((header, i) => {
    const pkg = describePackage(signature, header, `installed package ${i + 1} of ${base}`);
    const nevra = `${pkg.name}-${pkg.epoch ? `${pkg.epoch}:` : ''}${pkg.version}-${pkg.release}.${pkg.arch}`;
    const prefix = packageLine(pkg, '');
    const line = lines.find((l) => l.startsWith(prefix)) ?? `${prefix}${'0'.repeat(64)}`;
    return { header, pkg, nevra, line };
  });
}

const packageLine = (pkg: RpmPackage, headerSha256: string): string =>
  `${pkg.name}-${pkg.epoch ?? 0}:${pkg.version}-${pkg.release}.${pkg.arch} ${headerSha256}`;

interface Resolved {
  readonly universe: Universe;
  readonly added: readonly Candidate[];
  readonly why: ReadonlyMap<Candidate, string>;
  readonly removed: readonly Installed[];
  readonly replaced: readonly (readonly [Installed, Candidate])[];
  readonly notes: readonly string[];
  readonly skippedRepos: readonly SkippedRepo[];
}

/**
 * The solver's view: every kept base package is the only candidate of its name (layering never
 * changes a base package; `override replace` does, with a named file), local packages are the only
 * candidates of theirs, and the request is the kept names plus the requested ones.
 */
async function resolveLayer(
  installed: readonly Installed[],
  request: LayerRequest,
  options: LayerOptions,
  remotes: RepoSet,
): Promise<Resolved> {
  const byName = new Map(installed.map((p) => [p.pkg.name, p]));
  const removed = request.removals.map((name) => {
    const p = byName.get(name);
    if (p === undefined)
      throw new ArborError('E_LAYER_NOT_IN_BASE', `package '${name}' is not in the base, so it cannot be removed`, {
        hint: '`arbor status` lists the base commit; `arbor db list` its packages',
      });
    return p;
  });
  for (const name of request.packages) {
    if (byName.has(name))
      throw new ArborError('E_LAYER_IN_BASE', `package '${name}' is already in the base`, {
        hint: 'to change its version, use `arbor override replace NAME-VERSION-RELEASE` (or ./FILE.rpm)',
      });
  }
  const { sources: remoteSources, skippedRepos } = await refreshRemotes(remotes);
  const sources = [...options.repoDirs, ...remoteSources];
  // The package directory is read on its own, first: a repository's priority must not hide a
  // local package, and a kept file wins a tie with the same build in a repository (no download).
  const keptFiles = await loadUniverse([options.packageDir]);
  const fromRepos = await loadUniverse(sources);
  const loaded = {
    candidates: [...keptFiles.candidates, ...fromRepos.candidates],
    repos: [...keptFiles.repos, ...fromRepos.repos],
  };
  const bySha = new Map<string, Candidate>();
  for (const c of keptFiles.candidates) bySha.set(c.pkg.location.href.replace(/\.rpm$/, ''), c);
  const fileOf = (sha: string): Candidate => {
    const c = bySha.get(sha);
    if (c === undefined)
      throw new ArborError('E_LAYER_PACKAGE_MISSING', `package file ${sha}.rpm is not in '${options.packageDir}'`, {
        hint: 'install the package file again',
      });
    return c;
  };
  const locals = request.localPackages.map(fileOf);
  const notes: string[] = [];
  const replaced = request.replacements.flatMap((sha): [Installed, Candidate][] => {
    const c = fileOf(sha);
    const from = byName.get(c.pkg.name);
    if (from === undefined)
      throw new ArborError(
        'E_LAYER_NOT_IN_BASE',
        `package '${c.nevra}' replaces nothing: the base has no package named '${c.pkg.name}'`,
        { hint: 'install it with `arbor install` instead' },
      );
    // As rpm-ostree reports them: a replacement the base now ships is inactive; a newer base build is named.
    const order = compareEvr({ ...from.pkg, epoch: from.pkg.epoch ?? 0 }, c.pkg);
    if (from.nevra === c.nevra) {
      notes.push(`replacement ${c.nevra} is inactive: the base has it`);
      return [];
    }
    if (order > 0)
      notes.push(`the base moved past replacement ${c.nevra}: it has ${from.nevra} (the replacement still applies)`);
    return [[from, c]];
  });
  const gone = new Set([...removed, ...replaced.map(([from]) => from)]);
  const kept = installed.filter((p) => !gone.has(p));
  const fixed = new Map<string, Candidate | null>(kept.map((p) => [p.pkg.name, null]));
  for (const c of [...locals, ...replaced.map(([, to]) => to)]) fixed.set(c.pkg.name, c);

  const candidates: Candidate[] = [];
  const push = (c: Omit<Candidate, 'id'>): Candidate => {
    const made = { ...c, id: candidates.length };
    candidates.push(made);
    return made;
  };
  const keptCandidates = kept.map((p) =>
    push({
      pkg: describeRepoPackage(p.pkg, '', 0, null),
      repo: INSTALLED,
      nevra: p.nevra,
      files: new Set(p.pkg.files.map((f) => f.path)),
    }),
  );
  // A package obsoleting a kept base package is left out unless asked for by name: the solver would
  // install it in place of the base one (dnf does that only on upgrades). Asked for, it is refused below.
  const keptNames = new Set(kept.map((p) => p.pkg.name));
  const asked = new Set(request.packages);
  const obsoletesBase = (c: Candidate): boolean => c.pkg.dependencies.obsoletes.some((o) => keptNames.has(o.name));
  const renamed = new Map<Candidate, Candidate>();
  for (const c of loaded.candidates) {
    const pin = fixed.get(c.pkg.name);
    if ((pin === undefined && (asked.has(c.pkg.name) || !obsoletesBase(c))) || pin === c) renamed.set(c, push(c));
  }
  const universe = indexUniverse(candidates, loaded.repos);
  const wanted = [
    ...kept.map((p) => p.pkg.name),
    ...request.packages,
    ...[...locals, ...replaced.map(([, to]) => to)].map((c) => c.pkg.name),
  ];
  const solved = solve(universe, {
    packages: [...new Set(wanted)],
    exclude: request.removals,
    installWeakDeps: options.installWeakDeps ?? true,
    installedRepo: INSTALLED,
    arch: options.arch ?? hostArch(),
  });
  const chosen = new Set(solved.packages);
  const lost = keptCandidates.filter((c) => !chosen.has(c));
  if (lost.length > 0)
    throw new ArborError(
      'E_LAYER_BASE_CHANGED',
      `the request would take base package(s) ${lost.map((c) => `'${c.nevra}'`).join(', ')} out (obsoleted by a requested package)`,
      { hint: 'layering does not change base packages; remove them explicitly with `arbor override remove`' },
    );
  const added = solved.packages.filter((c) => c.repo !== INSTALLED);
  const why = new Map(solved.why);
  for (const c of locals) why.set(present(renamed.get(c), 'a local candidate'), 'requested (local package)');
  for (const [from, to] of replaced)
    why.set(present(renamed.get(to), 'a replacing candidate'), `replaces ${from.nevra}`);
  return {
    universe,
    added,
    why,
    removed,
    replaced: replaced.map(([from, to]) => [from, present(renamed.get(to), 'a replacing candidate')]),
    notes,
    skippedRepos,
  };
}

/** Refreshes each remote repository, leaving out (and listing) those skip_if_unavailable lets go. */
async function refreshRemotes(remotes: RepoSet): Promise<{ sources: UniverseSource[]; skippedRepos: SkippedRepo[] }> {
  const sources: UniverseSource[] = [];
  const skippedRepos: SkippedRepo[] = [];
  for (const remote of remotes.remotes) {
    const report = await inStep(`refreshing repository '${remote.config.id}'`, () => refreshOrSkip(remote));
    if (report.skipped === undefined) sources.push(remotes.source(remote));
    else skippedRepos.push({ id: remote.config.id, ...report.skipped });
  }
  return { sources, skippedRepos };
}

/** A regular file of the base tree (the user database), or an empty buffer when it has none. */
function readBaseFile(repo: Repo, base: Checksum, path: string): Buffer {
  try {
    const entry = lookupPath(repo, base, path);
    if (entry.kind === 'file' && isRegular(repo.readFileHeader(entry.checksum).mode))
      return repo.loadFile(entry.checksum).content;
  } catch (error) {
    if ((error as { code?: string }).code !== 'E_PATH_NOT_FOUND') throw error;
  }
  return Buffer.alloc(0);
}

/**
 * Takes the files of removed or replaced base packages out of the tree: what no remaining package
 * lists, files and links first, then directories left empty.
 */
function removePackageFiles(edit: TreeEditor, gone: readonly Installed[], remaining: readonly RpmHeader[]): void {
  if (gone.length === 0) return;
  const keep = new Set<string>();
  for (const header of remaining) for (const f of filesOfHeader(header, 'a remaining package')) keep.add(f.path);
  const files = gone.flatMap((p) => p.pkg.files).filter((f) => !keep.has(f.path) && !isGhost(f));
  for (const f of files) if (fileType(f.mode) !== S_IFDIR && edit.get(f.path)?.kind === 'file') edit.remove(f.path);
  // Deepest first, so a parent is looked at after its children went.
  const dirs = files.filter((f) => fileType(f.mode) === S_IFDIR).map((f) => f.path);
  for (const dir of dirs.sort((a, b) => b.length - a.length)) {
    const listing = edit.list(dir);
    if (listing && listing.files.length + listing.dirs.length === 0) edit.remove(dir);
  }
}

/**
 * Puts the layered packages' tree onto the base tree. Directories merge; a path where the base has
 * something else is a conflict (identical files are shared, as rpm allows); all are reported at once.
 */
function overlay(layer: TreeEditor, edit: TreeEditor, installed: readonly Installed[]): void {
  const top = layer.list('/') ?? { files: [], dirs: [] };
  const outside = [...top.files, ...top.dirs].filter((name) => !LAYERABLE_TOP.has(name));
  if (layer.get('/usr/local')) outside.push('usr/local');
  if (outside.length > 0)
    throw new ArborError(
      'E_LAYER_PATH',
      `layered packages may write only /usr, /etc and /var; they have /${outside.sort().join(', /')}`,
      {
        hint: '/opt, /usr/local and the other top-level directories belong to the machine (as with rpm-ostree); repackage into /usr',
      },
    );
  const conflicts: string[] = [];
  const visit = (path: string): void => {
    const listing = layer.list(path);
    if (!listing) return;
    for (const name of [...listing.dirs, ...listing.files]) {
      const child = `${path === '/' ? '' : path}/${name}`;
      const mine = layer.get(child);
      const theirs = edit.get(child);
      if (!mine) continue;
      if (!theirs) edit.set(child, mine);
      else if (mine.kind === 'dir' && theirs.kind === 'dir') visit(child);
      else if (mine.kind !== 'file' || theirs.kind !== 'file' || mine.checksum !== theirs.checksum)
        conflicts.push(child);
    }
  };
  visit('/');
  if (conflicts.length === 0) return;
  const owners = (path: string): string => {
    const found = installed.filter((p) => p.pkg.files.some((f) => f.path === path)).map((p) => p.nevra);
    return found.length > 0 ? found.join(', ') : 'the base tree';
  };
  const lines = conflicts.slice(0, 20).map((p) => `  ${p}: ${owners(p)}`);
  const more = conflicts.length > 20 ? `\n  ... and ${conflicts.length - 20} more` : '';
  throw new ArborError(
    'E_LAYER_FILE_CONFLICT',
    `${conflicts.length} path(s) of layered packages conflict with the base:\n${lines.join('\n')}${more}`,
    { hint: 'a layered package cannot overwrite a base file; `arbor override replace` swaps a base package' },
  );
}

/**
 * What the layered packages (and their scriptlets) put under /var, as tmpfiles.d lines in
 * LAYERED_TMPFILES, without the lines the base already has; returns the dropped regular files.
 */
function layeredVar(repo: Repo, base: Checksum, edit: TreeEditor, tx: Parameters<typeof varToTmpfiles>[0]): string[] {
  const { lines, dropped } = varToTmpfiles(tx, edit);
  const baseLines = new Set(readBaseFile(repo, base, VAR_TMPFILES).toString('utf8').split('\n'));
  const fresh = lines.filter((l) => !baseLines.has(l));
  if (fresh.length > 0)
    edit.writeFile(
      LAYERED_TMPFILES,
      Buffer.from(`# Made by arbor from what layered packages put in /var.\n${fresh.join('\n')}\n`),
    );
  return dropped;
}

function describeLayer(
  added: readonly LayeredPackage[],
  removed: readonly { nevra: string }[],
  replaced: readonly { from: string; to: string }[],
): string {
  const lines = [
    ...added.map((p) => `+ ${p.nevra}`),
    ...removed.map((p) => `- ${p.nevra}`),
    ...replaced.map((p) => `~ ${p.from} -> ${p.to}`),
  ];
  return lines.join('\n');
}
