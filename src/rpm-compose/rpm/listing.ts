// What `arbor rpm ls` and `arbor rpm info` show: pure formatting of a package's file list (the
// columns of `rpm -qp --dump`) and of its metadata (like `rpm -qpi` plus dependencies).
import { type RpmFile, type RpmPackage, DEPENDENCY_KINDS, isGhost } from './package.js';
import { FileFlag } from './tags.js';

/** One row of `rpm -qp --dump`, with nulls where rpm prints placeholders. */
export interface FileListing {
  readonly path: string;
  readonly size: number;
  readonly mtime: number;
  /** null for files without a digest (rpm prints zeros). */
  readonly digest: string | null;
  readonly mode: number;
  readonly owner: string;
  readonly group: string;
  readonly isConfig: boolean;
  readonly isDoc: boolean;
  readonly rdev: number;
  /** null unless a symlink (rpm prints X). */
  readonly linkTo: string | null;
  /** Names of the FILEFLAGS bits (config, noreplace, doc, ghost, license...). */
  readonly flags: readonly string[];
  /** File capabilities in cap_to_text form, or null. */
  readonly caps: string | null;
}

const FLAG_NAMES: [number, string][] = [
  [FileFlag.Config, 'config'],
  [FileFlag.Doc, 'doc'],
  [FileFlag.Icon, 'icon'],
  [FileFlag.MissingOk, 'missingok'],
  [FileFlag.NoReplace, 'noreplace'],
  [FileFlag.SpecFile, 'specfile'],
  [FileFlag.Ghost, 'ghost'],
  [FileFlag.License, 'license'],
  [FileFlag.Readme, 'readme'],
  [FileFlag.PubKey, 'pubkey'],
  [FileFlag.Artifact, 'artifact'],
];

const DIGEST_HEX_LENGTH: Record<string, number> = {
  md5: 32,
  sha1: 40,
  sha224: 56,
  sha256: 64,
  sha384: 96,
  sha512: 128,
};

export function listFile(file: RpmFile): FileListing {
  return {
    path: file.path,
    size: file.size,
    mtime: file.mtime,
    digest: file.digest === '' ? null : file.digest,
    mode: file.mode,
    owner: file.user,
    group: file.group,
    isConfig: (file.flags & FileFlag.Config) !== 0,
    isDoc: (file.flags & FileFlag.Doc) !== 0,
    rdev: file.rdev,
    linkTo: file.linkTo === '' ? null : file.linkTo,
    flags: FLAG_NAMES.filter(([bit]) => (file.flags & bit) !== 0).map(([, name]) => name),
    caps: file.caps === '' ? null : file.caps,
  };
}

/** The package's files as `rpm -qp --dump` prints them, one line each, byte for byte. */
export function formatDump(pkg: RpmPackage): string {
  if (pkg.files.length === 0) return '(contains no files)\n';
  const zeros = '0'.repeat(DIGEST_HEX_LENGTH[pkg.fileDigestAlgo] ?? 32);
  return pkg.files
    .map((f) => {
      const l = listFile(f);
      return `${l.path} ${l.size} ${l.mtime} ${l.digest ?? zeros} 0${l.mode.toString(8)} ${l.owner} ${l.group} ${l.isConfig ? 1 : 0} ${l.isDoc ? 1 : 0} ${l.rdev} ${l.linkTo ?? 'X'}\n`;
    })
    .join('');
}

/** The JSON `arbor rpm info --json` prints for one package: everything but the file list. */
export function describeForJson(
  pkg: RpmPackage,
  extra: { path: string; headerSha256: string },
): Record<string, unknown> {
  const { files, ...rest } = pkg;
  return {
    path: extra.path,
    headerSha256: extra.headerSha256,
    ...rest,
    fileCount: files.length,
    ghostCount: files.filter(isGhost).length,
  };
}

/** A human summary in the spirit of `rpm -qpi`, followed by the dependencies and scriptlets. */
export function formatInfo(pkg: RpmPackage): string {
  const date = (seconds: number): string =>
    new Date(seconds * 1000)
      .toISOString()
      .replace('T', ' ')
      .replace(/\.000Z$/, ' UTC');
  const rows: [string, string][] = [
    ['Name', pkg.name],
    ['Epoch', pkg.epoch === undefined ? '(none)' : String(pkg.epoch)],
    ['Version', pkg.version],
    ['Release', pkg.release],
    ['Architecture', pkg.arch],
    ['Group', pkg.group],
    ['Size', String(pkg.sizeBytes)],
    ['License', pkg.license],
    ['Source RPM', pkg.sourceRpm ?? '(none)'],
    ['Build Date', date(pkg.buildTime)],
    ['Build Host', pkg.buildHost],
    ['Packager', pkg.packager || '(none)'],
    ['Vendor', pkg.vendor || '(none)'],
    ['URL', pkg.url || '(none)'],
    [
      'Payload',
      `${pkg.payload.format}, ${pkg.payload.compressor ?? '(none)'}${pkg.payload.flags ? ` level ${pkg.payload.flags}` : ''}`,
    ],
    ['Summary', pkg.summary],
  ];
  const lines = rows.map(([k, v]) => `${k.padEnd(12)}: ${v}`);
  lines.push('Description :', ...pkg.description.split('\n'));
  for (const kind of DEPENDENCY_KINDS) {
    const deps = pkg.dependencies[kind];
    if (deps.length === 0) continue;
    lines.push(`${kind[0]!.toUpperCase()}${kind.slice(1)}:`);
    for (const d of deps) lines.push(`  ${d.name}${d.cmp ? ` ${d.cmp} ${d.evr}` : ''}`);
  }
  for (const [kind, script] of Object.entries(pkg.scripts)) {
    lines.push(`%${kind}${script.interpreter.length ? ` (${script.interpreter.join(' ')})` : ''}:`);
    if (script.body) lines.push(...script.body.split('\n').map((l) => `  ${l}`));
  }
  for (const t of pkg.triggers) {
    lines.push(
      `${t.type === 'package' ? '' : t.type}trigger${t.when} ${t.name}${t.cmp ? ` ${t.cmp} ${t.evr}` : ''}${t.script.interpreter.length ? ` (${t.script.interpreter.join(' ')})` : ''}:`,
    );
    if (t.script.body) lines.push(...t.script.body.split('\n').map((l) => `  ${l}`));
  }
  return `${lines.join('\n')}\n`;
}
