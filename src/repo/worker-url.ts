// Where a worker thread's compiled script is, shared by the commit and checkout pools.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The URL of the compiled worker `name` (e.g. "commit-worker.js") beside this module, or undefined
 * when it cannot run: tests that execute the TypeScript sources, or `disableVar` set to "0".
 * Callers then do the same work on the main thread.
 */
export function compiledWorker(name: string, disableVar: string): URL | undefined {
  const url = new URL(`./${name}`, import.meta.url);
  if (!import.meta.url.endsWith('.js') || !existsSync(fileURLToPath(url)) || process.env[disableVar] === '0')
    return undefined;
  return url;
}
