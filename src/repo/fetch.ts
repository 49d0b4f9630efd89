// Fetching files of a served repository: over HTTP(S) with keep-alive connections and bounded
// parallelism, or from a directory (file:// URLs). Transient failures (connection reset, 5xx, a
// body cut short) are retried a few times; everything else becomes an ArborError naming the URL.
import { createWriteStream, readFileSync, statSync, copyFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { ArborError, describeErrno, errnoCode } from '../common/errors.js';

export interface FetchOptions {
  /** 404 returns null instead of failing. */
  readonly allowMissing?: boolean;
  /** Refuse bodies longer than this (a hostile or broken server). */
  readonly maxBytes?: number;
}

export interface Fetcher {
  /** Where a relative path is fetched from (for messages). */
  urlOf(path: string): string;
  /** The whole body, or null for a missing file with allowMissing. */
  get(path: string, options?: FetchOptions): Promise<Buffer | null>;
  /** Writes the body to `dest` (created exclusively) and returns its length. */
  download(path: string, dest: string, options?: FetchOptions): Promise<number>;
  /**
   * The body in memory when the server says it is at most `threshold` bytes, else written to
   * `spillPath` (big objects never sit whole in memory). `options.maxBytes` refuses a longer body.
   */
  fetchObject(path: string, spillPath: () => string, threshold: number, options?: FetchOptions): Promise<{ buffer: Buffer } | { path: string; size: number }>;
  /** The body's length without fetching it (HEAD), or null when missing. */
  size(path: string): Promise<number | null>;
  /** Bytes of bodies received so far. */
  readonly bytesFetched: number;
  close(): void;
}

/** A file the server does not have (HTTP 404, or ENOENT for a directory). */
export class RemoteMissingError extends ArborError {
  constructor(readonly url: string) {
    super('E_REMOTE_MISSING', `the remote has no '${url}'${/^https?:/.test(url) ? ' (HTTP 404)' : ''}`, { hint: 'the server\'s repository is incomplete or its summary is stale; run `arbor summary --update` and `arbor fsck` there' });
  }
}

/** An error worth retrying: the next attempt may well succeed. */
class TransientError extends Error {}

const RETRIES = 3;
const IDLE_TIMEOUT_MS = 30_000;

export function createFetcher(url: string, concurrency: number): Fetcher {
  if (/^https?:\/\//.test(url)) return new HttpFetcher(url, concurrency);
  const dir = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  return new DirFetcher(dir);
}

class HttpFetcher implements Fetcher {
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #module: typeof http | typeof https;
  #bytes = 0;

  constructor(base: string, concurrency: number) {
    this.#base = new URL(base.endsWith('/') ? base : `${base}/`);
    this.#module = this.#base.protocol === 'https:' ? https : http;
    const AgentClass = this.#base.protocol === 'https:' ? https.Agent : http.Agent;
    this.#agent = new AgentClass({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, scheduling: 'lifo' });
  }

  get bytesFetched(): number {
    return this.#bytes;
  }

  urlOf(path: string): string {
    return new URL(path, this.#base).href;
  }

  close(): void {
    this.#agent.destroy();
  }

  async get(path: string, options: FetchOptions = {}): Promise<Buffer | null> {
    return this.#withRetries(path, options, (res, url) => this.#collect(res, url, options.maxBytes));
  }

  async download(path: string, dest: string, options: FetchOptions = {}): Promise<number> {
    const n = await this.#withRetries(path, options, (res, url) => this.#toFile(res, url, dest, options.maxBytes));
    if (n === null) throw new RemoteMissingError(this.urlOf(path));
    return n;
  }

  async fetchObject(path: string, spillPath: () => string, threshold: number, options: FetchOptions = {}): Promise<{ buffer: Buffer } | { path: string; size: number }> {
    let dest: string | undefined;
    const result = await this.#withRetries(path, {}, async (res, url) => {
      const length = Number(res.headers['content-length'] ?? NaN);
      // A body of unknown length that may be big goes to disk too: memory holds at most `threshold`.
      const big = Number.isSafeInteger(length) ? length > threshold : (options.maxBytes ?? Infinity) > threshold;
      if (big) {
        dest ??= spillPath();
        const size = await this.#toFile(res, url, dest, options.maxBytes);
        return { path: dest, size };
      }
      return { buffer: await this.#collect(res, url, options.maxBytes) };
    });
    if (result === null) throw new RemoteMissingError(this.urlOf(path));
    return result;
  }

  async size(path: string): Promise<number | null> {
    return this.#withRetries(path, { allowMissing: true }, async (res, url) => {
      res.resume();
      const length = Number(res.headers['content-length']);
      if (!Number.isSafeInteger(length)) throw new ArborError('E_FETCH_FAILED', `${url}: the server sent no Content-Length`);
      return length;
    }, 'HEAD');
  }

  async #withRetries<T>(path: string, options: FetchOptions, consume: (res: http.IncomingMessage, url: string) => Promise<T>, method = 'GET'): Promise<T | null> {
    const url = this.urlOf(path);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(url, options, consume, method);
      } catch (error) {
        if (!(error instanceof TransientError) || attempt >= RETRIES) {
          if (error instanceof TransientError) throw new ArborError('E_FETCH_FAILED', `${method} ${url} failed: ${error.message} (tried ${attempt} times)`, { hint: 'check the server and the network, then run the pull again: what was fetched is kept' });
          throw error;
        }
        await new Promise((r) => setTimeout(r, 100 * 4 ** (attempt - 1)));
      }
    }
  }

  #once<T>(url: string, options: FetchOptions, consume: (res: http.IncomingMessage, url: string) => Promise<T>, method: string): Promise<T | null> {
    return new Promise<T | null>((resolve, reject) => {
      const req = this.#module.request(url, { method, agent: this.#agent, headers: { 'accept-encoding': 'identity' } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status === 404 || status === 410) {
          res.resume();
          if (options.allowMissing) resolve(null);
          else reject(new RemoteMissingError(url));
          return;
        }
        if (status >= 500) {
          res.resume();
          reject(new TransientError(`HTTP ${status} ${res.statusMessage ?? ''}`.trim()));
          return;
        }
        if (status !== 200) {
          res.resume();
          reject(new ArborError('E_FETCH_FAILED', `${method} ${url} failed: HTTP ${status} ${res.statusMessage ?? ''}`.trim()));
          return;
        }
        consume(res, url).then(resolve, reject);
      });
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new TransientError(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)));
      req.on('error', (error) => reject(error instanceof TransientError ? error : new TransientError(describeErrno(error))));
      req.end();
    });
  }

  #expectedLength(res: http.IncomingMessage, url: string, maxBytes: number | undefined): number | undefined {
    const header = res.headers['content-length'];
    const length = header === undefined ? undefined : Number(header);
    if (maxBytes !== undefined && length !== undefined && length > maxBytes) {
      res.destroy();
      throw new ArborError('E_FETCH_FAILED', `${url} is ${length} bytes, more than the ${maxBytes} allowed`);
    }
    return length;
  }

  // async: a body refused by its Content-Length (#expectedLength throws) becomes a rejection.
  async #collect(res: http.IncomingMessage, url: string, maxBytes: number | undefined): Promise<Buffer> {
    const expected = this.#expectedLength(res, url, maxBytes);
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let got = 0;
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        got += chunk.length;
        this.#bytes += chunk.length;
        if (maxBytes !== undefined && got > maxBytes) res.destroy(new ArborError('E_FETCH_FAILED', `${url} is more than the ${maxBytes} bytes allowed`));
      });
      res.on('error', (error) => reject(error instanceof ArborError ? error : new TransientError(`the connection broke after ${got} bytes: ${describeErrno(error)}`)));
      res.on('aborted', () => reject(new TransientError(`the connection closed after ${got} bytes`)));
      res.on('end', () => {
        if (expected !== undefined && got !== expected) reject(new TransientError(`got ${got} of ${expected} bytes`));
        else resolve(Buffer.concat(chunks, got));
      });
    });
  }

  async #toFile(res: http.IncomingMessage, url: string, dest: string, maxBytes: number | undefined): Promise<number> {
    const expected = this.#expectedLength(res, url, maxBytes);
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
        this.#bytes += chunk.length;
        if (maxBytes !== undefined && got > maxBytes) fail(new ArborError('E_FETCH_FAILED', `${url} is more than the ${maxBytes} bytes allowed`));
      });
      res.on('error', (error) => fail(new TransientError(`the connection broke after ${got} bytes: ${describeErrno(error)}`)));
      res.on('aborted', () => fail(new TransientError(`the connection closed after ${got} bytes`)));
      out.on('error', (error) => fail(new ArborError(errnoCode(error) === 'ENOSPC' ? 'E_NO_SPACE' : 'E_IO', `cannot write '${dest}': ${describeErrno(error)}`)));
      out.on('finish', () => {
        if (failed) return;
        if (expected !== undefined && got !== expected) fail(new TransientError(`got ${got} of ${expected} bytes`));
        else resolve(got);
      });
      res.pipe(out);
    });
  }
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
  async get(path: string, options: FetchOptions = {}): Promise<Buffer | null> {
    const file = this.urlOf(path);
    try {
      if (options.maxBytes !== undefined && statSync(file).size > options.maxBytes) throw new ArborError('E_FETCH_FAILED', `'${file}' is more than the ${options.maxBytes} bytes allowed`);
      const bytes = readFileSync(file);
      this.#bytes += bytes.length;
      return bytes;
    } catch (error) {
      return this.#missing(error, file, options);
    }
  }
  async download(path: string, dest: string, options: FetchOptions = {}): Promise<number> {
    const file = this.urlOf(path);
    try {
      copyFileSync(file, dest);
      const n = statSync(dest).size;
      if (options.maxBytes !== undefined && n > options.maxBytes) throw new ArborError('E_FETCH_FAILED', `'${file}' is more than the ${options.maxBytes} bytes allowed`);
      this.#bytes += n;
      return n;
    } catch (error) {
      this.#missing(error, file, {});
      throw new Error('unreachable');
    }
  }
  async fetchObject(path: string, spillPath: () => string, threshold: number, options: FetchOptions = {}): Promise<{ buffer: Buffer } | { path: string; size: number }> {
    const size = await this.size(path);
    if (size === null) throw new RemoteMissingError(this.urlOf(path));
    if (options.maxBytes !== undefined && size > options.maxBytes) throw new ArborError('E_FETCH_FAILED', `'${this.urlOf(path)}' is ${size} bytes, more than the ${options.maxBytes} allowed`);
    if (size <= threshold) return { buffer: (await this.get(path, options)) as Buffer };
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
