// Helpers for integration tests: run the built CLI, make temp dirs and repositories.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ARBOR = join(ROOT, 'bin/arbor.js');
export const IS_ROOT = process.getuid?.() === 0;

export interface CliResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `arbor ARGS` (the compiled CLI) and collects its output. */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): CliResult {
  const r = spawnSync(process.execPath, [ARBOR, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    input: options.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { exitCode: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Like runCli but asynchronous, for concurrent runs; `onSpawn` gets the child (to kill it); `env` is added. */
export function runCliAsync(
  args: readonly string[],
  onSpawn?: (child: ReturnType<typeof spawn>) => void,
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [ARBOR, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (exitCode, signal) => resolvePromise({ exitCode, signal, stdout, stderr }));
    onSpawn?.(child);
  });
}

/** Runs the CLI and fails the test with its stderr unless it exits 0; returns trimmed stdout. */
export function arbor(...args: string[]): string {
  const r = runCli(args);
  if (r.exitCode !== 0) throw new Error(`arbor ${args.join(' ')} exited ${r.exitCode}:\n${r.stderr}`);
  return r.stdout.trim();
}

/** Commits DIR to REF in REPO as root-owned, as a composed tree is (EXTRA: more commit flags); returns the checksum. */
export function commitRootOwned(repo: string, ref: string, dir: string, ...extra: string[]): string {
  return arbor(
    'commit',
    '--repo',
    repo,
    '-b',
    ref,
    '-s',
    ref,
    '--tree',
    `dir=${dir}`,
    '--owner-uid',
    '0',
    '--owner-gid',
    '0',
    ...extra,
  );
}

/** A fresh temporary directory under /var/tmp (a real disk filesystem with user xattrs), removed by the returned cleanup. */
export function tempDir(prefix = 'arbor-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(process.env.ARBOR_TEST_TMP ?? '/var/tmp', prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs a shell command, failing loudly. */
export function sh(command: string, cwd?: string): string {
  const r = spawnSync('bash', ['-c', command], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}
