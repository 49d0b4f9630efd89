// `arbor fleetlock serve` run as a child process for fleet tests and the FleetLock benchmark: started on a
// free port, its JSON request log collected (or counted), stopped with SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ARBOR } from './cli.js';

export interface Served {
  readonly url: string;
  readonly child: ChildProcess;
  readonly log: Record<string, unknown>[];
}

/**
 * `node ARBOR fleetlock serve` on a free port of 127.0.0.1, under `prefix`, with `args`; resolves with its URL
 * once it listens. Every later stdout line (one per request) goes to `onLine`.
 */
export async function spawnFleetLock(
  arbor: string,
  endpoints: readonly string[],
  prefix: string,
  args: readonly string[],
  onLine: (line: string) => void,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      arbor,
      'fleetlock',
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--etcd',
      endpoints.join(','),
      '--prefix',
      prefix,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  let listening = false;
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`fleetlock serve exited ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      if (!listening) {
        const event = JSON.parse(line) as { listening?: unknown };
        if (typeof event.listening === 'string') {
          listening = true;
          return resolve(event.listening);
        }
      }
      onLine(line);
    });
  });
  return { url, child };
}

/** `arbor fleetlock serve` on a free port of 127.0.0.1, under `prefix`; its request log is collected. */
export async function serveFleetLock(endpoints: readonly string[], prefix: string, ...args: string[]): Promise<Served> {
  const log: Record<string, unknown>[] = [];
  const { url, child } = await spawnFleetLock(ARBOR, endpoints, prefix, args, (line) => {
    log.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { url, child, log };
}

/** SIGTERM, and wait for the exit. */
export const stopFleetLock = (s: { readonly child: ChildProcess }): Promise<void> =>
  new Promise((r) => {
    if (s.child.exitCode !== null || s.child.signalCode !== null) return r();
    s.child.once('exit', () => r());
    s.child.kill('SIGTERM');
  });
