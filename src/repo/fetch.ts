// Fetching files of a served repository: over HTTP(S) with keep-alive connections and bounded
// parallelism, or from a directory (file:// URLs). Transient failures (connection reset, 5xx, a
// body cut short) are retried a few times; everything else becomes an ArborError naming the URL.
import { copyFileSync, createWriteStream, readFileSync, statSync, statfsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, join } from 'node:path';
import { ArborError, assert, describeErrno, errnoCode, present } from '../common/errors.js';

interface FetchOptions {
  /** 404 returns null instead of failing. */
  readonly allowMissing?: boolean;
  /** Refuse bodies longer than this (a hostile or broken server), before writing any byte when Content-Length says so. */
  readonly maxBytes?: number;
}

/** FetchOptions for a body held in memory: a bound is required, so no caller can forget it. */
type BoundedFetchOptions = FetchOptions & {
  readonly maxBytes: number;
  /**
   * A buffer of at least maxBytes the body may be received into (the result is then a view of it),
   * so a caller fetching one file after another reuses its memory; a fetcher may ignore it.
   */
  readonly into?: Buffer;
};

/** How long a request may take before it counts as stuck (curl's --speed-limit/--speed-time and --max-time). */
export interface TransferLimits {
  /** A request whose rate stays below this many bytes per second for lowSpeedTimeMs is aborted; 0 disables. */
  readonly lowSpeedBytesPerSecond: number;
  readonly lowSpeedTimeMs: number;
  /** A request (its redirects included) running longer than this is aborted; 0 disables. */
  readonly requestTimeoutMs: number;
}

/**
 * ostree's curl limits (1000 B/s over 30 s), and 30 minutes per request: a 1 GiB object still
 * arrives over a 600 kB/s link, while nothing a server does can hold a pull forever.
 */
export const DEFAULT_TRANSFER_LIMITS: TransferLimits = {
  lowSpeedBytesPerSecond: 1000,
  lowSpeedTimeMs: 30_000,
  requestTimeoutMs: 30 * 60_000,
};

/**
 * The body of PATH fetched without `allowMissing`: a missing file throws there, so a null here
 * is a broken fetcher (exit 70).
 */
export async function fetchExisting(
  fetcher: Pick<Fetcher, 'get'>,
  path: string,
  options: BoundedFetchOptions,
): Promise<Buffer> {
  return present((await fetcher.get(path, { ...options, allowMissing: false })) ?? undefined, `the body of ${path}`);
}

export interface Fetcher {
  /** Where a relative path is fetched from (for messages). */
  urlOf(path: string): string;
  /** The whole body, or null for a missing file with allowMissing. */
  get(path: string, options: BoundedFetchOptions): Promise<Buffer | null>;
  /** Writes the body to `dest` (created exclusively) and returns its length. */
  download(path: string, dest: string, options: BoundedFetchOptions): Promise<number>;
  /**
   * The body in memory when the server says it is at most `threshold` bytes, else written to
   * `spillPath` (big objects never sit whole in memory).
   */
  fetchObject(
    path: string,
    spillPath: () => string,
    threshold: number,
    options?: FetchOptions,
  ): Promise<{ buffer: Buffer } | { path: string; size: number }>;
  /** The body's length without fetching it (HEAD), or null when missing. */
  size(path: string): Promise<number | null>;
  /** Bytes of bodies received so far. */
  readonly bytesFetched: number;
  close(): void;
}

/** A file the server does not have (HTTP 404, or ENOENT for a directory). */
export class RemoteMissingError extends ArborError {
  constructor(readonly url: string) {
    super('E_REMOTE_MISSING', `the remote has no '${url}'${/^https?:/.test(url) ? ' (HTTP 404)' : ''}`, {
      hint: "the server's repository is incomplete or its summary is stale; run `arbor summary --update` and `arbor fsck` there",
    });
  }
}

/** An error worth retrying: the next attempt may well succeed. */
class TransientError extends Error {}

const RETRIES = 3;
/** A socket with no traffic at all for this long is dead, whatever the limits say. */
const IDLE_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export function createFetcher(
  url: string,
  concurrency: number,
  limits: TransferLimits = DEFAULT_TRANSFER_LIMITS,
): Fetcher {
  if (/^https?:\/\//.test(url)) return new HttpFetcher(url, concurrency, limits);
  const dir = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  return new DirFetcher(dir);
}

const seconds = (ms: number): string => `${ms / 1000} s`;

/**
 * Ends one request attempt that is stuck: slower than the low-speed limit over a sliding window
 * of lowSpeedTimeMs (checked every tick, so a stall is caught within a tick of the window), or
 * past the request deadline. It destroys whichever stream is current (the request while waiting
 * for headers, the response while reading the body) and remembers why.
 */
export class Watchdog {
  #reason: string | undefined;
  #received = 0;
  /** #received at the start and at each tick since, newest last, at most one window long. */
  readonly #samples: number[] = [0];
  readonly #timers: NodeJS.Timeout[] = [];
  #target: { destroy(error?: Error): unknown } | undefined;

  constructor(readonly limits: TransferLimits) {
    const { lowSpeedBytesPerSecond: rate, lowSpeedTimeMs: windowMs, requestTimeoutMs } = limits;
    if (rate > 0 && windowMs > 0) {
      const tickMs = Math.min(1000, windowMs / 4);
      const ticks = Math.ceil(windowMs / tickMs);
      const timer = setInterval(() => {
        this.#samples.push(this.#received);
        if (this.#samples.length > ticks + 1) this.#samples.shift();
        // ticks + 1 samples span exactly one window, from its first tick to now.
        if (
          this.#samples.length === ticks + 1 &&
          this.#received - present(this.#samples[0], 'the oldest sample') < (rate * windowMs) / 1000
        )
          this.#expire(`slower than ${rate} B/s for ${seconds(windowMs)}`);
      }, tickMs);
      this.#timers.push(timer);
    }
    if (requestTimeoutMs > 0)
      this.#timers.push(
        setTimeout(
          () => this.#expire(`not done within the ${seconds(requestTimeoutMs)} request timeout`),
          requestTimeoutMs,
        ),
      );
    // A request in flight keeps the process alive by itself; the timers must not outlive it.
    for (const t of this.#timers) t.unref();
  }

  /** Why the attempt was aborted, once it was. */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** The stream to destroy when the attempt is stuck (the request, then its response). */
  watch(target: { destroy(error?: Error): unknown }): void {
    this.#target = target;
    if (this.#reason !== undefined) target.destroy(new TransientError(this.#reason));
  }

  received(bytes: number): void {
    this.#received += bytes;
  }

  stop(): void {
    for (const t of this.#timers) clearTimeout(t);
  }

  #expire(reason: string): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.stop();
    this.#target?.destroy(new TransientError(reason));
  }
}

/**
 * Where a redirect leads: `location` resolved against `from`. Only http and https, never from
 * https down to http (that would hand a TLS-protected request to anyone on the path); a repeated
 * URL or more than MAX_REDIRECTS hops ends the chain. Pure.
 */
export function redirectTarget(chain: readonly string[], location: string | undefined, status: number): string {
  const from = present(chain.at(-1), 'the last URL of a redirect chain');
  const fail = (why: string): ArborError =>
    new ArborError('E_FETCH_FAILED', `${present(chain[0], 'the first URL of a redirect chain')} failed: ${why}`, {
      hint: 'fix the redirect on the server, or point the remote at the mirror itself (`arbor remote add`)',
    });
  if (location === undefined || location === '') throw fail(`HTTP ${status} from ${from} has no Location`);
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw fail(`HTTP ${status} from ${from} redirects to an invalid URL '${location.slice(0, 200)}'`);
  }
  next.hash = '';
  if (next.protocol !== 'http:' && next.protocol !== 'https:')
    throw fail(`${from} redirects to '${next.href}', which is not http(s)`);
  if (new URL(from).protocol === 'https:' && next.protocol === 'http:')
    throw fail(`${from} redirects from https to http ('${next.href}'), refused`);
  const hops = [...chain, next.href].join(' -> ');
  if (chain.includes(next.href)) throw fail(`redirect loop: ${hops}`);
  if (chain.length > MAX_REDIRECTS) throw fail(`more than ${MAX_REDIRECTS} redirects: ${hops}`);
  return next.href;
}

type Consume<T> = (res: http.IncomingMessage, url: string, received: (bytes: number) => void) => Promise<T>;

/** Fetches over HTTP(S); the fetch helper uses `stream` directly, everything else the Fetcher interface. */
export class HttpFetcher implements Fetcher {
  readonly #base: URL;
  readonly #agents: { http: http.Agent; https: https.Agent };
  #bytes = 0;

  /** `ca`: the certificate authorities https trusts, when not Node's own (the fetch helper's). */
  constructor(
    base: string,
    concurrency: number,
    readonly limits: TransferLimits,
    ca?: string[],
  ) {
    this.#base = new URL(base.endsWith('/') ? base : `${base}/`);
    const options = {
      keepAlive: true,
      maxSockets: concurrency,
      maxFreeSockets: concurrency,
      scheduling: 'lifo',
    } as const;
    // One agent per scheme: a redirect may lead from http to an https mirror.
    this.#agents = { http: new http.Agent(options), https: new https.Agent({ ...options, ...(ca ? { ca } : {}) }) };
  }

  get bytesFetched(): number {
    return this.#bytes;
  }

  urlOf(path: string): string {
    return new URL(path, this.#base).href;
  }

  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  async get(path: string, options: BoundedFetchOptions): Promise<Buffer | null> {
    return this.#withRetries(path, options, (res, url, received) =>
      this.#collect(res, url, options.maxBytes, received, options.into),
    );
  }

  async download(path: string, dest: string, options: BoundedFetchOptions): Promise<number> {
    const n = await this.#withRetries(path, options, (res, url, received) =>
      this.#toFile(res, url, dest, options.maxBytes, received),
    );
    if (n === null) throw new RemoteMissingError(this.urlOf(path));
    return n;
  }

  async fetchObject(
    path: string,
    spillPath: () => string,
    threshold: number,
    options: FetchOptions = {},
  ): Promise<{ buffer: Buffer } | { path: string; size: number }> {
    let dest: string | undefined;
    const result = await this.#withRetries(path, {}, async (res, url, received) => {
      const header = res.headers['content-length'];
      const length = header === undefined ? NaN : Number(header);
      // No Content-Length: the size is unknown, so the body goes to disk rather than to memory.
      if (!(length <= threshold)) {
        dest ??= spillPath();
        const size = await this.#toFile(res, url, dest, options.maxBytes, received);
        return { path: dest, size };
      }
      return { buffer: await this.#collect(res, url, options.maxBytes, received) };
    });
    if (result === null) throw new RemoteMissingError(this.urlOf(path));
    return result;
  }

  async size(path: string): Promise<number | null> {
    return this.#withRetries(
      path,
      { allowMissing: true },
      async (res, url) => {
        res.resume();
        const length = Number(res.headers['content-length']);
        if (!Number.isSafeInteger(length))
          throw new ArborError('E_FETCH_FAILED', `${url}: the server sent no Content-Length`);
        return length;
      },
      'HEAD',
    );
  }

  async #withRetries<T>(path: string, options: FetchOptions, consume: Consume<T>, method = 'GET'): Promise<T | null> {
    const url = this.urlOf(path);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#attempt(url, options, consume, method);
      } catch (error) {
        if (!(error instanceof TransientError) || attempt >= RETRIES) {
          if (error instanceof TransientError)
            throw new ArborError(
              'E_FETCH_FAILED',
              `${method} ${url} failed: ${error.message} (tried ${attempt} times)`,
              { hint: 'check the server and the network, then run the pull again: what was fetched is kept' },
            );
          throw error;
        }
        await new Promise((r) => setTimeout(r, 100 * 4 ** (attempt - 1)));
      }
    }
  }

  /** One attempt: the request and the redirects it leads to, under one watchdog. */
  async #attempt<T>(url: string, options: FetchOptions, consume: Consume<T>, method: string): Promise<T | null> {
    const watchdog = new Watchdog(this.limits);
    const chain = [url];
    try {
      for (;;) {
        const current = present(chain.at(-1), 'the last URL of a redirect chain');
        const res = await this.#request(current, method, watchdog);
        const status = res.statusCode ?? 0;
        if (REDIRECT_STATUSES.has(status)) {
          res.resume();
          chain.push(redirectTarget(chain, res.headers.location, status));
          continue;
        }
        if (status === 404 || status === 410) {
          res.resume();
          if (options.allowMissing) return null;
          throw new RemoteMissingError(current);
        }
        if (status >= 500) {
          res.resume();
          throw new TransientError(`HTTP ${status} ${res.statusMessage ?? ''}`.trim());
        }
        if (status !== 200) {
          res.resume();
          throw new ArborError(
            'E_FETCH_FAILED',
            `${method} ${current} failed: HTTP ${status} ${res.statusMessage ?? ''}`.trim(),
          );
        }
        watchdog.watch(res);
        return await consume(res, current, (bytes) => {
          this.#bytes += bytes;
          watchdog.received(bytes);
        });
      }
    } catch (error) {
      // Destroying a stuck stream surfaces as whatever error the consumer saw; say why it was stuck.
      if (watchdog.reason !== undefined) throw new TransientError(watchdog.reason);
      throw error;
    } finally {
      watchdog.stop();
    }
  }

  #request(url: string, method: string, watchdog: Watchdog): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const https_ = url.startsWith('https:');
      const request = https_ ? https.request : http.request;
      const req = request(
        url,
        { method, agent: https_ ? this.#agents.https : this.#agents.http, headers: { 'accept-encoding': 'identity' } },
        resolve,
      );
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new TransientError(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)));
      req.on('error', (error) =>
        reject(error instanceof TransientError ? error : new TransientError(describeErrno(error))),
      );
      watchdog.watch(req);
      req.end();
    });
  }

  #expectedLength(res: http.IncomingMessage, url: string, maxBytes: number | undefined): number | undefined {
    const header = res.headers['content-length'];
    const length = header === undefined ? undefined : Number(header);
    if (maxBytes !== undefined && length !== undefined && length > maxBytes) {
      res.destroy();
      throw new ArborError('E_FETCH_FAILED', `${url} is ${length} bytes, more than the ${maxBytes} allowed`, {
        hint: 'the server is broken or hostile: nothing of it was written',
      });
    }
    return length;
  }

  /**
   * Hands the body of `path` to a sink chunk by chunk, a fresh sink from `open` for each attempt (a
   * retry starts over); false when it is missing and `allowMissing`. An error the sink throws ends
   * the transfer without a retry.
   */
  async stream(path: string, options: BoundedFetchOptions, open: () => (chunk: Buffer) => void): Promise<boolean> {
    const got = await this.#withRetries(path, options, (res, url, received) =>
      this.#pump(res, url, options.maxBytes, received, open()),
    );
    return got !== null;
  }

  async #collect(
    res: http.IncomingMessage,
    url: string,
    maxBytes: number | undefined,
    received: (bytes: number) => void,
    into?: Buffer,
  ): Promise<Buffer> {
    const declared = Number(res.headers['content-length'] ?? Number.NaN);
    if (Number.isSafeInteger(declared) && declared >= 0 && (maxBytes === undefined || declared <= maxBytes)) {
      // Copied into one buffer of the announced size as it arrives: chunks joined at the end would
      // hold a big body (a delta part) twice.
      const body =
        into !== undefined && into.length >= declared ? into.subarray(0, declared) : Buffer.allocUnsafe(declared);
      let at = 0;
      const got = await this.#pump(res, url, maxBytes, received, (chunk) => {
        assert(at + chunk.length <= declared, 'a body is longer than its Content-Length');
        at += chunk.copy(body, at);
      });
      return body.subarray(0, got);
    }
    const chunks: Buffer[] = [];
    const got = await this.#pump(res, url, maxBytes, received, (chunk) => chunks.push(chunk));
    return Buffer.concat(chunks, got);
  }

  // async: a body refused by its Content-Length (#expectedLength throws) becomes a rejection.
  async #pump(
    res: http.IncomingMessage,
    url: string,
    maxBytes: number | undefined,
    received: (bytes: number) => void,
    sink: (chunk: Buffer) => void,
  ): Promise<number> {
    const expected = this.#expectedLength(res, url, maxBytes);
    return new Promise<number>((resolve, reject) => {
      let got = 0;
      // The first failure wins: destroying the response also emits 'aborted' and 'error'.
      let failed = false;
      const fail = (error: Error): void => {
        if (failed) return;
        failed = true;
        res.destroy();
        reject(error);
      };
      res.on('data', (chunk: Buffer) => {
        if (failed) return;
        got += chunk.length;
        received(chunk.length);
        if (maxBytes !== undefined && got > maxBytes)
          return fail(
            new ArborError('E_FETCH_FAILED', `${url} is more than the ${maxBytes} bytes allowed`, {
              hint: 'the server is broken or hostile',
            }),
          );
        try {
          sink(chunk);
        } catch (error) {
          fail(error as Error);
        }
      });
      res.on('error', (error) =>
        fail(
          error instanceof ArborError
            ? error
            : new TransientError(`the connection broke after ${got} bytes: ${describeErrno(error)}`),
        ),
      );
      res.on('aborted', () => fail(new TransientError(`the connection closed after ${got} bytes`)));
      res.on('end', () => {
        if (failed) return;
        if (expected !== undefined && got !== expected) reject(new TransientError(`got ${got} of ${expected} bytes`));
        else resolve(got);
      });
    });
  }

  async #toFile(
    res: http.IncomingMessage,
    url: string,
    dest: string,
    maxBytes: number | undefined,
    received: (bytes: number) => void,
  ): Promise<number> {
    const expected = this.#expectedLength(res, url, maxBytes);
    if (expected !== undefined) assertRoomFor(res, url, dest, expected);
    return new Promise<number>((resolve, reject) => {
      // 'w', not 'wx': a retry rewrites the same partial file.
      const out = createWriteStream(dest, { flags: 'w', mode: 0o600 });
      let got = 0;
      let failed = false;
      const fail = (error: Error): void => {
        if (failed) return;
        failed = true;
        out.destroy();
        res.destroy();
        reject(error);
      };
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        received(chunk.length);
        if (maxBytes !== undefined && got > maxBytes)
          fail(new ArborError('E_FETCH_FAILED', `${url} is more than the ${maxBytes} bytes allowed`));
      });
      res.on('error', (error) =>
        fail(
          error instanceof ArborError
            ? error
            : new TransientError(`the connection broke after ${got} bytes: ${describeErrno(error)}`),
        ),
      );
      res.on('aborted', () => fail(new TransientError(`the connection closed after ${got} bytes`)));
      out.on('error', (error) =>
        fail(
          new ArborError(
            errnoCode(error) === 'ENOSPC' ? 'E_NO_SPACE' : 'E_IO',
            `cannot write '${dest}': ${describeErrno(error)}`,
          ),
        ),
      );
      out.on('finish', () => {
        if (failed) return;
        if (expected !== undefined && got !== expected) fail(new TransientError(`got ${got} of ${expected} bytes`));
        else resolve(got);
      });
      res.pipe(out);
    });
  }
}

/** Refuses, before a byte is written, a body its Content-Length says cannot fit on the disk. */
function assertRoomFor(res: http.IncomingMessage, url: string, dest: string, bytes: number): void {
  const dir = dirname(dest);
  let free: number;
  try {
    const s = statfsSync(dir);
    free = s.bavail * s.bsize;
  } catch {
    return; // no figure to compare with: the write itself reports ENOSPC
  }
  if (bytes <= free) return;
  res.destroy();
  // Worded like the ENOSPC a write would have met, with both figures.
  throw new ArborError(
    'E_NO_SPACE',
    `cannot write '${dest}': no space left on device: ${url} is ${bytes} bytes, but only ${free} bytes are free there`,
    {
      hint: 'free space, or check the server: a hostile one may claim any size',
    },
  );
}

/** A served repository that is a local directory (file:// URLs and plain paths). */
class DirFetcher implements Fetcher {
  #bytes = 0;
  constructor(readonly dir: string) {}
  get bytesFetched(): number {
    return this.#bytes;
  }
  urlOf(path: string): string {
    return join(this.dir, path);
  }
  close(): void {}
  async get(path: string, options: BoundedFetchOptions): Promise<Buffer | null> {
    const file = this.urlOf(path);
    try {
      if (options.maxBytes !== undefined && statSync(file).size > options.maxBytes)
        throw new ArborError('E_FETCH_FAILED', `'${file}' is more than the ${options.maxBytes} bytes allowed`);
      const bytes = readFileSync(file);
      this.#bytes += bytes.length;
      return bytes;
    } catch (error) {
      return this.#missing(error, file, options);
    }
  }
  async download(path: string, dest: string, options: FetchOptions): Promise<number> {
    const file = this.urlOf(path);
    try {
      copyFileSync(file, dest);
      const n = statSync(dest).size;
      if (options.maxBytes !== undefined && n > options.maxBytes)
        throw new ArborError('E_FETCH_FAILED', `'${file}' is more than the ${options.maxBytes} bytes allowed`);
      this.#bytes += n;
      return n;
    } catch (error) {
      this.#missing(error, file, {});
      throw new Error('unreachable');
    }
  }
  async fetchObject(
    path: string,
    spillPath: () => string,
    threshold: number,
    options: FetchOptions = {},
  ): Promise<{ buffer: Buffer } | { path: string; size: number }> {
    const size = await this.size(path);
    if (size === null) throw new RemoteMissingError(this.urlOf(path));
    if (options.maxBytes !== undefined && size > options.maxBytes)
      throw new ArborError(
        'E_FETCH_FAILED',
        `'${this.urlOf(path)}' is more than the ${options.maxBytes} bytes allowed`,
      );
    if (size <= threshold) return { buffer: await fetchExisting(this, path, { maxBytes: threshold }) };
    const dest = spillPath();
    return { path: dest, size: await this.download(path, dest, options) };
  }
  async size(path: string): Promise<number | null> {
    try {
      return statSync(this.urlOf(path)).size;
    } catch (error) {
      return this.#missing(error, this.urlOf(path), { allowMissing: true });
    }
  }
  #missing(error: unknown, file: string, options: FetchOptions): null {
    if (error instanceof ArborError) throw error;
    if (errnoCode(error) === 'ENOENT') {
      if (options.allowMissing) return null;
      throw new RemoteMissingError(file);
    }
    throw new ArborError('E_FETCH_FAILED', `cannot read '${file}': ${describeErrno(error)}`);
  }
}
