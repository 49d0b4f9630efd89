// bench/startup.ts — start-up of the commands scripts, shell completion and consoles call often
// (`node dist/bench/run.js --suite startup`): `arbor --version`, `status` and `rollback` on a small
// sysroot with two deployments, `ostree admin status` on the same trees, each against `node -e 0`.
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism as nproc, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { COMMIT_TIMESTAMP, STATEROOT, writeOsTree } from '../test/support/sysroot.js';
import { fmt } from './lib/format.js';
import { mountsBelow } from './lib/host.js';
import { median } from './lib/model.js';
import { CommandError, run, succeeds, timeProcess, type Sample } from './lib/proc.js';
import { writeJsonResults, writeSuiteSection } from './lib/report.js';
import { markdownTable } from './lib/table.js';
import { arbor, ostree, type SuiteOptions, type ToolName } from './lib/tools.js';

/** The suite works in WORK/startup (a tmpfs mounted there), emptied at the start and the end. */
export type StartupBenchOptions = SuiteOptions;

/** Samples of each measure per run, taken in rounds (one of each per round) so load drift hits all alike. Even: rollbacks come in pairs. */
const SAMPLES = 6;
/** The targets, as multiples of `node -e 0` in the same run. */
const TARGET_RATIO = 2;
const AIM_RATIO = 1.5;

type MeasureId = 'node' | 'version' | 'status' | 'rollback' | 'ostreeVersion' | 'ostreeStatus';
interface Measure {
  readonly id: MeasureId;
  readonly title: string;
  readonly tool: ToolName | 'node';
  readonly argv: readonly string[];
  /** Compared with TARGET_RATIO. */
  readonly targeted: boolean;
}

interface Row {
  id: MeasureId;
  title: string;
  samples: number;
  wallMs: number;
  cpuMs: number;
  rssMiB: number;
  /** Wall and CPU as multiples of `node -e 0`'s, the harness's spawning overhead taken off both walls. */
  wallRatio: number;
  cpuRatio: number;
  met: boolean | null;
}

interface StartupResult {
  benchmark: 'startup';
  date: string;
  runs: number;
  samplesPerRun: number;
  tools: Partial<Record<ToolName, string>>;
  loadAverage1m: { before: number; after: number };
  /** Median wall ms of `/usr/bin/time true` as the harness spawns it: taken off every wall before ratios. */
  spawnOverheadMs: number;
  rows: Row[];
  /** Every sample, by measure, in the order taken. */
  samples: Partial<Record<MeasureId, Sample[]>>;
  problems: string[];
}

function log(message: string): void {
  process.stderr.write(`[bench startup] ${message}\n`);
}

interface Tree {
  readonly ref: string;
  readonly dir: string;
  readonly version: string;
}

/** Two small bootable trees as the tests make them (v1, v2), each to be committed on bench/vN. */
function writeTrees(base: string): Tree[] {
  return ['1', '2'].map((version) => {
    const dir = join(base, `tree-${version}`);
    writeOsTree(dir, {
      version,
      etc: { hostname: 'bench\n' },
      files: { [`usr/share/bench/release-${version}`]: `${version}\n` },
    });
    return { ref: `bench/v${version}`, dir, version };
  });
}

/** An arbor sysroot with v1 and v2 deployed (v2 the default, v1 its rollback). */
async function arborSysroot(
  base: string,
  trees: readonly Tree[],
  cli: (...args: string[]) => string[],
): Promise<string> {
  const sysroot = join(base, 'arbor-sysroot');
  const repo = join(sysroot, 'arbor', 'repo');
  await run(cli('admin', 'init-fs', sysroot));
  await run(cli('admin', 'os-init', STATEROOT, '--sysroot', sysroot));
  for (const t of trees) {
    await run(
      cli(
        'commit',
        '--repo',
        repo,
        '-b',
        t.ref,
        '--tree',
        `dir=${t.dir}`,
        '--owner-uid',
        '0',
        '--owner-gid',
        '0',
      ).concat(['--add-metadata', `version=${t.version}`, '--timestamp', String(COMMIT_TIMESTAMP)]),
    );
    await run(cli('admin', 'deploy', '--sysroot', sysroot, '--stateroot', STATEROOT, t.ref));
  }
  return sysroot;
}

/** The same with ostree. Its deploy freezes the filesystem holding /boot: the tmpfs answers EOPNOTSUPP, so it syncs instead. */
async function ostreeSysroot(base: string, trees: readonly Tree[]): Promise<string> {
  const sysroot = join(base, 'ostree-sysroot');
  mkdirSync(sysroot);
  await run(['ostree', 'admin', 'init-fs', sysroot]);
  await run(['ostree', 'admin', 'os-init', `--sysroot=${sysroot}`, STATEROOT]);
  for (const t of trees) {
    await run([
      'ostree',
      `--repo=${sysroot}/ostree/repo`,
      'commit',
      '-b',
      t.ref,
      `--tree=dir=${t.dir}`,
      '--owner-uid=0',
      '--owner-gid=0',
      `--add-metadata-string=version=${t.version}`,
    ]);
    await run(['ostree', 'admin', 'deploy', `--sysroot=${sysroot}`, `--os=${STATEROOT}`, t.ref]);
  }
  return sysroot;
}

/** Deployments in boot order as `arbor status --json` lists them. */
async function bootOrder(cli: (...args: string[]) => string[], sysroot: string): Promise<string> {
  const parsed = JSON.parse(await run(cli('status', '--json', '--sysroot', sysroot))) as {
    deployments: { checksum: string; serial: number }[];
  };
  return parsed.deployments.map((d) => `${d.checksum.slice(0, 12)}.${d.serial}`).join(' ');
}

function summarize(measures: readonly Measure[], samples: Map<MeasureId, Sample[]>, overheadMs: number): Row[] {
  const med = (id: MeasureId, k: 'wallMs' | 'cpuMs' | 'rssMiB'): number =>
    median((samples.get(id) ?? []).map((s) => s[k] ?? Number.NaN));
  const nodeWall = med('node', 'wallMs') - overheadMs;
  const nodeCpu = med('node', 'cpuMs');
  return measures.map((m) => {
    const wallRatio = (med(m.id, 'wallMs') - overheadMs) / nodeWall;
    return {
      id: m.id,
      title: m.title,
      samples: samples.get(m.id)?.length ?? 0,
      wallMs: med(m.id, 'wallMs'),
      cpuMs: med(m.id, 'cpuMs'),
      rssMiB: med(m.id, 'rssMiB'),
      wallRatio,
      cpuRatio: med(m.id, 'cpuMs') / nodeCpu,
      met: m.targeted ? wallRatio <= TARGET_RATIO : null,
    };
  });
}

function renderSection(r: StartupResult, resultsFile: string): string {
  const table = markdownTable([
    ['measure', 'samples', 'wall ms', 'cpu ms', 'peak RSS MiB', '× node wall', '× node cpu', 'target'],
    ...r.rows.map((row) => [
      row.title,
      String(row.samples),
      fmt.ms(row.wallMs),
      fmt.ms(row.cpuMs),
      fmt.mib(row.rssMiB),
      fmt.ratio(row.wallRatio),
      fmt.ratio(row.cpuRatio),
      row.met === null ? '' : `≤ ${TARGET_RATIO}× (aim ${AIM_RATIO}×): ${fmt.ratio(row.wallRatio)}${fmt.mark(row.met)}`,
    ]),
  ]);
  const lines = [
    `Date: ${r.date}; load average (1 min) ${r.loadAverage1m.before.toFixed(2)} before, ${r.loadAverage1m.after.toFixed(2)} after on ${nproc()} cores`,
    `Tools: ${Object.values(r.tools).join('; ')}`,
    `${r.runs} run(s) × ${r.samplesPerRun} samples of each measure, taken in rounds (one of each per round, the order rotating); warm page cache (one untimed run of each first); medians`,
    `Ratios: wall and CPU as multiples of \`node -e 0\` in the same run; the harness's own cost of spawning a process under GNU time (${fmt.ms(r.spawnOverheadMs)} ms, \`/usr/bin/time true\`) is taken off both walls first`,
    r.problems.length === 0
      ? 'Checks: the boot order after the rollbacks (an even number) is the one before'
      : `PROBLEMS: ${r.problems.join('; ')}`,
    `Raw results: ${resultsFile}`,
  ];
  return `${table}\n\n${lines.map((l) => `- ${l}`).join('\n')}`;
}

/** Runs the suite; prints the table, writes bench/results/startup-DATE.json and, asked to, the docs section. */
export async function runStartupSuite(o: StartupBenchOptions): Promise<{ problems: string[] }> {
  const base = join(o.work, 'startup');
  for (const m of mountsBelow(base)) await run(['umount', m]); // a killed run's
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  // Both sysroots on one tmpfs: ostree's deploy freezes the filesystem holding /boot, which must never be
  // the machine's root; tmpfs cannot be frozen (ostree then syncs). Warm figures read from the page cache anyway.
  await run(['mount', '-t', 'tmpfs', '-o', 'size=256m,mode=0755', 'arbor-bench-startup', base]);
  try {
    const cli = (...args: string[]): string[] => [process.execPath, o.arborBin, ...args];
    const withOstree = o.tools.includes('ostree') && (await succeeds(['ostree', '--version']));
    if (o.tools.includes('ostree') && !withOstree) log('ostree not found: its rows are left out');
    const trees = writeTrees(base);
    const sysroot = await arborSysroot(base, trees, cli);
    const measures: Measure[] = [
      {
        id: 'node',
        title: '`node -e 0` (Node alone)',
        tool: 'node',
        argv: [process.execPath, '-e', '0'],
        targeted: false,
      },
      { id: 'version', title: '`arbor --version`', tool: 'arbor', argv: cli('--version'), targeted: true },
      {
        id: 'status',
        title: '`arbor status`, 2 deployments',
        tool: 'arbor',
        argv: cli('status', '--sysroot', sysroot),
        targeted: true,
      },
      {
        id: 'rollback',
        title: '`arbor rollback`, 2 deployments',
        tool: 'arbor',
        argv: cli('rollback', '--sysroot', sysroot),
        targeted: true,
      },
    ];
    if (withOstree) {
      const ostreeRoot = await ostreeSysroot(base, trees);
      measures.push(
        {
          id: 'ostreeVersion',
          title: '`ostree --version`',
          tool: 'ostree',
          argv: ['ostree', '--version'],
          targeted: false,
        },
        {
          id: 'ostreeStatus',
          title: '`ostree admin status`, 2 deployments',
          tool: 'ostree',
          argv: ['ostree', 'admin', 'status', `--sysroot=${ostreeRoot}`],
          targeted: false,
        },
      );
    }
    const before = await bootOrder(cli, sysroot);
    const tools: Partial<Record<ToolName, string>> = { arbor: await arbor(o.arborBin, o.repoRoot).version() };
    if (withOstree) tools.ostree = await ostree.version();
    const load = [loadavg()[0] as number];
    // Warm-up: one untimed run of each (two rollbacks, so the order is back where it was).
    for (const m of measures) await run(m.argv);
    await run(cli('rollback', '--sysroot', sysroot));
    const overhead: number[] = [];
    const samples = new Map<MeasureId, Sample[]>(measures.map((m) => [m.id, []]));
    for (let runNo = 1; runNo <= o.runs; runNo++) {
      for (let round = 0; round < SAMPLES; round++) {
        overhead.push((await timeProcess(['true'])).wallMs);
        for (let i = 0; i < measures.length; i++) {
          const m = measures[(i + round) % measures.length]!;
          samples.get(m.id)!.push(await timeProcess(m.argv));
        }
      }
      const walls = (id: MeasureId): string =>
        (samples.get(id) ?? [])
          .slice(-SAMPLES)
          .map((s) => fmt.ms(s.wallMs))
          .join(', ');
      for (const m of measures) log(`run ${runNo} ${m.title}: ${walls(m.id)} ms`);
    }
    load.push(loadavg()[0] as number);
    const after = await bootOrder(cli, sysroot);
    const problems =
      after === before ? [] : [`after an even number of rollbacks the boot order is ${after}, expected ${before}`];
    const spawnOverheadMs = median(overhead);
    const result: StartupResult = {
      benchmark: 'startup',
      date: new Date().toISOString(),
      runs: o.runs,
      samplesPerRun: SAMPLES,
      tools,
      loadAverage1m: { before: load[0]!, after: load[1]! },
      spawnOverheadMs,
      rows: summarize(measures, samples, spawnOverheadMs),
      samples: Object.fromEntries(samples),
      problems,
    };
    const file = relative(o.repoRoot, writeJsonResults(join(o.repoRoot, 'bench/results'), 'startup', result));
    const text = renderSection(result, file);
    process.stdout.write(`${text}\n`);
    if (o.writeDoc) writeSuiteSection(join(o.repoRoot, 'docs/benchmarks.md'), 'startup', text);
    log(`results: ${file}`);
    return { problems };
  } catch (error) {
    if (error instanceof CommandError) throw new CommandError(`startup suite: ${error.message}`);
    throw error;
  } finally {
    await run(['umount', base]);
    rmSync(base, { recursive: true, force: true });
  }
}
