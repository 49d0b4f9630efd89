// bench/compose.ts — the compose benchmark (`node dist/bench/run.js --suite compose`): composing the
// bench's RPM set (bench/rpm-set.ts, ≈ 300 packages) into a commit from scratch (a), then again after
// one package changed (b), with arbor (`arbor compose tree`) and with the reference rpm-ostree does
// in essence: `dnf --installroot` of the same packages from the same repository, then `ostree commit`
// of the root. Owns the steps, their medians, the table, the JSON results and the docs section.
// Arbor failures become "failed: …" cells; reference failures stop the run.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describeMachine, type Machine } from './lib/host.js';
import { allCachesDropped, median, medianTiming, noisiestOutcome, sumTimings } from './lib/model.js';
import { CommandError, failureText, run, shellQuote, timeStep, type Timing } from './lib/proc.js';
import { PENDING, backgroundLoadLine, fmt, stepCells, timingHeader } from './lib/format.js';
import { writeJsonResults, writeSuiteSection } from './lib/report.js';
import { ostree, type SuiteOptions, type ToolName } from './lib/tools.js';
import { describeRpmSet, ensureRpmSet, type RpmSet } from './rpm-set.js';
import { markdownTable, textTable } from './lib/table.js';

/** The suite works in WORK/compose/<tool>, emptied before and after each pass. */
export interface ComposeOptions extends SuiteOptions {
  /** Where the RPM set lives (built there when missing). */
  rpmSetDir?: string;
}

type ComposeStepId = 'a' | 'b';
const COMPOSE_STEPS: readonly { id: ComposeStepId; title: string }[] = [
  { id: 'a', title: 'first compose of the RPM set, from scratch' },
  { id: 'b', title: 'recompose after one package changed' },
];

/** The reference runs under the `ostree` tool name (so --only ostree selects it); shown as dnf + ostree. */
const LABEL: Record<ToolName, string> = { ostree: 'dnf+ostree', arbor: 'arbor' };
const REF = 'arbor-bench/x86_64/base';
const TARGET_B_OVER_A = 0.1;
/** Where the set's scriptlets append a line each (bench/rpm-set.ts). */
const SCRIPTLET_LOG = 'etc/arbor-bench-scriptlets.log';

const NOISE_MIN_WALL_S = 1;

/** What `arbor compose tree --json` prints (the fields the bench reads). */
interface ComposeReport {
  commit: string;
  ref: string;
  packages: number;
  imported: number;
  cached: number;
}

interface ComposeOutcome {
  /** Whole step: wall and CPU summed over its commands, RSS the largest. null when it failed. */
  timing: Timing | null;
  /** The reference's commands separately: dnf, ostree commit. */
  parts: Record<string, Timing>;
  cachesDropped: boolean;
  failure: string | null;
  /** Packages in the result (arbor: its JSON; reference: `rpm --root ROOT -qa`). */
  packages: number | null;
  /** arbor: packages imported / reused from its cache. */
  imported: number | null;
  cached: number | null;
  commit: string | null;
  /** Scriptlets that ran (arbor: `scripts.ran` of its report; reference: lines the set's scriptlets logged in the root). */
  scriptlets: number | null;
  /** arbor: its --json report without the per-package list. */
  report?: Record<string, unknown>;
}

interface ComposePass {
  run: number;
  steps: Record<ComposeStepId, ComposeOutcome>;
}

interface ComposeStepSummary {
  timing: Timing | null;
  parts: Record<string, Timing>;
  failure: string | null;
  packages: number | null;
  imported: number | null;
  cached: number | null;
}

interface ComposeToolResult {
  version: string;
  commands: Record<ComposeStepId, string[]>;
  passes: ComposePass[];
  summary: Record<ComposeStepId, ComposeStepSummary>;
}

interface ComposeTarget {
  text: string;
  value: string;
  met: boolean | null;
}

export interface ComposeResult {
  benchmark: 'compose';
  date: string;
  machine: Machine;
  rpmSet: {
    root: string;
    description: string;
    digest: string;
    packages: number;
    files: number;
    installedBytes: number;
    rpmBytes: number;
    update: RpmSet['manifest']['update'];
  };
  runs: number;
  cachesDropped: boolean;
  tools: Partial<Record<ToolName, ComposeToolResult>>;
  ratios: {
    aArborOverReference: number | null;
    bArborOverReference: number | null;
    bOverA: Partial<Record<ToolName, number>>;
  };
  targets: ComposeTarget[];
  /**
   * Run 1: arbor's commit against the reference's, entry by entry under /usr and /etc (type, mode,
   * owner, size, symlink target; `parseListing` says what is set aside). Absent for a step either failed.
   */
  treeCheck: Partial<Record<ComposeStepId, { paths: number; differences: string[] }>>;
  problems: string[];
}

function log(message: string): void {
  process.stderr.write(`[bench compose] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Running

/** Runs argv under GNU time with its stdout sent to outFile (exec: time measures the command itself). */
const timedToFile = (label: string, argv: string[], outFile: string): Promise<{ timing: Timing; dropped: boolean }> =>
  timeStep(log, label, ['sh', '-c', 'out=$1; shift; exec "$@" > "$out"', 'sh', outFile, ...argv], {
    shown: shellQuote(argv),
  });

/** argv for the log: a long package list shortened to its first names and a count. */
function brief(argv: readonly string[]): string {
  const at = argv.indexOf('install');
  if (at < 0 || argv.length - at - 1 <= 6) return shellQuote(argv);
  const names = argv.slice(at + 1);
  return `${shellQuote([...argv.slice(0, at + 1), ...names.slice(0, 5)])} … (${names.length} packages)`;
}

const timed = (label: string, argv: string[], dropCaches: boolean): Promise<{ timing: Timing; dropped: boolean }> =>
  timeStep(log, label, argv, { shown: brief(argv), dropCaches });

const failed = (failure: string): ComposeOutcome => ({
  timing: null,
  parts: {},
  cachesDropped: true,
  failure,
  packages: null,
  imported: null,
  cached: null,
  commit: null,
  scriptlets: null,
});

function treefileText(repoDir: string, names: readonly string[]): string {
  return [
    '# Written by bench/compose.ts: every package of the bench RPM set.',
    `ref: ${REF}`,
    'repos:',
    `  - ${repoDir}`,
    'initramfs:',
    '  generator: none   # kernel-core ships /usr/lib/modules/KVER/initramfs.img',
    'packages:',
    ...names.map((n) => `  - ${n}`),
    '',
  ].join('\n');
}

/** The listing of a commit under /usr and /etc, per path: "type mode uid gid size [-> target]". */
type Listing = Map<string, string>;

/**
 * Parses `ostree ls -R` / `arbor ls -R` output (same columns) into a Listing of /usr and /etc, with
 * what each tool does on purpose set aside: arbor's /usr/etc is /etc, its rpmdb in /usr/share/rpm and
 * its tmpfiles.d entry for /var are its own; dnf's /etc/dnf is dnf's.
 */
function parseListing(text: string, tool: ToolName): Listing {
  const out: Listing = new Map();
  for (const line of text.split('\n')) {
    const m = /^([-dl])0*([0-7]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, type, mode, uid, gid, size, rest] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const arrow = type === 'l' ? rest.indexOf(' -> ') : -1;
    let path = arrow >= 0 ? rest.slice(0, arrow) : rest;
    const target = arrow >= 0 ? ` -> ${rest.slice(arrow + 4)}` : '';
    if (tool === 'arbor') {
      if (
        path === '/usr/share/rpm' ||
        path.startsWith('/usr/share/rpm/') ||
        path === '/usr/lib/tmpfiles.d/arbor-var.conf'
      )
        continue;
      if (path === '/usr/etc' || path.startsWith('/usr/etc/')) path = `/etc${path.slice('/usr/etc'.length)}`;
    } else if (path === '/etc/dnf' || path.startsWith('/etc/dnf/')) continue;
    if (!(path === '/usr' || path.startsWith('/usr/') || path === '/etc' || path.startsWith('/etc/'))) continue;
    out.set(path, `${type} ${mode} ${uid} ${gid} ${type === '-' ? size : ''}${target}`);
  }
  return out;
}

/** Paths whose entries differ between two listings, as "path: x ≠ y" (missing is "absent"). */
function listingDifferences(arbor: Listing, reference: Listing): string[] {
  const out: string[] = [];
  for (const path of [...new Set([...arbor.keys(), ...reference.keys()])].sort()) {
    const [x, y] = [arbor.get(path), reference.get(path)];
    if (x !== y) out.push(`${path}: arbor ${x ?? 'absent'}, dnf+ostree ${y ?? 'absent'}`);
  }
  return out;
}

interface Pipeline {
  name: ToolName;
  version(): Promise<string>;
  commands(): Record<ComposeStepId, string[]>;
  /** One pass: a then b, in dir (emptied before); listings of run 1's commits go to `listings`. */
  pass(dir: string, set: RpmSet, runNo: number, listings: Map<string, Listing>): Promise<ComposePass>;
}

function arborPipeline(o: ComposeOptions): Pipeline {
  const cli = (...args: string[]): string[] => [process.execPath, o.arborBin, ...args];
  const compose = (repo: string, tmp: string, treefile: string): string[] =>
    cli('compose', 'tree', '--repo', repo, '--tmpdir', tmp, '--json', treefile);
  const step = async (label: string, argv: string[], outFile: string): Promise<ComposeOutcome> => {
    try {
      const { timing, dropped } = await timedToFile(label, argv, outFile);
      const text = readFileSync(outFile, 'utf8').trim();
      let report: Partial<ComposeReport> & Record<string, unknown>;
      try {
        report = JSON.parse(text.slice(text.indexOf('{'))) as Partial<ComposeReport> & Record<string, unknown>;
      } catch {
        return { ...failed(`failed: --json printed no JSON object: ${text.slice(0, 120)}`), timing };
      }
      const num = (x: unknown): number | null => (typeof x === 'number' ? x : null);
      return {
        timing,
        parts: {},
        cachesDropped: dropped,
        failure: null,
        packages: num(report.packages),
        imported: num(report.imported),
        cached: num(report.cached),
        commit: typeof report.commit === 'string' ? report.commit : null,
        scriptlets: Array.isArray((report.scripts as { ran?: unknown } | undefined)?.ran)
          ? (report.scripts as { ran: unknown[] }).ran.length
          : null,
        report: Object.fromEntries(Object.entries(report).filter(([k]) => k !== 'resolved')),
      };
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      return failed(failureText(error));
    }
  };
  return {
    name: 'arbor',
    async version() {
      const git = (...args: string[]): Promise<string> => run(['git', '-C', o.repoRoot, ...args]);
      const rev = await git('rev-parse', '--short', 'HEAD').then(
        (s) => s.trim(),
        () => 'no commit yet',
      );
      const dirty = (await git('status', '--porcelain', '--', 'src', 'bin')).trim() !== '';
      return `arbor ${rev}${dirty ? ' + uncommitted changes' : ''} (node ${process.version})`;
    },
    commands: () => ({
      a: [
        shellQuote(cli('init', '--repo', 'REPO', '--mode', 'bare')),
        shellQuote(compose('REPO', 'TMP', 'TREEFILE_V1')),
      ],
      b: [shellQuote(compose('REPO', 'TMP', 'TREEFILE_V2'))],
    }),
    async pass(dir, set, runNo, listings) {
      const [repo, tmp] = [join(dir, 'repo'), join(dir, 'tmp')];
      const tf1 = join(dir, 'treefile-v1.yaml');
      const tf2 = join(dir, 'treefile-v2.yaml');
      writeFileSync(tf1, treefileText(set.v1, set.manifest.names));
      writeFileSync(tf2, treefileText(set.v2, set.manifest.names));
      mkdirSync(tmp, { recursive: true });
      try {
        await run(cli('init', '--repo', repo, '--mode', 'bare'));
      } catch (error) {
        if (!(error instanceof CommandError)) throw error;
        const f = failed(`failed: init: ${failureText(error).replace(/^failed: /, '')}`);
        return { run: runNo, steps: { a: f, b: failed('not run: init failed') } };
      }
      const a = await step(`run ${runNo} arbor a`, compose(repo, tmp, tf1), join(dir, 'a.json'));
      const list = async (id: ComposeStepId): Promise<void> => {
        if (runNo === 1)
          listings.set(`arbor:${id}`, parseListing(await run(cli('ls', '--repo', repo, REF, '/', '-R')), 'arbor'));
      };
      if (a.failure === null) await list('a').catch(() => undefined);
      const b =
        a.failure === null
          ? await step(`run ${runNo} arbor b`, compose(repo, tmp, tf2), join(dir, 'b.json'))
          : failed('not run: a failed');
      if (b.failure === null) await list('b').catch(() => undefined);
      return { run: runNo, steps: { a, b } };
    },
  };
}

/**
 * `dnf install NAMES` into ROOT from the one local repository REPO_DIR, with CONFIG (an empty
 * `[main]`) in place of the host's dnf.conf: the reference's command, shared with bench/layering.ts.
 */
export const dnfInstallArgv = (root: string, config: string, repoDir: string, names: readonly string[]): string[] => [
  'dnf',
  '-y',
  '-q',
  '--noplugins',
  '--config',
  config,
  '--installroot',
  root,
  '--setopt=reposdir=/dev/null',
  `--repofrompath=t,${repoDir}`,
  '--repo',
  't',
  '--nogpgcheck',
  '--releasever',
  '1',
  '--forcearch',
  'x86_64',
  'install',
  ...names,
];

function referencePipeline(): Pipeline {
  const commit = (repo: string, root: string): string[] => [
    'ostree',
    'commit',
    '--repo',
    repo,
    '-b',
    REF,
    `--tree=dir=${root}`,
  ];
  const step = async (
    label: string,
    dir: string,
    id: ComposeStepId,
    repoDir: string,
    set: RpmSet,
    repo: string,
  ): Promise<ComposeOutcome> => {
    const root = join(dir, `root-${id}`);
    const config = join(dir, 'dnf.conf');
    writeFileSync(config, '[main]\n');
    await run(['rm', '-rf', root]);
    mkdirSync(root);
    const d = await timed(`${label} dnf`, dnfInstallArgv(root, config, repoDir, set.manifest.names), true);
    const c = await timed(`${label} ostree commit`, commit(repo, root), false);
    const packages = (await run(['rpm', '--root', root, '-qa'])).split('\n').filter((l) => l.trim() !== '').length;
    const scriptLog = join(root, SCRIPTLET_LOG);
    const scriptlets = existsSync(scriptLog)
      ? readFileSync(scriptLog, 'utf8')
          .split('\n')
          .filter((l) => l !== '').length
      : 0;
    const commitId = (await run(['ostree', 'rev-parse', '--repo', repo, REF])).trim();
    await run(['rm', '-rf', root]);
    return {
      timing: sumTimings([d.timing, c.timing]),
      parts: { dnf: d.timing, 'ostree commit': c.timing },
      cachesDropped: d.dropped,
      failure: null,
      packages,
      imported: null,
      cached: null,
      commit: commitId,
      scriptlets,
    };
  };
  return {
    name: 'ostree',
    version: async () => `${await ostree.version()}, dnf ${(await run(['dnf', '--version'])).split('\n')[0]!.trim()}`,
    commands: () => ({
      a: [
        shellQuote(ostree.init('OSTREE_REPO')),
        shellQuote(dnfInstallArgv('ROOT_A', 'DNF_CONF', 'REPO_V1', ['PACKAGES…'])),
        shellQuote(commit('OSTREE_REPO', 'ROOT_A')),
      ],
      b: [
        shellQuote(dnfInstallArgv('ROOT_B', 'DNF_CONF', 'REPO_V2', ['PACKAGES…'])),
        shellQuote(commit('OSTREE_REPO', 'ROOT_B')),
      ],
    }),
    async pass(dir, set, runNo, listings) {
      const repo = join(dir, 'ostree-repo');
      await run(ostree.init(repo));
      const list = async (id: ComposeStepId): Promise<void> => {
        if (runNo === 1)
          listings.set(
            `ostree:${id}`,
            parseListing(await run(['ostree', 'ls', '--repo', repo, '-R', REF, '/']), 'ostree'),
          );
      };
      const a = await step(`run ${runNo} dnf+ostree a`, dir, 'a', set.v1, set, repo);
      await list('a');
      const b = await step(`run ${runNo} dnf+ostree b`, dir, 'b', set.v2, set, repo);
      await list('b');
      return { run: runNo, steps: { a, b } };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Summaries, ratios, targets

function summarizeStep(outcomes: readonly ComposeOutcome[]): ComposeStepSummary {
  const firstFailure = outcomes.find((x) => x.failure !== null)?.failure ?? null;
  const ok = outcomes.filter((x) => x.timing !== null && x.failure === null);
  if (ok.length === 0)
    return {
      timing: null,
      parts: {},
      failure: firstFailure ?? 'not run',
      packages: null,
      imported: null,
      cached: null,
    };
  const partNames = Object.keys(ok[0]!.parts);
  const mid = (pick: (x: ComposeOutcome) => number | null): number | null => {
    const xs = ok.map(pick).filter((x): x is number => x !== null);
    return xs.length === 0 ? null : median(xs);
  };
  return {
    timing: medianTiming(ok.map((x) => x.timing!)),
    parts: Object.fromEntries(partNames.map((p) => [p, medianTiming(ok.map((x) => x.parts[p]!))])),
    failure: ok.length === outcomes.length ? null : firstFailure,
    packages: mid((x) => x.packages),
    imported: mid((x) => x.imported),
    cached: mid((x) => x.cached),
  };
}

function ratiosOf(tools: ComposeResult['tools']): ComposeResult['ratios'] {
  const wall = (name: ToolName, id: ComposeStepId): number | null => {
    const s = tools[name]?.summary[id];
    return s && s.failure === null && s.timing ? s.timing.wallS : null;
  };
  const over = (x: number | null, y: number | null): number | null => (x === null || y === null ? null : x / y);
  const bOverA: Partial<Record<ToolName, number>> = {};
  for (const name of ['ostree', 'arbor'] as const) {
    const r = over(wall(name, 'b'), wall(name, 'a'));
    if (r !== null) bOverA[name] = r;
  }
  return {
    aArborOverReference: over(wall('arbor', 'a'), wall('ostree', 'a')),
    bArborOverReference: over(wall('arbor', 'b'), wall('ostree', 'b')),
    bOverA,
  };
}

function targetsOf(r: Pick<ComposeResult, 'ratios'>): ComposeTarget[] {
  const b = r.ratios.bOverA.arbor;
  return [
    {
      text: `arbor recompose ≤ ${TARGET_B_OVER_A * 100} % of the first compose (b/a wall)`,
      value: b === undefined ? PENDING : fmt.percent(b, 1),
      met: b === undefined ? null : b <= TARGET_B_OVER_A,
    },
  ];
}

function problemsOf(tools: ComposeResult['tools'], set: RpmSet): string[] {
  const out: string[] = [];
  const n = set.manifest.packages;
  for (const [name, t] of Object.entries(tools)) {
    for (const p of t.passes) {
      for (const id of ['a', 'b'] as const) {
        const s = p.steps[id];
        if (s.failure !== null) continue;
        const where = `${LABEL[name as ToolName]} run ${p.run} step ${id}`;
        if (s.packages !== null && s.packages !== n)
          out.push(`${where}: ${s.packages} packages in the result, the set has ${n}`);
        if (name === 'arbor' && s.packages === null) out.push(`${where}: --json gave no 'packages' count`);
        if (name === 'arbor' && id === 'b' && s.imported !== null && s.imported !== 1)
          out.push(`${where}: imported ${s.imported} packages, expected 1 (only ${set.manifest.update.name} changed)`);
        if (name === 'arbor' && id === 'a' && s.cached !== null && s.cached !== 0)
          out.push(`${where}: reused ${s.cached} packages in a compose from scratch`);
        const scriptlets = set.manifest.scriptlets.length;
        if (s.scriptlets !== null && s.scriptlets !== scriptlets)
          out.push(`${where}: ran ${s.scriptlets} of the set's ${scriptlets} scriptlets`);
      }
    }
  }
  return out;
}

/** Run 1's commits of each step: arbor's /usr and /etc must list as the reference's do. */
function treeChecks(listings: Map<string, Listing>): ComposeResult['treeCheck'] {
  const out: ComposeResult['treeCheck'] = {};
  for (const { id } of COMPOSE_STEPS) {
    const [x, y] = [listings.get(`arbor:${id}`), listings.get(`ostree:${id}`)];
    if (x && y) out[id] = { paths: y.size, differences: listingDifferences(x, y) };
  }
  return out;
}

function treeProblems(checks: ComposeResult['treeCheck']): string[] {
  return Object.entries(checks).flatMap(([id, c]) =>
    c.differences.length === 0
      ? []
      : [
          `step ${id}: arbor's tree differs from dnf+ostree's under /usr and /etc in ${c.differences.length} paths ` +
            `(${c.differences.slice(0, 3).join('; ')}${c.differences.length > 3 ? '; …' : ''})`,
        ],
  );
}

// ---------------------------------------------------------------------------------------------
// Presentation

function tableRows(r: ComposeResult): string[][] {
  const header = ['step', ...timingHeader('dnf+ostree'), ...timingHeader('arbor'), 'arbor/dnf+ostree wall', 'target'];
  const target = targetsOf(r)[0]!;
  const rows = COMPOSE_STEPS.map((s) => [
    `${s.id}. ${s.title}`,
    ...stepCells(r.tools.ostree?.summary[s.id]),
    ...stepCells(r.tools.arbor?.summary[s.id]),
    fmt.ratio(s.id === 'a' ? r.ratios.aArborOverReference : r.ratios.bArborOverReference),
    s.id === 'b' ? `${target.text}: ${target.value}${fmt.mark(target.met)}` : '',
  ]);
  return [header, ...rows];
}

function noiseLine(r: ComposeResult): string {
  const worst = noisiestOutcome(r.tools, r.machine.nproc, NOISE_MIN_WALL_S, (name) => LABEL[name as ToolName]);
  return backgroundLoadLine(worst, { step: 'a timed step', none: `no timed step of ${NOISE_MIN_WALL_S} s or more` });
}

function contextLines(r: ComposeResult): string[] {
  const m = r.machine;
  return [
    `Date: ${r.date}`,
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memTotalGiB} GiB RAM (free -g), Linux ${m.kernel}, scratch on ${m.scratchFs}`,
    `Tools: ${(['ostree', 'arbor'] as const).map((n) => r.tools[n]?.version ?? `${LABEL[n]} not run`).join('; ')}`,
    `RPM set: ${r.rpmSet.description} (digest ${r.rpmSet.digest.slice(0, 12)})`,
    `Median of ${r.runs} run(s); page cache dropped before each timed step: ${r.cachesDropped ? 'yes' : 'NO (not permitted)'}`,
    noiseLine(r),
  ];
}

function findingLines(r: ComposeResult, resultsFile: string): string[] {
  const ref = r.tools.ostree?.summary;
  const arb = r.tools.arbor?.summary;
  const parts = (s: ComposeStepSummary | undefined): string =>
    s && s.timing
      ? Object.entries(s.parts)
          .map(([k, t]) => `${k} ${fmt.s(t.wallS)} s (${fmt.mib(t.maxRssMiB)} MiB)`)
          .join(' + ')
      : PENDING;
  const counts = (s: ComposeStepSummary | undefined): string =>
    s && s.timing ? `${s.packages ?? '?'} packages, ${s.imported ?? '?'} imported, ${s.cached ?? '?'} reused` : PENDING;
  const peak = (t: ComposeToolResult | undefined): string => {
    const rss =
      t?.passes.flatMap((p) => Object.values(p.steps).flatMap((s) => (s.timing ? [s.timing.maxRssMiB] : []))) ?? [];
    return rss.length > 0 ? `${fmt.mib(Math.max(...rss))} MiB` : PENDING;
  };
  return [
    `b/a wall: arbor ${r.ratios.bOverA.arbor === undefined ? PENDING : fmt.percent(r.ratios.bOverA.arbor, 1)}, ` +
      `dnf+ostree ${r.ratios.bOverA.ostree === undefined ? PENDING : fmt.percent(r.ratios.bOverA.ostree, 1)} (target: arbor ≤ ${TARGET_B_OVER_A * 100} %)`,
    `Reference split: a ${parts(ref?.a)}; b ${parts(ref?.b)}`,
    `Arbor's report (--json): a ${counts(arb?.a)}; b ${counts(arb?.b)}`,
    `Peak RSS over all steps: dnf+ostree ${peak(r.tools.ostree)}, arbor ${peak(r.tools.arbor)}`,
    `Trees of run 1 against the reference's, entry by entry under /usr and /etc: ${COMPOSE_STEPS.map(({ id }) => {
      const c = r.treeCheck[id];
      return `${id} ${c === undefined ? PENDING : c.differences.length === 0 ? `same ${fmt.int(c.paths)} entries` : `${fmt.int(c.differences.length)} differences`}`;
    }).join(', ')}`,
    `Changed package for b: ${r.rpmSet.update.from} → ${r.rpmSet.update.to} (${r.rpmSet.update.changedFiles.length} files changed, ${r.rpmSet.update.addedFiles.length} added)`,
    ...(r.problems.length > 0 ? [`PROBLEMS: ${r.problems.join('; ')}`] : []),
    `Raw results: ${resultsFile}`,
  ];
}

function renderComposeText(r: ComposeResult, resultsFile: string): string {
  return `${[...contextLines(r), '', textTable(tableRows(r)), '', ...findingLines(r, resultsFile)].join('\n')}\n`;
}

const SECTION_INTRO = `## Compose: arbor vs dnf + ostree

Composing an OS commit from RPMs (\`arbor compose tree\`), against what rpm-ostree does in essence (rpm-ostree itself
is not in Debian): \`dnf --installroot\` of the same packages from the same repository, then \`ostree commit\` of the
installed root into a bare repo. Each pass starts from empty repositories:

- **a. first compose** of every package of the bench's RPM set into a fresh repo (arbor: \`init\` untimed, then
  \`compose tree --json\` with a treefile listing all the packages; reference: dnf into an empty root, then
  \`ostree commit\`);
- **b. recompose after one package changed**: the same treefile pointed at the second repository of the set, where one
  package has a new release (arbor: same repo, whose package cache \`pkg/…\` holds what a imported; reference: a
  fresh installroot from the second repository, committed into the same ostree repo, as rpm-ostree reassembles the
  tree).

The target is arbor's b ≤ 10 % of its a; the table also gives arbor/reference per step. Each command runs
under GNU time (wall, user+sys CPU, peak RSS); the page cache is dropped before a and before b (for the reference,
before dnf: its \`ostree commit\` reads the root dnf just wrote, as rpm-ostree would). The reference's time is dnf's
plus ostree's, its RSS the larger of the two. Checks, listed as problems: each result must hold every package of the
set (arbor: the \`packages\` count of its \`--json\` report; reference: \`rpm --root ROOT -qa\`), every scriptlet of the set
must have run (arbor: \`scripts.ran\` of its report; reference: the lines they append to
\`/etc/arbor-bench-scriptlets.log\`), arbor's b must import exactly one package, and in run 1 arbor's commit must list
like the reference's under /usr and /etc entry by entry (type, mode, owner, size, symlink target; arbor's /usr/etc
taken as /etc, its rpmdb and its tmpfiles.d line for /var set aside). The reference has no package cache:
its b costs what its a does. rpm-ostree's own recompose would reuse the packages it imported before (its pkgcache,
as arbor does), so the b ratio compares arbor with a tool that has no such cache, not with rpm-ostree.

The RPM set is made by \`bench/rpm-set.ts\` and cached in \`/var/tmp/arbor-bench/rpms\` (details in
[bench/README.md](../bench/README.md)): 300 real RPMs (rpmbuild, zstd level 19 payloads as Fedora's) of this machine's
files, ≈ 720 MB installed in ≈ 20,000 files and 2,400 symlinks, 290 MB of RPMs; a few large packages (kernel-core
73 MB, gcc-12 70 MB, kernel-modules 50 MB), most under 1 MB. 295 mirror installed Debian packages chosen by a seeded hash
(their dpkg file lists under /usr and /etc, conffiles as \`%config(noreplace)\`, non-root owners as \`%attr\`; Depends,
Recommends, Suggests and Provides among the chosen ones become Requires, Recommends, Suggests and Provides); a \`setup\`
package (passwd, group, shells), a \`filesystem\` package (the root's directories, the merged-/usr symlinks, and
/usr/bin/sh, a copy of the host's static busybox, \`Provides: /bin/sh\`) and three kernel packages (\`kernel-core\` with
/usr/lib/modules/KVER/vmlinuz and initramfs.img, \`kernel-modules\`, the \`kernel\` meta package) complete it. A few
packages carry %pre, %post or %posttrans scriptlets (shell builtins only). The second repository is the first with one
mid-size package at release 2 (three files changed, one added). Run it as root:
\`npm run bench -- --suite compose --runs 3 --write-doc\`.

`;

function renderSection(r: ComposeResult, resultsFile: string): string {
  const bullets = (ls: readonly string[]): string => ls.map((l) => `- ${l}`).join('\n');
  return [bullets(contextLines(r)), markdownTable(tableRows(r)), bullets(findingLines(r, resultsFile))].join('\n\n');
}

function writeComposeDoc(docPath: string, r: ComposeResult, resultsFile: string): void {
  writeSuiteSection(docPath, 'compose', renderSection(r, resultsFile), SECTION_INTRO);
}

// ---------------------------------------------------------------------------------------------

/** Runs the compose suite, prints its table, writes the JSON (and the docs section with writeDoc). */
export async function runComposeSuite(o: ComposeOptions): Promise<ComposeResult> {
  const set = await ensureRpmSet({ root: o.rpmSetDir, log: (m) => log(`rpm set: ${m}`) });
  const pipelines = [referencePipeline(), arborPipeline(o)].filter((p) => o.tools.includes(p.name));
  const base = join(o.work, 'compose');
  mkdirSync(base, { recursive: true });
  const machine = await describeMachine(base);
  const date = new Date().toISOString();
  const versions = await Promise.all(pipelines.map((p) => p.version()));
  const passes = new Map<ToolName, ComposePass[]>(pipelines.map((p) => [p.name, []]));
  const listings = new Map<string, Listing>();
  for (let runNo = 1; runNo <= o.runs; runNo++) {
    const order = runNo % 2 === 1 ? pipelines : [...pipelines].reverse(); // neither always goes first
    for (const p of order) {
      const dir = join(base, p.name);
      await run(['rm', '-rf', dir]);
      mkdirSync(dir, { recursive: true });
      try {
        passes.get(p.name)!.push(await p.pass(dir, set, runNo, listings));
      } finally {
        await run(['rm', '-rf', dir]);
      }
    }
  }
  const tools: ComposeResult['tools'] = {};
  pipelines.forEach((p, i) => {
    const ps = passes.get(p.name)!;
    tools[p.name] = {
      version: versions[i]!,
      commands: p.commands(),
      passes: ps,
      summary: { a: summarizeStep(ps.map((x) => x.steps.a)), b: summarizeStep(ps.map((x) => x.steps.b)) },
    };
  });
  const m = set.manifest;
  const ratios = ratiosOf(tools);
  const treeCheck = treeChecks(listings);
  const result: ComposeResult = {
    benchmark: 'compose',
    date,
    machine,
    rpmSet: {
      root: set.root,
      description: describeRpmSet(m),
      digest: m.digest,
      packages: m.packages,
      files: m.files,
      installedBytes: m.installedBytes,
      rpmBytes: m.rpmBytes,
      update: m.update,
    },
    runs: o.runs,
    cachesDropped: allCachesDropped(tools),
    tools,
    ratios,
    targets: targetsOf({ ratios }),
    treeCheck,
    problems: [...problemsOf(tools, set), ...treeProblems(treeCheck)],
  };
  const resultsFile = relative(o.repoRoot, writeJsonResults(join(o.repoRoot, 'bench/results'), 'compose', result));
  process.stdout.write(renderComposeText(result, resultsFile));
  if (o.writeDoc) writeComposeDoc(join(o.repoRoot, 'docs/benchmarks.md'), result, resultsFile);
  rmSync(base, { recursive: true, force: true });
  return result;
}
