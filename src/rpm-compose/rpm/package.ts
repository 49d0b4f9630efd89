// The package as compose sees it: a pure view of the decoded signature and main headers (names,
// dependencies, files, scriptlets, triggers, digests), checked for consistency (docs/rpm.md).
import { ArborError, CorruptionError, UsageError } from '../../common/errors.js';
import type { RpmHeader } from './header.js';
import { type Comparison, type RichDep, isRichDep, parseRichDep } from './rich-deps.js';
import { DIGEST_ALGOS, FileFlag, Sense, SigTag, Tag } from './tags.js';

export const DEPENDENCY_KINDS = [
  'requires',
  'provides',
  'conflicts',
  'obsoletes',
  'recommends',
  'suggests',
  'supplements',
  'enhances',
] as const;
type DependencyKind = (typeof DEPENDENCY_KINDS)[number];

export interface RpmDependency {
  readonly name: string;
  /** The raw flags (Sense bits): comparison plus context such as pre/post/rpmlib. */
  readonly flags: number;
  readonly cmp?: Comparison;
  readonly evr?: string;
  /** Set when the name is a rich (boolean) dependency. */
  readonly rich?: RichDep;
}

export interface RpmFile {
  /** Absolute path ("/usr/bin/a"); a bare file name in source packages. */
  readonly path: string;
  /** Bytes (symlinks: the target's length; directories: what the packager's filesystem said). */
  readonly size: number;
  /** st_mode with type bits. */
  readonly mode: number;
  readonly rdev: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Lowercase hex in the package's file digest algorithm; '' when none (non-regular, ghost). */
  readonly digest: string;
  /** Symlink target; '' otherwise. */
  readonly linkTo: string;
  /** FileFlag bits (%config, %doc, %ghost...). */
  readonly flags: number;
  readonly user: string;
  readonly group: string;
  /** Abstract inode and device: equal pairs on regular files with nlink > 1 form a hardlink set. */
  readonly inode: number;
  readonly device: number;
  /** cap_to_text form of file capabilities; '' when none. */
  readonly caps: string;
  readonly lang: string;
  readonly verifyFlags: number;
}

const SCRIPT_KINDS = [
  'pretrans',
  'prein',
  'postin',
  'preun',
  'postun',
  'posttrans',
  'preuntrans',
  'postuntrans',
  'verify',
] as const;
type ScriptKind = (typeof SCRIPT_KINDS)[number];

export interface RpmScript {
  readonly body: string;
  /** Interpreter and its arguments; empty means rpm's default (/bin/sh). */
  readonly interpreter: readonly string[];
  /** ScriptFlag bits. */
  readonly flags: number;
}

export interface RpmTrigger {
  /** Package triggers fire on other packages; file triggers on paths under a prefix. */
  readonly type: 'package' | 'file' | 'transfile';
  readonly when: 'prein' | 'in' | 'un' | 'postun';
  /** Package name, or path prefix for file triggers. */
  readonly name: string;
  readonly cmp?: Comparison;
  readonly evr?: string;
  readonly flags: number;
  /** File triggers only: lower runs first. */
  readonly priority?: number;
  /** Which of the package's trigger scripts this entry runs (entries sharing one script fire it once). */
  readonly index: number;
  readonly script: RpmScript;
}

interface PayloadDigest {
  /** node:crypto name ('sha256'). */
  readonly algo: string;
  readonly hex: string;
}

/** Everything Arbor reads from one package's headers. */
export interface RpmPackage {
  readonly name: string;
  /** undefined when the package has no epoch (compares as 0). */
  readonly epoch: number | undefined;
  readonly version: string;
  readonly release: string;
  readonly arch: string;
  readonly os: string;
  readonly summary: string;
  readonly description: string;
  readonly license: string;
  readonly group: string;
  readonly url: string;
  readonly vendor: string;
  readonly packager: string;
  readonly buildHost: string;
  /** Seconds since the epoch. */
  readonly buildTime: number;
  /** undefined for a source package. */
  readonly sourceRpm: string | undefined;
  /** Installed size in bytes (sum of file sizes). */
  readonly sizeBytes: number;
  /** compressor is undefined when the tag is absent: gzip, or uncompressed data (rpm reads both). */
  readonly payload: { readonly format: string; readonly compressor: string | undefined; readonly flags: string };
  readonly dependencies: Readonly<Record<DependencyKind, readonly RpmDependency[]>>;
  /** node:crypto name of FILEDIGESTALGO (md5 when the tag is absent). */
  readonly fileDigestAlgo: string;
  readonly files: readonly RpmFile[];
  readonly scripts: Readonly<Partial<Record<ScriptKind, RpmScript>>>;
  readonly triggers: readonly RpmTrigger[];
  readonly integrity: {
    /** Hex digests of the main header from the signature header. */
    readonly headerSha256?: string;
    readonly headerSha1?: string;
    /** MD5 of main header + compressed payload, hex. */
    readonly md5?: string;
    /** Digest of the compressed payload, and (rpm ≥ 4.16) of the uncompressed one. */
    readonly payloadDigest?: PayloadDigest;
    readonly payloadDigestAlt?: PayloadDigest;
    /** Main header + compressed payload, in bytes (the signature's SIZE or LONGSIZE). */
    readonly headerAndPayloadBytes?: number;
    /** Uncompressed payload bytes (PAYLOADSIZE or LONGARCHIVESIZE). */
    readonly payloadBytes?: number;
  };
}

/** `[EPOCH:]VERSION-RELEASE` as rpm prints it. */
export function formatEvr(pkg: Pick<RpmPackage, 'epoch' | 'version' | 'release'>): string {
  return `${pkg.epoch === undefined ? '' : `${pkg.epoch}:`}${pkg.version}-${pkg.release}`;
}

/** NAME-[EPOCH:]VERSION-RELEASE.ARCH */
export function formatNevra(pkg: Pick<RpmPackage, 'name' | 'epoch' | 'version' | 'release' | 'arch'>): string {
  return `${pkg.name}-${formatEvr(pkg)}.${pkg.arch}`;
}

const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

/** Whether a file's content comes in the payload (%ghost files are only listed). */
export const isGhost = (file: RpmFile): boolean => (file.flags & FileFlag.Ghost) !== 0;
export const fileType = (mode: number): number => mode & S_IFMT;

/**
 * Why a header path cannot be used, or undefined: absolute, no empty, '.' or '..' components.
 * Source packages list bare file names (the spec, tarballs, patches) instead.
 */
function invalidPathReason(path: string, isSource = false): string | undefined {
  if (isSource)
    return path === '' || path === '.' || path === '..' || path.includes('/') ? 'is not a plain file name' : undefined;
  if (path === '/') return undefined;
  if (!path.startsWith('/')) return 'is not absolute';
  if (path.endsWith('/')) return 'ends with /';
  // The common case without splitting: no empty, '.' or '..' component can hide from this.
  if (!path.includes('//') && !path.includes('/.')) return undefined;
  for (const part of path.slice(1).split('/')) {
    if (part === '') return 'has an empty component';
    if (part === '.' || part === '..') return `has a '${part}' component`;
  }
  return undefined;
}

/** Builds the package view from its two headers; `pkg` names the file in errors. */
export function describePackage(signature: RpmHeader, header: RpmHeader, pkg: string): RpmPackage {
  const corrupt = (problem: string): never => {
    throw new CorruptionError('E_RPM_MALFORMED', `package '${pkg}': ${problem}`);
  };
  const required = (tag: number, what: string): string => header.string(tag) ?? corrupt(`header has no ${what}`);
  const name = required(Tag.Name, 'name');
  const version = required(Tag.Version, 'version');
  const release = required(Tag.Release, 'release');
  const sourceRpm = header.string(Tag.SourceRpm);
  const arch = header.string(Tag.Arch) ?? (sourceRpm === undefined ? 'src' : corrupt('header has no arch'));

  const files = readFiles(header, pkg, sourceRpm === undefined, corrupt);
  const digestAlgoNumber = header.number(Tag.FileDigestAlgo) ?? 1;
  const fileDigestAlgo = DIGEST_ALGOS[digestAlgoNumber];
  if (fileDigestAlgo === undefined) {
    throw new ArborError('E_RPM_UNSUPPORTED', `package '${pkg}': unknown file digest algorithm ${digestAlgoNumber}`);
  }

  const depTags: Record<DependencyKind, [number, number, number]> = {
    requires: [Tag.RequireName, Tag.RequireFlags, Tag.RequireVersion],
    provides: [Tag.ProvideName, Tag.ProvideFlags, Tag.ProvideVersion],
    conflicts: [Tag.ConflictName, Tag.ConflictFlags, Tag.ConflictVersion],
    obsoletes: [Tag.ObsoleteName, Tag.ObsoleteFlags, Tag.ObsoleteVersion],
    recommends: [Tag.RecommendName, Tag.RecommendFlags, Tag.RecommendVersion],
    suggests: [Tag.SuggestName, Tag.SuggestFlags, Tag.SuggestVersion],
    supplements: [Tag.SupplementName, Tag.SupplementFlags, Tag.SupplementVersion],
    enhances: [Tag.EnhanceName, Tag.EnhanceFlags, Tag.EnhanceVersion],
  };
  const read = (kind: DependencyKind): RpmDependency[] => {
    const [nameTag, flagsTag, versionTag] = depTags[kind];
    return readDependencies(header, nameTag, flagsTag, versionTag, kind, pkg, corrupt);
  };
  // In DEPENDENCY_KINDS order, so the first damaged list reported is the same as ever.
  const dependencies: Record<DependencyKind, RpmDependency[]> = {
    requires: read('requires'),
    provides: read('provides'),
    conflicts: read('conflicts'),
    obsoletes: read('obsoletes'),
    recommends: read('recommends'),
    suggests: read('suggests'),
    supplements: read('supplements'),
    enhances: read('enhances'),
  };

  const payloadDigest = readPayloadDigest(header, Tag.PayloadDigest, pkg, corrupt);
  const payloadDigestAlt = readPayloadDigest(header, Tag.PayloadDigestAlt, pkg, corrupt);
  const md5 = signature.bin(SigTag.Md5);
  if (md5 !== undefined && md5.length !== 16) corrupt(`signature MD5 is ${md5.length} bytes, not 16`);
  const headerSha256 = signature.string(SigTag.Sha256);
  const headerSha1 = signature.string(SigTag.Sha1);
  if (headerSha256 !== undefined && !/^[0-9a-f]{64}$/.test(headerSha256))
    corrupt('signature SHA256 is not 64 hex digits');
  if (headerSha1 !== undefined && !/^[0-9a-f]{40}$/.test(headerSha1)) corrupt('signature SHA1 is not 40 hex digits');

  return {
    name,
    epoch: header.number(Tag.Epoch),
    version,
    release,
    arch,
    os: header.string(Tag.Os) ?? '',
    summary: header.string(Tag.Summary) ?? '',
    description: header.string(Tag.Description) ?? '',
    license: header.string(Tag.License) ?? '',
    group: header.string(Tag.Group) ?? '',
    url: header.string(Tag.Url) ?? '',
    vendor: header.string(Tag.Vendor) ?? '',
    packager: header.string(Tag.Packager) ?? '',
    buildHost: header.string(Tag.BuildHost) ?? '',
    buildTime: header.number(Tag.BuildTime) ?? 0,
    sourceRpm,
    sizeBytes: header.number(Tag.LongSize) ?? header.number(Tag.Size) ?? 0,
    payload: {
      format: header.string(Tag.PayloadFormat) ?? 'cpio',
      compressor: header.string(Tag.PayloadCompressor),
      flags: header.string(Tag.PayloadFlags) ?? '',
    },
    dependencies,
    fileDigestAlgo,
    files,
    scripts: readScripts(header),
    triggers: readTriggers(header, corrupt),
    integrity: {
      ...(headerSha256 !== undefined && { headerSha256 }),
      ...(headerSha1 !== undefined && { headerSha1 }),
      ...(md5 !== undefined && { md5: md5.toString('hex') }),
      ...(payloadDigest && { payloadDigest }),
      ...(payloadDigestAlt && { payloadDigestAlt }),
      ...optionalNumber('headerAndPayloadBytes', signature.number(SigTag.LongSize) ?? signature.number(SigTag.Size)),
      ...optionalNumber(
        'payloadBytes',
        signature.number(SigTag.LongArchiveSize) ?? signature.number(SigTag.PayloadSize),
      ),
    },
  };
}

function optionalNumber<K extends string>(key: K, value: number | undefined): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

function comparisonOf(flags: number): Comparison | undefined {
  switch (flags & (Sense.Less | Sense.Greater | Sense.Equal)) {
    case Sense.Less:
      return '<';
    case Sense.Less | Sense.Equal:
      return '<=';
    case Sense.Equal:
      return '=';
    case Sense.Greater | Sense.Equal:
      return '>=';
    case Sense.Greater:
      return '>';
    default:
      return undefined;
  }
}

function parallel<T>(
  values: readonly T[] | undefined,
  n: number,
  what: string,
  corrupt: (p: string) => never,
): readonly T[] | undefined {
  if (values !== undefined && values.length !== n) corrupt(`${what} has ${values.length} entries, expected ${n}`);
  return values;
}

function readDependencies(
  header: RpmHeader,
  nameTag: number,
  flagsTag: number,
  versionTag: number,
  what: string,
  pkg: string,
  corrupt: (p: string) => never,
): RpmDependency[] {
  const names = header.strings(nameTag) ?? [];
  const flags = parallel(header.numbers(flagsTag), names.length, `${what} flags`, corrupt);
  const versions = parallel(header.strings(versionTag), names.length, `${what} versions`, corrupt);
  return names.map((name, i) => {
    const f = flags?.[i] ?? 0;
    const evr = versions?.[i] ?? '';
    const cmp = comparisonOf(f);
    let rich: RichDep | undefined;
    if (isRichDep(name)) {
      try {
        rich = parseRichDep(name);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        throw new CorruptionError('E_RPM_MALFORMED', `package '${pkg}': ${what} entry ${i}: ${error.message}`, {
          cause: error,
        });
      }
    }
    return { name, flags: f, ...(cmp && evr !== '' && { cmp, evr }), ...(rich && { rich }) };
  });
}

function readPayloadDigest(
  header: RpmHeader,
  tag: number,
  pkg: string,
  corrupt: (p: string) => never,
): PayloadDigest | undefined {
  const hex = header.strings(tag)?.[0];
  if (hex === undefined) return undefined;
  const algoNumber = header.number(Tag.PayloadDigestAlgo) ?? 8;
  const algo = DIGEST_ALGOS[algoNumber];
  if (algo === undefined)
    throw new ArborError('E_RPM_UNSUPPORTED', `package '${pkg}': unknown payload digest algorithm ${algoNumber}`);
  if (!/^[0-9a-f]+$/.test(hex)) corrupt(`payload digest '${hex}' is not hex`);
  return { algo, hex };
}

/** The file list of a binary package's main header alone (e.g. kept in a commit's metadata). */
export function filesOfHeader(header: RpmHeader, pkg: string): RpmFile[] {
  return readFiles(header, pkg, false, (problem) => {
    throw new CorruptionError('E_RPM_MALFORMED', `package '${pkg}': ${problem}`);
  });
}

function readFiles(header: RpmHeader, pkg: string, isSource: boolean, corrupt: (p: string) => never): RpmFile[] {
  let paths: readonly string[];
  const baseNames = header.strings(Tag.BaseNames);
  if (baseNames !== undefined) {
    const dirNames = header.strings(Tag.DirNames) ?? corrupt('header has basenames but no dirnames');
    const dirIndexes = parallel(
      header.numbers(Tag.DirIndexes) ?? corrupt('header has basenames but no dirindexes'),
      baseNames.length,
      'dirindexes',
      corrupt,
    )!;
    paths = baseNames.map((base, i) => {
      const dir =
        dirNames[dirIndexes[i]!] ?? corrupt(`file ${i} points at dirname ${dirIndexes[i]} of ${dirNames.length}`);
      return dir + base;
    });
  } else {
    paths = header.strings(Tag.OldFilenames) ?? [];
  }
  const n = paths.length;
  const get = <T>(values: readonly T[] | undefined, what: string): readonly T[] | undefined =>
    parallel(values, n, what, corrupt);
  const sizes = get(header.numbers(Tag.LongFileSizes) ?? header.numbers(Tag.FileSizes), 'file sizes');
  const modes = get(header.numbers(Tag.FileModes), 'file modes');
  const rdevs = get(header.numbers(Tag.FileRdevs), 'file rdevs');
  const mtimes = get(header.numbers(Tag.FileMtimes), 'file mtimes');
  const digests = get(header.strings(Tag.FileDigests), 'file digests');
  const links = get(header.strings(Tag.FileLinkTos), 'file link targets');
  const flags = get(header.numbers(Tag.FileFlags), 'file flags');
  const users = get(header.strings(Tag.FileUserName), 'file owners');
  const groups = get(header.strings(Tag.FileGroupName), 'file groups');
  const inodes = get(header.numbers(Tag.FileInodes), 'file inodes');
  const devices = get(header.numbers(Tag.FileDevices), 'file devices');
  const caps = get(header.strings(Tag.FileCaps), 'file capabilities');
  const langs = get(header.strings(Tag.FileLangs), 'file languages');
  const verify = get(header.numbers(Tag.FileVerifyFlags), 'file verify flags');
  const seen = new Set<string>();
  const files = paths.map((path, i): RpmFile => {
    const reason = invalidPathReason(path, isSource);
    if (reason !== undefined) throw new UsageError('E_RPM_PATH', `package '${pkg}': file path '${path}' ${reason}`);
    if (seen.has(path)) corrupt(`file '${path}' is listed twice`);
    seen.add(path);
    const digest = digests?.[i] ?? '';
    if (digest !== '' && !/^[0-9a-f]+$/.test(digest)) corrupt(`digest of '${path}' is not hex`);
    return {
      path,
      size: sizes?.[i] ?? 0,
      mode: modes?.[i] ?? 0,
      rdev: rdevs?.[i] ?? 0,
      mtime: mtimes?.[i] ?? 0,
      digest,
      linkTo: links?.[i] ?? '',
      flags: flags?.[i] ?? 0,
      user: users?.[i] ?? 'root',
      group: groups?.[i] ?? 'root',
      inode: inodes?.[i] ?? 0,
      device: devices?.[i] ?? 0,
      caps: caps?.[i] ?? '',
      lang: langs?.[i] ?? '',
      verifyFlags: verify?.[i] ?? 0,
    };
  });
  if (!isSource) assertNothingBelowNonDirectory(files, pkg);
  return files;
}

/**
 * Refuses a path below another entry of the list that is not a directory (E_RPM_PATH): given
 * `/opt/l -> /etc` and `/opt/l/x`, rpm writes through the symlink, out of the package's paths.
 * A tree cannot hold it either. Entries of unknown type (no FILEMODES) are not judged.
 */
function assertNothingBelowNonDirectory(files: readonly RpmFile[], pkg: string): void {
  const byPath = new Map(files.map((f) => [f.path, f]));
  // Directories whose ancestors were all checked: most files share their directory with others.
  const checked = new Set<string>();
  for (const { path } of files) {
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (checked.has(dir)) continue;
    checked.add(dir);
    for (let slash = path.indexOf('/', 1); slash > 0; slash = path.indexOf('/', slash + 1)) {
      const parent = byPath.get(path.slice(0, slash));
      const type = parent === undefined ? 0 : fileType(parent.mode);
      if (parent === undefined || type === 0 || type === S_IFDIR) continue;
      const what = type === S_IFLNK ? `a symlink to '${parent.linkTo}'` : 'not a directory';
      throw new UsageError(
        'E_RPM_PATH',
        `package '${pkg}': file path '${path}' lies below '${parent.path}', which is ${what}`,
      );
    }
  }
}

const SCRIPT_TAGS: Record<ScriptKind, [number, number, number]> = {
  pretrans: [Tag.PreTrans, Tag.PreTransProg, Tag.PreTransFlags],
  prein: [Tag.PreIn, Tag.PreInProg, Tag.PreInFlags],
  postin: [Tag.PostIn, Tag.PostInProg, Tag.PostInFlags],
  preun: [Tag.PreUn, Tag.PreUnProg, Tag.PreUnFlags],
  postun: [Tag.PostUn, Tag.PostUnProg, Tag.PostUnFlags],
  posttrans: [Tag.PostTrans, Tag.PostTransProg, Tag.PostTransFlags],
  preuntrans: [Tag.PreUnTrans, Tag.PreUnTransProg, Tag.PreUnTransFlags],
  postuntrans: [Tag.PostUnTrans, Tag.PostUnTransProg, Tag.PostUnTransFlags],
  verify: [Tag.VerifyScript, Tag.VerifyScriptProg, Tag.VerifyScriptFlags],
};

function readScripts(header: RpmHeader): Partial<Record<ScriptKind, RpmScript>> {
  const scripts: Partial<Record<ScriptKind, RpmScript>> = {};
  for (const kind of SCRIPT_KINDS) {
    const [bodyTag, progTag, flagsTag] = SCRIPT_TAGS[kind];
    const body = header.string(bodyTag);
    const interpreter = header.strings(progTag);
    // `%post -p /sbin/ldconfig` has an interpreter and no body.
    if (body === undefined && interpreter === undefined) continue;
    scripts[kind] = { body: body ?? '', interpreter: interpreter ?? [], flags: header.number(flagsTag) ?? 0 };
  }
  return scripts;
}

function triggerWhen(flags: number): RpmTrigger['when'] | undefined {
  if (flags & Sense.TriggerPreIn) return 'prein';
  if (flags & Sense.TriggerIn) return 'in';
  if (flags & Sense.TriggerUn) return 'un';
  if (flags & Sense.TriggerPostUn) return 'postun';
  return undefined;
}

function readTriggers(header: RpmHeader, corrupt: (p: string) => never): RpmTrigger[] {
  const sets: [RpmTrigger['type'], number[]][] = [
    [
      'package',
      [
        Tag.TriggerName,
        Tag.TriggerVersion,
        Tag.TriggerFlags,
        Tag.TriggerIndex,
        Tag.TriggerScripts,
        Tag.TriggerScriptProg,
        Tag.TriggerScriptFlags,
        0,
      ],
    ],
    [
      'file',
      [
        Tag.FileTriggerName,
        Tag.FileTriggerVersion,
        Tag.FileTriggerFlags,
        Tag.FileTriggerIndex,
        Tag.FileTriggerScripts,
        Tag.FileTriggerScriptProg,
        Tag.FileTriggerScriptFlags,
        Tag.FileTriggerPriorities,
      ],
    ],
    [
      'transfile',
      [
        Tag.TransFileTriggerName,
        Tag.TransFileTriggerVersion,
        Tag.TransFileTriggerFlags,
        Tag.TransFileTriggerIndex,
        Tag.TransFileTriggerScripts,
        Tag.TransFileTriggerScriptProg,
        Tag.TransFileTriggerScriptFlags,
        Tag.TransFileTriggerPriorities,
      ],
    ],
  ];
  const triggers: RpmTrigger[] = [];
  for (const [
    type,
    [nameTag, versionTag, flagsTag, indexTag, scriptsTag, progTag, scriptFlagsTag, priorityTag],
  ] of sets) {
    const names = header.strings(nameTag!) ?? [];
    if (names.length === 0) continue;
    const what = `${type} triggers`;
    const versions = parallel(header.strings(versionTag!), names.length, `${what} versions`, corrupt);
    const flags = parallel(header.numbers(flagsTag!), names.length, `${what} flags`, corrupt);
    const indexes = parallel(
      header.numbers(indexTag!) ?? corrupt(`${what} have no index`),
      names.length,
      `${what} index`,
      corrupt,
    )!;
    const bodies = header.strings(scriptsTag!) ?? [];
    // A trigger's interpreter is one string per script (not an argv), unlike a scriptlet's.
    const progs = parallel(header.strings(progTag!), bodies.length, `${what} interpreters`, corrupt);
    const scriptFlags = parallel(header.numbers(scriptFlagsTag!), bodies.length, `${what} script flags`, corrupt);
    const priorities = priorityTag
      ? parallel(header.numbers(priorityTag), bodies.length, `${what} priorities`, corrupt)
      : undefined;
    names.forEach((name, i) => {
      const index = indexes[i]!;
      if (index >= bodies.length) corrupt(`${what} entry ${i} points at script ${index} of ${bodies.length}`);
      const f = flags?.[i] ?? 0;
      const when = triggerWhen(f) ?? corrupt(`${what} entry ${i} has no trigger type in flags ${f}`);
      const evr = versions?.[i] ?? '';
      const cmp = comparisonOf(f);
      const prog = progs?.[index];
      triggers.push({
        type,
        when,
        name,
        ...(cmp && evr !== '' && { cmp, evr }),
        flags: f,
        index,
        ...(priorities && { priority: priorities[index]! }),
        script: { body: bodies[index]!, interpreter: prog ? [prog] : [], flags: scriptFlags?.[index] ?? 0 },
      });
    });
  }
  return triggers;
}
