// One remote yum repository and its on-disk cache: repomd.xml fetched from the first mirror that
// answers (checked against the metalink's digests and, with repo_gpgcheck, repomd.xml.asc), then
// the metadata files it lists, each verified against its checksum and size before it is kept. The
// cache directory is laid out like the repository, so the local reader parses it unchanged.
// Packages are fetched into a cache shared by all repositories, named by their checksum.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArborError, CorruptionError, errnoCode, ioError } from '../../common/errors.js';
import { writeFileAtomic } from '../../common/fs-atomic.js';
import { DEFAULT_TRANSFER_LIMITS, type Fetcher, type TransferLimits, createFetcher } from '../../repo/index.js';
import { OpenPgpKeyring, parseKeyring } from '../openpgp.js';
import type { Digest } from '../repodata/metadata-file.js';
import { assertRepomdSigned } from '../repodata/repomd-signature.js';
import { type Repomd, type RepomdData, readRepomd } from '../repodata/repomd.js';
import { readRpmSignedParts } from '../rpm/read.js';
import { assertRpmSignatureOk, verifyRpmSignature } from '../rpm/signature.js';
import { type MirrorSet, parseMetalink, parseMirrorlist } from './mirrors.js';
import type { YumRepoConfig } from './repo-file.js';

/** Bounds on what a server may send for the small files (whole in memory). */
const MAX_REPOMD_BYTES = 16 * 1024 * 1024;
const MAX_MIRRORLIST_BYTES = 4 * 1024 * 1024;
const MAX_SIGNATURE_BYTES = 64 * 1024;
const MAX_KEY_BYTES = 1024 * 1024;
/** For metadata files and packages whose size the metadata does not state. */
const MAX_UNSIZED_BYTES = 8 * 1024 * 1024 * 1024;

/** The state file next to the cached metadata: when it was fetched, and from where. */
const STATE_FILE = 'arbor-state.json';

/**
 * The transfer limits of a repository: dnf's minrate over timeout is curl's low-speed limit, and
 * the pull's total deadline per request still holds, so a slow drip ends either way.
 */
function transferLimits(config: YumRepoConfig): TransferLimits {
  return {
    ...DEFAULT_TRANSFER_LIMITS,
    lowSpeedBytesPerSecond: config.minrateBytesPerSecond,
    lowSpeedTimeMs: config.timeoutSeconds * 1000,
  };
}

/** HTTP connections shared by every repository of one run, one fetcher per server base URL and limits. */
export class FetcherPool {
  readonly #fetchers = new Map<string, Fetcher>();
  /** Requests made so far (for reports and tests). */
  requests = 0;
  /**
   * `fileRoot` is the directory `file://` URLs are read below: `/`, or the deployment a host's
   * `.repo` files belong to when it is not the running root (`--sysroot`).
   */
  constructor(
    readonly concurrency: number,
    readonly fileRoot = '/',
  ) {}
  /** The fetcher for `url`'s server under the repository's limits, and the path to ask it for. */
  forUrl(url: string, config: YumRepoConfig): { fetcher: Fetcher; path: string } {
    const u = new URL(url);
    const base = u.protocol === 'file:' ? 'file:///' : `${u.origin}/`;
    const path =
      u.protocol === 'file:'
        ? join(this.fileRoot, decodeURIComponent(u.pathname)).slice(1)
        : `${u.pathname.slice(1)}${u.search}`;
    const limits = transferLimits(config);
    const key = JSON.stringify([base, limits]);
    let fetcher = this.#fetchers.get(key);
    if (fetcher === undefined) {
      fetcher = createFetcher(base, this.concurrency, limits);
      this.#fetchers.set(key, fetcher);
    }
    this.requests++;
    return { fetcher, path };
  }
  close(): void {
    for (const f of this.#fetchers.values()) f.close();
    this.#fetchers.clear();
  }
}

/** What one refresh did. */
export interface RefreshReport {
  readonly id: string;
  /** false when the cached metadata was still within metadata_expire. */
  readonly fetched: boolean;
  readonly revision: string | null;
  /** The mirror repomd.xml came from this time (null when nothing was fetched). */
  readonly mirror: string | null;
  /** Why it was left out (skip_if_unavailable=1 and it could not be refreshed); absent when it was not. */
  readonly skipped?: { readonly code: string; readonly message: string };
}

interface CacheState {
  readonly fetchedAtMs: number;
  readonly mirror: string;
}

/** Hex digest and length of a file, read once. */
async function digestFile(path: string, algorithm: string): Promise<{ hex: string; sizeBytes: number }> {
  const hash = createHash(algorithm);
  let sizeBytes = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      sizeBytes += (chunk as Buffer).length;
    }
  } catch (error) {
    throw ioError('read', path, error);
  }
  return { hex: hash.digest('hex'), sizeBytes };
}

/** Why one mirror could not give one file. */
interface MirrorFailure {
  readonly mirror: string;
  readonly error: ArborError;
}

const describe = (error: unknown): ArborError =>
  error instanceof ArborError
    ? error
    : new ArborError('E_FETCH_FAILED', error instanceof Error ? error.message : String(error));

/**
 * The URL of `href` on `mirror`, refused (E_REPODATA_INVALID) unless it stays below the mirror:
 * metadata naming `http://elsewhere/…` or `file:///etc/…` as a location must not make Arbor fetch
 * or copy what the repository does not serve.
 */
function urlUnder(mirror: string, href: string, repo: string): string {
  const url = new URL(href, mirror).href;
  if (!url.startsWith(mirror))
    throw new CorruptionError(
      'E_REPODATA_INVALID',
      `repository '${repo}': location '${href.slice(0, 200)}' leads outside the repository (${mirror})`,
      { hint: 'the metadata is broken or hostile: do not use this repository' },
    );
  return url;
}

/**
 * A name for the cache directory: the id made filename-safe, and a digest of where it is served
 * from and how its metadata is trusted (turning repo_gpgcheck on must not reuse unchecked metadata).
 */
function cacheName(config: YumRepoConfig): string {
  const where = JSON.stringify([
    config.baseurls,
    config.metalink,
    config.mirrorlist,
    config.repoGpgcheck,
    config.gpgkeys,
  ]);
  const safe = config.id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  return `${safe}-${createHash('sha256').update(where).digest('hex').slice(0, 16)}`;
}

/** A remote repository: its metadata cache under `cacheRoot/repos/`, its packages under `cacheRoot/packages/`. */
export class RemoteRepo {
  /** The cache directory, laid out like the repository (`repodata/repomd.xml`, …). */
  readonly dir: string;
  #mirrors: Promise<MirrorSet> | undefined;
  /** The mirror that answered last: tried first for the next file. */
  #preferred: string | undefined;
  #keyring: Promise<OpenPgpKeyring> | undefined;

  constructor(
    readonly config: YumRepoConfig,
    readonly cacheRoot: string,
    readonly pool: FetcherPool,
    readonly nowMs: () => number = Date.now,
  ) {
    this.dir = join(cacheRoot, 'repos', cacheName(config));
  }

  /**
   * Makes the cached repomd.xml and primary metadata current: nothing is requested while the last
   * fetch is younger than metadata_expire (unless `force`); else repomd.xml is fetched, and the
   * files it lists that changed. Returns what was done.
   */
  async refresh(force = false): Promise<RefreshReport> {
    const state = await this.#readState();
    if (!force && state !== null && this.nowMs() - state.fetchedAtMs < this.config.metadataExpireSeconds * 1000) {
      const repomd = await readRepomd(this.dir).catch((error: unknown) => {
        // A damaged cached repomd.xml is fetched again, like any other damaged cache file.
        if (error instanceof CorruptionError) return null;
        throw error;
      });
      if (repomd !== null) {
        // A damaged primary, or one an interrupted refresh left out, is fetched again: just that.
        await this.#ensureFile(repomd.primary);
        return { id: this.config.id, fetched: false, revision: repomd.revision, mirror: null };
      }
    }
    const { bytes, mirror, signature } = await this.#fetchRepomd();
    const staging = join(this.dir, `.staging-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(join(staging, 'repodata'), { recursive: true, mode: 0o755 });
      writeFileAtomic(join(staging, 'repodata', 'repomd.xml'), bytes);
      const repomd = await readRepomd(staging);
      if (this.config.repoGpgcheck) await assertRepomdSigned(this.config.id, bytes, signature, await this.keyring());
      // filelists.xml is fetched only once a resolve needed it; after that it is kept current.
      // A missing or damaged old cache simply has no filelists worth keeping.
      const previous = await readRepomd(this.dir).catch(() => null);
      const hadFilelists = previous !== null && (await this.#hasFile(previous, 'filelists'));
      await this.#ensureFile(repomd.primary);
      if (hadFilelists && repomd.filelists !== null) await this.#ensureFile(repomd.filelists);
      await mkdir(join(this.dir, 'repodata'), { recursive: true });
      // repomd.xml last: until it is replaced, the cache still reads as the old, complete metadata.
      writeFileAtomic(join(this.dir, 'repodata', 'repomd.xml'), bytes);
      if (signature !== undefined) writeFileAtomic(join(this.dir, 'repodata', 'repomd.xml.asc'), signature);
      await this.#dropUnlisted(repomd);
      writeFileAtomic(
        join(this.dir, STATE_FILE),
        `${JSON.stringify({ fetchedAtMs: this.nowMs(), mirror } satisfies CacheState)}\n`,
      );
      return { id: this.config.id, fetched: true, revision: repomd.revision, mirror };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Fetches filelists.xml into the cache when it is not there yet (the resolver asks only when a path dependency needs it). */
  async ensureFilelists(): Promise<void> {
    const repomd = await readRepomd(this.dir);
    if (repomd.filelists !== null) await this.#ensureFile(repomd.filelists);
  }

  /** The keys of gpgkey, fetched once. */
  keyring(): Promise<OpenPgpKeyring> {
    this.#keyring ??= (async () => {
      const keys = [];
      for (const url of this.config.gpgkeys) {
        const { fetcher, path } = this.pool.forUrl(url, this.config);
        const bytes = await fetcher.get(path, { maxBytes: MAX_KEY_BYTES });
        if (bytes === null)
          throw new ArborError('E_FETCH_FAILED', `gpgkey '${url}' of repository '${this.config.id}' is missing`);
        keys.push(...(await parseKeyring(bytes, url)));
      }
      return new OpenPgpKeyring(keys);
    })();
    return this.#keyring;
  }

  /**
   * The local path of a package of this repository: from the package cache when a file with its
   * checksum is there, else fetched from the first mirror that has it, checked against the
   * checksum and size primary.xml gives, and, with gpgcheck, against the repository's keys
   * (E_RPM_SIGNATURE names the package and the key ID).
   */
  async fetchPackage(pkg: {
    readonly nevra: string;
    readonly href: string;
    readonly base: string | null;
    readonly checksum: Digest | null;
    readonly sizeBytes: number;
  }): Promise<string> {
    const { checksum } = pkg;
    if (checksum === null)
      throw new CorruptionError(
        'E_REPODATA_INVALID',
        `repository '${this.config.id}' gives no checksum for ${pkg.nevra}: a remote package cannot be verified without one`,
      );
    const packages = join(this.cacheRoot, 'packages');
    const dest = join(packages, `${checksum.type}-${checksum.value}.rpm`);
    const cached = await stat(dest).catch(() => null);
    let verified = false;
    if (cached !== null) {
      const { hex } = await digestFile(dest, checksum.type);
      verified = hex === checksum.value;
      if (!verified) await rm(dest, { force: true }); // damaged on disk: fetch it again
    }
    if (!verified) {
      await mkdir(packages, { recursive: true, mode: 0o755 });
      const tmp = join(packages, `.tmp-${randomBytes(6).toString('hex')}.rpm`);
      try {
        const fetchFrom = async (fetcher: Fetcher, path: string, url: string): Promise<void> => {
          await fetcher.download(path, tmp, { maxBytes: pkg.sizeBytes > 0 ? pkg.sizeBytes : MAX_UNSIZED_BYTES });
          await this.#verify(tmp, url, checksum, pkg.sizeBytes > 0 ? pkg.sizeBytes : null, 'E_RPM_CHECKSUM');
        };
        if (pkg.base !== null && /^https?:\/\//.test(pkg.base)) {
          // xml:base: the metadata places the package on a given server, as createrepo_c --baseurl
          // writes. Only http(s): a remote repository must not name files of this machine.
          const url = urlUnder(pkg.base.endsWith('/') ? pkg.base : `${pkg.base}/`, pkg.href, this.config.id);
          const { fetcher, path } = this.pool.forUrl(url, this.config);
          await fetchFrom(fetcher, path, url);
        } else {
          await this.#fromMirrors(pkg.href, async (mirror) => {
            const url = urlUnder(mirror, pkg.href, this.config.id);
            const { fetcher, path } = this.pool.forUrl(url, this.config);
            await fetchFrom(fetcher, path, url);
          });
        }
        await rename(tmp, dest);
      } finally {
        await rm(tmp, { force: true });
      }
    }
    if (this.config.gpgcheck) {
      const report = await verifyRpmSignature(await readRpmSignedParts(dest), await this.keyring());
      try {
        assertRpmSignatureOk({ ...report, path: pkg.nevra });
      } catch (error) {
        const e = describe(error);
        throw new ArborError(e.code as `E_${string}`, `repository '${this.config.id}': ${e.message}`, {
          ...(e.hint !== undefined ? { hint: e.hint } : {}),
          cause: error,
        });
      }
    }
    return dest;
  }

  async #readState(): Promise<CacheState | null> {
    let text: string;
    try {
      text = await readFile(join(this.dir, STATE_FILE), 'utf8');
      await stat(join(this.dir, 'repodata', 'repomd.xml'));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return null;
      throw ioError('read', join(this.dir, STATE_FILE), error);
    }
    try {
      const state = JSON.parse(text) as CacheState;
      return Number.isFinite(state.fetchedAtMs) ? state : null;
    } catch {
      return null; // a damaged state file only means the metadata is fetched again
    }
  }

  /** Every mirror to try, baseurls first, then the metalink's or mirrorlist's (fetched once). */
  #mirrorSet(): Promise<MirrorSet> {
    this.#mirrors ??= (async () => {
      const { baseurls, metalink, mirrorlist } = this.config;
      const mirrors = baseurls.map((u) => (u.endsWith('/') ? u : `${u}/`));
      const list = metalink ?? mirrorlist;
      if (list === null) return { mirrors, repomdDigests: [] };
      let listed: MirrorSet;
      try {
        const { fetcher, path } = this.pool.forUrl(list, this.config);
        const bytes = await fetcher.get(path, { maxBytes: MAX_MIRRORLIST_BYTES });
        if (bytes === null) throw new ArborError('E_REMOTE_MISSING', `${list} is missing (HTTP 404)`);
        const text = bytes.toString('utf8');
        listed = metalink !== null ? await parseMetalink(text) : await parseMirrorlist(text);
      } catch (error) {
        // With baseurls to fall back on, a broken mirror list is one failed source among several.
        if (mirrors.length > 0) return { mirrors, repomdDigests: [] };
        throw new ArborError(
          'E_YUM_REPO_UNREACHABLE',
          `repository '${this.config.id}': ${metalink !== null ? 'metalink' : 'mirrorlist'} '${list}' failed: ${describe(error).message}`,
          { hint: 'check the URL and the network, or add a baseurl', cause: error },
        );
      }
      // A list served over the network names network mirrors only, never files of this machine.
      const allowed = listed.mirrors.filter((m) => list.startsWith('file:') || /^https?:\/\//.test(m));
      return {
        mirrors: [...mirrors, ...allowed.filter((m) => !mirrors.includes(m))],
        repomdDigests: listed.repomdDigests,
      };
    })();
    return this.#mirrors;
  }

  /**
   * Runs `attempt` against each mirror in turn (the one that answered last first) until one
   * succeeds. When all fail: the corruption every mirror reported alike (a checksum mismatch,
   * exit 3), else E_YUM_REPO_UNREACHABLE listing each mirror's failure.
   */
  async #fromMirrors<T>(what: string, attempt: (mirror: string) => Promise<T>): Promise<T> {
    const { mirrors } = await this.#mirrorSet();
    const order = this.#preferred ? [this.#preferred, ...mirrors.filter((m) => m !== this.#preferred)] : mirrors;
    const failures: MirrorFailure[] = [];
    for (const mirror of order) {
      try {
        const result = await attempt(mirror);
        this.#preferred = mirror;
        return result;
      } catch (error) {
        // Only a file's own errors fail over; our disk or a signature refusal ends the run.
        const e = describe(error);
        if (['E_IO', 'E_NO_SPACE', 'E_REPODATA_SIGNATURE', 'E_RPM_SIGNATURE'].includes(e.code)) throw error;
        failures.push({ mirror, error: e });
      }
    }
    if (order.length === 0)
      throw new ArborError('E_YUM_REPO_UNREACHABLE', `repository '${this.config.id}' has no usable mirror to ask`, {
        hint: 'its metalink or mirrorlist names no http(s) mirror: add a baseurl',
      });
    const first = failures[0]?.error;
    if (first instanceof CorruptionError && failures.every((f) => f.error.code === first.code)) throw first;
    throw new ArborError(
      'E_YUM_REPO_UNREACHABLE',
      `repository '${this.config.id}': no mirror could give ${what}: ${failures.map((f) => `${f.mirror}: ${f.error.message}`).join('; ')}`,
      { hint: 'check the repository URLs (baseurl, metalink, mirrorlist) and the network' },
    );
  }

  /** repomd.xml (and, with repo_gpgcheck, repomd.xml.asc) from the first mirror whose copy matches the metalink. */
  async #fetchRepomd(): Promise<{ bytes: Buffer; mirror: string; signature: Buffer | undefined }> {
    const { repomdDigests } = await this.#mirrorSet();
    return this.#fromMirrors('repodata/repomd.xml', async (mirror) => {
      const url = new URL('repodata/repomd.xml', mirror).href;
      const { fetcher, path } = this.pool.forUrl(url, this.config);
      const bytes = await fetcher.get(path, { maxBytes: MAX_REPOMD_BYTES });
      if (bytes === null) throw new ArborError('E_REMOTE_MISSING', `${url} is missing`);
      if (repomdDigests.length > 0) {
        const match = repomdDigests.some((d) => createHash(d.type).update(bytes).digest('hex') === d.value);
        // A mirror not yet synced serves an older repomd.xml than the metalink vouches for.
        if (!match)
          throw new CorruptionError(
            'E_REPODATA_CHECKSUM',
            `${url} does not match the metalink's digests (a stale mirror?)`,
          );
      }
      let signature: Buffer | undefined;
      if (this.config.repoGpgcheck) {
        const asc = this.pool.forUrl(`${url}.asc`, this.config);
        signature =
          (await asc.fetcher.get(asc.path, { maxBytes: MAX_SIGNATURE_BYTES, allowMissing: true })) ?? undefined;
      }
      return { bytes, mirror, signature };
    });
  }

  async #hasFile(repomd: Repomd, type: string): Promise<boolean> {
    const data = repomd.data.get(type);
    return data !== undefined && (await stat(join(this.dir, data.location.href)).catch(() => null)) !== null;
  }

  /** Makes one metadata file present in the cache, verified, fetching it when missing or different. */
  async #ensureFile(data: RepomdData): Promise<void> {
    const dest = join(this.dir, data.location.href);
    const existing = await stat(dest).catch(() => null);
    if (existing !== null) {
      const { hex, sizeBytes } = await digestFile(dest, data.checksum.type);
      if (hex === data.checksum.value && (data.sizeBytes === null || data.sizeBytes === sizeBytes)) return;
    }
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await this.#fromMirrors(data.location.href, async (mirror) => {
        const url = urlUnder(mirror, data.location.href, this.config.id);
        const { fetcher, path } = this.pool.forUrl(url, this.config);
        await fetcher.download(path, tmp, { maxBytes: data.sizeBytes ?? MAX_UNSIZED_BYTES });
        await this.#verify(tmp, url, data.checksum, data.sizeBytes, 'E_REPODATA_CHECKSUM');
      });
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Refuses a fetched file whose size or checksum is not what the metadata says. */
  async #verify(
    path: string,
    url: string,
    expected: Digest,
    sizeBytes: number | null,
    code: 'E_REPODATA_CHECKSUM' | 'E_RPM_CHECKSUM',
  ): Promise<void> {
    const actual = await digestFile(path, expected.type);
    const problem =
      sizeBytes !== null && actual.sizeBytes !== sizeBytes
        ? `is ${actual.sizeBytes} bytes, the metadata says ${sizeBytes}`
        : actual.hex !== expected.value
          ? `has ${expected.type} ${actual.hex}, the metadata says ${expected.value}`
          : undefined;
    if (problem !== undefined)
      throw new CorruptionError(code, `${url} ${problem}`, {
        hint: 'the mirror is damaged or being updated: try again later, or use another mirror',
      });
  }

  /** Deletes cached metadata files the current repomd.xml does not list. */
  async #dropUnlisted(repomd: Repomd): Promise<void> {
    const keep = new Set([...repomd.data.values()].map((d) => join(this.dir, d.location.href)));
    for (const name of ['repomd.xml', 'repomd.xml.asc']) keep.add(join(this.dir, 'repodata', name));
    const dir = join(this.dir, 'repodata');
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      if (!keep.has(path) && !name.startsWith('.')) await rm(path, { force: true });
    }
  }
}
