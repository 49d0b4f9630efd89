// Importing RPM packages into the repository: each package's payload streams straight into file
// objects and becomes one commit on `pkg/NAME/EVR.ARCH`, cached by the main header's SHA-256.
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { ArborError, CorruptionError, ioError } from '../common/errors.js';
import { hashBytes } from '../common/hash.js';
import {
  type Checksum,
  type Commit,
  type DirMeta,
  type FileHeader,
  type MetadataValue,
  type Repo,
  type Transaction,
  type Xattr,
  assertRefName,
  encodeCommit,
  encodeDirMeta,
  encodeDirTree,
  encodeFileHeader,
  invalidNameReason,
  writeStreamedFile,
} from '../repo/index.js';
import { CAPABILITY_XATTR, encodeFileCaps } from './rpm/caps.js';
import { type RpmFile, type RpmHead, formatEvr, formatNevra, isGhost, readPayload, readRpmHead } from './rpm/index.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Escapes a ref component: every byte outside [A-Za-z0-9._+-] (and a '.' after a '.') becomes `_XX`. */
function escapeRefPart(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9+-]/.test(ch) || (ch === '.' && !out.endsWith('.') && out !== '')) out += ch;
    else out += `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * The ref a package is imported to: `pkg/NAME/EPOCH:VERSION-RELEASE.ARCH` with the EVR escaped
 * (no epoch counts as 0). Name and arch are used as they are (rpm names and arches are valid ref
 * characters, '_' included); the caller checks the result with assertRefName.
 */
export function pkgRefName(
  name: string,
  epoch: number | undefined,
  version: string,
  release: string,
  arch: string,
): string {
  return `pkg/${name}/${escapeRefPart(`${epoch ?? 0}:${version}-${release}`)}.${arch}`;
}

/** User and group names to ids; root is always 0. */
export interface OwnerMap {
  readonly users: ReadonlyMap<string, number>;
  readonly groups: ReadonlyMap<string, number>;
}

/** Reads passwd(5)/group(5) style files (NAME:x:ID:...); either may be omitted (only root known). */
export function loadOwnerMap(passwd?: string, group?: string): OwnerMap {
  const parse = (path: string | undefined): Map<string, number> => {
    const ids = new Map<string, number>([['root', 0]]);
    if (path === undefined) return ids;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw ioError('read', path, error);
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '' || line.startsWith('#')) continue;
      const fields = line.split(':');
      const id = Number(fields[2]);
      if (fields.length < 3 || fields[0] === '' || !/^\d+$/.test(fields[2] ?? '') || id > 0xffffffff) continue;
      if (!ids.has(fields[0]!)) ids.set(fields[0]!, id);
    }
    ids.set('root', 0);
    return ids;
  };
  return { users: parse(passwd), groups: parse(group) };
}

export interface ImportResult {
  readonly ref: string;
  readonly commit: Checksum;
  /** True when the ref already held this package (same header SHA-256): nothing was read or written. */
  readonly cached: boolean;
}

export interface ImportOptions {
  readonly owners: OwnerMap;
  /**
   * The digest of the whole .rpm file that repository metadata promises (primary.xml's
   * checksum): checked before the package is used, so a file that does not match the metadata
   * the solver read is refused (E_RPM_CHECKSUM), as dnf refuses such a download.
   */
  readonly expectedChecksum?: { readonly type: string; readonly value: string } | null;
  /** Package commits the caller has read already, by checksum: the cache check decodes them once. */
  readonly commits?: ReadonlyMap<Checksum, Commit>;
}

/**
 * The owner names a package's files use, with the ids they map to: part of the cache key, since
 * the same header imported with another user database gives another tree.
 */
function ownersKey(head: RpmHead, owners: OwnerMap): string {
  const users = new Set<string>();
  const groups = new Set<string>();
  for (const file of head.pkg.files) {
    if (isGhost(file)) continue;
    users.add(file.user);
    groups.add(file.group);
  }
  const list = (names: Set<string>, ids: ReadonlyMap<string, number>): string =>
    [...names]
      .sort()
      .map((n) => `${n}=${ids.get(n) ?? '?'}`)
      .join(',');
  return `u:${list(users, owners.users)};g:${list(groups, owners.groups)}`;
}

const fileChecksumKey = (c: { type: string; value: string }): string => `${c.type}:${c.value.toLowerCase()}`;

/** Hashes a whole file with a node:crypto algorithm. */
async function hashFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  } catch (error) {
    throw ioError('read', path, error);
  }
  return hash.digest('hex');
}

async function checkFileChecksum(path: string, expected: { type: string; value: string }): Promise<void> {
  const actual = await hashFile(path, expected.type);
  if (actual !== expected.value.toLowerCase()) {
    throw new CorruptionError(
      'E_RPM_CHECKSUM',
      `package '${path}' has ${expected.type} ${actual}, but the repository metadata says ${expected.value}`,
      {
        hint: 'the file was replaced after the repository metadata was made: rerun createrepo_c, or restore the file',
      },
    );
  }
}

/** Whether `ref` already holds this package imported with the same owners (and verified file). */
export function importedCommit(
  repo: Repo,
  head: RpmHead,
  options: ImportOptions,
): { commit: Checksum | null; fileVerified: boolean } {
  const ref = pkgRefName(head.pkg.name, head.pkg.epoch, head.pkg.version, head.pkg.release, head.pkg.arch);
  const current = repo.db.getRef(ref) ?? null;
  if (current === null) return { commit: null, fileVerified: false };
  const metadata = (options.commits?.get(current) ?? repo.readCommit(current)).metadata;
  const known = metadata.get('rpm.header-sha256');
  const owners = metadata.get('rpm.owners');
  if (known?.type !== 'string' || known.value !== head.headerSha256) return { commit: null, fileVerified: false };
  if (owners?.type !== 'string' || owners.value !== ownersKey(head, options.owners))
    return { commit: null, fileVerified: false };
  const file = metadata.get('rpm.file-checksum');
  const fileVerified =
    options.expectedChecksum == null ||
    (file?.type === 'string' && file.value === fileChecksumKey(options.expectedChecksum));
  return { commit: current, fileVerified };
}

/** Imports one package (see the module comment) in a transaction of its own. */
export async function importRpm(repo: Repo, path: string, options: ImportOptions): Promise<ImportResult> {
  const batch = new ImportBatch(repo, options, { maxPackages: 1 });
  try {
    const result = await batch.add(path);
    batch.finish();
    return result;
  } catch (error) {
    batch.abort();
    throw error;
  }
}

/**
 * Imports packages into one transaction at a time, committed (objects flushed, refs moved) every
 * `maxPackages` packages or `maxMs`: two filesystem flushes per batch instead of per package. A
 * killed import loses at most the current batch; its published objects are reused when the
 * packages are imported again. Not for concurrent use: run one batch per worker.
 */
export class ImportBatch {
  readonly #repo: Repo;
  readonly #options: ImportOptions;
  readonly #limits: { maxPackages: number; maxMs: number };
  #tx: Transaction | null = null;
  #refs: { name: string; checksum: Checksum; expected: Checksum | null }[] = [];
  #started = 0;

  constructor(repo: Repo, options: ImportOptions, limits: { maxPackages?: number; maxMs?: number } = {}) {
    this.#repo = repo;
    this.#options = options;
    this.#limits = { maxPackages: limits.maxPackages ?? 32, maxMs: limits.maxMs ?? 5000 };
  }

  /** Imports one package file (cached when its ref holds the same import); commits when the batch is full. */
  async add(path: string, options: Partial<ImportOptions> & { head?: RpmHead } = {}): Promise<ImportResult> {
    const opts = { ...this.#options, ...options };
    // The caller may have read the headers already (compose does, for its input hash).
    const head = options.head ?? (await readRpmHead(path));
    const { pkg } = head;
    const ref = pkgRefName(pkg.name, pkg.epoch, pkg.version, pkg.release, pkg.arch);
    assertRefName(ref);
    const cached = importedCommit(this.#repo, head, opts);
    if (opts.expectedChecksum && !cached.fileVerified) await checkFileChecksum(path, opts.expectedChecksum);
    if (cached.commit !== null) return { ref, commit: cached.commit, cached: true };
    const current = this.#repo.db.getRef(ref) ?? null;
    if (this.#tx === null) {
      this.#tx = this.#repo.beginTransaction();
      this.#started = Date.now();
    }
    const tx = this.#tx;
    const root = await writePackageTree(tx, head, opts.owners);
    const metadata = new Map<string, MetadataValue>([
      ['rpm.nevra', { type: 'string', value: formatNevra(pkg) }],
      ['rpm.header-sha256', { type: 'string', value: head.headerSha256 }],
      ['rpm.header', { type: 'bytes', value: head.header.bytes }],
      ['rpm.owners', { type: 'string', value: ownersKey(head, opts.owners) }],
    ]);
    if (opts.expectedChecksum)
      metadata.set('rpm.file-checksum', { type: 'string', value: fileChecksumKey(opts.expectedChecksum) });
    const commit: Commit = {
      parent: null,
      timestamp: pkg.buildTime,
      subject: `${pkg.name}-${formatEvr(pkg)}.${pkg.arch}`,
      body: '',
      rootTree: root.tree,
      rootMeta: root.meta,
      metadata,
    };
    const checksum = tx.writeMetadata('commit', encodeCommit(commit));
    this.#refs.push({ name: ref, checksum, expected: current });
    if (this.#refs.length >= this.#limits.maxPackages || Date.now() - this.#started >= this.#limits.maxMs)
      this.finish();
    return { ref, commit: checksum, cached: false };
  }

  /** Commits what the batch holds (a no-op when empty). */
  finish(): void {
    const tx = this.#tx;
    if (tx === null) return;
    this.#tx = null;
    const refs = this.#refs;
    this.#refs = [];
    tx.commit(refs);
  }

  /** Drops the uncommitted part. */
  abort(): void {
    this.#tx?.abort();
    this.#tx = null;
    this.#refs = [];
  }
}

interface TreeDir {
  meta: DirMeta | undefined;
  /** Name → object and its content size. */
  files: Map<string, { checksum: Checksum; size: number }>;
  dirs: Map<string, TreeDir>;
}

const newDir = (): TreeDir => ({ meta: undefined, files: new Map(), dirs: new Map() });

/** Builds the package's tree from its header's file list and streamed payload; returns the root's ids. */
async function writePackageTree(
  tx: Transaction,
  head: RpmHead,
  owners: OwnerMap,
): Promise<{ tree: Checksum; meta: Checksum }> {
  const { pkg } = head;
  const corrupt = (problem: string): CorruptionError =>
    new CorruptionError('E_RPM_PAYLOAD', `package '${head.path}': ${problem}`);
  const root = newDir();
  const partsOf = (file: RpmFile): string[] => {
    const parts = file.path.split('/').filter((p) => p !== '');
    for (const part of parts) {
      const reason = invalidNameReason(part);
      if (reason) throw corrupt(`path '${file.path}' cannot be stored: ${reason}`);
    }
    return parts;
  };
  const dirAt = (parts: readonly string[], file: RpmFile): TreeDir => {
    let dir = root;
    for (const part of parts) {
      if (dir.files.has(part)) throw corrupt(`'${file.path}' is below '${part}', which is not a directory`);
      let next = dir.dirs.get(part);
      if (!next) {
        next = newDir();
        dir.dirs.set(part, next);
      }
      dir = next;
    }
    return dir;
  };
  const ownerOf = (file: RpmFile): { uid: number; gid: number } => {
    const uid = owners.users.get(file.user);
    if (uid === undefined) {
      throw new ArborError(
        'E_RPM_OWNER',
        `package '${head.path}': '${file.path}' is owned by user '${file.user}', which the user database (the tree's /etc/passwd, or --passwd) does not define`,
        {
          hint: 'pass --passwd FILE naming the user',
        },
      );
    }
    const gid = owners.groups.get(file.group);
    if (gid === undefined) {
      throw new ArborError(
        'E_RPM_OWNER',
        `package '${head.path}': '${file.path}' has group '${file.group}', which the group database (the tree's /etc/group, or --group) does not define`,
        {
          hint: 'pass --group FILE naming the group',
        },
      );
    }
    return { uid, gid };
  };

  // Directories first, from the header (their owners and modes), and every owner checked up front.
  for (const file of pkg.files) {
    if (isGhost(file)) continue;
    const owner = ownerOf(file);
    if ((file.mode & S_IFMT) === S_IFDIR) dirAt(partsOf(file), file).meta = { ...owner, mode: file.mode, xattrs: [] };
  }

  for await (const entry of readPayload(head)) {
    const file = entry.file;
    const type = file.mode & S_IFMT;
    if (type === S_IFDIR) continue;
    const device = type === S_IFCHR || type === S_IFBLK;
    const rdev = file.rdev >>> 0;
    const header: FileHeader = {
      ...ownerOf(file),
      mode: file.mode,
      rdevMajor: device ? (rdev >>> 8) & 0xfff : 0,
      rdevMinor: device ? (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) : 0,
      symlinkTarget: type === S_IFLNK ? file.linkTo : '',
      // rpm applies %caps at install time; a committed tree carries them as the xattr the kernel reads.
      xattrs: fileCapsXattrs(file.caps, head.path, file.path),
      size: type === S_IFREG ? file.size : 0,
    };
    let checksum: Checksum;
    if (type === S_IFREG && entry.content) {
      checksum = await writeStreamedFile(tx, header, entry.content, () =>
        corrupt(`'${file.path}' does not have the ${file.size} bytes the header says`),
      );
    } else {
      const bytes = encodeFileHeader(header);
      checksum = hashBytes(bytes);
      tx.writeFile(checksum, header, { buffer: Buffer.alloc(0) });
    }
    for (const index of entry.indices) {
      const member = pkg.files[index]!;
      const parts = partsOf(member);
      const name = parts.pop();
      if (name === undefined) throw corrupt(`'${member.path}' names the root but is not a directory`);
      const dir = dirAt(parts, member);
      if (dir.dirs.has(name)) throw corrupt(`'${member.path}' is both a directory and a file`);
      dir.files.set(name, { checksum, size: header.size });
    }
  }

  const writeDir = (dir: TreeDir): { tree: Checksum; meta: Checksum } => {
    const files = [...dir.files].map(([name, { checksum, size }]) => ({ name, checksum, size }));
    const dirs = [...dir.dirs].map(([name, child]) => ({ name, ...writeDir(child) }));
    return {
      tree: tx.writeMetadata('dirtree', encodeDirTree({ files, dirs })),
      meta: tx.writeMetadata(
        'dirmeta',
        encodeDirMeta(dir.meta ?? { uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [] }),
      ),
    };
  };
  return writeDir(root);
}

function fileCapsXattrs(caps: string, packagePath: string, path: string): Xattr[] {
  try {
    const value = encodeFileCaps(caps);
    return value ? [{ name: CAPABILITY_XATTR, value }] : [];
  } catch (error) {
    throw new ArborError(
      'E_RPM_CAPS',
      `package '${packagePath}': '${path}' has capabilities '${caps}' that cannot be read`,
      { cause: error },
    );
  }
}
