// bench/lib/debian-rpm.ts — owns turning this machine's installed Debian packages into RPMs: the
// package model (entries taken from the host or generated), dpkg's file lists and dependency fields,
// the merged-/usr base layout, and the rpmbuild spec each package is built from. Shared by the
// compose benchmark's RPM set (bench/rpm-set.ts) and the reference OS (examples/os/build-rpms.ts).
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Names rpm's %files takes literally: no glob characters, quotes, spaces, macros or escapes. */
const PLAIN_PATH = /^[A-Za-z0-9._+,:@=~/-]+$/;

/** Files and build times are clamped to it, so a package depends on its content only. */
const SOURCE_DATE_EPOCH = '1767225600'; // 2026-01-01

/** Directories the filesystem package owns (Fedora's filesystem package does the same). */
export const BASE_DIRS: Record<string, number> = {
  '/boot': 0o555,
  '/dev': 0o755,
  '/etc': 0o755,
  '/home': 0o755,
  '/media': 0o755,
  '/mnt': 0o755,
  '/opt': 0o755,
  '/proc': 0o555,
  '/root': 0o550,
  '/run': 0o755,
  '/srv': 0o755,
  '/sys': 0o555,
  '/tmp': 0o1777,
  '/usr': 0o755,
  '/usr/bin': 0o755,
  '/usr/include': 0o755,
  '/usr/lib': 0o755,
  '/usr/lib64': 0o755,
  '/usr/libexec': 0o755,
  '/usr/local': 0o755,
  '/usr/sbin': 0o755,
  '/usr/share': 0o755,
  '/usr/share/doc': 0o755,
  '/usr/share/man': 0o755,
  '/usr/share/man/man1': 0o755,
  '/usr/share/man/man5': 0o755,
  '/usr/share/man/man8': 0o755,
  '/usr/share/locale': 0o755,
  '/usr/share/info': 0o755,
  '/usr/lib/modules': 0o755,
  '/usr/lib/x86_64-linux-gnu': 0o755,
  '/etc/default': 0o755,
  '/etc/profile.d': 0o755,
  '/etc/skel': 0o755,
  '/var': 0o755,
  '/var/lib': 0o755,
  '/var/log': 0o755,
  '/var/cache': 0o755,
  '/var/spool': 0o755,
  '/var/tmp': 0o1777,
  '/var/opt': 0o755,
  '/var/lib/alternatives': 0o755,
};
export const BASE_SYMLINKS: Record<string, string> = {
  '/bin': 'usr/bin',
  '/sbin': 'usr/sbin',
  '/lib': 'usr/lib',
  '/lib64': 'usr/lib64',
  '/var/run': '../run',
};

// ---------------------------------------------------------------------------------------------
// Package model

export type Entry =
  | {
      kind: 'host';
      path: string;
      type: 'file' | 'symlink' | 'dir';
      bytes: number;
      config: boolean;
      owner: string;
      group: string;
    }
  | { kind: 'gen'; path: string; type: 'file'; bytes: number; mode: number; config: boolean; make: () => Buffer }
  | { kind: 'gen'; path: string; type: 'symlink'; target: string }
  | { kind: 'gen'; path: string; type: 'dir'; mode: number };

export interface Pkg {
  name: string;
  version: string;
  release: string;
  arch: 'noarch' | 'x86_64';
  summary: string;
  /** Where it comes from: a Debian package name, or "generated". */
  origin: string;
  requires: string[];
  requiresPre: string[];
  provides: string[];
  recommends: string[];
  suggests: string[];
  entries: Entry[];
  scripts: Partial<Record<'pre' | 'post' | 'posttrans', string>>;
  /** Shell lines run at the end of %install (the update's file changes). */
  installExtra: string[];
}

// ---------------------------------------------------------------------------------------------
// Debian packages of this machine

export interface DebPkg {
  name: string;
  key: string; // binary:Package, names the info files
  version: string;
  arch: string;
  depends: string;
  recommends: string;
  suggests: string;
  provides: string;
}

export const run = (argv: string[], input?: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')} exited ${code}:\n${err.slice(-3000)}`)),
    );
    if (input !== undefined) child.stdin!.end(input);
  });

/** Every package dpkg lists as installed (ii), sorted by name. */
export async function installedDebianPackages(): Promise<DebPkg[]> {
  const fmt =
    '${Package}\t${binary:Package}\t${Version}\t${Architecture}\t${Depends}, ${Pre-Depends}\t${Recommends}\t${Suggests}\t${Provides}\t${db:Status-Abbrev}\n';
  const out = await run(['dpkg-query', '-W', '-f', fmt]);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t'))
    .filter((f) => f[8]?.startsWith('ii'))
    .map((f) => ({
      name: f[0]!,
      key: f[1]!,
      version: f[2]!,
      arch: f[3]!,
      depends: f[4]!,
      recommends: f[5]!,
      suggests: f[6]!,
      provides: f[7]!,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function infoFile(p: DebPkg, ext: string): string | null {
  for (const name of [p.key, p.name, `${p.name}:${p.arch}`]) {
    const path = `/var/lib/dpkg/info/${name}.${ext}`;
    if (existsSync(path)) return path;
  }
  return null;
}

function readLines(path: string | null): string[] {
  return path === null
    ? []
    : readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l !== '');
}

/** /bin/x → /usr/bin/x etc.: the real parent directory, so merged-/usr aliases collapse. */
function canonical(path: string): string | null {
  try {
    const parent = realpathSync(dirname(path));
    return parent === '/' ? `/${basename(path)}` : `${parent}/${basename(path)}`;
  } catch {
    return null;
  }
}

/** uid → user name and gid → group name, from the host's /etc/passwd and /etc/group. */
export function nameMaps(): { users: Map<number, string>; groups: Map<number, string> } {
  const parse = (file: string): Map<number, string> =>
    new Map(
      readLines(file)
        .map((l) => l.split(':'))
        .map((f) => [Number(f[2]), f[0]!] as [number, string]),
    );
  return { users: parse('/etc/passwd'), groups: parse('/etc/group') };
}

export interface Candidate {
  deb: DebPkg;
  entries: Entry[];
  bytes: number;
  skipped: number;
}

/** What hostEntries leaves out besides the base layout: paths another package owns, and more. */
export interface HostEntryFilter {
  /** Paths a generated package of the set owns. */
  reserved: ReadonlySet<string>;
  /** Paths (canonical, absolute) left out as well, e.g. documentation. */
  exclude?: RegExp;
}

/** The package's own entries: under /usr or /etc, existing, plain names, not yet claimed. */
export function hostEntries(
  deb: DebPkg,
  claimed: Set<string>,
  ids: ReturnType<typeof nameMaps>,
  filter: HostEntryFilter,
): Candidate {
  const conffiles = new Set(readLines(infoFile(deb, 'conffiles')).map((l) => canonical(l.split(' ')[0]!)));
  const entries: Entry[] = [];
  let bytes = 0;
  let skipped = 0;
  const seen = new Set<string>();
  for (const listed of readLines(infoFile(deb, 'list'))) {
    const path = canonical(listed);
    if (path === null || seen.has(path)) continue;
    seen.add(path);
    if (!(path.startsWith('/usr/') || path.startsWith('/etc/')) || path.startsWith('/usr/local/')) continue;
    if (path in BASE_DIRS || path in BASE_SYMLINKS || filter.reserved.has(path)) continue;
    if (filter.exclude?.test(path)) continue;
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue; // listed but not on disk (path-exclude, removed by hand)
    }
    if (!PLAIN_PATH.test(path)) {
      skipped++;
      continue;
    }
    const type = st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : null;
    if (type === null) continue;
    if (type !== 'dir' && claimed.has(path)) continue;
    const owner = ids.users.get(st.uid) ?? 'root';
    const group = ids.groups.get(st.gid) ?? 'root';
    entries.push({
      kind: 'host',
      path,
      type,
      bytes: type === 'file' ? st.size : 0,
      config: conffiles.has(path) && type === 'file',
      owner,
      group,
    });
    if (type === 'file') bytes += st.size;
  }
  return { deb, entries, bytes, skipped };
}

/** "a (>= 1) | b, c:any" → [[a, b], [c]] */
export function parseDeps(field: string): string[][] {
  return field
    .split(',')
    .map((group) =>
      group
        .split('|')
        .map((alt) => alt.trim().split(/[\s(:[]/)[0]!)
        .filter((n) => n !== ''),
    )
    .filter((g) => g.length > 0);
}

/** A Debian version as an RPM Version: no epoch, no Debian revision, only characters rpm allows. */
export function rpmVersion(debVersion: string): string {
  const noEpoch = debVersion.replace(/^\d+:/, '');
  const dash = noEpoch.lastIndexOf('-');
  const upstream = dash > 0 ? noEpoch.slice(0, dash) : noEpoch;
  return upstream.replace(/[^A-Za-z0-9._+~^]/g, '.') || '0';
}

/** A generated regular file holding TEXT. */
export function textFile(path: string, text: string, mode = 0o644, config = false): Entry {
  const buf = Buffer.from(text);
  return { kind: 'gen', path, type: 'file', bytes: buf.length, mode, config, make: () => buf };
}

/** True when the ELF file has no program interpreter (PT_INTERP): it runs in a root without libc. */
function isStaticElf(path: string): boolean {
  const b = readFileSync(path);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false; // ELF64 only
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

/**
 * The /bin/sh of the set: scriptlets of packages installed before libc (rpm orders by Requires,
 * and a shell's Requires(post) only pulls in the filesystem package) need a static shell, as a
 * dynamically linked dash fails there with ENOENT. Debian's busybox-static gives one (busybox run
 * as "sh" is its ash).
 */
export function staticShell(): string {
  for (const path of ['/usr/bin/busybox', '/bin/busybox'])
    if (existsSync(path) && isStaticElf(realpathSync(path))) return realpathSync(path);
  throw new Error("no static shell for /bin/sh: install Debian's busybox-static (apt-get install busybox-static)");
}

// Building

/** NAME-VERSION-RELEASE.ARCH of a package. */
export const nevra = (p: Pkg): string => `${p.name}-${p.version}-${p.release}.${p.arch}`;
export const rpmFile = (p: Pkg): string => `${nevra(p)}.rpm`;

function specText(p: Pkg, hostList: string, genDir: string, filesList: string, autoProvides: boolean): string {
  const tag = (name: string, values: readonly string[]): string[] => values.map((v) => `${name}: ${v}`);
  const lines = [
    `Name: ${p.name}`,
    `Version: ${p.version}`,
    `Release: ${p.release}`,
    `Summary: ${p.summary}`,
    'License: Various',
    'URL: https://example.invalid/arbor-bench',
    ...(autoProvides ? ['AutoReq: no', 'AutoProv: yes'] : ['AutoReqProv: no']),
    ...(p.arch === 'noarch' ? ['BuildArch: noarch'] : []),
    ...tag('Requires', p.requires),
    ...tag('Requires(pre)', p.requiresPre),
    ...tag('Provides', p.provides),
    ...tag('Recommends', p.recommends),
    ...tag('Suggests', p.suggests),
    '',
    '%description',
    `${p.summary}. Built for the arbor compose benchmark from ${p.origin}.`,
    '',
    '%install',
    `tar -C / --no-recursion -cf - -T '${hostList}' | tar -C %{buildroot} -xpf -`,
    `cp -a '${genDir}/.' %{buildroot}/`,
    ...p.installExtra,
  ];
  for (const [kind, body] of Object.entries(p.scripts)) lines.push('', `%${kind}`, body);
  lines.push('', `%files -f ${filesList}`, '%defattr(-,root,root,-)');
  return `${lines.join('\n')}\n`;
}

function filesLines(p: Pkg): string[] {
  return p.entries.map((e) => {
    if (e.type === 'dir')
      return e.kind === 'gen' ? `%dir %attr(${e.mode.toString(8)},root,root) "${e.path}"` : `%dir "${e.path}"`;
    if (e.type === 'symlink') return `"${e.path}"`;
    const config = e.config ? '%config(noreplace) ' : '';
    const attr =
      e.kind === 'host' && (e.owner !== 'root' || e.group !== 'root') ? `%attr(-,${e.owner},${e.group}) ` : '';
    return `${config}${attr}"${e.path}"`;
  });
}

export interface BuildOptions {
  /** rpm's `_binary_payload`, e.g. `w19.zstdio` (Fedora's) or `w3.zstdio` (quicker). */
  payload: string;
  /**
   * Let rpmbuild generate Provides (ELF sonames and symbol versions) from the files: what RPMs
   * built by rpmbuild itself (arbor's, node's) require of the libraries. Requires stay as declared.
   */
  autoProvides?: boolean;
}

/** Builds one package into outDir with rpmbuild; returns the RPM's path. */
export async function buildPackage(p: Pkg, outDir: string, work: string, options: BuildOptions): Promise<string> {
  rmSync(work, { recursive: true, force: true });
  const genDir = join(work, 'gen');
  mkdirSync(genDir, { recursive: true });
  for (const e of p.entries) {
    if (e.kind !== 'gen') continue;
    const dest = join(genDir, e.path);
    if (e.type === 'dir') {
      mkdirSync(dest, { recursive: true });
      continue;
    }
    mkdirSync(dirname(dest), { recursive: true });
    if (e.type === 'symlink') symlinkSync(e.target, dest);
    else writeFileSync(dest, e.make());
  }
  // Modes of generated entries as given (no umask), after every file is in place.
  for (const e of p.entries) if (e.kind === 'gen' && e.type !== 'symlink') chmodSync(join(genDir, e.path), e.mode);
  const hostList = join(work, 'host.list');
  writeFileSync(
    hostList,
    p.entries
      .filter((e) => e.kind === 'host')
      .map((e) => `${e.path.slice(1)}\n`)
      .join(''),
  );
  const filesList = join(work, 'files.list');
  writeFileSync(filesList, `${filesLines(p).join('\n')}\n`);
  const spec = join(work, `${p.name}.spec`);
  writeFileSync(spec, specText(p, hostList, genDir, filesList, options.autoProvides ?? false));
  await run([
    'env',
    `SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}`,
    'HOME=/nonexistent',
    'rpmbuild',
    '-bb',
    '--quiet',
    '--define',
    `_topdir ${join(work, 'top')}`,
    '--define',
    `_rpmdir ${outDir}`,
    '--define',
    '_build_name_fmt %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm',
    '--define',
    `_binary_payload ${options.payload}`,
    '--define',
    '__os_install_post %{nil}',
    '--define',
    '__arch_install_post %{nil}',
    '--define',
    'debug_package %{nil}',
    '--define',
    '_build_id_links none',
    '--define',
    '_binaries_in_noarch_packages_terminate_build 0',
    '--define',
    '_buildhost arbor-bench',
    '--define',
    'use_source_date_epoch_as_buildtime 1',
    '--define',
    'clamp_mtime_to_source_epoch 1',
    ...(p.arch === 'noarch' ? [] : ['--target', p.arch]),
    spec,
  ]);
  const out = join(outDir, rpmFile(p));
  if (!existsSync(out)) throw new Error(`rpmbuild of ${p.name} made no ${out}`);
  rmSync(work, { recursive: true, force: true });
  return out;
}

/** Runs jobs with at most `width` at a time, in order of submission. */
export async function pool<T>(width: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < jobs.length; i = next++) results[i] = await jobs[i]!();
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return results;
}
