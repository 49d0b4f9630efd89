// Where a pull reads objects from: a repository served over HTTP (archive mode, static files) by
// this process or by the unprivileged fetch helper, or a local repository of any mode
// (`pull-local`, file:// URLs). Sources only fetch; the pull engine verifies every byte before it
// enters the repository.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArborError, errnoCode } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import { MAX_FILE_HEADER_BYTES, zstdCompressBound } from './bounded-inflate.js';
import {
  DEFAULT_TRANSFER_LIMITS,
  type Fetcher,
  RemoteMissingError,
  type TransferLimits,
  createFetcher,
  fetchExisting,
} from './fetch.js';
import { type FetchUser, FetchHelper, type HelperObject } from './fetch-privsep.js';
import {
  type FileHeader,
  type ObjectKind,
  type Summary,
  type SummaryRef,
  commitVersion,
  encodeSummary,
} from './objects/index.js';
import { Repo } from './store.js';

/** A fetched file object, not yet verified. */
export type FetchedFile =
  /** An archive-mode object: one zstd frame of header ‖ content. */
  | { readonly compressed: Buffer }
  | { readonly compressedPath: string }
  /** Header and content read from a local repository. */
  | { readonly header: FileHeader; readonly content: Buffer }
  | { readonly header: FileHeader; readonly contentPath: string }
  /** Inflated by the fetch helper and hashed as it arrived (`hashed`); not yet checked against its name. */
  | HelperObject;

/** summary.sig holds 96 bytes per signing key: a megabyte is thousands of keys. */
const SUMMARY_SIG_LIMIT = 1024 * 1024;
/** File objects bigger than this (compressed) go to disk as they arrive. */
const SPILL_THRESHOLD = 2 * 1024 * 1024;

/** The files of a served repository as a pull reads them: from a Fetcher, or from the fetch helper. */
type ServedFiles = Pick<Fetcher, 'urlOf' | 'get' | 'size' | 'bytesFetched' | 'close'>;

export interface PullSource {
  /** The remote's name or path, for messages. */
  readonly name: string;
  /** Whole files of the remote (static delta superblocks and parts). */
  readonly fetcher: Pick<Fetcher, 'urlOf' | 'get'>;
  /** Bytes read from the source so far. */
  readonly bytesFetched: number;
  /**
   * The summary bytes and its signature file (null when absent); `generated` when the source has
   * no summary file and one was made from its refs just now (it says nothing about freshness).
   */
  summary(): Promise<{ summary: Buffer; sig: Buffer | null; generated?: boolean }>;
  urlOf(checksum: Checksum, kind: ObjectKind): string;
  /** A metadata object of at most `maxBytes` bytes. */
  metadata(checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit', maxBytes: number): Promise<Buffer>;
  commitMeta(checksum: Checksum): Promise<Buffer | null>;
  /**
   * A file object whose content its dirtree says is `contentSize` bytes: at most the bytes that
   * content can take compressed (archive) or exactly those (a local repository) are read.
   */
  file(checksum: Checksum, spillPath: () => string, contentSize: number): Promise<FetchedFile>;
  /** Bytes a file object would cost to fetch (dry runs). */
  fileSize(checksum: Checksum): Promise<number>;
  close(): void;
}

/** The most bytes an archive object with `contentSize` bytes of content can take compressed. */
function archiveObjectBound(contentSize: number): number {
  return zstdCompressBound(MAX_FILE_HEADER_BYTES + contentSize);
}

function objectRelPath(checksum: Checksum, kind: ObjectKind): string {
  const ext = kind === 'file' ? 'filez' : kind;
  return `objects/${checksum.slice(0, 2)}/${checksum.slice(2)}.${ext}`;
}

/**
 * How an HTTP source works: the remote's limits, the largest summary it takes, and the user its
 * fetch helper runs as (null: HTTP in this process).
 */
export interface SourceLimits {
  readonly limits?: TransferLimits;
  readonly maxSummaryBytes: number;
  readonly fetchUser?: FetchUser | null;
}

/**
 * NODE_EXTRA_CA_CERTS, which Node honours for this process, read here for the fetch helper: it
 * starts with an empty environment and as a user that may not be able to read the file.
 */
function extraCa(): { extraCa?: string } {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (file === undefined || file === '') return {};
  try {
    return { extraCa: readFileSync(file, 'utf8') };
  } catch {
    // Node only warns about an unreadable file and goes on with its bundled roots; so does the helper.
    return {};
  }
}

/** Fetches file object `checksum` (at `path`) whose content its dirtree says is `contentSize` bytes. */
type FileFetch = (
  checksum: Checksum,
  path: string,
  spillPath: () => string,
  contentSize: number,
) => Promise<FetchedFile>;

/** Opens the source for a remote URL: HTTP(S) (through the fetch helper when given a user) or a local repository path. */
export function openSource(name: string, url: string, concurrency: number, bounds: SourceLimits): PullSource {
  const limits = bounds.limits ?? DEFAULT_TRANSFER_LIMITS;
  if (/^https?:\/\//.test(url) && bounds.fetchUser) {
    const helper = new FetchHelper({ url, concurrency, limits, ...extraCa() }, bounds.fetchUser);
    return new HttpSource(name, helper, bounds.maxSummaryBytes, (checksum, path, spillPath, contentSize) =>
      helper.fileObject(checksum, path, contentSize, archiveObjectBound(contentSize), spillPath),
    );
  }
  if (/^https?:\/\//.test(url)) {
    const fetcher = createFetcher(url, concurrency, limits);
    return new HttpSource(name, fetcher, bounds.maxSummaryBytes, async (_checksum, path, spillPath, contentSize) => {
      const got = await fetcher.fetchObject(path, spillPath, SPILL_THRESHOLD, {
        maxBytes: archiveObjectBound(contentSize),
      });
      return 'buffer' in got ? { compressed: got.buffer } : { compressedPath: got.path };
    });
  }
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  return new LocalRepoSource(name, path);
}

class HttpSource implements PullSource {
  constructor(
    readonly name: string,
    readonly fetcher: ServedFiles,
    readonly maxSummaryBytes: number,
    readonly fetchFile: FileFetch,
  ) {}
  get bytesFetched(): number {
    return this.fetcher.bytesFetched;
  }
  async summary(): Promise<{ summary: Buffer; sig: Buffer | null }> {
    let summary: Buffer;
    try {
      summary = await fetchExisting(this.fetcher, 'summary', { maxBytes: this.maxSummaryBytes });
    } catch (error) {
      if (error instanceof RemoteMissingError) {
        throw new ArborError('E_REMOTE_NO_SUMMARY', `remote '${this.name}' has no summary (${error.url})`, {
          hint: 'on the server, run `arbor summary --repo R --update`',
        });
      }
      throw error;
    }
    const sig = await this.fetcher.get('summary.sig', { allowMissing: true, maxBytes: SUMMARY_SIG_LIMIT });
    return { summary, sig };
  }
  urlOf(checksum: Checksum, kind: ObjectKind): string {
    return this.fetcher.urlOf(objectRelPath(checksum, kind));
  }
  async metadata(checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit', maxBytes: number): Promise<Buffer> {
    return fetchExisting(this.fetcher, objectRelPath(checksum, kind), { maxBytes });
  }
  async commitMeta(checksum: Checksum): Promise<Buffer | null> {
    return this.fetcher.get(objectRelPath(checksum, 'commitmeta'), { allowMissing: true, maxBytes: 16 * 1024 * 1024 });
  }
  async file(checksum: Checksum, spillPath: () => string, contentSize: number): Promise<FetchedFile> {
    return this.fetchFile(checksum, objectRelPath(checksum, 'file'), spillPath, contentSize);
  }
  async fileSize(checksum: Checksum): Promise<number> {
    const size = await this.fetcher.size(objectRelPath(checksum, 'file'));
    if (size === null) throw new RemoteMissingError(this.urlOf(checksum, 'file'));
    return size;
  }
  close(): void {
    this.fetcher.close();
  }
}

/** A repository on this machine, read through its own (verifying) accessors. */
class LocalRepoSource implements PullSource {
  readonly #repo: Repo;
  readonly fetcher: Fetcher;
  #bytes = 0;
  get bytesFetched(): number {
    return this.fetcher.bytesFetched + this.#bytes;
  }
  constructor(
    readonly name: string,
    readonly path: string,
  ) {
    this.#repo = Repo.open(path);
    this.fetcher = createFetcher(this.#repo.path, 1);
  }
  async summary(): Promise<{ summary: Buffer; sig: Buffer | null; generated?: boolean }> {
    // A summary file lists deltas and may be signed; without one, the refs are read directly.
    const file = join(this.#repo.path, 'summary');
    if (existsSync(file)) {
      const sig = join(this.#repo.path, 'summary.sig');
      return { summary: readFileSync(file), sig: existsSync(sig) ? readFileSync(sig) : null };
    }
    const refs: SummaryRef[] = this.#repo.db
      .listRefs()
      .filter((r) => !r.name.includes(':'))
      .map((r) => {
        const commit = this.#repo.readCommit(r.checksum);
        return {
          name: r.name,
          checksum: r.checksum,
          timestamp: commit.timestamp,
          version: commitVersion(commit) ?? '',
        };
      });
    const summary: Summary = { timestamp: Math.floor(Date.now() / 1000), refs, deltas: [], metadata: new Map() };
    return { summary: encodeSummary(summary), sig: null, generated: true };
  }
  urlOf(checksum: Checksum, kind: ObjectKind): string {
    return this.#repo.objectPath(checksum, kind);
  }
  async metadata(checksum: Checksum, kind: 'dirtree' | 'dirmeta' | 'commit', maxBytes: number): Promise<Buffer> {
    try {
      const path = this.#repo.objectPath(checksum, kind);
      if (statSync(path).size > maxBytes)
        throw new ArborError('E_FETCH_FAILED', `'${path}' is more than the ${maxBytes} bytes allowed`);
      const bytes = readFileSync(path);
      this.#bytes += bytes.length;
      return bytes;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') throw new RemoteMissingError(this.urlOf(checksum, kind));
      throw error;
    }
  }
  async commitMeta(checksum: Checksum): Promise<Buffer | null> {
    try {
      return readFileSync(this.#repo.objectPath(checksum, 'commitmeta'));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return null;
      throw error;
    }
  }
  async file(checksum: Checksum, spillPath: () => string, contentSize: number): Promise<FetchedFile> {
    const path = this.#repo.objectPath(checksum, 'file');
    if (!this.#repo.hasObject(checksum, 'file')) throw new RemoteMissingError(path);
    if (this.#repo.mode === 'archive') {
      // Through the directory fetcher: bounded like an HTTP download, big objects copied to disk.
      const got = await this.fetcher.fetchObject(objectRelPath(checksum, 'file'), spillPath, SPILL_THRESHOLD, {
        maxBytes: archiveObjectBound(contentSize),
      });
      return 'buffer' in got ? { compressed: got.buffer } : { compressedPath: got.path };
    }
    const header = this.#repo.readFileHeader(checksum);
    // The pull rejects the mismatch; reading content the tree does not vouch for is not needed for that.
    if (header.size !== contentSize) return { header, content: Buffer.alloc(0) };
    this.#bytes += header.size;
    if (header.size > SPILL_THRESHOLD) return { header, contentPath: path };
    // loadFile verifies; the pull verifies again, which costs a hash of small files only.
    const { content } = this.#repo.loadFile(checksum);
    return { header, content };
  }
  async fileSize(checksum: Checksum): Promise<number> {
    return this.#repo.readFileHeader(checksum).size;
  }
  close(): void {
    this.#repo.close();
  }
}
