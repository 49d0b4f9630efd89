// The root side of privilege-separated fetching: which user the fetch helper runs as, starting it,
// and checking everything it sends as untrusted, exactly like bytes from the server: sizes bounded
// again, every object hashed here before it is used (docs/security.md, "Privileges").
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ArborError, UsageError, describeErrno, ioError, present } from '../common/errors.js';
import { type Checksum, StreamHasher, hashBytes } from '../common/hash.js';
import { MAX_FILE_HEADER_BYTES } from './bounded-inflate.js';
import { takeContentBuffer } from './content-buffers.js';
import type { Ini } from '../common/ini.js';
import { type Fetcher, RemoteMissingError } from './fetch.js';
import {
  type Frame,
  FrameDecoder,
  FrameError,
  FrameType,
  type GetRequest,
  type HelperInit,
  MAX_FRAME_PAYLOAD,
  type ObjectRequest,
  decodeJsonPayload,
  encodeJsonFrame,
} from './fetch-frames.js';
import { corruptObject } from './verify-store.js';
import { native } from '../common/native.js';

/** The unprivileged user and group the helper runs as. */
export interface FetchUser {
  readonly uid: number;
  readonly gid: number;
}

/** The `[core]` keys (and environment variables, which win) that set privilege separation up. */
const FETCH_PRIVSEP_KEYS = {
  enabled: { key: 'fetch-privsep', env: 'ARBOR_FETCH_PRIVSEP' },
  user: { key: 'fetch-user', env: 'ARBOR_FETCH_USER' },
  group: { key: 'fetch-group', env: 'ARBOR_FETCH_GROUP' },
} as const;

const DEFAULT_FETCH_USER = 'nobody';

/** A plain file object the helper sent, hashed here: header bytes and content, in memory or spilled. */
export type HelperObject = { readonly headerBytes: Buffer; readonly hashed: Checksum } & (
  | { readonly content: Buffer }
  /** A file of the staging directory holding the content; the caller removes it. */
  | { readonly spillPath: string }
);

/** Content up to this size is kept in memory; bigger content is written to a staging file as it arrives. */
const IN_MEMORY_CONTENT = 256 * 1024;
/** Kept of the helper's stderr for the message when it dies. */
const STDERR_TAIL = 2000;
/**
 * The helper's V8 heap: bounded, and a young generation of 1 MiB semi-spaces (V8's default grows
 * to 16 MiB ones, which the helper's response and frame garbage fills between collections).
 */
const HELPER_V8_FLAGS = ['--max-old-space-size=256', '--max-semi-space-size=1'];
/** Bytes of the helper's stream read at a time, into one buffer reused for every read. */
const READ_BYTES = 256 * 1024;

/**
 * A FIFO's two ends, for the helper's stdout: the write end (blocking, as the helper's writes
 * expect) for the child, the read end (non-blocking) for this side. Unlike spawn's own pipe, it can
 * be read into one reused buffer: spawn's pipe hands every read over in a new buffer, and at a
 * pull's pace those wait for the collector by the tens of MiB. Null where no FIFO can be made.
 */
function openFifo(): { read: number; write: number } | null {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'arbor-fetch-'));
    const path = join(dir, 'stdout');
    native.mknod(path, constants.S_IFIFO | 0o600, 0, 0);
    const read = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    return { read, write: openSync(path, constants.O_WRONLY) };
  } catch {
    return null;
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** Text the helper sent, made safe to print: no control characters, bounded. */
function clean(text: unknown): string {
  return String(text)
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
    .slice(0, 2000);
}

/** The `name:…:uid:gid:…` (passwd) or `name:…:gid:…` (group) entry for a name or number, pure. */
function lookupDb(text: string, wanted: string, idField: number): string[] | undefined {
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length > idField && (fields[0] === wanted || fields[idField] === wanted)) return fields;
  }
  return undefined;
}

/**
 * The uid and gid for `user` and `group` (names or numbers) from the texts of /etc/passwd and
 * /etc/group; without `group`, the user's login group. Refuses root and unknown names. Pure.
 */
export function resolveFetchUser(
  settings: { user: string; group?: string | undefined },
  passwd: string,
  group: string,
): FetchUser {
  const numeric = (text: string): number | undefined => (/^\d{1,10}$/.test(text) ? Number(text) : undefined);
  const entry = lookupDb(passwd, settings.user, 2);
  const uid = entry ? Number(entry[2]) : numeric(settings.user);
  const unknown = (what: string, name: string): ArborError =>
    new ArborError('E_FETCH_USER_UNKNOWN', `the fetch helper's ${what} '${name}' does not exist on this host`, {
      hint: `create it, name another unprivileged one (${FETCH_PRIVSEP_KEYS.user.key}/${FETCH_PRIVSEP_KEYS.group.key} in [core] of the repository config), or turn privilege separation off with ${FETCH_PRIVSEP_KEYS.enabled.key}=false`,
    });
  if (uid === undefined || !Number.isSafeInteger(uid)) throw unknown('user', settings.user);
  let gid: number | undefined;
  if (settings.group !== undefined) {
    const g = lookupDb(group, settings.group, 2);
    gid = g ? Number(g[2]) : numeric(settings.group);
    if (gid === undefined || !Number.isSafeInteger(gid)) throw unknown('group', settings.group);
  } else {
    gid = entry ? Number(entry[3]) : undefined;
    if (gid === undefined || !Number.isSafeInteger(gid)) throw unknown('group (the login group of)', settings.user);
  }
  if (uid === 0 || gid === 0)
    throw new UsageError(
      'E_CONFIG_INVALID',
      `the fetch helper would run as uid ${uid}, gid ${gid}: root is what privilege separation keeps it from`,
      { hint: `name an unprivileged user and group (${FETCH_PRIVSEP_KEYS.user.key}, ${FETCH_PRIVSEP_KEYS.group.key})` },
    );
  return { uid, gid };
}

/** The compiled helper beside this module; null when running from TypeScript sources (development). */
function helperScript(): string | null {
  if (!import.meta.url.endsWith('.js')) return null;
  return fileURLToPath(new URL('./fetch-helper.js', import.meta.url));
}

/**
 * Who fetches for a pull by this process: null (fetch in-process) unless it runs as root with
 * privilege separation on (the default; `fetch-privsep=false` or ARBOR_FETCH_PRIVSEP=0 turns it
 * off), else the user to drop to. An unprivileged caller has nothing to drop.
 */
export function fetchUserFor(config: Ini): FetchUser | null {
  const core = config.get('core');
  const setting = (k: { key: string; env: string }): string | undefined => process.env[k.env] ?? core?.get(k.key);
  const enabled = setting(FETCH_PRIVSEP_KEYS.enabled) ?? 'true';
  if (!['true', 'false', '1', '0'].includes(enabled))
    throw new UsageError('E_CONFIG_INVALID', `${FETCH_PRIVSEP_KEYS.enabled.key}=${enabled} is not true or false`);
  if (enabled === 'false' || enabled === '0' || process.geteuid?.() !== 0 || helperScript() === null) return null;
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw ioError('read', path, error);
    }
  };
  return resolveFetchUser(
    { user: setting(FETCH_PRIVSEP_KEYS.user) ?? DEFAULT_FETCH_USER, group: setting(FETCH_PRIVSEP_KEYS.group) },
    read('/etc/passwd'),
    read('/etc/group'),
  );
}

/** The helper broke the protocol, could not start or died: nothing it sent is believed after that. */
function helperBroken(reason: string): ArborError {
  return new ArborError('E_FETCH_HELPER_FAILED', `the fetch helper ${reason}`, {
    hint: 'nothing it sent was stored unverified; run the pull again. If it repeats, check that the helper user can run node and read the arbor installation, or report a bug',
  });
}

/** An error the helper reported for a request, rebuilt from a fixed set: it never chooses the code freely. */
function reportedError(failure: Record<string, unknown>, what: string, where: string): ArborError {
  if (typeof failure.problem === 'string') return corruptFromHelper(what, where, clean(failure.problem));
  if (failure.code === 'E_REMOTE_MISSING' && typeof failure.url === 'string')
    return new RemoteMissingError(clean(failure.url));
  if (failure.code === 'E_FETCH_FAILED')
    return new ArborError('E_FETCH_FAILED', clean(failure.message), {
      ...(typeof failure.hint === 'string' ? { hint: clean(failure.hint) } : {}),
    });
  return helperBroken(`failed on ${where}: ${clean(failure.message)}`);
}

/** The same wording and code (E_PULL_CORRUPT, exit 3) as an object that fails verification in-process. */
const corruptFromHelper = corruptObject;

function tooLarge(what: string, where: string, bound: string): ArborError {
  return new ArborError('E_OBJECT_TOO_LARGE', `${what} from ${where}: the fetch helper sent more than ${bound}`, {
    hint: 'the helper, which parses what the server sends, is broken or compromised: nothing of it was stored',
  });
}

/** One request in flight: handles its frames, throwing ArborError for a lie and FrameError for a protocol break. */
interface Receiver {
  frame(frame: Frame): void;
  fail(error: Error): void;
}

/**
 * The fetch helper process and the files it fetches: a served repository's files (the Fetcher
 * subset a pull needs), plus archive file objects inflated by the helper and hashed here.
 */
export class FetchHelper implements Pick<Fetcher, 'urlOf' | 'get' | 'size' | 'bytesFetched' | 'close'> {
  readonly #child: ChildProcessByStdio<Writable, Readable | null, Readable>;
  readonly #decoder = new FrameDecoder(MAX_FRAME_PAYLOAD);
  readonly #pending = new Map<number, Receiver>();
  /** Requests this side gave up on (a lie was caught): their remaining frames are dropped. */
  readonly #abandoned = new Set<number>();
  readonly #base: URL;
  #next = 1;
  #bytes = 0;
  #stderr = '';
  #broken: ArborError | undefined;
  #closed = false;
  /** The read end of the helper's stdout FIFO (null: spawn's pipe, `#child.stdout`). */
  #stdout: Socket | null = null;

  /** Starts the helper as `user` (null: as this process, for tests) running `script`. */
  constructor(init: HelperInit, user: FetchUser | null, script: string | null = helperScript()) {
    if (script === null) throw new Error('internal error: the fetch helper runs only from the compiled build');
    this.#base = new URL(init.url.endsWith('/') ? init.url : `${init.url}/`);
    // An empty environment and `/` as its directory: the helper inherits nothing of the caller's
    // but its three pipes; spawn drops supplementary groups along with uid and gid.
    const fifo = openFifo();
    this.#child = spawn(process.execPath, [...HELPER_V8_FLAGS, script], {
      stdio: ['pipe', fifo?.write ?? 'pipe', 'pipe'],
      cwd: '/',
      env: {},
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    }) as ChildProcessByStdio<Writable, Readable | null, Readable>;
    if (fifo === null)
      present(this.#child.stdout ?? undefined, "the helper's stdout").on('data', (chunk: Buffer) =>
        this.#receive(chunk, false),
      );
    else {
      closeSync(fifo.write);
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      // `onread` (reads into the given buffer) is a documented Socket option its types lack.
      const options = {
        fd: fifo.read,
        readable: true,
        writable: false,
        onread: {
          buffer,
          callback: (n: number): void => {
            this.#receive(buffer.subarray(0, n), true);
          },
        },
      };
      this.#stdout = new Socket(options as ConstructorParameters<typeof Socket>[0]);
      this.#stdout.on('error', () => undefined);
    }
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    this.#child.on('error', (error) => this.#breakDown(`cannot start: ${describeErrno(error)}`));
    this.#child.on('close', (code, signal) => {
      if (this.#closed) return;
      const tail = clean(this.#stderr.trim());
      this.#breakDown(`exited (${signal ?? `status ${code}`})${tail ? `: ${tail}` : ''}`);
    });
    // A dead helper's pipe fails writes; its 'close' says why.
    this.#child.stdin.on('error', () => undefined);
    this.#child.stdin.write(encodeJsonFrame(FrameType.Init, 0, init));
  }

  /** The helper's process id (tests look at its credentials). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  get bytesFetched(): number {
    return this.#bytes;
  }

  urlOf(path: string): string {
    return new URL(path, this.#base).href;
  }

  /** A whole file of at most `maxBytes`, or null when missing and `allowMissing`. */
  get(path: string, options: { maxBytes: number; allowMissing?: boolean; into?: Buffer }): Promise<Buffer | null> {
    const where = this.urlOf(path);
    const request: GetRequest = { path, maxBytes: options.maxBytes, allowMissing: options.allowMissing === true };
    // Received straight into the caller's buffer when it holds maxBytes: no chunks joined at the end.
    const into = options.into !== undefined && options.into.length >= options.maxBytes ? options.into : undefined;
    return new Promise((resolve, reject) => {
      let chunks: Buffer[] | null = null;
      let got = 0;
      this.#send(FrameType.Get, request, {
        fail: reject,
        frame: (f) => {
          if (f.type === FrameType.Begin) {
            chunks = [];
            got = 0;
          } else if (f.type === FrameType.Data && chunks !== null) {
            got += f.payload.length;
            if (got > options.maxBytes) throw tooLarge(`'${path}'`, where, `the ${options.maxBytes} bytes allowed`);
            if (into) f.payload.copy(into, got - f.payload.length);
            else chunks.push(Buffer.from(f.payload));
          } else if (f.type === FrameType.End) {
            const end = this.#end(f);
            if (end.missing === true && request.allowMissing) resolve(null);
            else if (end.missing !== undefined || chunks === null) throw new FrameError('a Get ended without a body');
            else resolve(into ? into.subarray(0, got) : Buffer.concat(chunks, got));
          } else if (f.type === FrameType.Fail) reject(reportedError(this.#end(f), `'${path}'`, where));
          else throw new FrameError(`frame type ${f.type} in a Get`);
        },
      });
    });
  }

  /** The length of a file (HEAD), or null when missing. */
  size(path: string): Promise<number | null> {
    const where = this.urlOf(path);
    return new Promise((resolve, reject) => {
      this.#send(
        FrameType.Size,
        { path },
        {
          fail: reject,
          frame: (f) => {
            if (f.type === FrameType.Fail) return reject(reportedError(this.#end(f), `'${path}'`, where));
            if (f.type !== FrameType.End) throw new FrameError(`frame type ${f.type} in a Size`);
            const end = this.#end(f);
            if (end.missing === true) return resolve(null);
            if (typeof end.size !== 'number' || !Number.isSafeInteger(end.size) || end.size < 0)
              throw new FrameError('a Size ended without a size');
            resolve(end.size);
          },
        },
      );
    });
  }

  /**
   * Archive file object `checksum` at `path`, inflated by the helper (which reads at most
   * `maxBytes` compressed) and hashed here: its header at most MAX_FILE_HEADER_BYTES and its
   * content exactly `contentSize` bytes, else E_OBJECT_TOO_LARGE or E_PULL_CORRUPT. Content over
   * IN_MEMORY_CONTENT goes to a file at `spillPath()`, created here, never by the helper.
   */
  fileObject(
    checksum: Checksum,
    path: string,
    contentSize: number,
    maxBytes: number,
    spillPath: () => string,
  ): Promise<HelperObject> {
    const where = this.urlOf(path);
    const what = `file ${checksum}`;
    const request: ObjectRequest = { path, contentSize, maxBytes };
    const spill = contentSize > IN_MEMORY_CONTENT ? { path: spillPath(), fd: -1, at: 0 } : null;
    let header: Buffer | null = null;
    // In-memory content goes straight into a reusable buffer of its size, known up front.
    let content: Buffer | null = null;
    let got = 0;
    let hasher: StreamHasher | undefined;
    let begun = false;
    const dropSpill = (): void => {
      if (!spill) return;
      if (spill.fd >= 0) closeSync(spill.fd);
      spill.fd = -1;
      rmSync(spill.path, { force: true });
    };
    return new Promise<HelperObject>((resolve, reject) => {
      const fail = (error: Error): void => {
        dropSpill();
        reject(error);
      };
      this.#send(FrameType.Object, request, {
        fail,
        frame: (f) => {
          switch (f.type) {
            case FrameType.Begin:
              // A retry: start over (the staging file is reused, cut back to nothing).
              begun = true;
              header = null;
              got = 0;
              hasher = undefined;
              if (spill && spill.fd >= 0) ftruncateSync(spill.fd, 0);
              if (spill) spill.at = 0;
              return;
            case FrameType.Header:
              if (!begun || header !== null) throw new FrameError('a header out of place');
              if (f.payload.length > MAX_FILE_HEADER_BYTES)
                throw tooLarge(what, where, `the ${MAX_FILE_HEADER_BYTES} bytes a header may hold`);
              header = Buffer.from(f.payload);
              if (!spill) content ??= takeContentBuffer(contentSize);
              else {
                if (spill.fd < 0) spill.fd = openSpill(spill.path, contentSize, where);
                hasher = new StreamHasher().update(header);
              }
              return;
            case FrameType.Data:
              if (header === null) throw new FrameError('content before a header');
              got += f.payload.length;
              if (got > contentSize)
                throw tooLarge(what, where, `the ${contentSize} content bytes its dirtree records`);
              if (!spill) f.payload.copy(present(content ?? undefined, 'the content buffer'), got - f.payload.length);
              else {
                present(hasher, "the spilled content's hasher").update(f.payload);
                writeAll(spill, f.payload);
              }
              return;
            case FrameType.End: {
              this.#end(f);
              if (header === null) throw corruptFromHelper(what, where, 'arrived without a header');
              if (got !== contentSize)
                throw corruptFromHelper(what, where, `holds ${got} content bytes, its dirtree records ${contentSize}`);
              if (!spill) {
                const bytes = content ?? Buffer.alloc(0);
                resolve({ headerBytes: header, content: bytes, hashed: hashBytes(header, bytes) });
                return;
              }
              closeSync(spill.fd);
              spill.fd = -1;
              resolve({
                headerBytes: header,
                spillPath: spill.path,
                hashed: present(hasher, "the spilled content's hasher").digest(),
              });
              return;
            }
            case FrameType.Fail:
              return fail(reportedError(this.#end(f), what, where));
            default:
              throw new FrameError(`frame type ${f.type} in an Object`);
          }
        },
      });
    });
  }

  /** Ends the helper; requests still in flight fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failAll(helperBroken('was stopped'));
    this.#child.stdin.end();
    this.#child.kill('SIGKILL');
    this.#stdout?.destroy();
  }

  #send(type: number, request: object, receiver: Receiver): void {
    if (this.#broken) return receiver.fail(this.#broken);
    const id = this.#next++;
    this.#pending.set(id, receiver);
    this.#child.stdin.write(encodeJsonFrame(type, id, request));
  }

  /** An End or Fail payload; it finishes the request and counts the bytes it fetched. */
  #end(frame: Frame): Record<string, unknown> {
    const value = decodeJsonPayload(frame.payload);
    const fetched = value.fetched;
    if (typeof fetched !== 'number' || !Number.isSafeInteger(fetched) || fetched < 0)
      throw new FrameError('an End without a byte count');
    this.#bytes += fetched;
    this.#pending.delete(frame.id);
    return value;
  }

  /** Decodes a chunk of the helper's stream; `reused`: its memory is read into again after. */
  #receive(chunk: Buffer, reused: boolean): void {
    if (this.#broken) return;
    try {
      this.#decoder.push(chunk, (frame) => this.#dispatch(frame), reused);
    } catch (error) {
      this.#breakDown(`broke the protocol: ${(error as Error).message}`);
    }
  }

  #dispatch(frame: Frame): void {
    if (this.#broken) return;
    const receiver = this.#pending.get(frame.id);
    if (!receiver) {
      if (!this.#abandoned.has(frame.id)) throw new FrameError(`a frame for request ${frame.id}, which is not pending`);
      if (frame.type === FrameType.End || frame.type === FrameType.Fail) this.#abandoned.delete(frame.id);
      return;
    }
    try {
      receiver.frame(frame);
    } catch (error) {
      this.#pending.delete(frame.id);
      if (error instanceof FrameError) {
        receiver.fail(this.#breakDown(`broke the protocol: ${error.message}`));
        return;
      }
      // A lie about this request (too many bytes, a wrong size): it alone fails, its rest is dropped.
      if (frame.type !== FrameType.End && frame.type !== FrameType.Fail) this.#abandoned.add(frame.id);
      receiver.fail(error as Error);
    }
  }

  /** Stops believing the helper: every request in flight fails, later ones at once. */
  #breakDown(reason: string): ArborError {
    if (this.#broken) return this.#broken;
    const broken = helperBroken(reason);
    this.#broken = broken;
    this.#failAll(broken);
    this.#child.kill('SIGKILL');
    return broken;
  }

  #failAll(error: ArborError): void {
    const receivers = [...this.#pending.values()];
    this.#pending.clear();
    for (const r of receivers) r.fail(error);
  }
}

/** Creates the staging file for big content, refusing at once content its size says cannot fit. */
function openSpill(path: string, contentSize: number, where: string): number {
  try {
    const s = statfsSync(dirname(path));
    const free = s.bavail * s.bsize;
    if (contentSize > free)
      throw new ArborError(
        'E_NO_SPACE',
        `cannot write '${path}': no space left on device: ${where} holds ${contentSize} bytes, but only ${free} bytes are free there`,
        { hint: 'free space, or check the server: a hostile one may claim any size' },
      );
    return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    if (error instanceof ArborError) throw error;
    throw ioError('write', path, error);
  }
}

function writeAll(spill: { path: string; fd: number; at: number }, bytes: Buffer): void {
  try {
    for (let done = 0; done < bytes.length; ) {
      const n = writeSync(spill.fd, bytes, done, bytes.length - done, spill.at);
      done += n;
      spill.at += n;
    }
  } catch (error) {
    throw ioError('write', spill.path, error);
  }
}
