// Pulling commits from a remote: read the summary (verify its signature when the remote requires
// it), then for each requested ref either apply a static delta or fetch the missing objects one by
// one with bounded parallelism. Every object is verified before it is staged; staged objects are
// published every few seconds so a killed pull resumes where it was; the remote ref moves only
// once the whole commit is in the repository.
import { join } from 'node:path';
import { favourMemory } from '../common/v8-heap.js';
import { ArborError, present } from '../common/errors.js';
import { type Checksum, hashBytes, isChecksum } from '../common/hash.js';
import { Fifo } from '../common/fifo.js';
import { applyDelta } from './delta-apply.js';
import { RemoteMissingError, fetchExisting } from './fetch.js';
import {
  type Commit,
  type Summary,
  type SummaryDelta,
  decodeCommit,
  decodeCommitMeta,
  decodeDirTree,
  decodeSummary,
} from './objects/index.js';
import { fetchUserFor } from './fetch-privsep.js';
import { type PullSource, openSource } from './pull-source.js';
import { DEFAULT_MAX_SUMMARY_BYTES, type Remote, isConfiguredRemote, objectLimits, setTrustedKeys } from './remotes.js';
import { type SignatureCheck, checkCommitSignatures, checkSummarySignatures, requireTrustedSignature } from './sign.js';
import { checkFreshness, planTrustedKeys, readSummaryTrust } from './summary-trust.js';
import type { Repo } from './store.js';
import type { Transaction } from './transaction.js';
import { StorePool, storeError, storeWorkersAvailable } from './store-pool.js';
import { corruptObject, storeFetchedFile, storeMetadata } from './verify-store.js';

export interface PullOptions {
  /** Refs of the remote, or full commit checksums. */
  readonly refs: readonly string[];
  /** Also fetch this many parents of each commit (-1: all history). */
  readonly depth?: number;
  readonly commitMetadataOnly?: boolean;
  readonly disableStaticDeltas?: boolean;
  readonly dryRun?: boolean;
  /** Parallel requests (default 16). */
  readonly concurrency?: number;
  /** Write refs as `REMOTE:REF` (pull) or as `REF` (pull-local). */
  readonly refPrefix: string;
  /** Let a ref move to a commit older than the one it points at (refused with E_PULL_DOWNGRADE otherwise). */
  readonly allowDowngrade?: boolean;
  readonly onProgress?: (p: PullProgress) => void;
}

export interface PullProgress {
  /** Objects fetched and stored so far. */
  readonly objects: number;
  /** Objects known to be needed so far (grows while directories are discovered). */
  readonly objectsNeeded: number;
  readonly bytes: number;
  /** Total bytes to fetch when known (deltas), else null. */
  readonly bytesTotal: number | null;
  readonly scanning: boolean;
}

interface PulledRef {
  readonly ref: string;
  readonly commit: Checksum;
  /** The local ref before the pull. */
  readonly previous: Checksum | null;
  /** 'delta FROM' | 'delta from scratch' | 'objects' | 'up to date' | 'metadata only'. */
  readonly method: string;
  readonly version: string | null;
  readonly signedBy: string | null;
  /** True when the ref moved to an older commit (only with allowDowngrade). */
  readonly downgrade: boolean;
}

export interface PullReport {
  readonly refs: PulledRef[];
  readonly objectsFetched: number;
  /** Objects a killed earlier pull had fetched and staged, verified again and kept. */
  readonly objectsSalvaged: number;
  readonly bytesFetched: number;
  /** --dry-run: what would be fetched. */
  readonly wouldFetch?: { objects: number; bytes: number };
  readonly seconds: number;
}

/** Publish staged objects at least this often while pulling (crash resume granularity). */
const CHECKPOINT_MS = Number(process.env.ARBOR_CKPT_MS ?? 3000);
const CHECKPOINT_OBJECTS = Number(process.env.ARBOR_CKPT_OBJ ?? 4000);

/** The pull of one remote into one repository. */
export async function pullFromRemote(repo: Repo, remote: Remote, options: PullOptions): Promise<PullReport> {
  // A pull makes garbage in proportion to what it fetches (frames, decoded dirtrees, settled
  // promises); left to its defaults V8 grows both generations to hold it, and the pull of a 2 GB
  // tree peaked near 200 MiB with under 40 MiB alive (docs/benchmarks.md, "Transfer").
  favourMemory();
  const source = openRemoteSource(repo, remote, options.concurrency ?? 16);
  try {
    return await new Puller(repo, remote, source, options).run();
  } finally {
    source.close();
  }
}

/**
 * Reads a remote's summary as a pull would: its signature verified when the remote requires one,
 * refused when older than the last one accepted or expired, and its key rotation applied.
 */
export async function fetchRemoteSummary(repo: Repo, remote: Remote): Promise<Summary> {
  const source = openRemoteSource(repo, remote, 2);
  try {
    return acceptSummary(repo, remote, await source.summary()).summary;
  } finally {
    source.close();
  }
}

/** The source for a remote; HTTP goes through an unprivileged fetch helper when this process is root. */
function openRemoteSource(repo: Repo, remote: Remote, concurrency: number): PullSource {
  return openSource(remote.name, remote.url, concurrency, {
    limits: remote.limits,
    maxSummaryBytes: remote.maxSummaryBytes ?? DEFAULT_MAX_SUMMARY_BYTES,
    fetchUser: /^https?:\/\//.test(remote.url) ? fetchUserFor(repo.config) : null,
  });
}

/** The signature checks of a summary whose remote requires signatures (throws unless a trusted key signed); null otherwise. */
function verifySummary(remote: Remote, summary: Buffer, sig: Buffer | null): SignatureCheck[] | null {
  if (!remote.signVerify) return null;
  if (sig === null)
    throw new ArborError(
      'E_SIGNATURE_MISSING',
      `the summary of remote '${remote.name}' is not signed (no summary.sig)`,
      { hint: 'sign it on the server with `arbor summary --update --sign KEY`' },
    );
  const checks = checkSummarySignatures(summary, sig, remote.keys);
  requireTrustedSignature(checks, `the summary of remote '${remote.name}'`);
  return checks;
}

/**
 * Everything a client checks of a summary before believing it: the signature, then (for a
 * configured remote) that it is not older than the newest one accepted, then expiry. An accepted
 * summary advances the record, and a signed one may change the remote's trusted keys.
 */
function acceptSummary(
  repo: Repo,
  remote: Remote,
  fetched: { summary: Buffer; sig: Buffer | null; generated?: boolean },
): { summary: Summary; remote: Remote } {
  const { summary: bytes, sig } = fetched;
  const checks = verifySummary(remote, bytes, sig);
  const what = `summary of remote '${remote.name}'`;
  const summary = decodeSummary(bytes, what);
  // A summary generated from a local repository's refs on the spot has no history to compare with.
  if (fetched.generated) return { summary, remote };
  const trust = readSummaryTrust(summary, what);
  const now = Math.floor(Date.now() / 1000);
  const candidate = { timestamp: summary.timestamp, checksum: hashBytes(bytes), expires: trust.expires };
  if (!isConfiguredRemote(repo, remote.name)) {
    checkFreshness(remote.name, undefined, candidate, now);
    return { summary, remote };
  }
  if (checkFreshness(remote.name, repo.db.getRemoteSummary(remote.name), candidate, now))
    repo.db.recordRemoteSummary(remote.name, candidate, now);
  // Only a summary a trusted key signed may change which keys are trusted.
  const keys = checks ? planTrustedKeys(remote.keys, checks, trust) : null;
  return { summary, remote: keys ? setTrustedKeys(repo, remote.name, keys) : remote };
}

/** Runs async jobs at most `limit` at a time; metadata jobs jump the queue (they reveal more work). */
class Limiter {
  readonly #urgent = new Fifo<() => void>();
  readonly #queued = new Fifo<() => void>();
  #running = 0;
  constructor(readonly limit: number) {}
  async run<T>(urgent: boolean, job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit)
      await new Promise<void>((resolve) => (urgent ? this.#urgent : this.#queued).push(resolve));
    else this.#running++;
    try {
      return await job();
    } finally {
      const next = this.#urgent.take() ?? this.#queued.take();
      if (next) next();
      else this.#running--;
    }
  }
}

class Puller {
  readonly #started = Date.now();
  readonly #limiter: Limiter;
  /** Metadata objects asked for, once each (a pull must not fetch one twice); resolved promises hold nothing. */
  readonly #seen = new Map<string, Promise<void>>();
  /**
   * File objects asked for, once each, and those waiting for a lane: plain data, so a tree of 64k
   * files costs a few MiB rather than 64k suspended calls that every garbage collection must walk
   * (they made the main thread spend a sixth of an object pull in the collector).
   */
  readonly #filesSeen = new Set<Checksum>();
  readonly #fileQueue = new Fifo<{ readonly checksum: Checksum; readonly size: number }>();
  #fileLanes = 0;
  #fileError: { readonly error: unknown } | undefined;
  #filesSettled: (() => void)[] = [];
  #tx: Transaction | undefined;
  #objects = 0;
  #needed = 0;
  #wouldBytes = 0;
  #lastCheckpoint = Date.now();
  #sinceCheckpoint = 0;
  #scanning = false;
  #bytesTotal: number | null = null;
  #spill = 0;
  #pool: StorePool | undefined;
  #salvaged = 0;
  /** Commits whose whole tree this pull fetched: their partial markers go once it is published. */
  readonly #whole = new Set<Checksum>();
  #checkpoint: Promise<void> | undefined;
  #checkpointError: unknown;

  /**
   * The store workers, started with the first file object fetched one by one: each has its own V8
   * heap (tens of MiB), which a pull by static delta or of metadata only never needs.
   */
  #storePool(tx: Transaction): StorePool | undefined {
    if (this.#pool === undefined && storeWorkersAvailable()) this.#pool = new StorePool(tx.stagingContext, 2);
    return this.#pool;
  }

  constructor(
    readonly repo: Repo,
    readonly remote: Remote,
    readonly source: PullSource,
    readonly options: PullOptions,
  ) {
    this.#limiter = new Limiter(options.concurrency ?? 16);
  }

  get #limits(): { maxMetadataBytes: number; maxObjectBytes: number } {
    return objectLimits(this.remote);
  }

  get #trusted(): readonly Buffer[] {
    return this.remote.signVerify ? this.#keys : [];
  }

  /** The remote's trusted keys as the accepted summary left them (it may announce a rotation). */
  #keys: readonly Buffer[] = [];

  async run(): Promise<PullReport> {
    const accepted = acceptSummary(this.repo, this.remote, await this.source.summary());
    this.#keys = accepted.remote.keys;
    const { summary } = accepted;
    const targets = this.options.refs.map((ref) => this.#resolve(summary, ref));
    // Refused before anything is fetched, from the summary's (signed) commit timestamps.
    const downgrades = new Set(
      targets
        .filter(
          (t) =>
            t.writeRef &&
            this.#checkDowngrade(t.ref, t.commit, summary.refs.find((r) => r.name === t.ref)?.timestamp ?? 0),
        )
        .map((t) => t.ref),
    );
    const results: PulledRef[] = [];
    if (!this.options.dryRun) {
      // A killed pull's staged objects that still verify are kept, not fetched again.
      this.#tx = this.repo.beginTransaction({ salvage: true });
      this.#salvaged = this.#tx.salvagedCount;
    }
    try {
      for (const target of targets) {
        const pulled = await this.#pullOne(summary, target.ref, target.commit);
        results.push({ ...pulled, downgrade: downgrades.has(target.ref) && pulled.method !== 'metadata only' });
      }
      if (this.#tx) {
        const updates = results
          .filter((r, i) => targets[i]?.writeRef && r.method !== 'metadata only' && r.previous !== r.commit)
          .map((r) => ({ name: this.#localRef(r.ref), checksum: r.commit, expected: r.previous }));
        // Checked again with the commits' own timestamps, now that they are here and verified.
        for (const u of updates) {
          const ref = u.name.slice(this.options.refPrefix.length);
          if (this.#checkDowngrade(ref, u.checksum, this.#commitTimestamp(u.checksum))) {
            const i = results.findIndex((r) => r.ref === ref);
            results[i] = { ...present(results[i], `the pull result of '${ref}'`), downgrade: true };
          }
        }
        // A commit's tree is complete once this commit() publishes its last objects; only then do
        // the partial markers go and the refs move.
        await this.#settleCheckpoint();
        this.#tx.commit([]);
        for (const commit of this.#whole) this.repo.db.clearPartial(commit);
        if (updates.length > 0) this.repo.db.updateRefs(updates, Math.floor(Date.now() / 1000));
        this.#tx = undefined;
      }
    } finally {
      // Lanes still holding a file finish it, but take no more once the pull has ended.
      this.#fileError ??= { error: new Error('the pull ended') };
      // Abort publishes nothing more; what earlier checkpoints published stays for the next pull.
      await this.#checkpoint?.catch(() => undefined);
      await this.#pool?.close();
      this.#tx?.abort();
    }
    return {
      refs: results,
      objectsFetched: this.#objects,
      objectsSalvaged: this.#salvaged,
      bytesFetched: this.source.bytesFetched,
      ...(this.options.dryRun ? { wouldFetch: { objects: this.#needed, bytes: this.#wouldBytes } } : {}),
      seconds: (Date.now() - this.#started) / 1000,
    };
  }

  #localRef(ref: string): string {
    return `${this.options.refPrefix}${ref}`;
  }

  #commitTimestamp(checksum: Checksum): number {
    const bytes = this.#tx
      ? this.#tx.readStagedOrStored(checksum, 'commit')
      : this.repo.readMetadataBytes(checksum, 'commit');
    return decodeCommit(bytes, `commit ${checksum}`).timestamp;
  }

  /** True when moving `ref` to `target` (timestamp `timestamp`) goes back in time; throws E_PULL_DOWNGRADE unless allowed. */
  #checkDowngrade(ref: string, target: Checksum, timestamp: number): boolean {
    const localRef = this.#localRef(ref);
    const current = this.repo.db.getRef(localRef);
    if (current === undefined || current === target || !this.repo.hasObject(current, 'commit')) return false;
    const currentTimestamp = this.repo.readCommit(current).timestamp;
    if (timestamp >= currentTimestamp) return false;
    if (this.options.allowDowngrade) return true;
    const when = (s: number): string => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
    throw new ArborError(
      'E_PULL_DOWNGRADE',
      `remote '${this.remote.name}' offers '${ref}' at commit ${target} (${when(timestamp)}), older than commit ${current} (${when(currentTimestamp)}) that '${localRef}' points at`,
      {
        hint: 'the server rolled back, or someone serves an old commit: the ref was not moved. If the rollback is intended, pull again with --allow-downgrade',
      },
    );
  }

  #resolve(summary: Summary, ref: string): { ref: string; commit: Checksum; writeRef: boolean } {
    const entry = summary.refs.find((r) => r.name === ref);
    if (entry) return { ref, commit: entry.checksum, writeRef: true };
    // A commit id is fetched without making a ref for it (as ostree does).
    if (isChecksum(ref)) return { ref, commit: ref, writeRef: false };
    throw new ArborError('E_REF_NOT_FOUND', `remote '${this.remote.name}' has no ref '${ref}'`, {
      hint:
        summary.refs.length > 0
          ? `it has: ${summary.refs
              .map((r) => r.name)
              .slice(0, 10)
              .join(', ')}`
          : 'its summary lists no refs',
    });
  }

  /** True when the commit and its whole tree are here (a pull finished it, or it was made here). */
  #complete(commit: Checksum): boolean {
    return this.repo.hasObject(commit, 'commit') && !this.repo.db.isPartial(commit);
  }

  async #pullOne(summary: Summary, ref: string, target: Checksum): Promise<Omit<PulledRef, 'downgrade'>> {
    const localRef = this.#localRef(ref);
    const previous = summary.refs.some((r) => r.name === ref) ? (this.repo.db.getRef(localRef) ?? null) : null;
    const depth = this.options.depth ?? 0;
    if (this.#complete(target) && depth === 0) {
      const commit = this.repo.readCommit(target);
      return {
        ref,
        commit: target,
        previous,
        method: 'up to date',
        version: versionOf(commit),
        signedBy: this.#checkLocalSignature(target),
      };
    }
    if (this.options.commitMetadataOnly) {
      const { commit, signedBy } = await this.#fetchCommit(target, true);
      return { ref, commit: target, previous, method: 'metadata only', version: versionOf(commit), signedBy };
    }
    const delta =
      this.options.disableStaticDeltas || depth !== 0 ? undefined : this.#chooseDelta(summary, target, previous);
    if (delta) {
      const signedBy = await this.#pullDelta(delta);
      this.#whole.add(target);
      const commit = this.#tx ? decodeCommit(this.#tx.readStagedOrStored(target, 'commit'), `commit ${target}`) : null;
      return {
        ref,
        commit: target,
        previous,
        method: delta.from ? `delta from ${delta.from.slice(0, 12)}` : 'delta from scratch',
        version: commit ? versionOf(commit) : null,
        signedBy,
      };
    }
    let signedBy: string | null = null;
    let version: string | null = null;
    let next: Checksum | null = target;
    for (let level = 0; next !== null && (depth < 0 || level <= depth); level++) {
      if (level > 0 && this.#complete(next)) break;
      let got: { commit: Commit; signedBy: string | null };
      try {
        got = await this.#fetchCommit(next, false);
      } catch (error) {
        // A server may keep only recent history: the chain of parents ends where its objects do.
        if (level > 0 && error instanceof RemoteMissingError) break;
        throw error;
      }
      if (level === 0) ({ signedBy } = got);
      if (level === 0) version = versionOf(got.commit);
      // Taken for walks only: a delta's checks stat objects instead, sparing the listing's tens of MiB.
      this.#tx?.snapshotPresence();
      this.#scanning = true;
      await this.#walkDir(got.commit.rootTree, got.commit.rootMeta);
      await this.#filesDone();
      this.#scanning = false;
      this.#whole.add(next);
      next = got.commit.parent;
    }
    return { ref, commit: target, previous, method: 'objects', version, signedBy };
  }

  /** The delta to use: from the commit the local ref points at, else any complete local commit, else from scratch. */
  #chooseDelta(summary: Summary, target: Checksum, previous: Checksum | null): SummaryDelta | undefined {
    const candidates = summary.deltas.filter((d) => d.to === target);
    if (previous) {
      const fromPrevious = candidates.find((d) => d.from === previous && this.#complete(previous));
      if (fromPrevious) return fromPrevious;
    }
    const fromAny = candidates.find((d) => d.from !== null && this.#complete(d.from));
    if (fromAny) return fromAny;
    const anyCommitHere = previous !== null && this.repo.hasObject(previous, 'commit');
    return anyCommitHere ? undefined : candidates.find((d) => d.from === null);
  }

  #checkLocalSignature(commit: Checksum): string | null {
    if (!this.remote.signVerify) return null;
    const meta = this.repo.readCommitMeta(commit);
    return requireTrustedSignature(checkCommitSignatures(meta, commit, this.#trusted), `commit ${commit}`);
  }

  /** Fetches (or reads) a commit object, checks its signature when required, and stages both. */
  async #fetchCommit(checksum: Checksum, metadataOnly: boolean): Promise<{ commit: Commit; signedBy: string | null }> {
    let bytes: Buffer;
    if (this.repo.hasObject(checksum, 'commit')) bytes = this.repo.readMetadataBytes(checksum, 'commit');
    else {
      bytes = await this.#limiter.run(true, () =>
        this.source.metadata(checksum, 'commit', this.#limits.maxMetadataBytes),
      );
      this.#count();
    }
    const where = this.source.urlOf(checksum, 'commit');
    let commit: Commit;
    try {
      commit = decodeCommit(bytes, `commit ${checksum}`);
    } catch (error) {
      throw corruptObject(`commit ${checksum}`, where, `is malformed: ${(error as Error).message}`);
    }
    let signedBy: string | null = null;
    const metaBytes = await this.source.commitMeta(checksum);
    const metaWhere = this.source.urlOf(checksum, 'commitmeta');
    if (this.remote.signVerify) {
      const meta = metaBytes ? decodeMeta(metaBytes, checksum, metaWhere) : new Map();
      signedBy = requireTrustedSignature(
        checkCommitSignatures(meta, checksum, this.#trusted),
        `commit ${checksum} of remote '${this.remote.name}'`,
      );
    }
    if (this.#tx) {
      if (!metadataOnly) this.repo.db.markPartial(checksum);
      else if (!this.repo.hasObject(checksum, 'commit')) this.repo.db.markPartial(checksum);
      storeMetadata(this.#tx, checksum, 'commit', bytes, where);
      if (metaBytes) {
        // Publish the commit first so its detached metadata has something to sit beside.
        this.#tx.checkpoint();
        this.repo.writeCommitMeta(checksum, decodeMeta(metaBytes, checksum, metaWhere));
      }
    }
    return { commit, signedBy };
  }

  /** Ensures a metadata object is here (fetching and staging it if not) and returns its bytes. */
  /** Ensures a metadata object is here, fetching and staging it if not; returns its bytes. */
  async #metadata(checksum: Checksum, kind: 'dirtree' | 'dirmeta'): Promise<Buffer> {
    if (this.#tx ? this.#tx.has(checksum, kind) : this.repo.hasObject(checksum, kind))
      return this.#tx ? this.#tx.readStagedOrStored(checksum, kind) : this.repo.readMetadataBytes(checksum, kind);
    this.#needed++;
    const bytes = await this.#limiter.run(true, () =>
      this.source.metadata(checksum, kind, this.#limits.maxMetadataBytes),
    );
    if (this.#tx) storeMetadata(this.#tx, checksum, kind, bytes, this.source.urlOf(checksum, kind));
    else storeCheck(checksum, kind, bytes, this.source.urlOf(checksum, kind));
    this.#wouldBytes += bytes.length;
    this.#count();
    return bytes;
  }

  /** Runs `job` for the first caller of `key` only; later callers wait for the same run. */
  #once(key: string, job: () => Promise<void>): Promise<void> {
    let pending = this.#seen.get(key);
    if (!pending) {
      pending = job();
      this.#seen.set(key, pending);
    }
    return pending;
  }

  /** Asks for a file object whose dirtree says it holds `size` content bytes: queued, fetched by a lane. */
  #queueFile(checksum: Checksum, size: number): void {
    if (this.#filesSeen.has(checksum)) return;
    this.#filesSeen.add(checksum);
    this.#fileQueue.push({ checksum, size });
    // As many lanes as the limiter has slots: each holds one file at a time, so the suspended
    // calls stay bounded however long the queue grows.
    if (this.#fileLanes < this.#limiter.limit) {
      this.#fileLanes++;
      void this.#fileLane();
    }
  }

  async #fileLane(): Promise<void> {
    try {
      for (let job = this.#fileQueue.take(); job !== undefined && !this.#fileError; job = this.#fileQueue.take())
        await this.#file(job.checksum, job.size);
    } catch (error) {
      this.#fileError ??= { error };
    } finally {
      this.#fileLanes--;
      if (this.#fileLanes === 0) for (const settled of this.#filesSettled.splice(0)) settled();
    }
  }

  /** Waits until every queued file object is stored; rejects with the first failure. */
  async #filesDone(): Promise<void> {
    if (this.#fileLanes > 0) await new Promise<void>((resolve) => this.#filesSettled.push(resolve));
    if (this.#fileError) throw this.#fileError.error;
  }

  /** Fetches, verifies and stages a file object whose dirtree says it holds `size` content bytes. */
  async #file(checksum: Checksum, size: number): Promise<void> {
    if (this.#tx ? this.#tx.has(checksum, 'file') : this.repo.hasObject(checksum, 'file')) return;
    this.#needed++;
    if (!this.#tx) {
      // Not `+= await`: that reads the sum before waiting and loses concurrent additions.
      const size = await this.#limiter.run(false, () => this.source.fileSize(checksum));
      this.#wouldBytes += size;
      return;
    }
    const tx = this.#tx;
    const where = this.source.urlOf(checksum, 'file');
    // An unsigned tree's sizes are only as good as its transport: those get a ceiling of their own.
    if (!this.remote.signVerify && size > this.#limits.maxObjectBytes) {
      throw new ArborError(
        'E_OBJECT_TOO_LARGE',
        `file ${checksum} of remote '${this.remote.name}' is ${size} bytes, more than its max-object-size of ${this.#limits.maxObjectBytes}`,
        {
          hint: `if the remote really holds such files, raise it: set max-object-size in the [remote "${this.remote.name}"] section of the repository config`,
        },
      );
    }
    // The slot is held until the store workers have the object: fetching faster than they
    // store would otherwise queue every fetched object in memory (a pull of 64k objects from a
    // fast server grew to 985 MiB that way).
    const { fetched, stored } = await this.#limiter.run(false, async () => {
      const got = await this.source.file(
        checksum,
        () => join(tx.staging, `fetch-${process.pid}-${this.#spill++}`),
        size,
      );
      const pool = this.#storePool(tx);
      const pooled = pool && ('compressed' in got || 'compressedPath' in got || 'headerBytes' in got);
      return { fetched: got, stored: pooled ? await pool.store(checksum, got, size) : null };
    });
    if (stored) {
      if (stored.problem !== undefined) throw corruptObject(`file ${checksum}`, where, stored.problem);
      if (stored.error !== undefined) throw storeError(stored);
      tx.adoptStaged(checksum, stored.devino);
    } else {
      storeFetchedFile(tx, checksum, fetched, size, where);
    }
    this.#count();
  }

  /**
   * Ensures a directory's dirmeta, then walks its dirtree once per pull: an identical subtree
   * elsewhere holds the same objects (its dirmeta, owner and mode, may differ, so that is separate).
   */
  async #walkDir(tree: Checksum, meta: Checksum): Promise<void> {
    await Promise.all([
      this.#once(`${meta}.dirmeta`, async () => {
        await this.#metadata(meta, 'dirmeta');
      }),
      this.#once(`${tree}.dirtree`, async () => {
        const dir = decodeDirTree(await this.#metadata(tree, 'dirtree'), `dirtree ${tree}`);
        for (const f of dir.files) this.#queueFile(f.checksum, f.size);
        // A failed file ends the walk too, rather than after every dirtree has been fetched.
        if (this.#fileError) throw this.#fileError.error;
        await Promise.all(dir.dirs.map((d) => this.#walkDir(d.tree, d.meta)));
      }),
    ]);
  }

  async #pullDelta(delta: SummaryDelta): Promise<string | null> {
    if (this.options.dryRun) {
      this.#needed += 1;
      this.#wouldBytes += delta.size;
      return null;
    }
    this.#bytesTotal = delta.size;
    const tx = present(this.#tx, 'the pull transaction');
    const dir = delta.from ? `deltas/${delta.from}-${delta.to}` : `deltas/${delta.to}`;
    const fetcher = this.source.fetcher;
    this.repo.db.markPartial(delta.to);
    const commitMeta = await this.source.commitMeta(delta.to);
    const result = await applyDelta(tx, {
      commitMeta,
      expectedSuperblock: delta.superblock,
      expected: { from: delta.from, to: delta.to },
      where: fetcher.urlOf(`${dir}/superblock`),
      // The summary's size covers the superblock and its parts; the superblock sizes each part.
      superblock: async () => fetchExisting(fetcher, `${dir}/superblock`, { maxBytes: delta.size }),
      part: async (index, maxBytes, into) => fetchExisting(fetcher, `${dir}/${index}`, { maxBytes, into }),
      partWhere: (index) => fetcher.urlOf(`${dir}/${index}`),
      trustedKeys: this.remote.signVerify ? this.#trusted : null,
      what: `commit ${delta.to} of remote '${this.remote.name}'`,
      onObject: () => this.#count(),
    });
    return result.signedBy;
  }

  async #settleCheckpoint(): Promise<void> {
    await this.#checkpoint;
    if (this.#checkpointError !== undefined) throw this.#checkpointError;
  }

  #count(): void {
    this.#objects++;
    this.#sinceCheckpoint++;
    const now = Date.now();
    if (this.#checkpointError !== undefined) throw this.#checkpointError;
    if (
      this.#tx &&
      !this.#checkpoint &&
      (this.#sinceCheckpoint >= CHECKPOINT_OBJECTS || now - this.#lastCheckpoint >= CHECKPOINT_MS)
    ) {
      this.#sinceCheckpoint = 0;
      this.#checkpoint = this.#tx.checkpointAsync().then(
        () => {
          this.#checkpoint = undefined;
          this.#lastCheckpoint = Date.now();
        },
        (error: unknown) => {
          this.#checkpoint = undefined;
          this.#checkpointError = error;
        },
      );
    }
    this.options.onProgress?.({
      objects: this.#objects,
      objectsNeeded: this.#needed,
      bytes: this.source.bytesFetched,
      bytesTotal: this.#bytesTotal,
      scanning: this.#scanning,
    });
  }
}

/** For dry runs: a fetched dirtree is still checked before its entries are believed. */
function storeCheck(checksum: Checksum, kind: string, bytes: Buffer, where: string): void {
  const actual = hashBytes(bytes);
  if (actual !== checksum) throw corruptObject(`${kind} ${checksum}`, where, `hashes to ${actual}`);
}

/** Detached metadata from a server: undecodable bytes are the server's fault, named with their URL. */
function decodeMeta(bytes: Buffer, commit: Checksum, where: string): ReturnType<typeof decodeCommitMeta> {
  try {
    return decodeCommitMeta(bytes, `commitmeta of ${commit}`);
  } catch (error) {
    throw corruptObject(`commitmeta of ${commit}`, where, `is malformed: ${(error as Error).message}`);
  }
}

function versionOf(commit: Commit): string | null {
  const v = commit.metadata.get('version');
  return v?.type === 'string' ? v.value : null;
}
