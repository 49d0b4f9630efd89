// Real RPM packages and yum repositories made at test time: a package is described in a few
// fields, turned into a spec file and built with rpmbuild; createrepo_c makes the repository.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const HAVE_RPMBUILD = spawnSync('rpmbuild', ['--version']).status === 0;
export const HAVE_CREATEREPO = spawnSync('createrepo_c', ['--version']).status === 0;

type FileDef =
  | string
  | { readonly symlink: string }
  | { readonly dir: true; readonly mode?: number }
  | {
      readonly content: string;
      readonly mode?: number;
      readonly config?: boolean;
      readonly owner?: string;
      readonly group?: string;
    }
  /** A copy of a host file (a static binary such as /bin/busybox); mode 0644 unless given. */
  | { readonly copyOf: string; readonly mode?: number };

export interface PackageDef {
  readonly name: string;
  readonly version?: string;
  readonly release?: string;
  readonly epoch?: number;
  /** noarch (the default) or x86_64 etc. (built with --target). */
  readonly arch?: string;
  readonly requires?: readonly string[];
  /** Requires(pre): needed before the package's %pre runs. */
  readonly requiresPre?: readonly string[];
  readonly provides?: readonly string[];
  readonly conflicts?: readonly string[];
  readonly obsoletes?: readonly string[];
  readonly recommends?: readonly string[];
  readonly suggests?: readonly string[];
  readonly supplements?: readonly string[];
  readonly enhances?: readonly string[];
  /** Absolute path → content (a string is a 0644 file). */
  readonly files?: Readonly<Record<string, FileDef>>;
  /** Scriptlet bodies (/bin/sh). */
  readonly scripts?: Partial<Record<'pre' | 'post' | 'posttrans' | 'preun' | 'postun', string>>;
  /** Raw spec text appended at the end (file triggers, interpreters...). */
  readonly extra?: string;
}

const nevraFile = (d: PackageDef): string =>
  `${d.name}-${d.version ?? '1'}-${d.release ?? '1'}.${d.arch ?? 'noarch'}.rpm`;

/** The spec file text of a package description. */
function specText(d: PackageDef): string {
  const lines = [
    `Name: ${d.name}`,
    `Version: ${d.version ?? '1'}`,
    `Release: ${d.release ?? '1'}`,
    ...(d.epoch !== undefined ? [`Epoch: ${d.epoch}`] : []),
    `Summary: test package ${d.name}`,
    'License: MIT',
    ...((d.arch ?? 'noarch') === 'noarch' ? ['BuildArch: noarch'] : []),
    'AutoReqProv: no',
  ];
  const tag = (name: string, values: readonly string[] | undefined): void => {
    for (const v of values ?? []) lines.push(`${name}: ${v}`);
  };
  tag('Requires', d.requires);
  tag('Requires(pre)', d.requiresPre);
  tag('Provides', d.provides);
  tag('Conflicts', d.conflicts);
  tag('Obsoletes', d.obsoletes);
  tag('Recommends', d.recommends);
  tag('Suggests', d.suggests);
  tag('Supplements', d.supplements);
  tag('Enhances', d.enhances);
  lines.push('', '%description', `Test package ${d.name}.`, '', '%install');
  const fileLines: string[] = [];
  for (const [path, def] of Object.entries(d.files ?? {})) {
    const dest = `%{buildroot}${path}`;
    const parent = dest.slice(0, dest.lastIndexOf('/'));
    if (typeof def === 'object' && 'dir' in def) {
      lines.push(`mkdir -p '${dest}'`);
      fileLines.push(def.mode !== undefined ? `%dir %attr(${def.mode.toString(8)},-,-) ${path}` : `%dir ${path}`);
    } else if (typeof def === 'object' && 'copyOf' in def) {
      lines.push(`mkdir -p '${parent}'`, `install -m ${(def.mode ?? 0o644).toString(8)} '${def.copyOf}' '${dest}'`);
      fileLines.push(path);
    } else if (typeof def === 'object' && 'symlink' in def) {
      lines.push(`mkdir -p '${parent}'`, `ln -s '${def.symlink}' '${dest}'`);
      fileLines.push(path);
    } else {
      const content = typeof def === 'string' ? def : def.content;
      const b64 = Buffer.from(content).toString('base64');
      lines.push(`mkdir -p '${parent}'`, `echo '${b64}' | base64 -d > '${dest}'`);
      if (typeof def === 'object' && def.mode !== undefined) lines.push(`chmod ${def.mode.toString(8)} '${dest}'`);
      const attr =
        typeof def === 'object' && (def.owner !== undefined || def.mode !== undefined)
          ? `%attr(${def.mode?.toString(8) ?? '-'},${def.owner ?? '-'},${def.group ?? '-'}) `
          : '';
      fileLines.push(`${typeof def === 'object' && def.config ? '%config(noreplace) ' : ''}${attr}${path}`);
    }
  }
  for (const [kind, body] of Object.entries(d.scripts ?? {})) lines.push('', `%${kind}`, body);
  lines.push('', '%files', ...fileLines);
  if (d.extra) lines.push('', d.extra);
  return `${lines.join('\n')}\n`;
}

/** Builds each package into `outDir` (flat); returns their paths in order. */
export function buildPackages(outDir: string, defs: readonly PackageDef[]): string[] {
  mkdirSync(outDir, { recursive: true });
  const specDir = join(outDir, '.specs');
  mkdirSync(specDir, { recursive: true });
  return defs.map((d, i) => {
    const specPath = join(specDir, `${i}-${d.name}.spec`);
    writeFileSync(specPath, specText(d));
    const args = [
      '-bb',
      '--quiet',
      '--define',
      `_topdir ${join(specDir, 'top')}`,
      '--define',
      `_rpmdir ${outDir}`,
      '--define',
      '_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm',
      '--define',
      '_binary_payload w2.xzdio',
      '--define',
      '__os_install_post %{nil}',
      '--define',
      'debug_package %{nil}',
      // A static binary copied in (copyOf) may sit in a noarch test package.
      '--define',
      '_binaries_in_noarch_packages_terminate_build 0',
      ...((d.arch ?? 'noarch') === 'noarch' ? [] : ['--target', d.arch ?? 'noarch']),
      specPath,
    ];
    const r = spawnSync('rpmbuild', args, { encoding: 'utf8' });
    const path = join(outDir, nevraFile(d));
    if (r.status !== 0 || !existsSync(path))
      throw new Error(`rpmbuild of ${d.name} failed (${r.status}):\n${r.stderr}\n${specText(d)}`);
    return path;
  });
}

/** Runs createrepo_c on a directory of packages (extra args e.g. ['--general-compress-type=xz']). */
export function createRepo(dir: string, args: readonly string[] = []): void {
  const r = spawnSync('createrepo_c', ['--quiet', ...args, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`createrepo_c ${dir} failed:\n${r.stderr}`);
}

/** Builds the packages into `dir` and makes it a yum repository. */
export function makeRepo(dir: string, defs: readonly PackageDef[], args: readonly string[] = []): string[] {
  const paths = buildPackages(dir, defs);
  createRepo(dir, args);
  return paths;
}
