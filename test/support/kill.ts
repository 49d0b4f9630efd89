// Running the CLI against the clock: measure how long a command takes, or SIGKILL it part-way.
import { type CliResult, runCliAsync } from './cli.js';

/** Runs `arbor ARGS` to the end and reports how long it took (process start to exit). */
export async function timeCli(args: readonly string[]): Promise<{ result: CliResult; elapsedMs: number }> {
  const start = performance.now();
  const result = await runCliAsync(args);
  return { result, elapsedMs: performance.now() - start };
}

/**
 * Runs `arbor ARGS` and sends SIGKILL `delayMs` after spawning it. `killed` is false when the
 * command exited first (then `result` is its ordinary outcome).
 */
export async function runCliKilledAfter(
  args: readonly string[],
  delayMs: number,
): Promise<{ result: CliResult; killed: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const result = await runCliAsync(args, (child) => {
    timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
  });
  clearTimeout(timer);
  return { result, killed: result.signal === 'SIGKILL' };
}
