// The real dnf (Debian's dnf 4) as the reference for dependency solving: installs into a throwaway
// installroot from local yum repositories and reports what rpm then lists there. Root runs it
// directly; anyone else runs it in a bubblewrap user namespace (rpm must chroot into the root).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/** The prefix that gives dnf the root it insists on, or null when dnf cannot run here. */
function dnfPrefix(): string[] | null {
  if (spawnSync('dnf', ['--version']).status !== 0) return null;
  if (process.getuid?.() === 0) return [];
  const bwrap = [
    'bwrap',
    '--unshare-user',
    '--uid',
    '0',
    '--gid',
    '0',
    '--cap-add',
    'ALL',
    '--bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
  ];
  return spawnSync(bwrap[0] as string, [...bwrap.slice(1), 'true']).status === 0 ? bwrap : null;
}

const PREFIX = dnfPrefix();
export const HAVE_DNF = PREFIX !== null;

export interface DnfOptions {
  /** dnf's install_weak_deps (Recommends and Supplements); default true. */
  readonly installWeakDeps?: boolean;
  /** Package names hidden from the solver (`--exclude`). */
  readonly exclude?: readonly string[];
  /** The machine dnf solves for (`--forcearch`); default x86_64. */
  readonly arch?: string;
}

export interface DnfResult {
  readonly ok: boolean;
  /** What rpm lists in the installroot afterwards, `name-epoch:version-release.arch`, sorted. */
  readonly installed: readonly string[];
  /** dnf's stdout and stderr: on failure its "Problem:" or "Unable to find a match" lines. */
  readonly output: string;
}

/** The key rpm's `%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}` prints, for set comparisons. */
export const packageKey = (p: {
  name: string;
  epoch: number;
  version: string;
  release: string;
  arch: string;
}): string => `${p.name}-${p.epoch}:${p.version}-${p.release}.${p.arch}`;

/**
 * Runs `dnf install SPEC...` into `installRoot` (a fresh empty directory) from `repoDirs` only.
 * The host's dnf.conf is replaced by `${installRoot}.conf` with best=False pinned (Debian's and
 * Fedora's default: a request may settle for an older version when the newest cannot be installed).
 */
export function dnfInstall(
  installRoot: string,
  repoDirs: readonly string[],
  specs: readonly string[],
  options: DnfOptions = {},
): DnfResult {
  if (PREFIX === null) throw new Error('dnf is not usable here (HAVE_DNF is false)');
  const config = `${installRoot}.conf`;
  writeFileSync(config, '[main]\n');
  const args = [
    'dnf',
    '-y',
    '-q',
    '--noplugins',
    '--config',
    config,
    '--installroot',
    installRoot,
    '--setopt=reposdir=/dev/null',
    ...repoDirs.flatMap((dir, i) => [`--repofrompath=r${i},${dir}`, '--repo', `r${i}`]),
    '--nogpgcheck',
    '--releasever',
    '1',
    '--forcearch',
    options.arch ?? 'x86_64',
    '--setopt=best=False',
    `--setopt=install_weak_deps=${(options.installWeakDeps ?? true) ? 'True' : 'False'}`,
    ...(options.exclude ?? []).map((name) => `--exclude=${name}`),
    'install',
    ...specs,
  ];
  const full = [...PREFIX, ...args];
  const r = spawnSync(full[0] as string, full.slice(1), { encoding: 'utf8' });
  if (r.error) throw r.error;
  const q = spawnSync(
    'rpm',
    ['--root', installRoot, '-qa', '--qf', '%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n'],
    { encoding: 'utf8' },
  );
  if (q.status !== 0) throw new Error(`rpm -qa in ${installRoot} failed:\n${q.stderr}`);
  const installed = q.stdout
    .split('\n')
    .filter((l) => l !== '')
    .sort();
  return { ok: r.status === 0, installed, output: `${r.stdout}${r.stderr}` };
}
