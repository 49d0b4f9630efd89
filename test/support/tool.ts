// Running the system tools the boot tests build with (mkfs, sfdisk, mtools, grub-mkimage, cpio…):
// one synchronous call that fails loudly with the tool's stderr.
import { spawnSync } from 'node:child_process';

// mkfs.*, sfdisk, depmod live in sbin, which a non-login PATH may lack.
const PATH = [process.env.PATH ?? '/usr/bin:/bin', '/usr/sbin', '/sbin'].join(':');

export interface ToolOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
}

/** Runs COMMAND ARGS to the end; throws with its stderr unless it exits 0. Returns stdout bytes. */
export function runToolBytes(command: string, args: readonly string[], options: ToolOptions = {}): Buffer {
  const r = spawnSync(command, args, {
    cwd: options.cwd,
    env: { ...process.env, PATH, ...options.env },
    input: options.input,
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${command}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) {
    const how = r.signal === null ? `exited ${r.status}` : `was killed by ${r.signal}`;
    throw new Error(`${command} ${args.join(' ')} ${how}:\n${r.stderr.toString()}`);
  }
  return r.stdout;
}

/** runToolBytes with stdout decoded as UTF-8. */
export function runTool(command: string, args: readonly string[], options: ToolOptions = {}): string {
  return runToolBytes(command, args, options).toString('utf8');
}

/** True when COMMAND is found on PATH (or is an existing absolute path). */
export function hasCommand(command: string): boolean {
  return (
    spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore', env: { ...process.env, PATH } })
      .status === 0
  );
}
