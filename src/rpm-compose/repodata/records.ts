// The package records a repository yields, whether read from yum metadata (primary.xml,
// filelists.xml) or from the headers of a directory of .rpm files, and the pure rules they share.

export const REPO_DEPENDENCY_KINDS = [
  'provides',
  'requires',
  'conflicts',
  'obsoletes',
  'recommends',
  'suggests',
  'supplements',
  'enhances',
] as const;
export type RepoDependencyKind = (typeof REPO_DEPENDENCY_KINDS)[number];

/** The comparison of a versioned dependency, as primary.xml spells it. */
export type DependencyFlag = 'EQ' | 'LT' | 'GT' | 'LE' | 'GE';
const DEPENDENCY_FLAGS: readonly DependencyFlag[] = ['EQ', 'LT', 'GT', 'LE', 'GE'];
export const isDependencyFlag = (text: string): text is DependencyFlag =>
  (DEPENDENCY_FLAGS as readonly string[]).includes(text);

/**
 * One `<rpm:entry>`: unversioned entries have every field but `name` null. A versioned entry has
 * an epoch (createrepo_c writes 0 when the EVR has none) and a version; the release may be null.
 */
export interface RepoDependency {
  /** A capability, a path, or a rich (boolean) dependency in parentheses. */
  readonly name: string;
  readonly flags: DependencyFlag | null;
  readonly epoch: number | null;
  readonly ver: string | null;
  readonly rel: string | null;
  /** Requires only: needed by a %pre/%post/%pretrans/%posttrans scriptlet (`Requires(pre)` etc.). */
  readonly pre: boolean;
}

export type RepoFileType = 'file' | 'dir' | 'ghost';

export interface RepoFile {
  readonly path: string;
  readonly type: RepoFileType;
}

/** `<checksum type="sha256" pkgid="YES">hex</checksum>`: the digest of the whole .rpm file. */
export interface PackageChecksum {
  /** node:crypto name: md5, sha1, sha224, sha256, sha384, sha512 ("sha" in old repos is sha1). */
  readonly type: string;
  /** Lowercase hex. */
  readonly value: string;
  /** Whether this digest is the package's id in filelists.xml and other.xml. */
  readonly pkgid: boolean;
}

/** What a repository says about one package, before it is downloaded or unpacked. */
export interface RepoPackage {
  readonly name: string;
  readonly arch: string;
  /** 0 when the package has no epoch. */
  readonly epoch: number;
  readonly version: string;
  readonly release: string;
  readonly summary: string;
  /** Relative to the repository directory (no leading '/', no '..'); `base` is xml:base when set. */
  readonly location: { readonly href: string; readonly base: string | null };
  /** null only for a directory of .rpm files read with `packageChecksums: false`. */
  readonly checksum: PackageChecksum | null;
  readonly sizes: {
    /** The .rpm file. */
    readonly packageBytes: number;
    /** The sum of the file sizes (rpm's LONGSIZE). */
    readonly installedBytes: number;
    /** The uncompressed payload; null when unknown. */
    readonly archiveBytes: number | null;
  };
  /** Null in a source package. */
  readonly sourceRpm: string | null;
  /** Byte range of the main header in the .rpm file (from `<rpm:header-range>`); null when not listed. */
  readonly headerRange: { readonly start: number; readonly end: number } | null;
  readonly dependencies: Readonly<Record<RepoDependencyKind, readonly RepoDependency[]>>;
  /**
   * primary.xml lists only the "primary" files (isPrimaryPath: /etc/…, …bin/…,
   * /usr/lib/sendmail), which is all a file dependency may name without filelists.xml; a directory
   * of .rpm files gives every file. `filesComplete` says which.
   */
  readonly files: readonly RepoFile[];
  readonly filesComplete: boolean;
}

/** One `<package>` of filelists.xml: every file of a package, keyed by its pkgid. */
export interface FilelistsPackage {
  readonly pkgid: string;
  readonly name: string;
  readonly arch: string;
  readonly epoch: number;
  readonly version: string;
  readonly release: string;
  readonly files: readonly RepoFile[];
}

/**
 * Whether primary.xml lists a file (createrepo_c's cr_is_primary, which yum and dnf rely on): paths
 * under /etc/, containing "bin/" anywhere, or /usr/lib/sendmail.
 */
export function isPrimaryPath(path: string): boolean {
  return path.startsWith('/etc/') || path.includes('bin/') || path === '/usr/lib/sendmail';
}

/**
 * Splits a dependency's `[EPOCH:]VERSION[-RELEASE]` the way createrepo_c's cr_str_to_evr does: the
 * epoch is 0 when absent, the release is everything after the first '-' after the epoch. Returns
 * undefined for a non-numeric epoch (createrepo_c skips such a dependency with a warning).
 */
export function splitDependencyEvr(evr: string): { epoch: number; ver: string; rel: string | null } | undefined {
  const colon = evr.indexOf(':');
  let epoch = 0;
  let rest = evr;
  if (colon >= 0) {
    const digits = evr.slice(0, colon);
    if (!/^[0-9]*$/.test(digits)) return undefined;
    // "':1.0'" (an empty epoch) counts as 0, as in createrepo_c.
    epoch = digits === '' ? 0 : Number(digits);
    rest = evr.slice(colon + 1);
  }
  const dash = rest.indexOf('-');
  if (dash < 0) return { epoch, ver: rest, rel: null };
  const rel = rest.slice(dash + 1);
  return { epoch, ver: rest.slice(0, dash), rel: rel === '' ? null : rel };
}

/** An empty dependency table, to fill kind by kind. */
export function emptyDependencies(): Record<RepoDependencyKind, RepoDependency[]> {
  return {
    provides: [],
    requires: [],
    conflicts: [],
    obsoletes: [],
    recommends: [],
    suggests: [],
    supplements: [],
    enhances: [],
  };
}
