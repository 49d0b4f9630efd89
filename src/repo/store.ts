// The repository on disk: init/open, its config, object paths per mode, and reading objects with
// their checksums verified. Writing goes through a Transaction (transaction.ts).
import { existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../common/fs-atomic.js';
import { ArborError, CorruptionError, UsageError, errnoCode, ioError } from '../common/errors.js';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import { type Checksum, hashBytes } from '../common/hash.js';
import { native } from '../common/native.js';
import { type Ini, formatIni } from '../common/ini.js';
import { REPO_FORMAT_VERSION, type RepoMode, isRepoMode, parseRepoConfig } from './config.js';
import { IndexDb } from './index-db.js';
import { BARE_USER_XATTR, hashFile, headerFromDisk } from './object-writer.js';
export { WHOLE_FILE_LIMIT, hashFile, headerFromDisk, readXattrs } from './object-writer.js';
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
import { Transaction } from './transaction.js';
import { zstdModule } from './zstd.js';

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
  /** PATH/objects/, with its slash: object paths are built by concatenation (a checkout builds one per file). */
  readonly #objectsDir: string;
  #config: Ini;

  private constructor(
    readonly path: string,
    readonly mode: RepoMode,
    config: Ini,
  ) {
    this.#config = config;
    this.#objectsDir = `${join(path, 'objects')}/`;
    this.objectsDev = lstatSync(this.#objectsDir).dev;
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
    const config = parseRepoConfig(text, join(path, 'config'));
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
    return `${this.objectDir(checksum.slice(0, 2))}/${this.objectFileName(checksum, kind)}`;
  }

  /** The objects/XX directory of a two-hex-digit prefix. */
  objectDir(prefix: string): string {
    return `${this.#objectsDir}${prefix}`;
  }

  /** An object's name inside its objects/XX directory. */
  objectFileName(checksum: Checksum, kind: ObjectKind): string {
    const ext = kind === 'file' && this.mode === 'archive' ? 'filez' : EXTENSIONS[kind];
    return `${checksum.slice(2)}.${ext}`;
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
    if (this.mode === 'archive') return hashBytes(zstdModule().decompress(readFileSync(path)));
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
      const dir = this.objectDir(prefix);
      for (const name of readdirOrEmpty(dir)) {
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
    return zstdModule().decompress(compressed);
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
