// The treefile phase: remove-from-packages, scriptlets and postprocess scripts in the sandbox,
// remove-files, enabled units and default target, etc-group-members, then the kernel (compose-kernel.ts).
import picomatch from 'picomatch';
import { parseInstallSection } from '../common/unit-install.js';
import { UsageError } from '../common/errors.js';
import { type Transaction, type TreeEditor, isSymlink } from '../repo/index.js';
import type { ComposeOptions, ComposeProgress } from './compose.js';
import { placeKernel } from './compose-kernel.js';
import { type Heads, headOf } from './compose-resolve.js';
import { filesOfHeader } from './rpm/package.js';
import type { SandboxStep } from './sandbox.js';
import { formatScriptletRef, runPostprocessScripts, runScriptlets } from './scriptlets.js';
import type { Candidate } from './solve/universe.js';
import type { Treefile } from './treefile.js';

interface TreefileEdits {
  readonly scripts: { readonly ran: string[]; readonly skipped: string[] };
  readonly kernel: { readonly version: string; readonly initramfs: boolean } | null;
  readonly removedFiles: number;
}

/** remove-from-packages, scriptlets, postprocess scripts, remove-files, units, kernel and initramfs. */
export async function applyTreefile(
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
