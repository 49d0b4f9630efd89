// The repository on disk: init/open, object paths per mode, reading objects with their checksums
// verified, and transactions that stage new objects and publish them durably before refs move.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { decompress as zstdDecompress } from 'zstd-napi';
import { writeFileAtomic } from '../common/fs-atomic.js';
import { ArborError, CorruptionError, UsageError, errnoCode, ioError } from '../common/errors.js';
import { type Checksum, hashBytes } from '../common/hash.js';
import { native } from '../common/native.js';
import { type Ini, REPO_FORMAT_VERSION, type RepoMode, formatIni, isRepoMode, parseIni } from './config.js';
import { type DevinoRow, IndexDb } from './index-db.js';
import {
  BARE_USER_XATTR,
  type ContentSource,
  type StagingContext,
  hashFile,
  headerFromDisk,
  writeStagedFile,
} from './object-writer.js';
export {
  type ContentSource,
  WHOLE_FILE_LIMIT,
  hashFile,
  headerFromDisk,
  readXattrs,
} from './object-writer.js';
import { type RepoLock, lockRepo, tryLockFile } from './lock.js';
import {
  type Commit,
  type DirMeta,
  type DirTree,
  type FileHeader,
  type Metadata,
  type MetadataValue,
  type ObjectKind,
  commitVersion,
  decodeCommit,
  decodeCommitMeta,
  decodeDirMeta,
  decodeDirTree,
  decodeFileHeader,
  decodeFileObject,
  encodeCommitMeta,
  encodeFileHeader,
  isRegular,
} from './objects/index.js';

const execFileAsync = promisify(execFile);

const EXTENSIONS: Record<ObjectKind, string> = {
  file: 'file',
  dirtree: 'dirtree',
  dirmeta: 'dirmeta',
  commit: 'commit',
  commitmeta: 'commitmeta',
};

/** The bytes of a metadata object, checked against its name. */
function verifiedMetadata(checksum: Checksum, kind: string, bytes: Buffer): Buffer {
  const actual = hashBytes(bytes);
  if (actual !== checksum)
    throw new CorruptionError('E_OBJECT_CORRUPT', `${kind} ${checksum} is corrupt: its content hashes to ${actual}`);
  return bytes;
}

export class Repo {
  #db: IndexDb | null = null;
  /** st_dev of objects/: the devino cache is only consulted for files on this device. */
  readonly objectsDev: number;
  #config: Ini;

  private constructor(
    readonly path: string,
    readonly mode: RepoMode,
    config: Ini,
  ) {
    this.#config = config;
    this.objectsDev = lstatSync(join(path, 'objects')).dev;
  }

  /** Creates an empty repository (idempotent for the same mode). */
  static init(path: string, mode: RepoMode): Repo {
    const root = resolve(path);
    if (existsSync(join(root, 'config'))) {
      const repo = Repo.open(root);
      if (repo.mode !== mode) throw new UsageError('E_REPO_EXISTS', `'${path}' is already a ${repo.mode} repository`);
      return repo;
    }
    try {
      mkdirSync(root, { recursive: true });
      for (const dir of ['objects', 'tmp', 'deltas', 'refs']) mkdirSync(join(root, dir), { recursive: true });
      // All 256 fan-out directories up front: no mkdir race between concurrent writers later.
      for (let i = 0; i < 256; i++)
        mkdirSync(join(root, 'objects', i.toString(16).padStart(2, '0')), { recursive: true });
      const config: Ini = new Map([
        [
          'core',
          new Map([
            ['format-version', String(REPO_FORMAT_VERSION)],
            ['mode', mode],
          ]),
        ],
      ]);
      writeFileAtomic(join(root, 'config'), formatIni(config));
    } catch (error) {
      throw ioError('create repository', path, error);
    }
    const repo = Repo.open(root);
    repo.db.listRefs(); // opening repo.db creates it with its schema now
    return repo;
  }

  static open(path: string): Repo {
    const root = resolve(path);
    let text: string;
    try {
      text = readFileSync(join(root, 'config'), 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') {
        throw new ArborError('E_REPO_NOT_FOUND', `no repository at '${path}'`, {
          hint: 'create one with `arbor init --repo PATH`',
        });
      }
      throw ioError('read repository config', join(path, 'config'), error);
    }
    const config = parseIni(text, join(path, 'config'));
    const core = config.get('core');
    const version = core?.get('format-version');
    if (version !== String(REPO_FORMAT_VERSION)) {
      // Version 1 objects lack the file sizes in dirtrees that bound every transfer: not convertible in place.
      const older = version !== undefined && /^\d+$/.test(version) && Number(version) < REPO_FORMAT_VERSION;
      throw new ArborError(
        'E_REPO_FORMAT',
        `repository '${path}' has format version ${version ?? 'none'}; this arbor reads version ${REPO_FORMAT_VERSION}`,
        {
          hint: older
            ? 'it was made by an older Arbor whose objects this one cannot read: re-create it (`arbor init` a new repository, then commit or pull into it again)'
            : 'use the arbor release that created it',
        },
      );
    }
    const mode = core?.get('mode') ?? '';
    if (!isRepoMode(mode)) throw new ArborError('E_REPO_FORMAT', `repository '${path}' has unknown mode '${mode}'`);
    return new Repo(root, mode, config);
  }

  /**
   * The SQLite index (refs, commit list, devino cache), opened on first use: reading objects does
   * not need it, so `arbor status` works on a sysroot mounted read-only, where SQLite cannot open
   * a WAL database without creating its shared-memory file.
   */
  get db(): IndexDb {
    this.#db ??= new IndexDb(join(this.path, 'repo.db'));
    return this.#db;
  }

  close(): void {
    this.#db?.close();
    this.#db = null;
  }

  get config(): Ini {
    return this.#config;
  }

  /** Rewrites `config` atomically (remotes and settings live there). */
  writeConfig(config: Ini): void {
    writeFileAtomic(join(this.path, 'config'), formatIni(config));
    this.#config = config;
  }

  objectPath(checksum: Checksum, kind: ObjectKind): string {
    const ext = kind === 'file' && this.mode === 'archive' ? 'filez' : EXTENSIONS[kind];
    return join(this.path, 'objects', checksum.slice(0, 2), `${checksum.slice(2)}.${ext}`);
  }

  hasObject(checksum: Checksum, kind: ObjectKind): boolean {
    // lstat, not exists: a bare symlink object usually dangles, and existsSync follows it.
    return lstatSync(this.objectPath(checksum, kind), { throwIfNoEntry: false }) !== undefined;
  }

  /** Reads a metadata object and checks that its bytes hash to its name. */
  readMetadataBytes(checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit'): Buffer {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.objectPath(checksum, kind));
    } catch (error) {
      throw this.#metadataReadError(checksum, kind, error);
    }
    return verifiedMetadata(checksum, kind, bytes);
  }

  /**
   * readMetadataBytes without blocking: callers that need many small objects read them with
   * several reads in flight (cold, 5,000 dirtrees take 0.5 s one by one here, 0.19 s 16 at a time).
   */
  async readMetadataBytesAsync(checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit'): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.objectPath(checksum, kind));
    } catch (error) {
      throw this.#metadataReadError(checksum, kind, error);
    }
    return verifiedMetadata(checksum, kind, bytes);
  }

  #metadataReadError(checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit', error: unknown): ArborError {
    if (errnoCode(error) === 'ENOENT')
      return new CorruptionError(
        kind === 'commit' ? 'E_COMMIT_MISSING' : 'E_OBJECT_MISSING',
        `${kind} ${checksum} is missing`,
      );
    return ioError(`read ${kind}`, this.objectPath(checksum, kind), error);
  }

  async readDirTreeAsync(checksum: Checksum): Promise<DirTree> {
    return decodeDirTree(await this.readMetadataBytesAsync(checksum, 'dirtree'), `dirtree ${checksum}`);
  }
  async readCommitAsync(checksum: Checksum): Promise<Commit> {
    return decodeCommit(await this.readMetadataBytesAsync(checksum, 'commit'), `commit ${checksum}`);
  }

  readDirTree(checksum: Checksum): DirTree {
    return decodeDirTree(this.readMetadataBytes(checksum, 'dirtree'), `dirtree ${checksum}`);
  }
  readDirMeta(checksum: Checksum): DirMeta {
    return decodeDirMeta(this.readMetadataBytes(checksum, 'dirmeta'), `dirmeta ${checksum}`);
  }
  readCommit(checksum: Checksum): Commit {
    return decodeCommit(this.readMetadataBytes(checksum, 'commit'), `commit ${checksum}`);
  }

  readCommitMeta(checksum: Checksum): Map<string, MetadataValue> {
    try {
      return decodeCommitMeta(readFileSync(this.objectPath(checksum, 'commitmeta')), `commitmeta of ${checksum}`);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return new Map();
      throw error;
    }
  }

  /** Replaces a commit's detached metadata (signatures) atomically. */
  writeCommitMeta(checksum: Checksum, metadata: Metadata): void {
    writeFileAtomic(this.objectPath(checksum, 'commitmeta'), encodeCommitMeta(metadata));
  }

  /** The stored header of a file object, without verifying content (fast path for ls/checkout). */
  readFileHeader(checksum: Checksum, path = this.objectPath(checksum, 'file')): FileHeader {
    try {
      if (this.mode === 'archive')
        return decodeFileObject(readArchiveObject(path, checksum), `file ${checksum}`).header;
      return this.#diskHeader(path, checksum);
    } catch (error) {
      throw objectReadError(error, checksum, path);
    }
  }

  /** Header and content of a file object, verified against its checksum. */
  loadFile(checksum: Checksum, path = this.objectPath(checksum, 'file')): { header: FileHeader; content: Buffer } {
    let header: FileHeader;
    let content: Buffer;
    try {
      if (this.mode === 'archive') {
        ({ header, content } = decodeFileObject(readArchiveObject(path, checksum), `file ${checksum}`));
      } else {
        header = this.#diskHeader(path, checksum);
        content = isRegular(header.mode) ? readFileSync(path) : Buffer.alloc(0);
        if (content.length !== header.size)
          throw new CorruptionError(
            'E_OBJECT_CORRUPT',
            `file ${checksum} is corrupt: ${content.length} bytes, header says ${header.size}`,
          );
      }
    } catch (error) {
      throw objectReadError(error, checksum, path);
    }
    const actual = hashBytes(encodeFileHeader(header), content);
    if (actual !== checksum)
      throw new CorruptionError('E_OBJECT_CORRUPT', `file ${checksum} is corrupt: it hashes to ${actual}`);
    return { header, content };
  }

  /** Recomputes a file object's checksum from disk, streaming big contents. */
  computeFileChecksum(checksum: Checksum): Checksum {
    if (this.mode === 'archive') return hashBytes(readArchiveObject(this.objectPath(checksum, 'file'), checksum));
    const path = this.objectPath(checksum, 'file');
    const header = this.#diskHeader(path, checksum);
    if (!isRegular(header.mode)) return hashBytes(encodeFileHeader(header));
    return hashFile(path, encodeFileHeader(header), header.size).checksum;
  }

  /** The header of a bare or bare-user file object: its xattr (bare-user) or the inode itself (bare). */
  #diskHeader(path: string, checksum: Checksum): FileHeader {
    return this.mode === 'bare-user' ? readBareUserHeader(path, checksum) : headerFromDisk(path, lstatSync(path));
  }

  /** Starts a transaction: new objects go to a private staging directory until `commit()`. */
  beginTransaction(options: { salvage?: boolean } = {}): Transaction {
    return new Transaction(this, options);
  }

  /** The checksum of an object file at `path` (in this repository's mode), recomputed from disk. */
  checksumAt(path: string, kind: ObjectKind): Checksum {
    if (kind !== 'file') return hashBytes(readFileSync(path));
    if (this.mode === 'archive') return hashBytes(zstdDecompress(readFileSync(path)));
    const header =
      this.mode === 'bare-user'
        ? readBareUserHeader(path, 'staged' as Checksum)
        : headerFromDisk(path, lstatSync(path));
    if (!isRegular(header.mode)) return hashBytes(encodeFileHeader(header));
    return hashFile(path, encodeFileHeader(header), header.size).checksum;
  }

  /** Every object stored, as (checksum, kind) pairs, by scanning objects/. */
  *listObjects(): Generator<{ checksum: Checksum; kind: ObjectKind; path: string }> {
    const byExt = new Map<string, ObjectKind>(Object.entries(EXTENSIONS).map(([k, v]) => [v, k as ObjectKind]));
    byExt.set('filez', 'file');
    for (let i = 0; i < 256; i++) {
      const prefix = i.toString(16).padStart(2, '0');
      const dir = join(this.path, 'objects', prefix);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') continue;
        throw error;
      }
      for (const name of names) {
        const dot = name.indexOf('.');
        const kind = byExt.get(name.slice(dot + 1));
        const checksum = `${prefix}${name.slice(0, dot)}` as Checksum;
        if (kind && /^[0-9a-f]{64}$/.test(checksum)) yield { checksum, kind, path: join(dir, name) };
      }
    }
  }

  /** Records a commit in the index (log and prefix lookups read it). */
  indexCommit(checksum: Checksum, commit: Commit): void {
    this.db.indexCommits([
      {
        checksum,
        parent: commit.parent,
        timestamp: commit.timestamp,
        subject: commit.subject,
        version: commitVersion(commit) ?? null,
      },
    ]);
  }
}

function objectReadError(error: unknown, checksum: Checksum, path: string): Error {
  if (error instanceof ArborError) return error;
  if (errnoCode(error) === 'ENOENT') return new CorruptionError('E_OBJECT_MISSING', `file ${checksum} is missing`);
  if (errnoCode(error) === 'ENODATA')
    return new CorruptionError('E_OBJECT_CORRUPT', `file ${checksum} has lost its '${BARE_USER_XATTR}' xattr`);
  return ioError('read object', path, error);
}

/** Reads and decompresses an archive file object: any zstd failure means its stored bytes are damaged. */
function readArchiveObject(path: string, checksum: Checksum): Buffer {
  const compressed = readFileSync(path);
  try {
    return zstdDecompress(compressed);
  } catch (error) {
    // zstd's messages vary with where the damage is ("Destination buffer is too small", "Unknown frame descriptor", ...).
    throw new CorruptionError('E_OBJECT_CORRUPT', `file ${checksum} is corrupt: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function readBareUserHeader(path: string, checksum: Checksum): FileHeader {
  const meta = native.lgetxattrs(path).find(([name]) => name === BARE_USER_XATTR);
  if (!meta) throw new CorruptionError('E_OBJECT_CORRUPT', `file ${checksum} has lost its '${BARE_USER_XATTR}' xattr`);
  return decodeFileHeader(meta[1], `file ${checksum} header`);
}

/** A new object waiting in the staging directory for the transaction to commit. */
interface Staged {
  readonly name: string;
  readonly checksum: Checksum;
  readonly kind: ObjectKind;
}

/**
 * Writes objects into tmp/staging-*, then `commit()` flushes the filesystem once (syncfs, as
 * ostree does by default instead of one fsync per object), renames them into objects/, flushes
 * again, and only then moves refs. Killed at any point, it leaves objects/ consistent; a later
 * transaction removes the dead staging directory.
 */
export class Transaction {
  readonly staging: string;
  readonly #repo: Repo;
  readonly #repoLock: RepoLock;
  readonly #stagingLock: RepoLock;
  readonly #staged = new Map<string, Staged>();
  readonly #devinos: DevinoRow[] = [];
  readonly #commits = new Map<Checksum, Commit>();
  readonly #isRoot = process.getuid?.() === 0;
  #present: Set<string> | undefined;
  #open = true;

  /**
   * With `salvage`, verified objects left in dead staging directories (a killed pull's) are taken
   * over instead of deleted: each is rehashed first, so a half-written one is simply dropped.
   */
  constructor(repo: Repo, options: { salvage?: boolean } = {}) {
    this.#repo = repo;
    this.#repoLock = lockRepo(repo.path, false);
    try {
      const dead = removeDeadStagingDirs(repo.path, options.salvage === true);
      this.staging = join(repo.path, 'tmp', `staging-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
      mkdirSync(this.staging);
      // Lock the file under a private name and rename it into place: a `.lock` that another
      // transaction's removeDeadStagingDirs can take is then always a dead owner's. Creating and
      // locking `.lock` itself left a window where a starting transaction lost its directory.
      const lockPath = join(this.staging, '.lock.new');
      writeFileSync(lockPath, '', { flag: 'wx' });
      const lock = tryLockFile(lockPath);
      if (!lock) throw new Error(`internal error: fresh staging lock '${lockPath}' is held by another process`);
      this.#stagingLock = lock;
      renameSync(lockPath, join(this.staging, '.lock'));
      for (const { dir, lock: deadLock } of dead) {
        this.#salvage(dir);
        rmSync(dir, { recursive: true, force: true });
        deadLock?.release();
      }
    } catch (error) {
      this.#repoLock.release();
      throw ioError('create a staging directory in', join(repo.path, 'tmp'), error);
    }
  }

  get repo(): Repo {
    return this.#repo;
  }

  /** Moves the objects of a dead staging directory that still verify into this one. */
  #salvage(dir: string): void {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return; // removed by its owner's last moments: nothing to take over
      throw error;
    }
    for (const name of names) {
      const m = /^([0-9a-f]{64})\.(file|dirtree|dirmeta|commit)$/.exec(name);
      if (!m || this.#staged.has(name)) continue;
      const checksum = m[1] as Checksum;
      const kind = m[2] as 'file' | 'dirtree' | 'dirmeta' | 'commit';
      const path = join(dir, name);
      try {
        if (this.#repo.hasObject(checksum, kind) || this.#repo.checksumAt(path, kind) !== checksum) continue;
        renameSync(path, join(this.staging, name));
      } catch {
        continue; // unreadable or half-made (lost xattr, truncated frame): fetched again
      }
      this.#staged.set(name, { name, checksum, kind });
      if (kind === 'commit') this.#commits.set(checksum, decodeCommit(readFileSync(join(this.staging, name))));
    }
  }

  /** Objects taken over from dead staging directories (see the constructor). */
  get salvagedCount(): number {
    return this.#staged.size;
  }

  /** True when the object is in the repository or already staged here. */
  has(checksum: Checksum, kind: ObjectKind): boolean {
    const key = `${checksum}.${kind}`;
    if (this.#staged.has(key)) return true;
    return this.#present ? this.#present.has(key) : this.#repo.hasObject(checksum, kind);
  }

  /**
   * From now on, answers `has()` from one listing of objects/ (256 readdirs) instead of one lstat
   * per object: worth it when most files of a tree will be asked about (a re-commit of a checkout).
   * Prune cannot remove any listed object meanwhile (it needs the lock this transaction holds
   * shared); one published meanwhile by another writer is merely staged again and skipped.
   */
  snapshotPresence(): void {
    if (this.#present) return;
    this.#present = new Set();
    for (const { checksum, kind } of this.#repo.listObjects()) this.#present.add(`${checksum}.${kind}`);
  }

  /** A metadata object's bytes, verified, whether it is staged here or already stored. */
  readStagedOrStored(checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit'): Buffer {
    const name = `${checksum}.${kind}`;
    if (!this.#staged.has(name)) return this.#repo.readMetadataBytes(checksum, kind);
    const bytes = readFileSync(join(this.staging, name));
    const actual = hashBytes(bytes);
    if (actual !== checksum)
      throw new CorruptionError('E_OBJECT_CORRUPT', `staged ${kind} ${checksum} hashes to ${actual}`);
    return bytes;
  }

  /** A file object's header, whether it is staged here or already stored. */
  readFileHeader(checksum: Checksum): FileHeader {
    const name = `${checksum}.file`;
    return this.#staged.has(name)
      ? this.#repo.readFileHeader(checksum, join(this.staging, name))
      : this.#repo.readFileHeader(checksum);
  }

  /** A file object's header and content, verified, whether it is staged here or already stored. */
  loadFile(checksum: Checksum): { header: FileHeader; content: Buffer } {
    const name = `${checksum}.file`;
    return this.#staged.has(name)
      ? this.#repo.loadFile(checksum, join(this.staging, name))
      : this.#repo.loadFile(checksum);
  }

  /** A dirtree, verified and decoded, whether it is staged here or already stored. */
  readStagedOrStoredTree(checksum: Checksum): DirTree {
    return decodeDirTree(this.readStagedOrStored(checksum, 'dirtree'), `dirtree ${checksum}`);
  }

  get stagedCount(): number {
    return this.#staged.size;
  }

  /** Stores an encoded dirtree/dirmeta/commit and returns its checksum. */
  writeMetadata(kind: 'dirtree' | 'dirmeta' | 'commit', bytes: Buffer): Checksum {
    const checksum = hashBytes(bytes);
    if (this.has(checksum, kind)) return checksum;
    const name = `${checksum}.${kind}`;
    writeFileSync(join(this.staging, name), bytes, { mode: 0o644 });
    this.#staged.set(name, { name, checksum, kind });
    if (kind === 'commit') this.#commits.set(checksum, decodeCommit(bytes));
    return checksum;
  }

  /** Where and how file objects are staged (for commit workers writing in parallel). */
  get stagingContext(): StagingContext {
    return { mode: this.#repo.mode, staging: this.staging, isRoot: this.#isRoot };
  }

  /**
   * Stores a file object whose checksum the caller computed from header and content; a source
   * path is copied by the kernel (copy_file_range) rather than through JS buffers.
   */
  writeFile(checksum: Checksum, header: FileHeader, source: ContentSource): void {
    if (this.has(checksum, 'file')) return;
    const staged = join(this.staging, `${checksum}.file`);
    this.adoptStaged(
      checksum,
      writeStagedFile(this.stagingContext, staged, checksum, header, encodeFileHeader(header), source),
    );
  }

  /**
   * Stores an archive-mode file object from its already compressed bytes (a buffer, or a file in
   * the staging directory that is moved): pulls keep the server's compression. The caller has
   * verified that they decompress to an object hashing to `checksum`.
   */
  writeCompressedFile(checksum: Checksum, compressed: { buffer: Buffer } | { path: string }): void {
    if (this.#repo.mode !== 'archive')
      throw new Error('internal error: compressed objects are for archive repositories');
    if (this.has(checksum, 'file')) return;
    const name = `${checksum}.file`;
    if ('buffer' in compressed) writeFileSync(join(this.staging, name), compressed.buffer, { mode: 0o644, flag: 'wx' });
    else renameSync(compressed.path, join(this.staging, name));
    this.#staged.set(name, { name, checksum, kind: 'file' });
  }

  /** Records a file object a commit worker wrote into this staging directory. */
  adoptStaged(checksum: Checksum, devino: DevinoRow | undefined): void {
    const name = `${checksum}.file`;
    this.#staged.set(name, { name, checksum, kind: 'file' });
    if (devino) this.#devinos.push(devino);
  }

  /**
   * Publishes staged objects and then applies ref updates. Objects become visible under their
   * final names only after their data is durable, and refs only after every object is in place.
   */
  commit(refUpdates: readonly { name: string; checksum: Checksum | null; expected?: Checksum | null }[] = []): void {
    if (!this.#open) throw new Error('internal error: transaction already finished');
    const repo = this.#repo;
    this.checkpoint();
    for (const [checksum, commit] of this.#commits) repo.indexCommit(checksum, commit);
    if (refUpdates.length > 0) repo.db.updateRefs(refUpdates, Math.floor(Date.now() / 1000));
    this.#finish();
  }

  /**
   * Publishes what is staged so far (flush, rename, flush) and keeps the transaction open: a long
   * pull calls it now and then so that a killed pull, restarted, does not fetch those objects again.
   * Commits indexed and refs moved wait for `commit()`.
   */
  checkpoint(): void {
    if (!this.#open) throw new Error('internal error: transaction already finished');
    const repo = this.#repo;
    if (this.#staged.size > 0) {
      try {
        native.syncfs(this.staging);
        for (const s of this.#staged.values()) {
          const target = repo.objectPath(s.checksum, s.kind);
          // A concurrent transaction may have published the same object: identical bytes, keep theirs.
          if (lstatSync(target, { throwIfNoEntry: false }) === undefined)
            renameSync(join(this.staging, s.name), target);
          this.#present?.add(s.name);
        }
        native.syncfs(repo.path);
      } catch (error) {
        throw ioError('publish objects into', join(repo.path, 'objects'), error);
      }
      this.#staged.clear();
    }
    if (this.#devinos.length > 0) repo.db.recordDevinos(this.#devinos.splice(0));
  }

  /**
   * Like checkpoint(), without blocking: the filesystem is flushed by `sync -f` (syncfs) in a child
   * process while this process goes on staging; then what was staged before the flush is renamed
   * in. The second flush is left to commit(): a rename lost in a crash only means a refetch.
   */
  async checkpointAsync(): Promise<void> {
    const batch = [...this.#staged.values()];
    if (!this.#open || batch.length === 0) return;
    try {
      await execFileAsync('sync', ['-f', this.staging]);
    } catch (error) {
      throw ioError('flush the filesystem of', this.staging, error);
    }
    if (!this.#open) return;
    const repo = this.#repo;
    try {
      for (const s of batch) {
        const target = repo.objectPath(s.checksum, s.kind);
        if (lstatSync(target, { throwIfNoEntry: false }) === undefined) renameSync(join(this.staging, s.name), target);
        this.#staged.delete(s.name);
        this.#present?.add(s.name);
      }
    } catch (error) {
      throw ioError('publish objects into', join(repo.path, 'objects'), error);
    }
  }

  /** Drops everything staged; nothing in the repository changed. */
  abort(): void {
    if (this.#open) this.#finish();
  }

  #finish(): void {
    this.#open = false;
    rmSync(this.staging, { recursive: true, force: true });
    this.#stagingLock.release();
    this.#repoLock.release();
  }
}

/**
 * Removes staging directories whose owner died (their .lock is free); with `keep`, returns those
 * with a lock still held instead, for the caller to salvage and then remove.
 */
function removeDeadStagingDirs(repoPath: string, keep: boolean): { dir: string; lock: RepoLock | undefined }[] {
  const tmp = join(repoPath, 'tmp');
  const kept: { dir: string; lock: RepoLock | undefined }[] = [];
  for (const name of readdirSync(tmp)) {
    if (!name.startsWith('staging-')) continue;
    const dir = join(tmp, name);
    let lock: RepoLock | undefined;
    try {
      lock = tryLockFile(join(dir, '.lock'));
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    // No .lock: its creator died before renaming its held lock into place, or is about to (so
    // spare young ones). A .lock we can take is a dead owner's: a live one holds it from the start.
    const orphan = !lock && !existsSync(join(dir, '.lock')) && Date.now() - statMtime(dir) > 60_000;
    if (keep && lock) {
      kept.push({ dir, lock });
      continue;
    }
    if (lock || orphan) rmSync(dir, { recursive: true, force: true });
    lock?.release();
  }
  return kept;
}

function statMtime(path: string): number {
  try {
    return lstatSync(path).mtimeMs;
  } catch {
    return Date.now(); // gone already: treat as young, nothing to remove
  }
}
