// Committing trees: walk a directory (or read a tar archive) into file, dirtree and dirmeta
// objects, then write a commit and move its ref in one transaction.
import {
  type Dirent,
  type Stats,
  createReadStream,
  lstatSync,
  readdirSync,
  rmSync,
  writeSync,
  openSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { ArborError, UsageError, assert, ioError, present } from '../common/errors.js';
import { reviveError } from '../common/error-transfer.js';
import { favourMemory } from '../common/v8-heap.js';
import { CommitPool, type CommitJobResult, workersAvailable } from './commit-pool.js';
import { type Checksum, StreamHasher, hashBytes } from '../common/hash.js';
import { devinoMatches } from './index-db.js';
import {
  type Commit,
  childPath,
  type DirMeta,
  type FileHeader,
  type Metadata,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
  type Xattr,
  encodeCommit,
  encodeDirMeta,
  encodeDirTree,
  encodeFileHeader,
  fileType,
  invalidNameReason,
  isRegular,
  sortXattrs,
} from './objects/index.js';
import { encodeCommittedHeader } from './object-writer.js';
import { assertRefName } from './refs.js';
import { type Repo, WHOLE_FILE_LIMIT, hashFile, headerFromDisk, readXattrs } from './store.js';
import type { Transaction } from './transaction.js';

/** Counters a commit reports as it goes (for progress) and at the end. */
interface CommitStats {
  files: number;
  dirs: number;
  bytesRead: number;
  /** File objects found through the devino cache, without reading them. */
  devinoHits: number;
  objectsWritten: number;
}

export interface CommitOptions {
  readonly branch: string;
  readonly subject?: string;
  readonly body?: string;
  /** undefined: the branch's current commit; null: no parent. */
  readonly parent?: Checksum | null;
  readonly metadata?: Metadata;
  readonly tree: { readonly dir: string } | { readonly tar: string };
  /** Replaces every owner in the tree (like ostree --owner-uid/--owner-gid). */
  readonly owner?: { readonly uid?: number; readonly gid?: number };
  /** When the tree equals the parent's, make no commit and return the parent. */
  readonly skipIfUnchanged?: boolean;
  /** Seconds since the epoch; the caller reads the clock (or SOURCE_DATE_EPOCH). */
  readonly timestamp: number;
  readonly onProgress?: (stats: Readonly<CommitStats>) => void;
}

export interface CommitResult {
  readonly checksum: Checksum;
  /** True when --skip-if-unchanged found nothing new and no commit was made. */
  readonly skipped: boolean;
  readonly stats: CommitStats;
}

interface RootIds {
  tree: Checksum;
  meta: Checksum;
}

/** Commits a directory or tar archive as a new commit on `branch` and returns its checksum. */
export async function commitTree(repo: Repo, options: CommitOptions): Promise<CommitResult> {
  assertRefName(options.branch);
  const current = repo.db.getRef(options.branch) ?? null;
  const parent = options.parent === undefined ? current : options.parent;
  if (parent !== null) repo.readCommit(parent); // fail early, naming the parent, if it is missing
  const stats: CommitStats = { files: 0, dirs: 0, bytesRead: 0, devinoHits: 0, objectsWritten: 0 };
  const tx = repo.beginTransaction();
  try {
    const root =
      'dir' in options.tree
        ? await new DirWalker(tx, options, stats).writeRoot(options.tree.dir)
        : await writeTar(tx, options, stats, options.tree.tar);
    if (options.skipIfUnchanged && parent !== null) {
      const previous = repo.readCommit(parent);
      if (previous.rootTree === root.tree && previous.rootMeta === root.meta) {
        tx.abort();
        return { checksum: parent, skipped: true, stats };
      }
    }
    const commit: Commit = {
      parent,
      timestamp: options.timestamp,
      subject: options.subject ?? '',
      body: options.body ?? '',
      rootTree: root.tree,
      rootMeta: root.meta,
      metadata: options.metadata ?? new Map(),
    };
    const checksum = tx.writeMetadata('commit', encodeCommit(commit));
    stats.objectsWritten = tx.writtenCount;
    tx.commit([{ name: options.branch, checksum, expected: current }]);
    return { checksum, skipped: false, stats };
  } catch (error) {
    tx.abort();
    throw error;
  }
}

const PROGRESS_EVERY = 256;
/** Directories walked between yields to the event loop (so worker results flow back). */
const YIELD_EVERY_DIRS = 16;
/**
 * Files the walk may run ahead of the workers by: enough to keep them and the disk busy; without a
 * bound, a fast walk queued the whole tree's paths and jobs, which V8 then kept in its old generation.
 */
const MAX_OUTSTANDING_FILES = 4096;
/**
 * Staged objects that start a checkpoint during the walk (ARBOR_CKPT_OBJ, as for pulls): their renames
 * into objects/ then overlap with reading the rest of the tree instead of all coming at the end (tens
 * of thousands for a tree of small files). A killed commit leaves them published and unreferenced,
 * as a killed pull does: garbage for prune, never a ref to an incomplete commit.
 */
const PUBLISH_EVERY_OBJECTS = Number(process.env.ARBOR_CKPT_OBJ ?? 4096);

/** A file of a walked directory; its checksum may arrive later from a worker. */
interface FileEntry {
  readonly name: string;
  checksum: Checksum | undefined;
  /** Content bytes of the object (0 for anything but a regular file), recorded in the dirtree. */
  size: number;
}

/**
 * A directory as walked: its entries get their checksums when the workers answer, and its objects
 * are written as soon as nothing below it is still being hashed.
 */
interface WalkedDir {
  readonly meta: DirMeta;
  readonly files: FileEntry[];
  readonly dirs: { name: string; dir: WalkedDir }[];
  readonly parent: WalkedDir | undefined;
  /** What its objects wait for: its own walk, files out to the workers, subdirectories not written. */
  pending: number;
  /** Its dirtree and dirmeta, once written. */
  ids: RootIds | undefined;
}

/**
 * Walks a directory depth-first with synchronous syscalls (per-call overhead dominates trees of
 * small files) and hands regular files to worker threads that read, hash and stage them, so reads
 * overlap. A directory's objects are written once its walk is over and every file and directory
 * below it has its checksum: during the walk, not all in one go at its end.
 */
class DirWalker {
  readonly #tx: Transaction;
  readonly #repo: Repo;
  readonly #owner: { uid?: number; gid?: number } | undefined;
  readonly #stats: CommitStats;
  readonly #onProgress: ((stats: Readonly<CommitStats>) => void) | undefined;
  readonly #useWorkers: boolean;
  /** Started on the first file that must be read: a re-commit of a checkout may need none. */
  #pool: CommitPool | undefined;
  #failure: Error | undefined;
  #dirsSinceYield = 0;
  /** A checkpoint running in the background (see PUBLISH_EVERY_OBJECTS). */
  #publishing: Promise<void> | undefined;
  /** Files handed to workers, by token; a slot is cleared once its answer is in. */
  readonly #inFlight: ([FileEntry, string, WalkedDir] | undefined)[] = [];
  #answered = 0;
  #devinoPossible: boolean | undefined;

  constructor(tx: Transaction, options: CommitOptions, stats: CommitStats) {
    this.#tx = tx;
    this.#repo = tx.repo;
    this.#owner = options.owner;
    this.#stats = stats;
    this.#onProgress = options.onProgress;
    this.#useWorkers = workersAvailable();
  }

  async writeRoot(dir: string): Promise<RootIds> {
    favourMemory();
    // Every exit closes the pool: its live worker threads would keep the process from exiting.
    try {
      let st: Stats;
      try {
        st = lstatSync(dir);
      } catch (error) {
        throw ioError('read tree', dir, error);
      }
      if (!st.isDirectory()) throw new UsageError('E_TREE_NOT_DIR', `'${dir}' is not a directory`);
      const root = await this.#walkDir(dir, st, undefined);
      await this.#pool?.drain();
      await this.#publishing;
      if (this.#failure) throw this.#failure;
      return present(root.ids, 'the root directory objects after the walk');
    } finally {
      await this.#pool?.close();
      await this.#publishing; // the caller's abort must not remove the staging directory under it
    }
  }

  /** Starts a background checkpoint once enough objects are staged and none is running. */
  #publishSome(): void {
    if (this.#publishing || this.#tx.stagedCount < PUBLISH_EVERY_OBJECTS) return;
    this.#publishing = this.#tx.checkpointAsync().then(
      () => {
        this.#publishing = undefined;
      },
      (error: unknown) => {
        this.#publishing = undefined;
        this.#failure ??= error instanceof Error ? error : new Error(String(error));
      },
    );
  }

  #ownerOf(st: { uid: number; gid: number }): { uid: number; gid: number } {
    return { uid: this.#owner?.uid ?? st.uid, gid: this.#owner?.gid ?? st.gid };
  }

  async #walkDir(path: string, st: Stats, parent: WalkedDir | undefined): Promise<WalkedDir> {
    let entries: Dirent[];
    let xattrs: Xattr[];
    try {
      entries = readdirSync(path, { withFileTypes: true });
      xattrs = readXattrs(path);
    } catch (error) {
      throw ioError('read directory', path, error);
    }
    if (entries.some((e) => e.name.includes('\uFFFD'))) assertUtf8Names(path);
    const walked: WalkedDir = {
      meta: { ...this.#ownerOf(st), mode: st.mode, xattrs },
      files: [],
      dirs: [],
      parent,
      pending: 1,
      ids: undefined,
    };
    const subdirs: { name: string; path: string; st: Stats }[] = [];
    for (const entry of entries) {
      const child = childPath(path, entry.name);
      // Regular files go to the workers unstat'ed: they lstat in parallel (cold metadata reads overlap).
      if (this.#useWorkers && entry.isFile()) {
        this.#addRegular(walked, entry.name, child);
        continue;
      }
      let cst: Stats;
      try {
        cst = lstatSync(child);
      } catch (error) {
        throw ioError('read', child, error);
      }
      if (cst.isDirectory()) subdirs.push({ name: entry.name, path: child, st: cst });
      else this.#addFile(walked, entry.name, child, cst);
    }
    this.#stats.dirs++;
    if (this.#pool && ++this.#dirsSinceYield >= YIELD_EVERY_DIRS) {
      this.#dirsSinceYield = 0;
      this.#publishSome();
      if (this.#pool.outstanding > MAX_OUTSTANDING_FILES) await this.#pool.settleTo(MAX_OUTSTANDING_FILES / 2);
      else {
        this.#pool.flush();
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (this.#failure) throw this.#failure;
    }
    for (const sub of subdirs) {
      walked.pending++;
      walked.dirs.push({ name: sub.name, dir: await this.#walkDir(sub.path, sub.st, walked) });
    }
    this.#settle(walked);
    return walked;
  }

  /** Hands a regular file to the workers; its checksum arrives later (see #onResult). */
  #addRegular(dir: WalkedDir, name: string, path: string): void {
    this.#stats.files++;
    const entry: FileEntry = { name, checksum: undefined, size: 0 };
    dir.files.push(entry);
    this.#pool ??= new CommitPool(
      { repoPath: this.#repo.path, ...this.#tx.stagingContext, owner: this.#owner },
      (token, result) => this.#onResult(token, result),
    );
    const token = this.#inFlight.length;
    this.#inFlight.push([entry, path, dir]);
    dir.pending++;
    this.#devinoPossible ??= !this.#owner && this.#repo.db.hasDevinos(this.#repo.objectsDev);
    this.#pool.add(this.#devinoPossible ? { path, devinoDev: this.#repo.objectsDev } : { path }, token);
  }

  #onResult(token: number, result: CommitJobResult): void {
    const [entry, path, dir] = present(this.#inFlight[token], `commit job ${token}`);
    if ('error' in result) {
      const error = reviveError(result.error);
      this.#failure ??= error instanceof ArborError ? error : ioError('read', path, error);
      return;
    }
    this.#inFlight[token] = undefined;
    entry.checksum = result.checksum;
    entry.size = result.size;
    if (result.devinoHit) this.#stats.devinoHits++;
    else this.#stats.bytesRead += result.size;
    if (++this.#answered % PROGRESS_EVERY === 0) this.#onProgress?.(this.#stats);
    if (result.written) this.#tx.adoptStaged(result.checksum, result.devino);
    this.#settle(dir);
  }

  /**
   * Counts one thing `dir` waited for as done; when it was the last, writes its objects, and then
   * its parent's if that was all the parent waited for, and so on up. Its entries are dropped once
   * written (the tree of a big commit is not held to its end). A write that fails fails the commit.
   */
  #settle(dir: WalkedDir): void {
    let done: WalkedDir | undefined = dir;
    while (done !== undefined && --done.pending === 0) {
      try {
        done.ids = this.#writeDirObjects(done);
      } catch (error) {
        this.#failure ??= error instanceof Error ? error : new Error(String(error));
        return;
      }
      done.files.length = 0;
      done.dirs.length = 0;
      done = done.parent;
    }
  }

  #writeDirObjects(dir: WalkedDir): RootIds {
    const dirs = dir.dirs.map(({ name, dir: child }) => ({ name, ...present(child.ids, `the objects of '${name}'`) }));
    const files = dir.files.map(({ name, checksum, size }) => {
      assert(checksum !== undefined, `file '${name}' has no checksum after the workers finished`);
      return { name, checksum, size };
    });
    return {
      tree: this.#tx.writeMetadata(
        'dirtree',
        encodeDirTree({ files, dirs: dirs.map(({ name, tree, meta }) => ({ name, tree, meta })) }),
      ),
      meta: this.#tx.writeMetadata('dirmeta', encodeDirMeta(dir.meta)),
    };
  }

  #addFile(dir: WalkedDir, name: string, path: string, st: Stats): void {
    if (fileType(st.mode) === S_IFSOCK) {
      throw new ArborError('E_UNSUPPORTED_FILE', `'${path}' is a socket; trees cannot hold sockets`, {
        hint: 'remove it or commit a copy without it',
      });
    }
    this.#stats.files++;
    if (this.#stats.files % PROGRESS_EVERY === 0) this.#onProgress?.(this.#stats);
    const entry: FileEntry = { name, checksum: this.#lookupDevino(st), size: isRegular(st.mode) ? st.size : 0 };
    dir.files.push(entry);
    if (entry.checksum) return;
    try {
      const header = headerFromDisk(path, st, { owner: this.#owner ? this.#ownerOf(st) : undefined });
      const headerBytes = encodeCommittedHeader(header, `'${path}'`);
      if (!isRegular(st.mode)) {
        entry.checksum = hashBytes(headerBytes);
        this.#tx.writeFile(entry.checksum, header, { buffer: Buffer.alloc(0) });
        return;
      }
      if (this.#useWorkers) {
        // Only when readdir could not tell the type: lstat found a regular file after all.
        dir.files.pop();
        this.#stats.files--;
        this.#addRegular(dir, name, path);
        return;
      }
      this.#stats.bytesRead += header.size;
      const { checksum, content } = hashFile(path, headerBytes, header.size);
      entry.checksum = checksum;
      this.#tx.writeFile(checksum, header, content ? { buffer: content } : { path });
    } catch (error) {
      if (error instanceof ArborError) throw error;
      throw ioError('read', path, error);
    }
  }

  /**
   * A hardlink of an object we wrote, unchanged since (mtime, size, mode, owner), is that object.
   * Regular files sent to workers are looked up there (commit-worker.ts); this is for the rest.
   */
  #lookupDevino(st: Stats): Checksum | undefined {
    if (st.dev !== this.#repo.objectsDev || st.nlink < 2 || this.#owner) return undefined;
    const row = this.#repo.db.getDevino(st.dev, st.ino);
    if (!devinoMatches(row, st)) return undefined;
    // The inode may outlive a pruned object (a checkout still links it): then read it afresh.
    if (!this.#tx.has(row.checksum, 'file')) return undefined;
    this.#stats.devinoHits++;
    return row.checksum;
  }
}

function assertUtf8Names(dir: string): void {
  for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
    if (Buffer.from(raw.toString('utf8'), 'utf8').equals(raw)) continue;
    throw new ArborError('E_NAME_ENCODING', `'${join(dir, raw.toString('utf8'))}' has a name that is not valid UTF-8`, {
      hint: 'rename it (convmv converts legacy encodings); Arbor stores names as UTF-8',
    });
  }
}

/** A directory being assembled from tar entries. */
interface TarDir {
  meta: DirMeta | undefined;
  /** Name → object and its content size. */
  files: Map<string, { checksum: Checksum; size: number }>;
  dirs: Map<string, TarDir>;
}

const newTarDir = (): TarDir => ({ meta: undefined, files: new Map(), dirs: new Map() });

/** Splits a tar member name into validated components; `..` and friends are refused, not skipped. */
function tarPath(name: string, archive: string): string[] {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  for (const part of parts) {
    const reason = invalidNameReason(part);
    if (reason) throw new UsageError('E_TAR_PATH', `'${archive}': member '${name}' is not allowed: ${reason}`);
  }
  return parts;
}

/** Reads a tar archive (any compression tar-stream's consumer gives it: plain here) into objects. */
async function writeTar(
  tx: Transaction,
  options: CommitOptions,
  stats: CommitStats,
  archive: string,
): Promise<RootIds> {
  const root = newTarDir();
  const byPath = new Map<string, { checksum: Checksum; size: number }>();
  const dirAt = (parts: readonly string[], name: string): TarDir => {
    let dir = root;
    for (const part of parts) {
      if (dir.files.has(part))
        throw new UsageError('E_TAR_PATH', `'${archive}': '${name}' is below '${part}', which is not a directory`);
      let next = dir.dirs.get(part);
      if (!next) {
        next = newTarDir();
        dir.dirs.set(part, next);
      }
      dir = next;
    }
    return dir;
  };
  const input = extract();
  const takeRawPax = keepRawPax(input);
  const source = createReadStream(archive);
  source.on('error', (error) => input.destroy(ioError('read', archive, error)));
  source.pipe(input);
  try {
    for await (const entry of input) {
      const h = entry.header;
      const parts = tarPath(h.name, archive);
      const uid = options.owner?.uid ?? h.uid ?? 0;
      const gid = options.owner?.gid ?? h.gid ?? 0;
      const perm = (h.mode ?? 0o644) & 0o7777;
      const xattrs = tarXattrs(h.pax as Record<string, string> | undefined, takeRawPax());
      if (h.type === 'directory') {
        dirAt(parts, h.name).meta = { uid, gid, mode: S_IFDIR | perm, xattrs };
        entry.resume();
        continue;
      }
      const name = parts.pop();
      if (name === undefined) throw new UsageError('E_TAR_PATH', `'${archive}': member '${h.name}' has no name`);
      const dir = dirAt(parts, h.name);
      if (dir.dirs.has(name))
        throw new UsageError('E_TAR_PATH', `'${archive}': '${h.name}' is both a directory and a file`);
      let file: { checksum: Checksum; size: number };
      if (h.type === 'link') {
        const target = byPath.get(tarPath(h.linkname ?? '', archive).join('/'));
        if (!target)
          throw new UsageError(
            'E_TAR_PATH',
            `'${archive}': hardlink '${h.name}' points at '${h.linkname}', which comes later or is missing`,
          );
        file = target;
        entry.resume();
      } else {
        const type = {
          file: S_IFREG,
          'contiguous-file': S_IFREG,
          symlink: S_IFLNK,
          'character-device': S_IFCHR,
          'block-device': S_IFBLK,
          fifo: S_IFIFO,
        }[h.type as string];
        if (type === undefined)
          throw new ArborError(
            'E_UNSUPPORTED_FILE',
            `'${archive}': member '${h.name}' has unsupported type '${h.type}'`,
          );
        const device = type === S_IFCHR || type === S_IFBLK;
        const header: FileHeader = {
          uid,
          gid,
          mode: type | perm,
          rdevMajor: device ? (h.devmajor ?? 0) : 0,
          rdevMinor: device ? (h.devminor ?? 0) : 0,
          symlinkTarget: type === S_IFLNK ? (h.linkname ?? '') : '',
          xattrs,
          size: type === S_IFREG ? (h.size ?? 0) : 0,
        };
        encodeCommittedHeader(header, `'${archive}': member '${h.name}'`);
        file = { checksum: await writeTarMember(tx, header, entry as AsyncIterable<Buffer>), size: header.size };
        stats.bytesRead += header.size;
      }
      stats.files++;
      if (stats.files % PROGRESS_EVERY === 0) options.onProgress?.(stats);
      byPath.set([...parts, name].join('/'), file);
      dir.files.set(name, file);
    }
  } catch (error) {
    source.destroy();
    if (error instanceof ArborError) throw error;
    throw new UsageError('E_TAR_INVALID', `'${archive}' is not a readable tar archive: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const writeDir = (dir: TarDir): RootIds => {
    const files = [...dir.files].map(([name, { checksum, size }]) => ({ name, checksum, size }));
    const dirs = [...dir.dirs]
      .map(([name, child]) => ({ name, ...writeDir(child) }))
      .map(({ name, tree, meta }) => ({ name, tree, meta }));
    stats.dirs++;
    return {
      tree: tx.writeMetadata('dirtree', encodeDirTree({ files, dirs })),
      meta: tx.writeMetadata(
        'dirmeta',
        encodeDirMeta(
          dir.meta ?? { uid: options.owner?.uid ?? 0, gid: options.owner?.gid ?? 0, mode: S_IFDIR | 0o755, xattrs: [] },
        ),
      ),
    };
  };
  return writeDir(root);
}

/**
 * tar-stream decodes pax records as UTF-8 text, which mangles xattr values that are not UTF-8
 * (file capabilities, binary user.* values). This keeps the raw bytes of each entry's pax header
 * by wrapping a method of tar-stream 3.2's Extract (pinned in package.json); the extractor waits
 * for the current entry to be consumed before it reads the next header, so the bytes taken while
 * handling an entry are that entry's.
 */
function keepRawPax(input: ReturnType<typeof extract>): () => Buffer | undefined {
  const hooked = input as unknown as { _header: { type: string } | null; _decodeLongHeader(buf: Buffer): void };
  const decode = hooked._decodeLongHeader;
  assert(typeof decode === 'function', 'tar-stream no longer has Extract._decodeLongHeader');
  let raw: Buffer | undefined;
  hooked._decodeLongHeader = function (this: typeof hooked, buf: Buffer): void {
    if (this._header?.type === 'pax-header') raw = Buffer.from(buf);
    decode.call(this, buf);
  };
  return () => {
    const taken = raw;
    raw = undefined;
    return taken;
  };
}

/** Values of a raw pax header's records ("LENGTH KEY=VALUE\n", LENGTH counting the record's bytes). */
function paxRecords(raw: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  for (let at = 0; at < raw.length && raw[at] !== 0; ) {
    const space = raw.indexOf(0x20, at);
    const length = space < 0 ? NaN : Number(raw.toString('latin1', at, space));
    if (!Number.isInteger(length) || at + length > raw.length || length <= space - at + 1) break; // tar-stream rejects it too
    const record = raw.subarray(space + 1, at + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) records.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    at += length;
  }
  return records;
}

/** SCHILY.xattr.* records, with their values' exact bytes from the raw pax header when there is one. */
function tarXattrs(pax: Record<string, string> | null | undefined, raw: Buffer | undefined): Xattr[] {
  if (!pax) return [];
  const prefix = 'SCHILY.xattr.';
  const exact = raw ? paxRecords(raw) : new Map<string, Buffer>();
  return sortXattrs(
    Object.entries(pax)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => ({ name: key.slice(prefix.length), value: exact.get(key) ?? Buffer.from(value, 'utf8') })),
  );
}

/** Hashes a member's content as it streams; big members spill to a staging file instead of memory. */
async function writeTarMember(tx: Transaction, header: FileHeader, entry: AsyncIterable<Buffer>): Promise<Checksum> {
  return writeStreamedFile(tx, header, entry, () => new UsageError('E_TAR_INVALID', 'tar member is truncated'));
}

/**
 * Writes a file object whose content arrives in chunks (`header.size` bytes in all), hashing it as
 * it streams: small files are gathered in memory, big ones spill to a file in the transaction's
 * staging directory, so memory stays bounded. Throws `sizeMismatch()` when the chunks do not add
 * up to `header.size`.
 */
export async function writeStreamedFile(
  tx: Transaction,
  header: FileHeader,
  chunks: AsyncIterable<Buffer>,
  sizeMismatch: () => Error,
): Promise<Checksum> {
  const hasher = new StreamHasher().update(encodeFileHeader(header));
  if (header.size <= WHOLE_FILE_LIMIT) {
    const parts: Buffer[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    const buffer = Buffer.concat(parts);
    if (buffer.length !== header.size) throw sizeMismatch();
    const checksum = hasher.update(buffer).digest();
    tx.writeFile(checksum, header, { buffer });
    return checksum;
  }
  const spill = join(tx.staging, `spill-${Math.random().toString(36).slice(2)}`);
  try {
    const fd = openSync(spill, 'wx', 0o600);
    let written = 0;
    try {
      for await (const chunk of chunks) {
        hasher.update(chunk);
        writeSync(fd, chunk);
        written += chunk.length;
      }
    } finally {
      closeSync(fd);
    }
    if (written !== header.size) throw sizeMismatch();
    const checksum = hasher.digest();
    tx.writeFile(checksum, header, { path: spill });
    return checksum;
  } finally {
    rmSync(spill, { force: true });
  }
}
