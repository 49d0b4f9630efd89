// A real nginx serving a directory as static files on 127.0.0.1, for pull tests and the transfer
// benchmark, and a TCP fault proxy put in front of it that resets connections mid-response.
// Each nginx gets a free port, its own prefix dir (config, pid, logs, temp paths) and dies with us.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const NGINX = process.env.ARBOR_NGINX ?? '/usr/sbin/nginx';
export const HAVE_NGINX = existsSync(NGINX);

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 5;

export interface NginxOptions {
  /** Exact URL path → status answered instead of the file; 444 closes the connection without a response. */
  errorLocations?: Record<string, number>;
  /** Write one line per request here: `$request_method $uri $status $body_bytes_sent $bytes_sent`. */
  accessLog?: string;
  /** nginx `worker_processes` (default 1; `auto` is one per core). */
  workerProcesses?: number | 'auto';
}

export interface NginxServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** The prefix dir holding nginx.conf, the pid file, error.log and the temp paths. */
  readonly prefix: string;
  stop(): Promise<void>;
}

/** One access log line as written with NginxOptions.accessLog. */
export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  bodyBytes: number;
  /** Body plus response headers. */
  bytes: number;
}

/** Parses a log written with NginxOptions.accessLog; missing file → no entries. */
export function readAccessLog(path: string): AccessLogEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [method = '', path = '', status, bodyBytes, bytes] = line.split(' ');
      return { method, path, status: Number(status), bodyBytes: Number(bodyBytes), bytes: Number(bytes) };
    });
}

/** A double-quoted nginx config string. */
const quote = (text: string): string => `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;

function renderConfig(prefix: string, root: string, port: number, opts: NginxOptions): string {
  const errorLocations = Object.entries(opts.errorLocations ?? {}).map(([path, status]) => {
    if (!path.startsWith('/') || !Number.isInteger(status)) throw new Error(`bad error location ${path} → ${status}`);
    return `    location = ${quote(path)} { return ${status}; }`;
  });
  const accessLog =
    opts.accessLog === undefined ? 'access_log off;' : `access_log ${quote(resolve(opts.accessLog))} transfer;`;
  return [
    // As root nginx would switch workers to nobody, who cannot read a repo under a 0700 temp dir.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `worker_processes ${opts.workerProcesses ?? 1};`,
    `pid ${quote(join(prefix, 'nginx.pid'))};`,
    `error_log ${quote(join(prefix, 'error.log'))} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  default_type application/octet-stream;',
    "  log_format transfer '$request_method $uri $status $body_bytes_sent $bytes_sent';",
    `  ${accessLog}`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${quote(join(prefix, t))};`),
    '  sendfile on;',
    '  tcp_nopush on;',
    '  keepalive_requests 100000;',
    '  keepalive_timeout 60s;',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    server_name localhost;',
    `    root ${quote(resolve(root))};`,
    '    autoindex off;',
    ...errorLocations,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A port the kernel just handed out for 127.0.0.1; another process may still take it before nginx binds it. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolveConnect(true);
    });
    socket.once('error', () => resolveConnect(false));
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

/** Polls until the port accepts connections; 'exited' when nginx died first (its stderr says why). */
async function waitReady(child: ChildProcess, port: number): Promise<'ready' | 'exited'> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    if (await canConnect(port)) return 'ready';
    await delay(20); // polling: nginx has no readiness notification without systemd
  }
  throw new Error(`nginx did not accept connections on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms`);
}

/** Kills the whole process group (master and workers): workers outlive a SIGKILLed master. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error; // ESRCH: already gone
  }
}

/**
 * Starts the real nginx in the foreground serving `root` on 127.0.0.1 at a free port; resolves
 * once the port accepts connections. stop() shuts it down (SIGTERM, then SIGKILL) and removes its prefix.
 */
export async function startNginx(root: string, opts: NginxOptions = {}): Promise<NginxServer> {
  if (!HAVE_NGINX) throw new Error(`${NGINX} not found: install the Debian package nginx-light or nginx`);
  const prefix = mkdtempSync(join(tmpdir(), 'arbor-nginx-'));
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, t));
  const conf = join(prefix, 'nginx.conf');
  let lastError = '';
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    writeFileSync(conf, renderConfig(prefix, root, port, opts));
    const child = spawn(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // own process group, so stop() and our exit can kill the workers too
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const killOnExit = (): void => killGroup(child, 'SIGKILL');
    process.once('exit', killOnExit);
    if ((await waitReady(child, port)) === 'ready') {
      return {
        url: `http://127.0.0.1:${port}`,
        port,
        prefix,
        async stop() {
          process.removeListener('exit', killOnExit);
          killGroup(child, 'SIGTERM'); // fast shutdown: idle keep-alive connections would delay SIGQUIT
          const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_TIMEOUT_MS);
          await exited(child);
          clearTimeout(timer);
          rmSync(prefix, { recursive: true, force: true });
        },
      };
    }
    process.removeListener('exit', killOnExit);
    const log = existsSync(join(prefix, 'error.log')) ? readFileSync(join(prefix, 'error.log'), 'utf8') : '';
    lastError = `${stderr}${log}`.trim();
    // Someone took the port between freePort() and nginx's bind: pick another.
    if (!/Address already in use/.test(lastError)) break;
  }
  rmSync(prefix, { recursive: true, force: true });
  throw new Error(`nginx failed to start: ${lastError || '(no output)'}`);
}

export interface Fault {
  /** Requests whose URL path (query string excluded) matches are faulted. */
  match(path: string): boolean;
  /** Response body bytes passed through before the reset (the head always passes; a shorter body passes whole). */
  afterBodyBytes: number;
  /** Fault only the first N matching requests (default: all), so a retry can succeed. */
  times?: number;
}

export interface FaultProxy {
  readonly url: string;
  readonly port: number;
  /** Connections reset so far. */
  readonly resets: number;
  stop(): Promise<void>;
}

/** Splits a byte stream into HTTP/1.1 message heads and bodies sized by Content-Length. */
class MessageFramer {
  private head = Buffer.alloc(0);
  /** Body bytes of the current message still to come; null while reading a head. */
  private bodyLeft: number | null = null;
  private bodyDone = 0;

  /**
   * Feeds bytes; for each complete head calls onHead (which returns the body length) and reports
   * every byte with the offset inside the current message's body (-1 for head bytes).
   */
  constructor(
    private readonly onHead: (head: string) => number,
    private readonly onBytes: (chunk: Buffer, bodyOffset: number) => boolean,
  ) {}

  /** Returns false when onBytes asked to stop. */
  push(data: Buffer): boolean {
    let rest = data;
    while (rest.length > 0) {
      if (this.bodyLeft === null) {
        const joined = Buffer.concat([this.head, rest]);
        const end = joined.indexOf('\r\n\r\n');
        if (end < 0) {
          this.head = joined;
          return this.onBytes(rest, -1);
        }
        const taken = end + 4 - this.head.length; // bytes of `rest` that finish the head
        this.bodyLeft = this.onHead(joined.subarray(0, end).toString('latin1'));
        this.bodyDone = 0;
        this.head = Buffer.alloc(0);
        if (!this.onBytes(rest.subarray(0, taken), -1)) return false;
        rest = rest.subarray(taken);
        if (this.bodyLeft === 0) this.bodyLeft = null;
      } else {
        const n = Math.min(this.bodyLeft, rest.length);
        if (!this.onBytes(rest.subarray(0, n), this.bodyDone)) return false;
        this.bodyDone += n;
        this.bodyLeft -= n;
        rest = rest.subarray(n);
        if (this.bodyLeft === 0) this.bodyLeft = null;
      }
    }
    return true;
  }
}

const contentLength = (head: string): number => Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);

/** Pipes a → b with backpressure, passing each chunk through `forward` first. */
function relay(a: Socket, b: Socket, forward: (chunk: Buffer) => void): void {
  a.on('data', (chunk: Buffer) => forward(chunk));
  b.on('drain', () => a.resume());
  a.on('end', () => b.end());
}

/**
 * A TCP proxy on 127.0.0.1 in front of upstreamPort that, for each request matching fault.match,
 * passes the response head and fault.afterBodyBytes of its body, then resets the client connection
 * (RST, as a crashed server or middlebox would). GET/HEAD keep-alive traffic only; no chunked bodies.
 */
export async function startFaultProxy(upstreamPort: number, fault: Fault): Promise<FaultProxy> {
  let resets = 0;
  let faultsLeft = fault.times ?? Infinity;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    // Requests in flight, in order: responses on one connection come back in request order.
    const pending: { faulted: boolean; head: boolean }[] = [];
    let current: { faulted: boolean; head: boolean } | undefined;
    const requests = new MessageFramer(
      (head) => {
        const [method = '', target = ''] = head.split('\r\n', 1)[0]!.split(' ');
        const faulted = faultsLeft > 0 && fault.match(target.split('?', 1)[0]!);
        if (faulted) faultsLeft--;
        pending.push({ faulted, head: method === 'HEAD' });
        return contentLength(head);
      },
      (chunk) => {
        if (!upstream.write(chunk)) client.pause();
        return true;
      },
    );
    const responses = new MessageFramer(
      (head) => {
        current = pending.shift();
        const status = Number(head.split(' ', 2)[1]);
        const bodiless = current?.head === true || status === 204 || status === 304 || (status >= 100 && status < 200);
        return bodiless ? 0 : contentLength(head);
      },
      (chunk, bodyOffset) => {
        if (current?.faulted && bodyOffset >= 0 && bodyOffset + chunk.length >= fault.afterBodyBytes) {
          const keep = chunk.subarray(0, Math.max(0, fault.afterBodyBytes - bodyOffset));
          resets++;
          upstream.destroy();
          if (keep.length === 0) client.resetAndDestroy();
          else client.write(keep, () => client.resetAndDestroy());
          return false;
        }
        if (!client.write(chunk)) upstream.pause();
        return true;
      },
    );
    relay(client, upstream, (chunk) => requests.push(chunk));
    relay(upstream, client, (chunk) => {
      if (!client.destroyed) responses.push(chunk);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => r());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('fault proxy has no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    get resets() {
      return resets;
    },
    stop() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
