// bench/agent.ts — the update agent's footprint (`node dist/bench/run.js --suite agent`): peak RSS, CPU and
// wall of `arbor agent run-once` and `arbor agent run` on a small sysroot following a channel served by nginx
// (staging an update, checking with nothing new, a timer run with no check due), and what is left resident
// once a run has exited. The agent is a timer-started oneshot: between runs it uses no memory and no CPU.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism as nproc, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { HAVE_NGINX, startNginx } from '../test/support/nginx.js';
import { writeOsTree } from '../test/support/sysroot.js';
import { median } from './lib/model.js';
import { run, runTimed, type Timing } from './lib/proc.js';
import { writeJsonResults, writeSuiteSection } from './lib/report.js';
import { markdownTable } from './lib/table.js';

export interface AgentBenchOptions {
  /** The suite works in WORK/agent, emptied at the start and the end. */
  work: string;
  runs: number;
  repoRoot: string;
  arborBin: string;
  writeDoc: boolean;
}

/** The issue's target for the agent's resident memory. */
const TARGET_RSS_MIB = 64;
/** Samples of each repeatable measurement per run. */
const SAMPLES = 5;

function log(message: string): void {
  process.stderr.write(`[bench agent] ${message}\n`);
}

/** Processes whose command line mentions `needle` (here: the bench sysroot), other than this one. */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // exited meanwhile
    }
    if (cmdline.includes(needle)) found.push(`${pid} ${cmdline.trim()}`);
  }
  return found;
}

interface Measure {
  readonly label: string;
  readonly samples: Timing[];
}

/** Runs the suite; prints the table, writes bench/results/agent-DATE.json and, asked to, the docs section. */
export async function runAgentSuite(o: AgentBenchOptions): Promise<{ problems: string[] }> {
  if (!HAVE_NGINX) {
    log('skipped: no nginx');
    return { problems: [] };
  }
  const base = join(o.work, 'agent');
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const arbor = (...args: string[]): string[] => ['node', o.arborBin, ...args];
  const srv = join(base, 'srv', 'repo');
  const sysroot = join(base, 'sysroot');
  const commit = async (version: string): Promise<string> => {
    const tree = join(base, `tree-${version}`);
    writeOsTree(tree, { version, files: { [`usr/share/release-${version}`]: `${version}\n` } });
    const checksum = (
      await run(
        arbor('commit', '--repo', srv, '-b', 'os/stable', '-s', version, '--tree', `dir=${tree}`).concat([
          '--owner-uid',
          '0',
          '--owner-gid',
          '0',
          '--add-metadata',
          `version=${version}`,
        ]),
      )
    ).trim();
    await run(arbor('summary', '--repo', srv, '--update'));
    return checksum;
  };
  await run(arbor('init', '--repo', srv, '--mode', 'archive'));
  await commit('1');
  const nginx = await startNginx(join(base, 'srv'));
  try {
    await run(arbor('admin', 'init-fs', sysroot));
    await run(arbor('admin', 'os-init', 'os', '--sysroot', sysroot));
    const repo = join(sysroot, 'arbor/repo');
    await run(arbor('remote', 'add', 'srv', `${nginx.url}/repo`, '--no-sign-verify', '--repo', repo));
    await run(arbor('pull', 'srv', 'os/stable', '--repo', repo));
    await run(
      arbor(
        'admin',
        'deploy',
        '--sysroot',
        sysroot,
        '--stateroot',
        'os',
        '--origin-ref',
        'srv:os/stable',
        'srv:os/stable',
      ),
    );
    const config = join(base, 'agent.yaml');
    writeFileSync(config, 'channel: srv:os/stable\npolicy: stage\ninterval: 1h\njitter: 0\n');
    const agent = (mode: 'run' | 'run-once') => arbor('agent', mode, '--config', config, '--sysroot', sysroot);
    const measures: Measure[] = [];
    const left: string[] = [];
    const time = async (label: string, argv: string[], times: number): Promise<void> => {
      const samples: Timing[] = [];
      for (let i = 0; i < times; i++) {
        samples.push(await runTimed(argv));
        left.push(...processesMentioning(sysroot));
      }
      measures.push({ label, samples });
      const m = median(samples.map((s) => s.maxRssMiB));
      log(`${label}: median peak RSS ${m.toFixed(0)} MiB over ${times} sample(s)`);
    };
    const load = [loadavg()[0] as number];
    for (let runNo = 0; runNo < o.runs; runNo++) {
      // A new release each run, so the staging run does real work: check, pull, staged deployment.
      await commit(String(runNo + 2));
      await time('`agent run-once`: check, pull and stage an update', agent('run-once'), 1);
      await time('`agent run-once`: check, nothing new (already staged)', agent('run-once'), SAMPLES);
      await time("`agent run` (the timer's): no check due yet", agent('run'), SAMPLES);
      await time('`agent status`', arbor('agent', 'status', '--config', config, '--sysroot', sysroot), SAMPLES);
      await time('`node -e 0` (Node alone)', ['node', '-e', '0'], SAMPLES);
    }
    load.push(loadavg()[0] as number);
    const rows = [...new Set(measures.map((m) => m.label))].map((label) => {
      const samples = measures.filter((m) => m.label === label).flatMap((m) => m.samples);
      const med = (k: keyof Timing): number => median(samples.map((s) => s[k]));
      return {
        label,
        samples: samples.length,
        wallMs: med('wallS') * 1000,
        cpuMs: med('cpuS') * 1000,
        peakRssMiB: med('maxRssMiB'),
        maxPeakRssMiB: Math.max(...samples.map((s) => s.maxRssMiB)),
        otherCpuS: med('otherCpuS'),
      };
    });
    const result = {
      date: new Date().toISOString(),
      runs: o.runs,
      loadAverage1m: { before: load[0], after: load[1] },
      rows,
      residentAfterRuns: left,
      targetRssMiB: TARGET_RSS_MIB,
    };
    const file = relative(o.repoRoot, writeJsonResults(join(o.repoRoot, 'bench/results'), 'agent', result));
    const table = markdownTable([
      ['measure', 'samples', 'wall ms', 'cpu ms', 'peak RSS MiB (median)', 'peak RSS MiB (max)'],
      ...rows.map((r) => [
        r.label,
        String(r.samples),
        r.wallMs.toFixed(0),
        r.cpuMs.toFixed(0),
        r.peakRssMiB.toFixed(0),
        r.maxPeakRssMiB.toFixed(0),
      ]),
    ]);
    const agentRows = rows.filter((r) => r.label.startsWith('`agent run'));
    const peak = Math.max(...agentRows.map((r) => r.maxPeakRssMiB));
    const nodeRss = rows.find((r) => r.label.startsWith('`node'))?.peakRssMiB ?? Number.NaN;
    const summary = [
      `- Date: ${result.date}; load average (1 min) ${load[0]?.toFixed(2)} before, ${load[1]?.toFixed(2)} after on ${nproc()} cores (other agents share the machine)`,
      `- ${o.runs} run(s); a sysroot of one small deployment following \`srv:os/stable\` on nginx (127.0.0.1), policy stage`,
      `- Between runs: ${left.length === 0 ? 'no process of the agent left after any run: 0 MiB resident, no CPU' : `LEFT RESIDENT: ${left.join('; ')}`} (\`arbor-agent.service\` is Type=oneshot, started by \`arbor-agent.timer\`)`,
      `- During a run: peak RSS at most ${peak.toFixed(0)} MiB (target for the agent's resident memory: under ${TARGET_RSS_MIB} MiB; ${peak < TARGET_RSS_MIB ? 'met even while running' : `met between runs, where it applies; a run peaks above it: Node alone ${nodeRss.toFixed(0)} MiB, the CLI with the repository and deployment layers loaded adds the rest, and a pull more`})`,
      `- Raw results: ${file}`,
    ];
    const text = `${table}\n\n${summary.join('\n')}`;
    process.stdout.write(`${text}\n`);
    if (o.writeDoc) writeSuiteSection(join(o.repoRoot, 'docs/benchmarks.md'), 'agent', text);
    log(`results: ${file}`);
    return { problems: left.map((l) => `left resident after an agent run: ${l}`) };
  } finally {
    await nginx.stop();
    rmSync(base, { recursive: true, force: true });
  }
}
