// `.repo` files as dnf reads them (`/etc/yum.repos.d`, or next to a treefile): one repository per
// section, with the keys Arbor acts on decoded strictly and every other key ignored, as dnf does;
// and the [main] keys of dnf.conf layering honours. Pure: text and variables in, configs out.
import { UsageError } from '../../common/errors.js';
import { parseIni } from '../../common/ini.js';

/** One repository a `.repo` section (or a treefile URL) defines, variables substituted. */
export interface YumRepoConfig {
  /** The section name: how treefiles and messages name the repository. */
  readonly id: string;
  /** `FILE:LINE` of its section header, or the treefile naming the URL. */
  readonly source: string;
  /** Mirrors to try first, in order. */
  readonly baseurls: readonly string[];
  readonly metalink: string | null;
  readonly mirrorlist: string | null;
  readonly enabled: boolean;
  /** 1–99, lower wins: a name offered by a lower number hides it in every other repository. */
  readonly priority: number;
  /** Between repositories of one priority, the same package comes from the lowest cost. */
  readonly cost: number;
  /** Globs over package names (and NEVRAs) to leave out / to keep only. */
  readonly excludepkgs: readonly string[];
  readonly includepkgs: readonly string[];
  readonly gpgcheck: boolean;
  readonly repoGpgcheck: boolean;
  /** `file://` or `http(s)://` URLs of key files. */
  readonly gpgkeys: readonly string[];
  /** How long fetched metadata counts as fresh; Infinity for `never`. */
  readonly metadataExpireSeconds: number;
  /** dnf's minrate and timeout: a transfer slower than this many bytes per second for that long is abandoned. */
  readonly minrateBytesPerSecond: number;
  readonly timeoutSeconds: number;
  /** A repository that cannot be refreshed is left out with a warning instead of failing (layering, refresh-md). */
  readonly skipIfUnavailable: boolean;
}

/** What `$basearch`, `$arch` and `$releasever` stand for. */
export interface RepoVariables {
  readonly basearch: string;
  readonly releasever: string | null;
}

/** The keys Arbor reads; dnf's many others (proxy, sslverify, …) are ignored. */
const REPO_FILE_KEYS = [
  'name',
  'baseurl',
  'metalink',
  'mirrorlist',
  'enabled',
  'priority',
  'cost',
  'excludepkgs',
  'exclude',
  'includepkgs',
  'gpgcheck',
  'repo_gpgcheck',
  'gpgkey',
  'metadata_expire',
  'minrate',
  'timeout',
  'skip_if_unavailable',
] as const;

/** dnf's defaults (libdnf's ConfigMain): no signature checks unless asked, metadata fresh for 48 hours. */
export const REPO_DEFAULTS = {
  priority: 99,
  cost: 1000,
  gpgcheck: false,
  repoGpgcheck: false,
  metadataExpireSeconds: 48 * 3600,
  minrateBytesPerSecond: 1000,
  timeoutSeconds: 30,
  // dnf.conf(5) of dnf 4: False (a distribution's dnf.conf [main] may say otherwise, and is read).
  skipIfUnavailable: false,
} as const;

/** What dnf.conf's [main] section sets for every transaction (dnf.conf(5)); dnf's defaults otherwise. */
export interface DnfMain {
  /** Recommends and Supplements of new packages are installed (True). */
  readonly installWeakDeps: boolean;
  /** The defaults of each repository's own keys of these names (all False). */
  readonly skipIfUnavailable: boolean;
  readonly gpgcheck: boolean;
  readonly repoGpgcheck: boolean;
}

/** dnf's defaults, for a host without dnf.conf. */
export const DNF_MAIN_DEFAULTS: DnfMain = {
  installWeakDeps: true,
  skipIfUnavailable: REPO_DEFAULTS.skipIfUnavailable,
  gpgcheck: REPO_DEFAULTS.gpgcheck,
  repoGpgcheck: REPO_DEFAULTS.repoGpgcheck,
};

/** Replaces `$var` and `${var}` for the known variables; an unknown variable is left as written, as dnf does. */
export function substituteVariables(text: string, vars: RepoVariables): string {
  return text.replace(/\$(?:\{(\w+)\}|(\w+))/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    if (name === 'basearch' || name === 'arch') return vars.basearch;
    if (name === 'releasever' && vars.releasever !== null) return vars.releasever;
    return whole;
  });
}

/** dnf's booleans: 1/0, yes/no, true/false, on/off, any case. */
function parseBool(text: string): boolean | undefined {
  const t = text.toLowerCase();
  if (['1', 'yes', 'true', 'on'].includes(t)) return true;
  if (['0', 'no', 'false', 'off'].includes(t)) return false;
  return undefined;
}

/** A metadata_expire value: seconds, or a number with s/m/h/d; `never` or -1 is forever. */
function parseExpire(text: string): number | undefined {
  const t = text.toLowerCase();
  if (t === 'never' || t === '-1') return Infinity;
  const m = /^(\d{1,9})([smhd]?)$/.exec(t);
  if (!m) return undefined;
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/** A byte count as dnf writes minrate: a number with an optional k, M or G (powers of 1024). */
function parseBytes(text: string): number | undefined {
  const m = /^(\d{1,12})([kKmMgG]?)$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * 1024 ** ['', 'k', 'm', 'g'].indexOf((m[2] as string).toLowerCase());
}

/** A list value: items split at commas and whitespace (dnf's rule for baseurl, gpgkey and the package lists). */
const splitList = (text: string): string[] => text.split(/[\s,]+/).filter((s) => s !== '');

/**
 * dnf continues a value on following lines that start with whitespace (`baseurl=` with one mirror
 * per line). The shared INI parser trims lines, so continuations are joined onto their key's line
 * here, and replaced by empty lines so line numbers stay right.
 */
function joinContinuations(text: string): string {
  const lines = text.split('\n');
  let owner = -1;
  for (const [i, line] of lines.entries()) {
    const continued = /^[ \t]/.test(line) && line.trim() !== '' && !/^\s*[#;]/.test(line);
    if (continued && owner >= 0) {
      lines[owner] = `${lines[owner] as string} ${line.trim()}`;
      lines[i] = '';
    } else if (line.includes('=') && !/^\s*[#;[]/.test(line)) owner = i;
    else if (line.trim() !== '') owner = -1;
  }
  return lines.join('\n');
}

/**
 * Parses the text of one `.repo` file (`source` names it in messages) into its repositories, in
 * file order, with variables substituted. A section needs baseurl, metalink or mirrorlist; values of
 * the keys Arbor reads must decode (E_YUM_REPO_INVALID names FILE:LINE). Keys Arbor does not read are
 * ignored and returned, as dnf ignores them (it mentions them only in its debug log).
 */
export function parseRepoFile(
  text: string,
  source: string,
  vars: RepoVariables,
  main: DnfMain = DNF_MAIN_DEFAULTS,
): { repos: YumRepoConfig[]; ignoredKeys: string[] } {
  const invalid = invalidAt(source);
  const parsed = parseDnfIni(text, invalid);
  const lines = text.split('\n');
  const repos: YumRepoConfig[] = [];
  const ignoredKeys: string[] = [];
  for (const [id, entries] of parsed.sections) {
    // dnf's [main] section belongs to dnf.conf; in a .repo file it is not a repository.
    if (id === 'main') continue;
    const headerLine = 1 + lines.findIndex((l) => l.trim() === `[${id}]`);
    const value = (key: string): { value: string; line: number } | undefined => {
      const v = entries.get(key);
      return v === undefined ? undefined : { value: substituteVariables(v.value, vars), line: v.line };
    };
    for (const key of entries.keys())
      if (!(REPO_FILE_KEYS as readonly string[]).includes(key)) ignoredKeys.push(`${id}.${key}`);
    const bool = (key: string, fallback: boolean): boolean => boolOf(value(key), key, fallback, invalid);
    const integer = (key: string, fallback: number, min: number, max: number): number => {
      const v = value(key);
      if (v === undefined) return fallback;
      if (!/^\d{1,9}$/.test(v.value) || Number(v.value) < min || Number(v.value) > max)
        throw invalid(v.line, `${key} must be an integer from ${min} to ${max}`);
      return Number(v.value);
    };
    const urls = (key: string, schemes: RegExp): string[] => {
      const v = value(key);
      if (v === undefined) return [];
      const list = splitList(v.value);
      for (const url of list) {
        if (!schemes.test(url)) throw invalid(v.line, `${key} '${url.slice(0, 200)}' is not a ${schemes.source} URL`);
        try {
          new URL(url);
        } catch {
          throw invalid(v.line, `${key} '${url.slice(0, 200)}' is not a valid URL`);
        }
      }
      return list;
    };
    const single = (key: string): string | null => {
      const list = urls(key, /^(https?|file):\/\//);
      if (list.length > 1) throw invalid(value(key)?.line ?? headerLine, `${key} takes one URL`);
      return list[0] ?? null;
    };
    const baseurls = urls('baseurl', /^(https?|file):\/\//);
    const metalink = single('metalink');
    const mirrorlist = single('mirrorlist');
    if (baseurls.length === 0 && metalink === null && mirrorlist === null)
      throw invalid(headerLine, `repository '${id}' has no baseurl, metalink or mirrorlist`);
    const expire = value('metadata_expire');
    const metadataExpireSeconds =
      expire === undefined ? REPO_DEFAULTS.metadataExpireSeconds : parseExpire(expire.value);
    if (metadataExpireSeconds === undefined)
      throw invalid(expire?.line ?? headerLine, 'metadata_expire must be seconds, a number with s/m/h/d, or never');
    const minrate = value('minrate');
    const minrateBytesPerSecond =
      minrate === undefined ? REPO_DEFAULTS.minrateBytesPerSecond : parseBytes(minrate.value);
    if (minrateBytesPerSecond === undefined)
      throw invalid(minrate?.line ?? headerLine, 'minrate must be bytes per second, optionally with k, M or G');
    repos.push({
      id,
      source: `${source}:${headerLine}`,
      baseurls,
      metalink,
      mirrorlist,
      enabled: bool('enabled', true),
      priority: integer('priority', REPO_DEFAULTS.priority, 1, 99),
      cost: integer('cost', REPO_DEFAULTS.cost, 0, 1_000_000),
      // `exclude` is dnf's older spelling of excludepkgs.
      excludepkgs: [...splitList(value('excludepkgs')?.value ?? ''), ...splitList(value('exclude')?.value ?? '')],
      includepkgs: splitList(value('includepkgs')?.value ?? ''),
      gpgcheck: bool('gpgcheck', main.gpgcheck),
      repoGpgcheck: bool('repo_gpgcheck', main.repoGpgcheck),
      gpgkeys: urls('gpgkey', /^(https?|file):\/\//),
      metadataExpireSeconds,
      minrateBytesPerSecond,
      timeoutSeconds: integer('timeout', REPO_DEFAULTS.timeoutSeconds, 1, 86_400),
      skipIfUnavailable: bool('skip_if_unavailable', main.skipIfUnavailable),
    });
  }
  return { repos, ignoredKeys };
}

type Invalid = (line: number, problem: string) => UsageError;

/** E_YUM_REPO_INVALID at `source:line`. */
const invalidAt =
  (source: string): Invalid =>
  (line, problem) =>
    new UsageError('E_YUM_REPO_INVALID', `${source}:${line}: ${problem}`, {
      hint: 'see dnf.conf(5) for the format of dnf.conf and .repo files',
    });

/** The shared INI syntax with dnf's continuation lines and its section names. */
function parseDnfIni(text: string, invalid: Invalid) {
  const parsed = parseIni(joinContinuations(text), {
    noun: 'repository',
    sectionProblem: (name) =>
      /^[A-Za-z0-9_.:-]+$/.test(name) ? undefined : 'a repository id holds only letters, digits and _ . : -',
  });
  if ('error' in parsed) throw invalid(parsed.error.line, parsed.error.problem);
  return parsed;
}

/** A boolean key's value, `fallback` when absent; E_YUM_REPO_INVALID when it is not one of dnf's booleans. */
function boolOf(
  v: { value: string; line: number } | undefined,
  key: string,
  fallback: boolean,
  invalid: Invalid,
): boolean {
  if (v === undefined) return fallback;
  const b = parseBool(v.value);
  if (b === undefined) throw invalid(v.line, `${key} must be 1 or 0 (yes/no, true/false, on/off)`);
  return b;
}

/**
 * The [main] keys of a dnf.conf that layering honours (`source` names it in messages): install_weak_deps,
 * and the defaults of skip_if_unavailable, gpgcheck and repo_gpgcheck for every repository, as
 * libdnf's repository options inherit them; dnf's defaults when absent. Other keys and sections
 * (dnf.conf may define repositories too) are not read here; a bad boolean is E_YUM_REPO_INVALID.
 */
export function parseDnfMain(text: string, source: string): DnfMain {
  const invalid = invalidAt(source);
  const main = parseDnfIni(text, invalid).sections.get('main');
  const bool = (key: string, fallback: boolean): boolean => boolOf(main?.get(key), key, fallback, invalid);
  return {
    installWeakDeps: bool('install_weak_deps', DNF_MAIN_DEFAULTS.installWeakDeps),
    skipIfUnavailable: bool('skip_if_unavailable', DNF_MAIN_DEFAULTS.skipIfUnavailable),
    gpgcheck: bool('gpgcheck', DNF_MAIN_DEFAULTS.gpgcheck),
    repoGpgcheck: bool('repo_gpgcheck', DNF_MAIN_DEFAULTS.repoGpgcheck),
  };
}

/** The repository a treefile names by URL: that one baseurl and dnf's defaults. */
export function urlRepoConfig(url: string, source: string, vars: RepoVariables): YumRepoConfig {
  return {
    id: url,
    source,
    baseurls: [substituteVariables(url, vars)],
    metalink: null,
    mirrorlist: null,
    enabled: true,
    priority: REPO_DEFAULTS.priority,
    cost: REPO_DEFAULTS.cost,
    excludepkgs: [],
    includepkgs: [],
    gpgcheck: REPO_DEFAULTS.gpgcheck,
    repoGpgcheck: REPO_DEFAULTS.repoGpgcheck,
    gpgkeys: [],
    metadataExpireSeconds: REPO_DEFAULTS.metadataExpireSeconds,
    minrateBytesPerSecond: REPO_DEFAULTS.minrateBytesPerSecond,
    timeoutSeconds: REPO_DEFAULTS.timeoutSeconds,
    skipIfUnavailable: REPO_DEFAULTS.skipIfUnavailable,
  };
}
