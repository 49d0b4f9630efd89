// bench/privsep.ts — what privilege-separated fetching costs: pulls of a tree of a few thousand
// files from a real nginx into fresh repositories as root, with the fetch helper
// (ARBOR_FETCH_PRIVSEP=1) and without it (=0), alternating, and the ratios of the median wall
// times and CPU times (user + system of the pull and the helper, from /usr/bin/time; steadier than
// wall time on a shared machine). Run as root after a build:
// `node dist/bench/privsep.js [--files N] [--runs N] [--mode bare-user|archive|bare]`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBulkTree } from '../test/support/bulk-tree.js';
import { startNginx } from '../test/support/nginx.js';
import { Random } from '../test/support/random.js';
import { median } from './lib/model.js';

const ARBOR = fileURLToPath(new URL('../../bin/arbor.js', import.meta.url)); // from dist/bench/privsep.js

function arbor(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(process.execPath, [ARBOR, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`arbor ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

interface Timing {
  /** Seconds. */
  readonly wall: number;
  /** User + system seconds of the pull and every child it waited for (the fetch helper). */
  readonly cpu: number;
}

/** One `arbor pull` under /usr/bin/time, with the fetch helper or without it. */
function timedPull(client: string, privsep: boolean): Timing {
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', '@@ %e %U %S', process.execPath, ARBOR, 'pull', '--repo', client, 'origin', 'os/main'],
    { env: { ...process.env, ARBOR_FETCH_PRIVSEP: privsep ? '1' : '0' }, encoding: 'utf8' },
  );
  const m = /@@ ([\d.]+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`pull failed: ${r.stderr}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '3000' },
      runs: { type: 'string', default: '7' },
      mode: { type: 'string', default: 'bare-user' },
    },
  });
  if (process.geteuid?.() !== 0) throw new Error('run as root: without root there is no privilege to drop');
  const dir = mkdtempSync('/var/tmp/arbor-bench-privsep-');
  try {
    const tree = join(dir, 'tree');
    const files = writeBulkTree(
      tree,
      { smallFiles: Number(values.files), smallMaxBytes: 16 * 1024, largeFiles: 4, largeBytes: 3 << 20 },
      new Random(0x9e1),
    );
    const server = join(dir, 'server');
    arbor(['init', '--repo', server, '--mode', 'archive']);
    arbor(['commit', '--repo', server, '-b', 'os/main', '--tree', `dir=${tree}`]);
    arbor(['summary', '--repo', server, '--update']);
    const nginx = await startNginx(server, { workerProcesses: 'auto' });
    const times: Record<'on' | 'off', Timing[]> = { on: [], off: [] };
    try {
      for (let run = 0; run < Number(values.runs); run++) {
        // Alternate the order, so a warming cache or a busy neighbour does not favour one side.
        const order: ('on' | 'off')[] = run % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
        for (const side of order) {
          const client = join(dir, `client-${run}-${side}`);
          arbor(['init', '--repo', client, '--mode', values.mode as string]);
          arbor(['remote', 'add', '--repo', client, 'origin', nginx.url, '--no-sign-verify']);
          times[side].push(timedPull(client, side === 'on'));
          rmSync(client, { recursive: true, force: true });
        }
      }
    } finally {
      await nginx.stop();
    }
    const line = (side: 'on' | 'off', key: keyof Timing): string =>
      `${median(times[side].map((t) => t[key])).toFixed(2)} s (${times[side].map((t) => t[key].toFixed(2)).join(' ')})`;
    const ratio = (key: keyof Timing): string =>
      (median(times.on.map((t) => t[key])) / median(times.off.map((t) => t[key]))).toFixed(3);
    process.stdout.write(
      `${files} files, ${values.mode} client, ${values.runs} runs each, load ${loadavg()[0]?.toFixed(1)}\n` +
        `wall  on:  ${line('on', 'wall')}\n      off: ${line('off', 'wall')}\n      ratio on/off ${ratio('wall')}\n` +
        `cpu   on:  ${line('on', 'cpu')}\n      off: ${line('off', 'cpu')}\n      ratio on/off ${ratio('cpu')}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
