// A hostile HTTP server for security tests: serves a repository directory on 127.0.0.1 like any
// static server, except for the paths a test overrides with a misbehaving response (endless or
// bomb bodies, huge Content-Length, slow drip, redirects). Also runs the CLI measuring its peak RSS.
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join, normalize } from 'node:path';
import zstdBinding from 'zstd-napi/binding.js';
import { ARBOR, type CliResult } from './cli.js';

/** Handles a request the test wants to misbehave on; returns false to let the file be served. */
export type Override = (req: IncomingMessage, res: ServerResponse, path: string) => boolean | Promise<boolean>;

export interface HostileServer {
  readonly url: string;
  readonly port: number;
  /** Request paths in arrival order (query strings removed). */
  readonly requests: string[];
  /** Replaces the override (null: serve files only). */
  setOverride(override: Override | null): void;
  stop(): Promise<void>;
}

/** Starts the server over `root` (a served archive repository). */
export async function startHostileServer(root: string, override: Override | null = null): Promise<HostileServer> {
  let current = override;
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?', 1)[0] ?? '/');
    requests.push(path);
    void (async () => {
      if (current && (await current(req, res, path))) return;
      serveFile(root, path, req, res);
    })().catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    requests,
    setOverride: (next) => void (current = next),
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serveFile(root: string, path: string, req: IncomingMessage, res: ServerResponse): void {
  const file = join(root, normalize(path).replace(/^(\.\.(\/|$))+/, ''));
  if (!existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-length': statSync(file).size });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}

/** The bytes the server would normally send for `path` (to build replays and bombs from). */
export function servedBytes(root: string, path: string): Buffer {
  return readFileSync(join(root, path));
}

/**
 * A zstd frame header (no declared size, 1 KiB window): followed by zeros, which read as empty raw
 * blocks, it is a valid frame that never ends and inflates to nothing.
 */
export const ENDLESS_ZSTD_FRAME_HEAD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00]);

/** Responds with a chunked body that never ends (until the client goes away): `prefix`, then `fill` bytes. */
export function endlessBody(res: ServerResponse, chunkBytes = 64 * 1024, prefix?: Buffer, fill = 0x41): void {
  const chunk = Buffer.alloc(chunkBytes, fill);
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  if (prefix) res.write(prefix);
  const pump = (): void => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

/** Claims `claimedBytes` in Content-Length and streams zeros for as long as the client reads. */
export function hugeContentLength(res: ServerResponse, claimedBytes: number): void {
  res.writeHead(200, { 'content-length': claimedBytes });
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  const pump = (): void => {
    while (!res.destroyed && sent < claimedBytes) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

/** Sends `body` with its true Content-Length, one byte every `intervalMs`. */
export function slowDrip(res: ServerResponse, body: Buffer, intervalMs: number): void {
  res.writeHead(200, { 'content-length': body.length });
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed || i >= body.length) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(body.subarray(i, ++i));
  }, intervalMs);
  res.on('close', () => clearInterval(timer));
}

/** Answers with a redirect to `location` (absolute or relative). */
export function redirect(res: ServerResponse, location: string, status = 302): void {
  res.writeHead(status, { location, 'content-length': 0 }).end();
}

/** Sends exact bytes with their length (a replayed or forged file). */
export function sendBytes(res: ServerResponse, body: Buffer): void {
  res.writeHead(200, { 'content-length': body.length }).end(body);
}

export interface MeasuredResult extends CliResult {
  /** Peak resident set size of the CLI process, KiB (from /usr/bin/time -f %M). */
  readonly peakRssKiB: number;
}

/**
 * Runs the compiled CLI under `/usr/bin/time -f %M` and reports its peak RSS. `timeoutMs` kills a
 * run that hangs (the result then has signal SIGKILL), so a hang fails the test instead of the suite.
 * `wrapper` goes between the timer and node: a command that sets something up and execs the rest.
 */
export function runCliMeasured(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; wrapper?: readonly string[] } = {},
): Promise<MeasuredResult> {
  return new Promise((resolve, reject) => {
    const argv = ['-f', '@@RSS %M', ...(options.wrapper ?? []), process.execPath, ARBOR, ...args];
    const child = spawn('/usr/bin/time', argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      const match = /@@RSS (\d+)\s*$/.exec(stderr);
      const cleaned = stderr.replace(/(Command exited with non-zero status \d+\n)?@@RSS \d+\s*$/, '');
      // /usr/bin/time exits with the child's status; a child killed by a signal shows as 128+N.
      resolve({ exitCode, signal, stdout, stderr: cleaned, peakRssKiB: match ? Number(match[1]) : Number.NaN });
    });
  });
}

/**
 * A real zstd frame of `prefix` then `size` zero bytes (a decompression bomb: 3 GiB take about
 * 100 KB), made by streaming compression so the test never holds the inflated bytes. With
 * `declareSize` false the frame header carries no content size, as a streaming compressor writes.
 */
export function zstdZeroBomb(size: number, declareSize: boolean, prefix: Buffer = Buffer.alloc(0)): Buffer {
  const cctx = new zstdBinding.CCtx();
  cctx.setParameter(zstdBinding.CParameter.compressionLevel, 1);
  cctx.setParameter(zstdBinding.CParameter.contentSizeFlag, declareSize ? 1 : 0);
  if (declareSize) cctx.setPledgedSrcSize(prefix.length + size);
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  const dst = Buffer.alloc(zstdBinding.compressBound(zeros.length));
  const out: Buffer[] = [];
  const pieces = function* (): Generator<Buffer> {
    if (prefix.length > 0) yield prefix;
    for (let left = size; left > 0; left -= zeros.length) yield zeros.subarray(0, Math.min(zeros.length, left));
  };
  for (const piece of pieces()) {
    let src = piece;
    while (src.length > 0) {
      const [, produced, consumed] = cctx.compressStream2(dst, src, zstdBinding.EndDirective.continue);
      out.push(Buffer.from(dst.subarray(0, produced)));
      src = src.subarray(consumed);
    }
  }
  for (;;) {
    const [remaining, produced] = cctx.compressStream2(dst, Buffer.alloc(0), zstdBinding.EndDirective.end);
    out.push(Buffer.from(dst.subarray(0, produced)));
    if (remaining === 0) return Buffer.concat(out);
  }
}

/** Who is at the other end of a TCP connection to a test server on 127.0.0.1 (the client process). */
export interface PeerProcess {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups. */
  readonly groups: number[];
  /** Effective capabilities, hex as /proc shows them. */
  readonly capEff: string;
}

/**
 * The process owning the client end of `socket` (a connection accepted by a server in this
 * process): its socket inode from /proc/net/tcp, then the process holding that inode among the
 * /proc/PID/fd links. Needs to read other processes' fds (root, or the same user). Null when the
 * connection is gone before it is found.
 */
export function peerProcess(socket: Socket): PeerProcess | null {
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  // The client's local address is the server's remote one: 0100007F:PORT is 127.0.0.1:PORT.
  const local = `0100007F:${hex(socket.remotePort ?? 0)}`;
  const remote = `0100007F:${hex(socket.localPort ?? 0)}`;
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === local && f[2] === remote);
  const inode = line?.[9];
  if (inode === undefined) return null;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    const holds = fds.some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): string[] =>
      (new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/);
    return {
      pid: Number(pid),
      uid: Number(field('Uid')[1]), // effective
      gid: Number(field('Gid')[1]),
      groups: field('Groups')
        .filter((g) => g !== '')
        .map(Number),
      capEff: field('CapEff')[0] ?? '',
    };
  }
  return null;
}
