// A memory-limited cgroup for constrained-host tests: cgroup v2 (memory.max, memory.events) where
// the unified hierarchy has the memory controller, else the v1 memory hierarchy (limit_in_bytes,
// oom_control). The test makes the directory, runs the CLI inside it and removes it afterwards.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT } from './cli.js';
import { type MeasuredResult, runCliMeasured } from './hostile.js';

const V2_ROOT = '/sys/fs/cgroup';
const V1_ROOT = '/sys/fs/cgroup/memory';

function hierarchy(): { version: 1 | 2; root: string } | null {
  if (!IS_ROOT) return null;
  const controllers = join(V2_ROOT, 'cgroup.controllers');
  if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('memory'))
    return { version: 2, root: V2_ROOT };
  if (existsSync(join(V1_ROOT, 'memory.limit_in_bytes'))) return { version: 1, root: V1_ROOT };
  return null;
}

/** Whether this machine lets the test make a memory-limited cgroup (root and a memory controller). */
export const HAVE_MEMORY_CGROUP = hierarchy() !== null;

export interface MemoryCgroup {
  readonly path: string;
  /** Processes the kernel's OOM killer killed in this cgroup so far. */
  oomKills(): number;
  /** Runs the compiled CLI inside the cgroup under `/usr/bin/time -f %M` (its peak RSS). */
  runCli(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<MeasuredResult>;
  /** Removes the cgroup (it must hold no process any more). */
  remove(): void;
}

/** Makes a cgroup named `name` limited to `limitBytes` of memory (no swap to spill to). */
export function makeMemoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const h = hierarchy();
  if (h === null) throw new Error('no memory cgroup controller this test may use');
  const path = join(h.root, name);
  mkdirSync(path);
  if (h.version === 2) {
    writeFileSync(join(path, 'memory.max'), String(limitBytes));
    if (existsSync(join(path, 'memory.swap.max'))) writeFileSync(join(path, 'memory.swap.max'), '0');
  } else {
    writeFileSync(join(path, 'memory.limit_in_bytes'), String(limitBytes));
    writeFileSync(join(path, 'memory.swappiness'), '0');
  }
  const counter = (file: string, key: string): number => {
    const line = readFileSync(join(path, file), 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${key} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };
  return {
    path,
    oomKills: () =>
      h.version === 2 ? counter('memory.events', 'oom_kill') : counter('memory.oom_control', 'oom_kill'),
    runCli: (args, env = {}) => runInCgroup(path, args, env),
    remove: () => rmdirSync(path),
  };
}

/** The shell moves itself into the cgroup and then becomes node, so every byte of the CLI is charged there. */
function runInCgroup(cgroup: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<MeasuredResult> {
  const enter = 'echo $$ > "$0/cgroup.procs" && exec "$@"';
  return runCliMeasured(args, { env, wrapper: ['sh', '-c', enter, cgroup] });
}
