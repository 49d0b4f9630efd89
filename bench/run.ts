// bench/run.ts — entry point of `npm run bench`: the object-store, transfer and compose benchmarks.
// Owns the command line, the suite selector and the object-store orchestration: for each run
// and each tool (ostree, arbor) it walks steps a–d on the benchmark trees and s1, s2 on the
// small-file tree in a scratch dir, then hands the results to lib/report.ts. The transfer suite
// lives in transfer.ts, the compose suite in compose.ts, the deploy suite in deploy.ts, the image
// suite in image.ts, the FleetLock server under load in fleetlock.ts, the update agent's footprint
// in agent.ts, package layering in layering.ts, the CLI's start-up in startup.ts. See bench/README.md.
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/host.js';
import {
  checkoutProblems,
  evaluateTargets,
  summarize,
  type BenchResult,
  type Pass,
  type StepId,
  type ToolResults,
} from './lib/model.js';
import { CommandError, requireGnuTime, run, shellQuote, succeeds, timeStep } from './lib/proc.js';
import { renderText, writeDoc, writeResults } from './lib/report.js';
import { TOOL_NAMES, arbor, ostree, type Tool, type ToolName } from './lib/tools.js';
import {
  COLD_READ_SHOWN,
  coldReadCommand,
  countTree,
  describeTree,
  ensureSmallTree,
  ensureTrees,
  objectStats,
} from './lib/trees.js';
import { runAgentSuite } from './agent.js';
import { runComposeSuite } from './compose.js';
import { runDeploySuite } from './deploy.js';
import { runFleetLockSuite } from './fleetlock.js';
import { runImageSuite } from './image.js';
import { runLayeringSuite } from './layering.js';
import { runStartupSuite } from './startup.js';
import { runTransferSuite } from './transfer.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url)); // from dist/bench/run.js
const DATA = '/var/tmp/arbor-bench';
const MAKE_TREES = process.env.ARBOR_BENCH_MAKE_TREES ?? '/work/shared/bench/make-trees.sh';
const ARBOR_BIN = process.env.ARBOR_BIN ?? join(REPO_ROOT, 'bin/arbor.js');

type Suite = 'store' | 'transfer' | 'compose' | 'deploy' | 'image' | 'fleetlock' | 'agent' | 'layering' | 'startup';
const SUITE_CHOICES = [
  'store',
  'transfer',
  'compose',
  'deploy',
  'image',
  'fleetlock',
  'agent',
  'layering',
  'startup',
  'all',
] as const;

const USAGE = `usage: npm run bench -- [options]        (as root)

Runs ostree and arbor side by side on the benchmark trees.
  --suite S         store (commit, checkout, re-commit), transfer (static delta, HTTP pulls
                    from nginx), compose (RPM set → commit, vs dnf --installroot + ostree commit;
                    ostree here means that reference), deploy (admin deploy v1, v2 on loop-mounted
                    sysroots; rollback with 5 deployments), image (\`arbor image build\` of v1 vs the
                    floor \`mkfs.ext4 -d\` of a hardlinked checkout, same size), fleetlock (\`fleetlock serve\`
                    on a 3-member etcd under 1,000 clients for 60 s; env ARBOR_BENCH_FLEETLOCK_CLIENTS,
                    ARBOR_BENCH_FLEETLOCK_SECONDS), agent (RSS and CPU of \`agent run\`/\`run-once\`, what stays
                    resident), layering (\`arbor install\` on the reference OS vs dnf --installroot + ostree commit;
                    upgrade with 5 layered packages vs without; env ARBOR_BENCH_OS_BUILD),
                    startup (\`node -e 0\` vs \`arbor --version\`, \`status\`, \`rollback\` and
                    \`ostree admin status\` on small sysroots) or all (default)
  --v1 DIR          tree v1 (env ARBOR_BENCH_V1; default ${DATA}/trees/v1)
  --v2 DIR          tree v2 (env ARBOR_BENCH_V2; default ${DATA}/trees/v2)
  --small DIR       the store suite's small-file tree (env ARBOR_BENCH_SMALL; default ${DATA}/trees/small;
                    copied there from /usr/share and /usr/lib/python3* when missing)
  --work DIR        scratch dir for repos and checkouts (default ${DATA}/work; emptied per tool and run;
                    the transfer suite uses DIR/transfer, the compose suite DIR/compose, the deploy
                    suite DIR/deploy)
  --rpm-set DIR     the compose suite's RPM set (env ARBOR_BENCH_RPM_SET; default ${DATA}/rpms; built
                    there by bench/rpm-set.ts when missing)
  --runs N          repeat each measurement N times and report medians (default 1)
  --only TOOL       run only ostree or only arbor (the other's columns show "pending")
  --write-doc       (re)write the sections of the suites run in docs/benchmarks.md
  -h, --help        this text
env: ARBOR_BIN (default bin/arbor.js of this repo), ARBOR_BENCH_MAKE_TREES (default ${MAKE_TREES})
`;

interface Options {
  suites: Suite[];
  v1: string;
  v2: string;
  small: string;
  work: string;
  runs: number;
  tools: ToolName[];
  writeDoc: boolean;
  rpmSet: string;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      suite: { type: 'string' },
      v1: { type: 'string' },
      v2: { type: 'string' },
      small: { type: 'string' },
      work: { type: 'string' },
      'rpm-set': { type: 'string' },
      runs: { type: 'string' },
      only: { type: 'string' },
      'write-doc': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const runs = Number(values.runs ?? '1');
  if (!Number.isInteger(runs) || runs < 1)
    throw new CommandError(`--runs: expected a positive integer, got ${values.runs}`);
  const only = values.only;
  if (only !== undefined && !TOOL_NAMES.includes(only as ToolName)) {
    throw new CommandError(`--only: expected ${TOOL_NAMES.join(' or ')}, got ${only}`);
  }
  const suite = values.suite ?? 'all';
  if (!(SUITE_CHOICES as readonly string[]).includes(suite)) {
    throw new CommandError(`--suite: expected ${SUITE_CHOICES.join(', ')}, got ${suite}`);
  }
  return {
    suites:
      suite === 'all'
        ? ['store', 'transfer', 'compose', 'deploy', 'image', 'fleetlock', 'agent', 'layering', 'startup']
        : [suite as Suite],
    v1: values.v1 ?? process.env.ARBOR_BENCH_V1 ?? `${DATA}/trees/v1`,
    v2: values.v2 ?? process.env.ARBOR_BENCH_V2 ?? `${DATA}/trees/v2`,
    small: values.small ?? process.env.ARBOR_BENCH_SMALL ?? `${DATA}/trees/small`,
    work: values.work ?? `${DATA}/work`,
    runs,
    tools: only === undefined ? [...TOOL_NAMES] : [only as ToolName],
    writeDoc: values['write-doc'] ?? false,
    rpmSet: values['rpm-set'] ?? process.env.ARBOR_BENCH_RPM_SET ?? `${DATA}/rpms`,
  };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function selectTools(names: readonly ToolName[]): Tool[] {
  const all: Tool[] = [ostree, arbor(ARBOR_BIN, REPO_ROOT)];
  return all.filter((t) => names.includes(t.name));
}

async function requireUsable(tools: readonly Tool[]): Promise<void> {
  for (const tool of tools) {
    if (!(await succeeds(tool.probe))) {
      throw new CommandError(`${tool.name} is not usable (${shellQuote(tool.probe)} failed); try --only ostree`);
    }
  }
}

function commandsOf(tool: Tool): Record<StepId, string[]> {
  return {
    a: [shellQuote(tool.init('REPO')), shellQuote(tool.commit('REPO', 'bench', 'V1', false))],
    b: [shellQuote(tool.checkoutHardlink('REPO', 'bench', 'CHECKOUT'))],
    c: [shellQuote(tool.commit('REPO', 'bench2', 'CHECKOUT', true))],
    d: ['cp -a V2 FRESH', shellQuote(tool.commit('REPO', 'bench', 'FRESH', false))],
    s1: [shellQuote(tool.init('SMALL_REPO')), shellQuote(tool.commit('SMALL_REPO', 'small', 'SMALL', false))],
    s2: [shellQuote(tool.checkoutHardlink('SMALL_REPO', 'small', 'SMALL_CHECKOUT'))],
  };
}

/** One run of steps a–d, s1 and s2 for one tool, in a scratch dir emptied before and after. */
async function runPass(tool: Tool, o: Options, runNo: number): Promise<Pass> {
  const dir = join(o.work, tool.name);
  const [repo, checkout, fresh] = [join(dir, 'repo'), join(dir, 'checkout'), join(dir, 'v2-fresh')];
  const label = (step: StepId): string => `run ${runNo} ${tool.name} ${step}`;
  await run(['rm', '-rf', dir]);
  mkdirSync(dir, { recursive: true });
  await run(tool.init(repo));
  const a = await timeStep(log, label('a'), tool.commit(repo, 'bench', o.v1, false));
  const b = await timeStep(log, label('b'), tool.checkoutHardlink(repo, 'bench', checkout));
  const checkoutCount = countTree(checkout);
  const c = await timeStep(log, label('c'), tool.commit(repo, 'bench2', checkout, true));
  await run(['cp', '-a', o.v2, fresh]);
  // d's floor, on the very copy d reads (same placement on disk), before d.
  const coldRead = await timeStep(log, `run ${runNo} ${tool.name} floor of d`, coldReadCommand(fresh), {
    shown: `${COLD_READ_SHOWN}: ${fresh}`,
  });
  const before = await objectStats(repo);
  const d = await timeStep(log, label('d'), tool.commit(repo, 'bench', fresh, false));
  const after = await objectStats(repo);
  // The small-file tree in a repository of its own, after v1's and v2's are gone (same free space).
  await run(['rm', '-rf', repo, checkout, fresh]);
  const [smallRepo, smallCheckout] = [join(dir, 'small-repo'), join(dir, 'small-checkout')];
  await run(tool.init(smallRepo));
  const s1 = await timeStep(log, label('s1'), tool.commit(smallRepo, 'small', o.small, false));
  const s2 = await timeStep(log, label('s2'), tool.checkoutHardlink(smallRepo, 'small', smallCheckout));
  const smallCount = countTree(smallCheckout);
  await run(['rm', '-rf', dir]);
  return {
    run: runNo,
    timings: { a: a.timing, b: b.timing, c: c.timing, d: d.timing, s1: s1.timing, s2: s2.timing },
    cachesDropped: [a, b, c, d, coldRead, s1, s2].every((s) => s.dropped),
    checkout: checkoutCount,
    smallCheckout: smallCount,
    newObjects: { files: after.files - before.files, bytes: after.bytes - before.bytes },
    coldReadV2: coldRead.timing,
  };
}

/** Runs alternate the tool order so neither always goes first. */
async function runAll(tools: readonly Tool[], o: Options): Promise<Map<ToolName, Pass[]>> {
  const passes = new Map<ToolName, Pass[]>(tools.map((t) => [t.name, []]));
  for (let runNo = 1; runNo <= o.runs; runNo++) {
    const order = runNo % 2 === 1 ? tools : [...tools].reverse();
    for (const tool of order) passes.get(tool.name)!.push(await runPass(tool, o, runNo));
  }
  return passes;
}

function collect(tools: readonly Tool[], versions: readonly string[], passes: Map<ToolName, Pass[]>): ToolResults {
  const results: ToolResults = {};
  tools.forEach((tool, i) => {
    const ps = passes.get(tool.name)!;
    results[tool.name] = { version: versions[i]!, commands: commandsOf(tool), passes: ps, summary: summarize(ps) };
  });
  return results;
}

/** The object-store suite (steps a–d, s1, s2); returns its checkout problems. */
async function runStoreSuite(o: Options, tools: readonly Tool[]): Promise<string[]> {
  mkdirSync(o.work, { recursive: true });
  await ensureSmallTree(o.small);
  const [v1, v2, small, machine] = await Promise.all([
    describeTree(o.v1),
    describeTree(o.v2),
    describeTree(o.small),
    describeMachine(o.work),
  ]);
  const date = new Date().toISOString();
  const versions = await Promise.all(tools.map((t) => t.version())); // before the runs: the code measured
  const toolResults = collect(tools, versions, await runAll(tools, o));
  const result: BenchResult = {
    benchmark: 'object-store',
    date,
    machine,
    trees: { v1, v2, small },
    runs: o.runs,
    cachesDropped: Object.values(toolResults).every((r) => r.passes.every((p) => p.cachesDropped)),
    checkoutProblems: checkoutProblems(v1, small, toolResults),
    tools: toolResults,
    targets: evaluateTargets(toolResults),
  };
  const resultsFile = relative(REPO_ROOT, writeResults(join(REPO_ROOT, 'bench/results'), result));
  process.stdout.write(renderText(result, resultsFile));
  if (o.writeDoc) writeDoc(join(REPO_ROOT, 'docs/benchmarks.md'), result, resultsFile);
  return result.checkoutProblems;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o === null) return void process.stdout.write(USAGE);
  if (process.getuid?.() !== 0)
    throw new CommandError('run as root: bare-mode commits keep file owners, dropping caches needs root');
  requireGnuTime();
  if (o.suites.some((s) => s === 'store' || s === 'transfer' || s === 'deploy' || s === 'image'))
    await ensureTrees(o.v1, o.v2, MAKE_TREES);
  const tools = selectTools(o.tools);
  await requireUsable(tools);
  const problems: string[] = [];
  if (o.suites.includes('store')) {
    problems.push(...(await runStoreSuite(o, tools)).map((p) => `checkout mismatch: ${p}`));
  }
  if (o.suites.includes('transfer')) {
    // Arbor failures there are results ("failed: …" cells), not errors of the run.
    await runTransferSuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN });
  }
  if (o.suites.includes('compose')) {
    // Like transfer: arbor failures are "failed: …" cells, the reference's stop the run.
    await runComposeSuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN, rpmSetDir: o.rpmSet });
  }
  if (o.suites.includes('deploy')) {
    // Like transfer: arbor failures are "failed: …" cells, ostree's stop the run; check failures are listed.
    const deployed = await runDeploySuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN });
    problems.push(...deployed.problems.map((p) => `deploy check: ${p}`));
  }
  if (o.suites.includes('image')) {
    await runImageSuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN });
  }
  if (o.suites.includes('fleetlock')) {
    const served = await runFleetLockSuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN });
    problems.push(...served.problems.map((p) => `fleetlock check: ${p}`));
  }
  if (o.suites.includes('agent')) {
    const footprint = await runAgentSuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN });
    problems.push(...footprint.problems.map((p) => `agent check: ${p}`));
  }
  if (o.suites.includes('layering')) {
    // Like compose: arbor failures are "failed: …" cells, the reference's stop the run.
    const layered = await runLayeringSuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN });
    problems.push(...layered.problems.map((p) => `layering check: ${p}`));
  }
  if (o.suites.includes('startup')) {
    const started = await runStartupSuite({ ...o, repoRoot: REPO_ROOT, arborBin: ARBOR_BIN });
    problems.push(...started.problems.map((p) => `startup check: ${p}`));
  }
  if (problems.length > 0) throw new CommandError(problems.join('; '));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
