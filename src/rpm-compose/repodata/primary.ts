// primary.xml and filelists.xml of a yum repository, streamed into package records: one
// `<package>` at a time, so a 100+ MB primary.xml never sits in memory as a whole.
import { join } from 'node:path';
import { ArborError } from '../../common/errors.js';
import {
  type ParseContext,
  type XmlHandlers,
  parseCount,
  parseDigest,
  parseMetadataFile,
  resolveHref,
} from './metadata-file.js';
import {
  type FilelistsPackage,
  type PackageChecksum,
  type RepoDependency,
  type RepoDependencyKind,
  type RepoFile,
  type RepoFileType,
  type RepoPackage,
  emptyDependencies,
  isDependencyFlag,
} from './records.js';
import type { Repomd, RepomdData } from './repomd.js';

const DEPENDENCY_ELEMENTS: Readonly<Record<string, RepoDependencyKind>> = {
  'rpm:provides': 'provides',
  'rpm:requires': 'requires',
  'rpm:conflicts': 'conflicts',
  'rpm:obsoletes': 'obsoletes',
  'rpm:recommends': 'recommends',
  'rpm:suggests': 'suggests',
  'rpm:supplements': 'supplements',
  'rpm:enhances': 'enhances',
};

type Fail = (message: string) => never;
type Attributes = Readonly<Record<string, string>>;

function fileType(type: string | undefined, fail: Fail): RepoFileType {
  if (type === undefined || type === 'file') return 'file';
  if (type === 'dir' || type === 'ghost') return type;
  return fail(`<file type="${type}"> is not file, dir or ghost`);
}

function parseEpoch(text: string | undefined, fail: Fail): number {
  return text === undefined ? 0 : parseCount(text, 'epoch', fail);
}

/** `<rpm:entry name flags epoch ver rel pre>`; fields absent from the element are null. */
function parseEntry(a: Attributes, fail: Fail): RepoDependency {
  const name = a.name ?? fail('an <rpm:entry> has no name attribute');
  const flags = a.flags ?? null;
  if (flags !== null && !isDependencyFlag(flags))
    fail(`<rpm:entry name="${name}"> has flags '${flags}', not EQ, LT, GT, LE or GE`);
  const pre = a.pre;
  if (pre !== undefined && pre !== '0' && pre !== '1') fail(`<rpm:entry name="${name}"> has pre '${pre}', not 0 or 1`);
  return {
    name,
    flags,
    epoch: a.epoch === undefined ? null : parseCount(a.epoch, `epoch of <rpm:entry name="${name}">`, fail),
    ver: a.ver ?? null,
    rel: a.rel ?? null,
    pre: pre === '1',
  };
}

interface Draft {
  name?: string;
  arch?: string;
  epoch: number;
  version?: string;
  release?: string;
  summary: string;
  checksumType?: string;
  pkgid: boolean;
  checksum?: PackageChecksum;
  href?: string;
  base: string | null;
  sizes?: RepoPackage['sizes'];
  sourceRpm: string | null;
  headerRange: RepoPackage['headerRange'];
  dependencies: Record<RepoDependencyKind, RepoDependency[]>;
  files: RepoFile[];
}

/** The root's `packages` count, checked at the end so a cut or spliced file cannot pass as whole. */
function checkCount(root: string, declared: number | null, seen: number, fail: Fail): void {
  if (declared !== null && declared !== seen)
    fail(`<${root} packages="${declared}"> but the file holds ${seen} packages`);
}

function primaryHandlers(dir: string, file: string, context: ParseContext<RepoPackage>): XmlHandlers {
  const fail: Fail = context.fail;
  let depth = 0;
  let pkg: Draft | undefined;
  let inFormat = false;
  let kind: RepoDependencyKind | undefined;
  // Text is collected only inside the elements we keep (not <description>, the bulk of the text).
  let captureDepth = 0;
  let text = '';
  let type: RepoFileType = 'file';
  let declared: number | null = null;
  let seen = 0;
  const capture = (): void => {
    captureDepth = depth;
    text = '';
  };

  return {
    open(name, a) {
      depth++;
      if (depth === 1) {
        if (name !== 'metadata') fail(`the root element is <${name}>, not <metadata>`);
        declared = a.packages === undefined ? null : parseCount(a.packages, 'packages', fail);
      } else if (depth === 2) {
        if (name === 'package') {
          pkg = {
            epoch: 0,
            summary: '',
            pkgid: false,
            base: null,
            sourceRpm: null,
            headerRange: null,
            dependencies: emptyDependencies(),
            files: [],
          };
        }
      } else if (pkg === undefined) {
        return;
      } else if (depth === 3) {
        switch (name) {
          case 'name':
          case 'arch':
          case 'summary':
            capture();
            break;
          case 'checksum':
            pkg.checksumType = a.type;
            pkg.pkgid = a.pkgid === 'YES';
            capture();
            break;
          case 'version':
            pkg.epoch = parseEpoch(a.epoch, fail);
            pkg.version = a.ver ?? fail('<version> has no ver attribute');
            pkg.release = a.rel ?? fail('<version> has no rel attribute');
            break;
          case 'size':
            pkg.sizes = {
              packageBytes: parseCount(a.package ?? fail('<size> has no package attribute'), 'package size', fail),
              installedBytes: parseCount(
                a.installed ?? fail('<size> has no installed attribute'),
                'installed size',
                fail,
              ),
              archiveBytes: a.archive === undefined ? null : parseCount(a.archive, 'archive size', fail),
            };
            break;
          case 'location':
            pkg.href = a.href ?? fail('<location> has no href attribute');
            resolveHref(dir, pkg.href, fail);
            pkg.base = a['xml:base'] ?? null;
            break;
          case 'format':
            inFormat = true;
            break;
        }
      } else if (depth === 4 && inFormat) {
        switch (name) {
          case 'file':
            type = fileType(a.type, fail);
            capture();
            break;
          case 'rpm:sourcerpm':
            capture();
            break;
          case 'rpm:header-range':
            pkg.headerRange = {
              start: parseCount(a.start ?? fail('<rpm:header-range> has no start attribute'), 'header start', fail),
              end: parseCount(a.end ?? fail('<rpm:header-range> has no end attribute'), 'header end', fail),
            };
            break;
          default:
            kind = DEPENDENCY_ELEMENTS[name];
        }
      } else if (depth === 5 && kind !== undefined && name === 'rpm:entry') {
        pkg.dependencies[kind].push(parseEntry(a, fail));
      }
    },
    text(chunk) {
      if (captureDepth !== 0) text += chunk;
    },
    close(name) {
      const closing = depth--;
      if (pkg === undefined) return;
      if (closing === captureDepth) {
        captureDepth = 0;
        switch (name) {
          case 'name':
            pkg.name = text;
            break;
          case 'arch':
            pkg.arch = text;
            break;
          case 'summary':
            pkg.summary = text;
            break;
          case 'checksum': {
            const { type: algorithm, value } = parseDigest(pkg.checksumType, text, file, fail);
            pkg.checksum = { type: algorithm, value, pkgid: pkg.pkgid };
            break;
          }
          case 'file':
            pkg.files.push({ path: text, type });
            break;
          case 'rpm:sourcerpm':
            pkg.sourceRpm = text === '' ? null : text;
            break;
        }
      } else if (closing === 4) {
        kind = undefined;
      } else if (closing === 3 && name === 'format') {
        inFormat = false;
      } else if (closing === 2) {
        context.emit(finishPackage(pkg, fail));
        pkg = undefined;
        seen++;
      }
    },
    end() {
      checkCount('metadata', declared, seen, fail);
    },
  };
}

function finishPackage(pkg: Draft, fail: Fail): RepoPackage {
  const missing = (what: string): never =>
    fail(`a <package>${pkg.name === undefined ? '' : ` ('${pkg.name}')`} has no ${what}`);
  return {
    name: pkg.name || missing('<name>'),
    arch: pkg.arch || missing('<arch>'),
    epoch: pkg.epoch,
    version: pkg.version ?? missing('<version>'),
    release: pkg.release ?? missing('<version>'),
    summary: pkg.summary,
    location: { href: pkg.href ?? missing('<location>'), base: pkg.base },
    checksum: pkg.checksum ?? missing('<checksum>'),
    sizes: pkg.sizes ?? missing('<size>'),
    sourceRpm: pkg.sourceRpm,
    headerRange: pkg.headerRange,
    dependencies: pkg.dependencies,
    files: pkg.files,
    filesComplete: false,
  };
}

function filelistsHandlers(context: ParseContext<FilelistsPackage>): XmlHandlers {
  const fail: Fail = context.fail;
  let depth = 0;
  let pkg:
    | {
        pkgid: string;
        name: string;
        arch: string;
        epoch: number;
        version?: string;
        release?: string;
        files: RepoFile[];
      }
    | undefined;
  let capturing = false;
  let text = '';
  let type: RepoFileType = 'file';
  let declared: number | null = null;
  let seen = 0;
  return {
    open(name, a) {
      depth++;
      if (depth === 1) {
        if (name !== 'filelists') fail(`the root element is <${name}>, not <filelists>`);
        declared = a.packages === undefined ? null : parseCount(a.packages, 'packages', fail);
      } else if (depth === 2 && name === 'package') {
        pkg = {
          pkgid: (a.pkgid ?? fail('a <package> has no pkgid attribute')).toLowerCase(),
          name: a.name ?? fail('a <package> has no name attribute'),
          arch: a.arch ?? fail('a <package> has no arch attribute'),
          epoch: 0,
          files: [],
        };
      } else if (depth === 3 && pkg !== undefined) {
        if (name === 'version') {
          pkg.epoch = parseEpoch(a.epoch, fail);
          pkg.version = a.ver ?? fail('<version> has no ver attribute');
          pkg.release = a.rel ?? fail('<version> has no rel attribute');
        } else if (name === 'file') {
          type = fileType(a.type, fail);
          capturing = true;
          text = '';
        }
      }
    },
    text(chunk) {
      if (capturing) text += chunk;
    },
    close(name) {
      const closing = depth--;
      if (pkg === undefined) return;
      if (closing === 3 && capturing) {
        capturing = false;
        pkg.files.push({ path: text, type });
      } else if (closing === 2 && name === 'package') {
        const { version, release, ...rest } = pkg;
        if (version === undefined || release === undefined) fail(`<package name="${pkg.name}"> has no <version>`);
        context.emit({ ...rest, version, release });
        pkg = undefined;
        seen++;
      }
    },
    end() {
      checkCount('filelists', declared, seen, fail);
    },
  };
}

function fileOf(
  dir: string,
  data: RepomdData,
): { path: string; checksum: RepomdData['checksum']; sizeBytes: number | null } {
  return { path: join(dir, data.location.href), checksum: data.checksum, sizeBytes: data.sizeBytes };
}

/**
 * Streams the packages of `DIR/<primary href>` to `onPackage`, in file order, after verifying the
 * compressed file against repomd.xml (E_REPODATA_CHECKSUM before the first package). Reads gzip,
 * xz, zstd, bzip2 or plain XML, whatever the name says. Returns the number of packages.
 */
export async function streamPrimary(
  dir: string,
  repomd: Repomd,
  onPackage: (pkg: RepoPackage) => void | Promise<void>,
): Promise<number> {
  const file = fileOf(dir, repomd.primary);
  return parseMetadataFile(file, (context) => primaryHandlers(dir, file.path, context), onPackage);
}

/** Streams `DIR/<filelists href>` like streamPrimary: every file of every package, by pkgid. */
export async function streamFilelists(
  dir: string,
  repomd: Repomd,
  onPackage: (pkg: FilelistsPackage) => void | Promise<void>,
): Promise<number> {
  if (repomd.filelists === null) {
    throw new ArborError(
      'E_REPODATA_MISSING',
      `repository '${dir}' lists no filelists metadata in repodata/repomd.xml`,
      {
        hint: `run 'createrepo_c ${dir}' again`,
      },
    );
  }
  return parseMetadataFile(fileOf(dir, repomd.filelists), filelistsHandlers, onPackage);
}
