// `arbor fleetlock serve` run as a child process for fleet tests: started on a free port, its JSON request
// log collected, stopped with SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ARBOR } from './cli.js';

export interface Served {
  readonly url: string;
  readonly child: ChildProcess;
  readonly log: Record<string, unknown>[];
}

/** `arbor fleetlock serve` on a free port of 127.0.0.1, under `prefix`; its request log is collected. */
export async function serveFleetLock(endpoints: readonly string[], prefix: string, ...args: string[]): Promise<Served> {
  const child = spawn(
    process.execPath,
    [
      ARBOR,
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
  const log: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`fleetlock serve exited ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      const event = JSON.parse(line) as Record<string, unknown>;
      if (typeof event.listening === 'string') resolve(event.listening);
      else log.push(event);
    });
  });
  return { url, child, log };
}

/** SIGTERM, and wait for the exit. */
export const stopFleetLock = (s: Served): Promise<void> =>
  new Promise((r) => {
    if (s.child.exitCode !== null || s.child.signalCode !== null) return r();
    s.child.once('exit', () => r());
    s.child.kill('SIGTERM');
  });
