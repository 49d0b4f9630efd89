// bench/lib/proc.ts — owns child processes for the benchmark harness: running a
// command that must succeed (failing loudly with its stderr), timing a command
// with GNU time (wall, user, sys, max RSS of the child), and settling the page
// cache (sync + drop_caches) before a timed step.
import { spawn, type StdioOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timingText } from './format.js';

const GNU_TIME = '/usr/bin/time';

export interface Timing {
  wallS: number;
  userS: number;
  sysS: number;
  cpuS: number;
  maxRssMiB: number;
  /** CPU seconds used on the machine during the step by everything but the child: background noise. */
  otherCpuS: number;
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Send the child's stdout and stderr to our stderr instead of capturing them. */
  passthrough?: boolean;
}

export class CommandError extends Error {
  override name = 'CommandError';
}

export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

function spawnCollect(argv: readonly string[], opts: RunOptions): Promise<Finished> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  const stdio: StdioOptions = opts.passthrough ? ['ignore', 2, 2] : ['ignore', 'pipe', 'pipe'];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio, env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', (e) => reject(new CommandError(`cannot start ${shellQuote(argv)}: ${e.message}`)));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function failure(argv: readonly string[], f: Finished, passthrough = false): CommandError {
  const how = f.signal ? `killed by ${f.signal}` : `exited with status ${f.code}`;
  const stderr = passthrough ? '(stderr above)' : f.stderr.trim().slice(-4000) || '(no stderr)';
  return new CommandError(`command failed (${how}): ${shellQuote(argv)}\n${stderr}`);
}

/** Runs argv to completion; returns its stdout; throws a CommandError naming it on failure. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const f = await spawnCollect(argv, opts);
  if (f.code !== 0) throw failure(argv, f, opts.passthrough);
  return f.stdout;
}

/** True when argv starts and exits 0. */
export async function succeeds(argv: readonly string[]): Promise<boolean> {
  try {
    await run(argv);
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds the whole machine has been busy, from /proc/stat (USER_HZ = 100). */
function machineBusyCpuS(): number {
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = readFileSync('/proc/stat', 'utf8')
    .split('\n', 1)[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

function parseTimeOutput(text: string, argv: readonly string[]): Omit<Timing, 'otherCpuS'> {
  const last = text.trim().split('\n').at(-1) ?? '';
  const fields = last.trim().split(/\s+/).map(Number);
  const [wallS, userS, sysS, maxRssKiB] = fields;
  if (fields.length !== 4 || fields.some((n) => !Number.isFinite(n)) || maxRssKiB === undefined) {
    throw new CommandError(`cannot parse GNU time output ${JSON.stringify(text)} for ${shellQuote(argv)}`);
  }
  return { wallS: wallS!, userS: userS!, sysS: sysS!, cpuS: userS! + sysS!, maxRssMiB: maxRssKiB / 1024 };
}

export function requireGnuTime(): void {
  if (!existsSync(GNU_TIME)) {
    throw new CommandError(`${GNU_TIME} not found: install the Debian package \`time\` (apt-get install time)`);
  }
}

/** Runs argv under GNU time; throws like run() on failure. */
export async function runTimed(argv: readonly string[]): Promise<Timing> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-bench-time-'));
  const out = join(dir, 'time');
  try {
    const busyBefore = machineBusyCpuS();
    const f = await spawnCollect([GNU_TIME, '-f', '%e %U %S %M', '-o', out, '--', ...argv], {});
    const busy = machineBusyCpuS() - busyBefore;
    if (f.code !== 0) throw failure(argv, f);
    const t = parseTimeOutput(readFileSync(out, 'utf8'), argv);
    return { ...t, otherCpuS: Math.max(0, busy - t.cpuS) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** sync, then try to drop the page cache; returns whether the caches were dropped. */
export async function settlePageCache(): Promise<boolean> {
  await run(['sync']);
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** An arbor command failed in a timed pass: the pass goes on, the step shows this text. */
export class StepFailed extends Error {
  override name = 'StepFailed';
}

/**
 * `failed: <first stderr line>` from a CommandError (its first line is the command). An
 * `error[…]` line or a thrown JS error's `XError: …` line wins over the stack-trace location Node
 * prints before it.
 */
export function failureText(error: unknown): string {
  const lines = (error instanceof Error ? error.message : String(error)).split('\n');
  const stderr = lines
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== '(no stderr)');
  const line = stderr.find((l) => /^error\b/i.test(l) || /^\w*Error\b/.test(l)) ?? stderr[0] ?? lines[0] ?? '';
  return `failed: ${line.slice(0, 160)}`;
}

/** Runs one command of a pass: the reference tool's failures propagate (the baseline must be whole); arbor's become StepFailed. */
export async function attempt<T>(tool: { readonly name: string }, what: () => Promise<T>): Promise<T> {
  try {
    return await what();
  } catch (error) {
    if (tool.name !== 'arbor' || !(error instanceof CommandError)) throw error;
    throw new StepFailed(failureText(error));
  }
}

/**
 * One timed step: page cache settled (unless `dropCaches` is false), the command logged (as
 * `shown`, default argv quoted), run under GNU time, its figures logged.
 */
export async function timeStep(
  log: (line: string) => void,
  label: string,
  argv: string[],
  options: { readonly shown?: string; readonly dropCaches?: boolean } = {},
): Promise<{ timing: Timing; dropped: boolean }> {
  const dropped = options.dropCaches === false ? true : await settlePageCache();
  log(`${label}: ${options.shown ?? shellQuote(argv)}`);
  const timing = await runTimed(argv);
  log(`${label}: ${timingText(timing)}`);
  return { timing, dropped };
}

/** A small measurement in ms; CPU and peak RSS are null where only the harness clock measured it. */
export interface Sample {
  wallMs: number;
  cpuMs: number | null;
  rssMiB: number | null;
}

/**
 * One process under GNU time (CPU, peak RSS), its wall time taken here with the monotonic clock
 * (GNU time prints 10 ms steps): includes spawning /usr/bin/time, which `spawnOverheadMs` measures.
 */
export async function timeProcess(argv: readonly string[]): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-bench-time-'));
  const out = join(dir, 'time');
  try {
    const started = performance.now();
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
      const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', out, '--', ...argv], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      child.on('error', (e) => fail(new CommandError(`cannot start ${shellQuote(argv)}: ${e.message}`)));
      child.on('close', (c) => done({ code: c, stderr: err }));
    });
    const wallMs = performance.now() - started;
    if (code !== 0)
      throw new CommandError(
        `command failed (exited with status ${code}): ${shellQuote(argv)}\n${stderr.trim().slice(-4000) || '(no stderr)'}`,
      );
    const [, user, sys, rssKiB] = readFileSync(out, 'utf8').trim().split('\n').at(-1)!.trim().split(/\s+/).map(Number);
    return { wallMs, cpuMs: ((user ?? 0) + (sys ?? 0)) * 1000, rssMiB: (rssKiB ?? 0) / 1024 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
