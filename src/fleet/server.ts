// The FleetLock HTTP server: POST /v1/pre-reboot and /v1/steady-state, answered from the semaphores in
// etcd (store.ts). Stateless itself, so several can run behind one name and any can be restarted: a
// slot lives in etcd, never in a server's memory. Every request is logged as one JSON line.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FleetLockError, type FleetLockRequest, MAX_BODY_BYTES, parseRequest, routeOf } from './protocol.js';
import { type Semaphore, lock, unlock } from './semaphore.js';
import { type BudgetOptions, recordReport } from './budget.js';
import type { SemaphoreStore } from './store.js';

/** Connections waiting to be accepted, at most (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  /** Slots of each group clients may name; any other group is refused. */
  readonly groups: ReadonlyMap<string, number>;
  readonly store: SemaphoreStore;
  /** A holder older than this (seconds) is called stuck in the full-semaphore error and the log. */
  readonly stuckAfterSeconds: number;
  readonly log: (event: Record<string, unknown>) => void;
  /** Where trial reports go (/v1/report); absent: the endpoint answers reports_disabled. */
  readonly reports?: BudgetOptions;
  /** The clock, seconds since the epoch. */
  readonly now?: () => number;
}

/** Starts listening; resolves with the server and the address it is bound to. */
export async function startFleetLockServer(options: ServerOptions): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((req, res) => {
    void handle(options, req, res);
  });
  // A client that stops sending must not hold a socket for long: the bodies are tiny.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A fleet asks at once when a release lands: queue that many connections (the kernel caps the backlog
    // at net.core.somaxconn) rather than drop SYNs, which clients retry only after 1, 3, 7… seconds.
    server.listen({ port: options.port, host: options.host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, address: server.address() as AddressInfo };
}

async function handle(options: ServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  let request: FleetLockRequest | null = null;
  try {
    const op = routeOf(req.method, req.url);
    const body = await readBody(req);
    request = parseRequest(op, req.headers['fleet-lock-protocol'], body);
    const outcome = await serve(options, request);
    // One request per connection: clients talk to the server a few times per update, and a kept-alive
    // socket the server times out just as a client reuses it would fail that client's request.
    res.writeHead(200, { 'content-length': '0', connection: 'close' }).end();
    options.log({ ...request, status: 200, outcome, ms: Date.now() - started });
  } catch (error) {
    const e =
      error instanceof FleetLockError
        ? error
        : new FleetLockError('store_unavailable', `internal error: ${(error as Error).message}`);
    const body = e.body();
    res
      .writeHead(e.status, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        connection: 'close',
      })
      .end(body);
    options.log({
      ...(request ?? { path: req.url }),
      status: e.status,
      kind: e.kind,
      value: e.value,
      ms: Date.now() - started,
    });
  }
}

async function serve(options: ServerOptions, request: FleetLockRequest): Promise<string> {
  const slots = options.groups.get(request.group);
  if (slots === undefined)
    throw new FleetLockError(
      'unknown_group',
      `unknown group '${request.group}' (this server has: ${[...options.groups.keys()].join(', ')})`,
    );
  const now = (options.now ?? (() => Date.now() / 1000))();
  if (request.op === 'report') {
    if (options.reports === undefined || request.report === undefined)
      throw new FleetLockError('reports_disabled', 'this server takes no trial reports (start it with --releases)');
    return recordReport(options.reports, request.id, request.group, request.report, now);
  }
  if (request.op === 'steady-state') {
    const released = await options.store.update(request.group, slots, (sem) => {
      const r = unlock(sem, request.id);
      return { next: r.next, result: r.released };
    });
    return released ? 'released' : 'not-held';
  }
  const { outcome, before } = await options.store.update(request.group, slots, (sem) => {
    const r = lock(sem, request.id, slots, now);
    return { next: r.next, result: { outcome: r.outcome, before: sem } };
  });
  if (outcome === 'full') throw fullError(request.group, before, slots, now, options.stuckAfterSeconds);
  return outcome;
}

function fullError(group: string, sem: Semaphore, slots: number, now: number, stuckAfter: number): FleetLockError {
  const stuck = sem.holders.filter((h) => now - h.since > stuckAfter).length;
  return new FleetLockError(
    'failed_lock_semaphore_full',
    `semaphore currently full: ${sem.holders.length} of ${slots} slots of group '${group}' are held` +
      (stuck > 0 ? `, ${stuck} for longer than ${stuckAfter} s (see arbor fleetlock status)` : ''),
  );
}

/** The request body, at most MAX_BODY_BYTES. */
async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES)
    throw new FleetLockError('body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new FleetLockError('body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
