// A transaction on a repository: new objects staged in a private tmp/staging-* directory, published
// durably (flush, rename, flush) before refs move, and dead staging directories cleaned or salvaged.
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
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CorruptionError, errnoCode, ioError } from '../common/errors.js';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import { type Checksum, hashBytes, isChecksum } from '../common/hash.js';
import { native } from '../common/native.js';
import type { DevinoRow } from './index-db.js';
import { type RepoLock, lockRepo, tryLockFile } from './lock.js';
import { type ContentSource, type StagingContext, writeStagedFile } from './object-writer.js';
import {
  type ChecksumList,
  type Commit,
  type DirTree,
  type FileHeader,
  type ObjectKind,
  decodeCommit,
  decodeDirTree,
  encodeFileHeader,
} from './objects/index.js';
import type { Repo } from './store.js';

// node:child_process loads on the first flush, not with the module: the commands that only read a
// repository (`arbor status`) reach this file and never flush.
const execFileAsync = (file: string, args: readonly string[]) =>
  promisify(process.getBuiltinModule('node:child_process').execFile)(file, args);
/** Object kinds a staging directory holds (salvaged from a dead one). */
const SALVAGED_KINDS = ['file', 'dirtree', 'dirmeta', 'commit'] as const;

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
  #present: Set<string> | undefined;
  /** Objects this transaction's checkpoints have published so far. */
  #publishedCount = 0;
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
    // None when its owner removed it in its last moments: nothing to take over.
    for (const name of readdirOrEmpty(dir)) {
      const [, checksum, kindName] = /^([0-9a-f]{64})\.(file|dirtree|dirmeta|commit)$/.exec(name) ?? [];
      const kind = SALVAGED_KINDS.find((k) => k === kindName);
      if (checksum === undefined || !isChecksum(checksum) || kind === undefined || this.#staged.has(name)) continue;
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
   * The files among `files` that are neither staged here nor stored. Reads each objects/XX
   * directory concerned once rather than lstat each object: on a cold cache an lstat reads the
   * object's inode, and asked about every file of a tree (a delta pull's last check) that is tens
   * of thousands of inode blocks scattered over the disk, where the directories are a few hundred.
   */
  absentFiles(files: ChecksumList): Checksum[] {
    const absent: Checksum[] = [];
    for (const { prefix, checksums } of files.byPrefix()) {
      const stored = this.#present ?? new Set(readdirOrEmpty(this.#repo.objectDir(prefix)));
      for (const checksum of checksums) {
        if (this.#staged.has(`${checksum}.file`)) continue;
        const name = this.#present ? `${checksum}.file` : this.#repo.objectFileName(checksum, 'file');
        if (!stored.has(name)) absent.push(checksum);
      }
    }
    return absent;
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

  /** New objects of this transaction: staged, or published by a checkpoint. */
  get writtenCount(): number {
    return this.#staged.size + this.#publishedCount;
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
    return { mode: this.#repo.mode, staging: this.staging };
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
    const kept = new Set<Checksum>();
    if (this.#staged.size > 0) {
      try {
        native.syncfs(this.staging);
        for (const s of this.#staged.values()) {
          if (!this.#publish(s)) kept.add(s.checksum);
          this.#present?.add(s.name);
        }
        native.syncfs(repo.path);
      } catch (error) {
        throw ioError('publish objects into', join(repo.path, 'objects'), error);
      }
      this.#publishedCount += this.#staged.size;
      this.#staged.clear();
    }
    this.#recordDevinos(this.#devinos.splice(0), kept);
  }

  /**
   * Renames a staged object into objects/; false when it is stored already (a concurrent
   * transaction published the same object: identical bytes, theirs is kept).
   */
  #publish(s: Staged): boolean {
    const from = join(this.staging, s.name);
    const target = this.#repo.objectPath(s.checksum, s.kind);
    try {
      return native.renameNoReplace(from, target);
    } catch (error) {
      if (errnoCode(error) !== 'EINVAL') throw error;
    }
    // A filesystem without RENAME_NOREPLACE.
    if (lstatSync(target, { throwIfNoEntry: false }) !== undefined) return false;
    renameSync(from, target);
    return true;
  }

  /**
   * Records the devino rows of published objects. Not those of objects kept from another
   * transaction: their staged inode is deleted with the staging directory, and a row naming it
   * would match whatever file reuses the inode number with the same size, mode and owner.
   */
  #recordDevinos(rows: DevinoRow[], kept: ReadonlySet<Checksum>): void {
    const recorded = kept.size === 0 ? rows : rows.filter((r) => !kept.has(r.checksum));
    if (recorded.length > 0) this.#repo.db.recordDevinos(recorded);
  }

  /**
   * Like checkpoint(), without blocking: the filesystem is flushed by `sync -f` (syncfs) in a child
   * process while this process goes on staging; then what was staged before the flush is renamed
   * in. The second flush is left to commit(): a rename lost in a crash only means a refetch.
   * The batch's devino rows are recorded with it rather than at commit(): held until then, a pull
   * of 64k files kept that many rows (over 10 MiB) on the heap.
   */
  async checkpointAsync(): Promise<void> {
    const batch = [...this.#staged.values()];
    if (!this.#open || batch.length === 0) return;
    const devinos = this.#devinos.splice(0);
    try {
      await execFileAsync('sync', ['-f', this.staging]);
    } catch (error) {
      throw ioError('flush the filesystem of', this.staging, error);
    }
    if (!this.#open) return;
    const kept = new Set<Checksum>();
    try {
      for (const s of batch) {
        // Published meanwhile by another checkpoint (a second checkpointAsync, whose flush ended
        // first, or checkpoint()): its staged file is gone.
        if (!this.#staged.has(s.name)) continue;
        if (!this.#publish(s)) kept.add(s.checksum);
        this.#staged.delete(s.name);
        this.#publishedCount++;
        this.#present?.add(s.name);
      }
    } catch (error) {
      throw ioError('publish objects into', join(this.#repo.path, 'objects'), error);
    }
    this.#recordDevinos(devinos, kept);
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
