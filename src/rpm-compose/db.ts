// `arbor db`: the packages of a commit, read from the rpm database its tree carries
// (/usr/share/rpm/rpmdb.sqlite) or from its `arbor.packages` metadata, and the difference
// between two commits' package sets.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ArborError, CorruptionError } from '../common/errors.js';
import { type Checksum, type Repo, isRegular, lookupPath } from '../repo/index.js';
import { type RpmHeader, Tag, decodeHeader } from './rpm/index.js';
import { compareEvr } from './solve/evr.js';

/** Where a composed tree keeps its rpm database. */
const RPMDB_PATH = '/usr/share/rpm/rpmdb.sqlite';
const HEADER_MAGIC = Buffer.from('8eade80100000000', 'hex');

export interface PackageEntry {
  readonly name: string;
  readonly epoch: number | null;
  readonly version: string;
  readonly release: string;
  readonly arch: string;
  /** name-[epoch:]version-release.arch */
  readonly nevra: string;
}

interface PackageChange {
  readonly name: string;
  readonly arch: string;
  readonly from: string;
  readonly to: string;
}

export interface PackageDiff {
  readonly added: PackageEntry[];
  readonly removed: PackageEntry[];
  readonly upgraded: PackageChange[];
  readonly downgraded: PackageChange[];
}

const evrText = (p: { epoch: number | null; version: string; release: string }): string =>
  `${p.epoch !== null && p.epoch !== 0 ? `${p.epoch}:` : ''}${p.version}-${p.release}`;

/** The packages in a commit's rpm database, sorted by name and arch. */
export function listPackages(repo: Repo, commit: Checksum): PackageEntry[] {
  const packages = readInstalledHeaders(repo, commit).map((header, i) => {
    const name = header.string(Tag.Name);
    const version = header.string(Tag.Version);
    const release = header.string(Tag.Release);
    if (name === undefined || version === undefined || release === undefined)
      throw new CorruptionError(
        'E_DB_INVALID',
        `package ${i + 1} in ${RPMDB_PATH} of commit ${commit} lacks a name, version or release`,
      );
    const epoch = header.numbers(Tag.Epoch)?.[0] ?? null;
    const arch = header.string(Tag.Arch) ?? 'noarch';
    const p = { name, epoch, version, release, arch };
    return { ...p, nevra: `${name}-${evrText(p)}.${arch}` };
  });
  return packages.sort(byNameAndArch);
}

/** The headers of a commit's rpm database, in its install order (E_DB_MISSING when it has none). */
export function readInstalledHeaders(repo: Repo, commit: Checksum): RpmHeader[] {
  let entry;
  try {
    entry = lookupPath(repo, commit, RPMDB_PATH);
  } catch (error) {
    if ((error as { code?: string }).code === 'E_PATH_NOT_FOUND') {
      throw new ArborError('E_DB_MISSING', `commit ${commit} has no rpm database at ${RPMDB_PATH}`, {
        hint: 'only composed trees carry one',
      });
    }
    throw error;
  }
  if (entry.kind !== 'file' || !isRegular(repo.readFileHeader(entry.checksum).mode))
    throw new ArborError('E_DB_MISSING', `${RPMDB_PATH} in commit ${commit} is not a regular file`);
  const { content } = repo.loadFile(entry.checksum);
  // SQLite reads files, not buffers: the (verified) database goes to a private temporary file.
  const dir = mkdtempSync(join(tmpdir(), 'arbor-rpmdb-'));
  try {
    const path = join(dir, 'rpmdb.sqlite');
    writeFileSync(path, content, { mode: 0o600 });
    let blobs: Buffer[];
    try {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        blobs = db
          .prepare<[], { blob: Buffer }>('SELECT blob FROM Packages ORDER BY hnum')
          .all()
          .map((r) => r.blob);
      } finally {
        db.close();
      }
    } catch (error) {
      throw new CorruptionError(
        'E_DB_INVALID',
        `${RPMDB_PATH} in commit ${commit} is not an rpm database: ${(error as Error).message}`,
      );
    }
    return blobs.map((blob, i) =>
      decodeHeader(Buffer.concat([HEADER_MAGIC, blob]), { pkg: `${RPMDB_PATH} package ${i + 1}`, part: 'header' }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const byNameAndArch = (a: PackageEntry, b: PackageEntry): number =>
  a.name === b.name ? (a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0) : a.name < b.name ? -1 : 1;

/** `NAME-EPOCH:VERSION-RELEASE.ARCH HEADER_SHA256`, as compose writes each package (docs/compose.md). */
const PACKAGE_LINE = /^(.+)-([0-9]{1,10}):([^\s:-]+)-([^\s-]+)\.([^\s.-]+) [0-9a-f]{64}$/;

/**
 * The packages a composed commit lists in its `arbor.packages` metadata, in listPackages' shape and
 * order; null when the commit has no such list. Needs only the commit object (a metadata-only pull
 * suffices). The list always writes an epoch, so 0 is read as none: rpm orders both alike.
 */
export function readPackageList(repo: Repo, commit: Checksum): PackageEntry[] | null {
  const value = repo.readCommit(commit).metadata.get('arbor.packages');
  if (value === undefined) return null;
  const invalid = (what: string): CorruptionError =>
    new CorruptionError('E_PACKAGE_LIST_INVALID', `arbor.packages of commit ${commit} ${what}`, {
      hint: 'recompose the commit',
    });
  if (value.type !== 'strings') throw invalid('is not a list of strings');
  const packages = value.value.map((line, i) => {
    const [, name, epochText, version, release, arch] = PACKAGE_LINE.exec(line) ?? [];
    if (name === undefined || version === undefined || release === undefined || arch === undefined)
      throw invalid(`has a malformed entry ${i + 1} (expected NAME-EPOCH:VERSION-RELEASE.ARCH HEADER_SHA256)`);
    const p = { name, epoch: Number(epochText) === 0 ? null : Number(epochText), version, release, arch };
    return { ...p, nevra: `${name}-${evrText(p)}.${arch}` };
  });
  return packages.sort(byNameAndArch);
}

/** What changed from package set A to B, by name and arch; versions compared as rpm does. */
export function diffPackages(a: readonly PackageEntry[], b: readonly PackageEntry[]): PackageDiff {
  const key = (p: PackageEntry): string => `${p.name}\0${p.arch}`;
  const before = new Map(a.map((p) => [key(p), p]));
  const after = new Map(b.map((p) => [key(p), p]));
  const diff: PackageDiff = { added: [], removed: [], upgraded: [], downgraded: [] };
  for (const p of b) if (!before.has(key(p))) diff.added.push(p);
  for (const p of a) {
    const q = after.get(key(p));
    if (!q) {
      diff.removed.push(p);
      continue;
    }
    const order = compareEvr(p, q);
    const change = { name: p.name, arch: p.arch, from: evrText(p), to: evrText(q) };
    if (order < 0) diff.upgraded.push(change);
    else if (order > 0) diff.downgraded.push(change);
  }
  return diff;
}
