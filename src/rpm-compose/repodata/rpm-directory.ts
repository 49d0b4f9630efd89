// A plain directory of .rpm files used as a repository: each package's headers are read (and
// verified) by the RPM reader and described in primary.xml's record shape with createrepo_c's
// rules, so a directory gives the same records as `createrepo_c` run on it would.
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArborError, errnoCode, ioError } from '../../common/errors.js';
import { type RpmPackage, fileType, isGhost, S_IFDIR } from '../rpm/package.js';
import { readRpmHead } from '../rpm/read.js';
import { Sense } from '../rpm/tags.js';
import {
  type DependencyFlag,
  type PackageChecksum,
  REPO_DEPENDENCY_KINDS,
  type RepoDependency,
  type RepoDependencyKind,
  type RepoPackage,
  emptyDependencies,
  isPrimaryPath,
  splitDependencyEvr,
} from './records.js';

export interface RpmDirectoryOptions {
  /**
   * Hash every whole .rpm with SHA-256 for `checksum` (primary.xml's pkgid). Default true; false
   * reads only the headers, for callers that identify packages by header digest instead.
   */
  readonly packageChecksums?: boolean;
}

/** createrepo_c's cr_flag_to_str: the comparison bits of a dependency's flags. */
function flagOf(flags: number): DependencyFlag | null {
  switch (flags & 0xf) {
    case Sense.Less:
      return 'LT';
    case Sense.Greater:
      return 'GT';
    case Sense.Equal:
      return 'EQ';
    case Sense.Less | Sense.Equal:
      return 'LE';
    case Sense.Greater | Sense.Equal:
      return 'GE';
    default:
      return null;
  }
}

// createrepo_c marks a require `pre` when a scriptlet (or the old PreReq) needs it.
const PRE_BITS = Sense.PreReq | Sense.ScriptPre | Sense.ScriptPost | Sense.PreTrans | Sense.PostTrans;

/**
 * The dependency lists createrepo_c writes for a package (parsehdr.c): requires drop `rpmlib(…)`,
 * paths the package itself ships that primary.xml lists, anything it provides with the same flags
 * and EVR, and a repeat of the previous require of the same name, flags, EVR and pre; a
 * MISSINGOK require becomes a recommend (createrepo_c's legacy weak deps); an EVR with a
 * non-numeric epoch is skipped. Not copied: its keeping only the highest `libc.so.6(GLIBC_…)`
 * require, a size optimisation every glibc satisfies anyway.
 */
export function repoDependencies(pkg: RpmPackage): Record<RepoDependencyKind, RepoDependency[]> {
  const out = emptyDependencies();
  const ownFiles = new Set(pkg.files.map((f) => f.path));
  const provided = new Set<string>();
  const lastRequire = new Map<string, string>();
  for (const kind of REPO_DEPENDENCY_KINDS) {
    for (const dep of pkg.dependencies[kind]) {
      const flags = flagOf(dep.flags);
      const evr = dep.evr ?? '';
      const key = `${dep.name}\0${flags ?? ''}\0${evr}`;
      let pre = false;
      if (kind === 'requires') {
        if (dep.name.startsWith('rpmlib(')) continue;
        if (dep.name.startsWith('/') && ownFiles.has(dep.name) && isPrimaryPath(dep.name)) continue;
        if (provided.has(key)) continue;
        pre = (dep.flags & PRE_BITS) !== 0;
        if (lastRequire.get(dep.name) === `${flags ?? ''}\0${evr}\0${pre}`) continue;
      }
      const split = evr === '' ? { epoch: null, ver: null, rel: null } : splitDependencyEvr(evr);
      if (split === undefined) continue;
      // primary.xml writes epoch, ver and rel only on entries with flags.
      const versioned = flags !== null;
      const entry: RepoDependency = {
        name: dep.name,
        flags,
        epoch: versioned ? split.epoch : null,
        ver: versioned && split.ver !== '' ? split.ver : null,
        rel: versioned ? split.rel : null,
        pre,
      };
      if (kind === 'provides') provided.add(key);
      if (kind === 'requires') {
        if ((dep.flags & Sense.MissingOk) !== 0) {
          out.recommends.push({ ...entry, pre: false });
          continue;
        }
        lastRequire.set(dep.name, `${flags ?? ''}\0${evr}\0${pre}`);
      }
      out[kind].push(entry);
    }
  }
  return out;
}

/** A package's record from its headers: pure, given the file's size and digest. */
export function describeRepoPackage(
  pkg: RpmPackage,
  href: string,
  packageBytes: number,
  checksum: PackageChecksum | null,
): RepoPackage {
  return {
    name: pkg.name,
    // A source package's ARCH is the build host's; repositories call it "src" (as createrepo_c does
    // from SOURCEPACKAGE, which rpm sets exactly when SOURCERPM is absent).
    arch: pkg.sourceRpm === undefined ? 'src' : pkg.arch,
    epoch: pkg.epoch ?? 0,
    version: pkg.version,
    release: pkg.release,
    summary: pkg.summary,
    location: { href, base: null },
    checksum,
    sizes: { packageBytes, installedBytes: pkg.sizeBytes, archiveBytes: pkg.integrity.payloadBytes ?? null },
    sourceRpm: pkg.sourceRpm ?? null,
    headerRange: null,
    dependencies: repoDependencies(pkg),
    files: pkg.files.map((f) => ({
      path: f.path,
      type: fileType(f.mode) === S_IFDIR ? 'dir' : isGhost(f) ? 'ghost' : 'file',
    })),
    filesComplete: true,
  };
}

/** Every `*.rpm` below `dir` (not in `repodata/`), as relative paths with '/', sorted. */
async function listRpmFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const path = relative === '' ? dir : join(dir, relative);
    let entries;
    try {
      entries = await readdir(path, { withFileTypes: true });
    } catch (error) {
      if (relative === '' && (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR')) {
        throw new ArborError('E_REPODATA_MISSING', `package directory '${dir}' does not exist`, { cause: error });
      }
      throw ioError('list', path, error);
    }
    for (const entry of entries) {
      const child = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!(relative === '' && entry.name === 'repodata')) await walk(child);
      } else if (entry.name.endsWith('.rpm')) {
        // A symlink counts when it leads to a file, as createrepo_c reads through it.
        if (
          entry.isFile() ||
          (entry.isSymbolicLink() && (await stat(join(dir, child)).catch(() => undefined))?.isFile())
        )
          found.push(child);
      }
    }
  };
  await walk('');
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  } catch (error) {
    throw ioError('read', path, error);
  }
  return hash.digest('hex');
}

/**
 * Reads the headers of every .rpm below `dir` (sorted by path) and hands each record to
 * `onPackage`. A broken package fails the whole read with the RPM reader's error (E_RPM_…).
 * Returns the number of packages.
 */
export async function streamRpmDirectory(
  dir: string,
  onPackage: (pkg: RepoPackage) => void | Promise<void>,
  options: RpmDirectoryOptions = {},
): Promise<number> {
  const files = await listRpmFiles(dir);
  for (const href of files) {
    const path = join(dir, href);
    const head = await readRpmHead(path);
    const checksum =
      options.packageChecksums === false ? null : { type: 'sha256', value: await sha256File(path), pkgid: true };
    await onPackage(describeRepoPackage(head.pkg, href, head.fileBytes, checksum));
  }
  return files.length;
}
