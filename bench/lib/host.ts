// bench/lib/host.ts — owns the description of the machine a benchmark ran on
// (nproc, free -g, uname -r, CPU model, filesystem holding the scratch data), and the mounts
// below a scratch directory that a killed run may have left.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { run } from './proc.js';

export interface Machine {
  nproc: number;
  memTotalGiB: number;
  kernel: string;
  cpuModel: string;
  scratchFs: string;
}

function cpuModel(): string {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  return /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? 'unknown';
}

async function memTotalGiB(): Promise<number> {
  const mem = (await run(['free', '-g'])).split('\n').find((l) => l.startsWith('Mem:'));
  return Number(mem?.split(/\s+/)[1]);
}

/** "ext4 (/dev/vda)" for the filesystem holding path. */
async function filesystemOf(path: string): Promise<string> {
  const lines = (await run(['df', '--output=fstype,source', path])).trim().split('\n');
  const [fstype, source] = lines.at(-1)?.trim().split(/\s+/) ?? [];
  return `${fstype ?? '?'} (${source ?? '?'})`;
}

export async function describeMachine(scratch: string): Promise<Machine> {
  return {
    nproc: Number((await run(['nproc'])).trim()),
    memTotalGiB: await memTotalGiB(),
    kernel: (await run(['uname', '-r'])).trim(),
    cpuModel: cpuModel(),
    scratchFs: await filesystemOf(scratch),
  };
}

/** Mount points (as /proc/self/mounts spells them, octal escapes decoded) at or below dir. */
export function mountsBelow(dir: string): string[] {
  const root = resolve(dir);
  const decode = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => decode(l.split(' ')[1] ?? ''))
    .filter((m) => m === root || m.startsWith(`${root}/`))
    .sort((x, y) => y.length - x.length);
}
