// bench/layering.ts — the layering benchmark (`node dist/bench/run.js --suite layering`) on the
// reference OS (examples/os): (a) `arbor install` of one package with 3 dependencies onto the
// deployed OS against `dnf --installroot` into a copy of the same root + `ostree commit` of it;
// (b) `arbor upgrade` of a deployment with 5 layered packages against a plain `arbor upgrade` of the
// same base move. Owns the setup, the steps, the table, the JSON results and the docs section.
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { type Release, buildOsRelease } from '../examples/os/build-rpms.js';
import { dnfInstallArgv } from './compose.js';
import { buildPackage, type Entry, type Pkg } from './lib/debian-rpm.js';
import { PENDING, backgroundLoadLine, fmt, stepCells, timingHeader } from './lib/format.js';
import { describeMachine, type Machine } from './lib/host.js';
import { allCachesDropped, median, medianTiming, noisiestOutcome, sumTimings } from './lib/model.js';
import { CommandError, failureText, run, shellQuote, timeStep, type Timing } from './lib/proc.js';
import { writeJsonResults, writeSuiteSection } from './lib/report.js';
import { markdownTable, textTable } from './lib/table.js';
import { arbor, ostree, type SuiteOptions, type ToolName } from './lib/tools.js';

/** The suite works in WORK/layering (emptied before and after). */
export type LayeringOptions = SuiteOptions;

/** The reference OS's composed ref and the stateroot the sysroots get. */
const OS_REF = 'arbor-os/x86_64/stable';
const STATEROOT = 'os';
/** Where the reference OS's RPMs are built (the tests' cache by default: built once, reused). */
const OS_BUILD = process.env.ARBOR_BENCH_OS_BUILD ?? '/var/tmp/arbor-test-cache/reference-os/build';
const TARGET_INSTALL_RATIO = 0.5;
const TARGET_EXTRA_S = 2;
const NOISE_MIN_WALL_S = 1;

/** The package of step a, its three dependencies, and four more for the layered upgrade of b. */
const TOOL = 'bench-tool';
const LIBS = ['bench-lib1', 'bench-lib2', 'bench-lib3'];
const EXTRAS = ['bench-extra1', 'bench-extra2', 'bench-extra3', 'bench-extra4'];
const LAYERED = [TOOL, ...EXTRAS];

type StepId = 'a' | 'b0' | 'b5';
const STEPS: readonly { id: StepId; title: string }[] = [
  { id: 'a', title: `install ${TOOL} (+3 dependencies) on the deployed OS` },
  { id: 'b0', title: 'upgrade to the next base, no layered packages' },
  { id: 'b5', title: 'upgrade to the next base with 5 layered packages' },
];
const LABEL: Record<ToolName, string> = { ostree: 'dnf+ostree', arbor: 'arbor' };

interface Outcome {
  timing: Timing | null;
  /** The reference's commands separately: dnf, ostree commit. */
  parts: Record<string, Timing>;
  cachesDropped: boolean;
  failure: string | null;
  /** Packages in the result (arbor: rpm -qa of the new deployment; reference: of the root). */
  packages: number | null;
}
interface LayeringPass {
  run: number;
  steps: Partial<Record<StepId, Outcome>>;
}
interface StepSummary {
  timing: Timing | null;
  parts: Record<string, Timing>;
  failure: string | null;
  packages: number | null;
}
interface ToolResult {
  version: string;
  commands: Partial<Record<StepId, string[]>>;
  passes: LayeringPass[];
  summary: Partial<Record<StepId, StepSummary>>;
}
interface Target {
  text: string;
  value: string;
  met: boolean | null;
}

export interface LayeringResult {
  benchmark: 'layering';
  date: string;
  machine: Machine;
  os: { releases: Release[]; basePackages: number | null; layeredRpmBytes: number };
  runs: number;
  cachesDropped: boolean;
  tools: Partial<Record<ToolName, ToolResult>>;
  ratios: { aArborOverReference: number | null; bExtraS: number | null };
  targets: Target[];
  problems: string[];
}

function log(message: string): void {
  process.stderr.write(`[bench layering] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Setup (untimed)

/** Incompressible bytes from a seed: layered files cost what real binaries cost to store. */
function noise(seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = 2166136261;
  for (const ch of seed) x = Math.imul(x ^ ch.charCodeAt(0), 16777619) >>> 0;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const genFile = (path: string, bytes: number, mode = 0o644): Entry => ({
  kind: 'gen',
  path,
  type: 'file',
  bytes,
  mode,
  config: false,
  make: () => noise(path, bytes),
});

function layeredPackages(): Pkg[] {
  const pkg = (name: string, entries: Entry[], requires: string[] = [], post?: string): Pkg => ({
    name,
    version: '1.0',
    release: '1',
    arch: 'x86_64',
    summary: `layering benchmark package ${name}`,
    origin: 'generated',
    requires,
    requiresPre: [],
    provides: [],
    recommends: [],
    suggests: [],
    entries,
    scripts: post ? { post } : {},
    installExtra: [],
  });
  return [
    pkg(
      TOOL,
      [
        genFile(`/usr/bin/${TOOL}`, 2_000_000, 0o755),
        { kind: 'gen', path: `/usr/share/${TOOL}`, type: 'dir', mode: 0o755 },
        genFile(`/usr/share/${TOOL}/data`, 1_000_000),
      ],
      LIBS,
      // A %post, as most packages have one: both tools run it in the new tree.
      `echo configured > /usr/share/${TOOL}/post-ran`,
    ),
    ...LIBS.map((name) => pkg(name, [genFile(`/usr/lib64/lib${name}.so.1`, 1_500_000, 0o755)])),
    ...EXTRAS.map((name) => pkg(name, [genFile(`/usr/bin/${name}`, 800_000, 0o755)])),
  ];
}

interface Setup {
  /** Sysroot with the OS deployed (v1) and v2 composed on its ref: copied for a and b0. */
  plain: string;
  /** The same with LAYERED installed on v1: copied for b5. */
  layered: string;
  /** The deployed v1 root for dnf (/var/lib/rpm → ../../usr/share/rpm), and an ostree repo holding it. */
  referenceRoot: string;
  referenceRepo: string;
  extras: string;
  layeredRpmBytes: number;
}

const arborCli =
  (o: LayeringOptions) =>
  (...args: string[]): string[] => [process.execPath, o.arborBin, ...args];

/**
 * A treefile for RELEASE of the reference OS: this checkout's examples/os/treefile.yaml on a
 * snapshot of the release's repository in OS_BUILD (built there first when missing). The tests
 * rebuild OS_BUILD when the sources change, so the suite waits for a build under way and copies
 * the packages (with fresh metadata) rather than reading them while they are replaced.
 */
async function osTreefile(o: LayeringOptions, dir: string, release: Release): Promise<string> {
  for (let waited = 0; existsSync(join(OS_BUILD, '.work')) && waited < 600; waited += 5) {
    if (waited === 0) log(`waiting for the reference OS build under way in ${OS_BUILD}`);
    await new Promise((done) => setTimeout(done, 5000));
  }
  let rpms = join(OS_BUILD, release, 'rpms');
  if (!existsSync(join(rpms, 'repodata/repomd.xml'))) {
    log(`building the reference OS ${release} in ${OS_BUILD} (once; minutes)`);
    rpms = (await buildOsRelease({ release, out: OS_BUILD, log })).rpms;
  }
  const snapshot = join(dir, `os-${release}`);
  mkdirSync(snapshot, { recursive: true });
  const files = readdirSync(rpms).filter((f) => f.endsWith('.rpm'));
  await run(['cp', '--reflink=auto', ...files.map((f) => join(rpms, f)), snapshot]);
  await run(['createrepo_c', '--quiet', snapshot]);
  const treefile = join(dir, `os-${release}.yaml`);
  const include = join(o.repoRoot, 'examples/os/treefile.yaml');
  writeFileSync(
    treefile,
    `include: ${JSON.stringify(include)}\nrepos: [${JSON.stringify(snapshot)}]\nversion: ${release}\n`,
  );
  return treefile;
}

/** The newest deployment's directory, from `status --json`. */
async function newestDeployment(o: LayeringOptions, sysroot: string): Promise<string> {
  const status = JSON.parse(await run(arborCli(o)('status', '--json', '--sysroot', sysroot))) as {
    deployments: { checksum: string; serial: number }[];
  };
  const d = status.deployments[0];
  if (!d) throw new CommandError(`${sysroot} has no deployment`);
  return join(sysroot, 'arbor/deploy', STATEROOT, 'deploy', `${d.checksum}.${d.serial}`);
}

async function rpmNames(root: string, dbpath?: string): Promise<string[]> {
  const args = ['rpm', '--root', root, ...(dbpath ? ['--dbpath', dbpath] : []), '-qa', '--qf', '%{NAME}\n'];
  return (await run(args)).split('\n').filter((l) => l !== '');
}

/**
 * `mkdir -p PATH` inside ROOT, following the root's symlinks as it would see them (/root is
 * var/roothome in a composed tree, and a fresh deployment's /var is empty); returns the host path.
 */
function mkdirIn(root: string, path: string): string {
  let at = root;
  for (const part of path.split('/').filter((p) => p !== '')) {
    let next = join(at, part);
    for (let hops = 0; hops < 8 && lstatSync(next, { throwIfNoEntry: false })?.isSymbolicLink(); hops++) {
      const target = readlinkSync(next);
      next = target.startsWith('/') ? join(root, target) : join(dirname(next), target);
    }
    mkdirSync(next, { recursive: true });
    at = next;
  }
  return at;
}

async function setUp(o: LayeringOptions, dir: string): Promise<Setup> {
  const cli = arborCli(o);
  const [v1, v2] = [await osTreefile(o, dir, 'v1'), await osTreefile(o, dir, 'v2')];
  const extras = join(dir, 'extras');
  mkdirSync(extras, { recursive: true });
  let layeredRpmBytes = 0;
  for (const p of layeredPackages()) {
    const rpm = await buildPackage(p, extras, join(dir, 'rpmbuild'), { payload: 'w19.zstdio' });
    layeredRpmBytes += readFileSync(rpm).length;
  }
  await run(['createrepo_c', '--quiet', extras]);

  const plain = join(dir, 'plain');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const compose = (sysroot: string, treefile: string): Promise<string> =>
    run(cli('compose', 'tree', '--repo', join(sysroot, 'arbor/repo'), '--tmpdir', tmp, '--json', treefile));
  log('setup: composing and deploying the reference OS v1');
  await run(cli('admin', 'init-fs', plain));
  await run(cli('admin', 'os-init', '--sysroot', plain, STATEROOT));
  await compose(plain, v1);
  await run(cli('admin', 'deploy', '--sysroot', plain, '--stateroot', STATEROOT, OS_REF));

  log('setup: the reference root (a copy of the deployed v1) committed with ostree');
  const referenceRoot = join(dir, 'reference-root');
  await run(['cp', '-a', await newestDeployment(o, plain), referenceRoot]);
  // The rpm database stays in /usr/share/rpm: linked from /var/lib/rpm, as rpm-ostree systems link
  // it, and from where this host's rpm (so dnf) looks (Debian's: ~/.rpmdb).
  const dbpath = (await run(['rpm', '--eval', '%_dbpath'])).trim();
  for (const link of new Set(['/var/lib/rpm', dbpath])) {
    const at = join(mkdirIn(referenceRoot, dirname(link)), basename(link));
    rmSync(at, { recursive: true, force: true });
    symlinkSync(relative(dirname(at), join(referenceRoot, 'usr/share/rpm')), at);
  }
  const referenceRepo = join(dir, 'ostree-repo');
  await run(ostree.init(referenceRepo));
  await run(['ostree', 'commit', '--repo', referenceRepo, '-b', 'bench/base', `--tree=dir=${referenceRoot}`]);

  log(`setup: ${LAYERED.join(', ')} layered on a copy; v2 composed into both`);
  const layered = join(dir, 'layered');
  await run(['cp', '-a', plain, layered]);
  await run(cli('install', '--sysroot', layered, '--repo-dir', extras, ...LAYERED));
  await compose(plain, v2);
  await compose(layered, v2);
  return { plain, layered, referenceRoot, referenceRepo, extras, layeredRpmBytes };
}

// ---------------------------------------------------------------------------------------------
// Steps

const failed = (failure: string): Outcome => ({
  timing: null,
  parts: {},
  cachesDropped: true,
  failure,
  packages: null,
});

/** An arbor command on a fresh copy of a template sysroot, timed; the new deployment's packages counted. */
async function arborStep(o: LayeringOptions, label: string, template: string, args: string[]): Promise<Outcome> {
  const sysroot = join(o.work, 'layering', 'run-sysroot');
  await run(['rm', '-rf', sysroot]);
  await run(['cp', '-a', template, sysroot]);
  try {
    const { timing, dropped } = await timeStep(log, label, arborCli(o)(...args, '--sysroot', sysroot));
    const packages = (await rpmNames(await newestDeployment(o, sysroot), '/usr/share/rpm')).length;
    return { timing, parts: {}, cachesDropped: dropped, failure: null, packages };
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    return failed(failureText(error));
  } finally {
    await run(['rm', '-rf', sysroot]);
  }
}

async function referenceStep(o: LayeringOptions, label: string, s: Setup): Promise<Outcome> {
  const dir = join(o.work, 'layering');
  const root = join(dir, 'run-root');
  const config = join(dir, 'dnf.conf');
  writeFileSync(config, '[main]\n');
  await run(['rm', '-rf', root]);
  await run(['cp', '-a', s.referenceRoot, root]);
  try {
    const d = await timeStep(log, `${label} dnf`, dnfInstallArgv(root, config, s.extras, [TOOL]));
    const c = await timeStep(
      log,
      `${label} ostree commit`,
      ['ostree', 'commit', '--repo', s.referenceRepo, '-b', 'bench/layered', `--tree=dir=${root}`],
      { dropCaches: false },
    );
    const packages = (await rpmNames(root)).length;
    return {
      timing: sumTimings([d.timing, c.timing]),
      parts: { dnf: d.timing, 'ostree commit': c.timing },
      cachesDropped: d.dropped,
      failure: null,
      packages,
    };
  } finally {
    await run(['rm', '-rf', root]);
  }
}

// ---------------------------------------------------------------------------------------------
// Summaries and presentation

function summarizeStep(outcomes: readonly Outcome[]): StepSummary {
  const firstFailure = outcomes.find((x) => x.failure !== null)?.failure ?? null;
  const ok = outcomes.filter((x) => x.timing !== null);
  if (ok.length === 0) return { timing: null, parts: {}, failure: firstFailure ?? 'not run', packages: null };
  const partNames = Object.keys(ok[0]!.parts);
  return {
    timing: medianTiming(ok.map((x) => x.timing!)),
    parts: Object.fromEntries(partNames.map((p) => [p, medianTiming(ok.map((x) => x.parts[p]!))])),
    failure: ok.length === outcomes.length ? null : firstFailure,
    packages: median(ok.map((x) => x.packages ?? 0)),
  };
}

function ratiosOf(tools: LayeringResult['tools']): LayeringResult['ratios'] {
  const wall = (name: ToolName, id: StepId): number | null => {
    const s = tools[name]?.summary[id];
    return s && s.failure === null && s.timing ? s.timing.wallS : null;
  };
  const [a, ref, b0, b5] = [wall('arbor', 'a'), wall('ostree', 'a'), wall('arbor', 'b0'), wall('arbor', 'b5')];
  return {
    aArborOverReference: a === null || ref === null ? null : a / ref,
    bExtraS: b0 === null || b5 === null ? null : b5 - b0,
  };
}

function targetsOf(r: Pick<LayeringResult, 'ratios'>): Target[] {
  const { aArborOverReference: a, bExtraS: b } = r.ratios;
  return [
    {
      text: `arbor install ≤ ${TARGET_INSTALL_RATIO}× dnf+ostree (a wall)`,
      value: fmt.ratio(a),
      met: a === null ? null : a <= TARGET_INSTALL_RATIO,
    },
    {
      text: `5 layered packages add ≤ ${TARGET_EXTRA_S} s to an upgrade (b5 − b0 wall)`,
      value: b === null ? PENDING : `${fmt.s(b)} s`,
      met: b === null ? null : b <= TARGET_EXTRA_S,
    },
  ];
}

function problemsOf(tools: LayeringResult['tools'], basePackages: number | null): string[] {
  const out: string[] = [];
  if (basePackages === null) return out;
  const expected: Record<StepId, number> = {
    a: basePackages + 1 + LIBS.length,
    b0: basePackages,
    b5: basePackages + LAYERED.length + LIBS.length,
  };
  for (const [name, t] of Object.entries(tools))
    for (const p of t.passes)
      for (const [id, s] of Object.entries(p.steps) as [StepId, Outcome][])
        if (s.packages !== null && s.packages !== expected[id])
          out.push(
            `${LABEL[name as ToolName]} run ${p.run} step ${id}: ${s.packages} packages, expected ${expected[id]}`,
          );
  return out;
}

function tableRows(r: LayeringResult): string[][] {
  const header = ['step', ...timingHeader('dnf+ostree'), ...timingHeader('arbor'), 'arbor/dnf+ostree wall', 'target'];
  const [t1, t2] = targetsOf(r) as [Target, Target];
  const targetCell = (t: Target): string => `${t.text}: ${t.value}${fmt.mark(t.met)}`;
  return [
    header,
    ...STEPS.map((s) => [
      `${s.id}. ${s.title}`,
      ...(s.id === 'a' ? stepCells(r.tools.ostree?.summary.a) : ['—', '—', '—']),
      ...stepCells(r.tools.arbor?.summary[s.id]),
      s.id === 'a' ? fmt.ratio(r.ratios.aArborOverReference) : '',
      s.id === 'a' ? targetCell(t1) : s.id === 'b5' ? targetCell(t2) : '',
    ]),
  ];
}

function contextLines(r: LayeringResult): string[] {
  const m = r.machine;
  const worst = noisiestOutcome(r.tools, m.nproc, NOISE_MIN_WALL_S, (name) => LABEL[name as ToolName]);
  return [
    `Date: ${r.date}`,
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memTotalGiB} GiB RAM (free -g), Linux ${m.kernel}, scratch on ${m.scratchFs}`,
    `Tools: ${(['ostree', 'arbor'] as const).map((n) => r.tools[n]?.version ?? `${LABEL[n]} not run`).join('; ')}`,
    `OS: the reference OS (examples/os) ${r.os.releases.join(' → ')}, ${r.os.basePackages ?? '?'} packages; layered RPMs ${fmt.mb(r.os.layeredRpmBytes)} (zstd 19)`,
    `Median of ${r.runs} run(s); page cache dropped before each timed step: ${r.cachesDropped ? 'yes' : 'NO (not permitted)'}`,
    backgroundLoadLine(worst, { step: 'a timed step', none: `no timed step of ${NOISE_MIN_WALL_S} s or more` }),
  ];
}

/** b5 − b0 in CPU seconds, which the page-cache drop and other load sway less than wall time. */
function cpuExtra(r: LayeringResult): string {
  const [b0, b5] = [r.tools.arbor?.summary.b0?.timing, r.tools.arbor?.summary.b5?.timing];
  return b0 && b5 ? `${fmt.s(b5.cpuS - b0.cpuS)} s` : PENDING;
}

function findingLines(r: LayeringResult, resultsFile: string): string[] {
  const ref = r.tools.ostree?.summary.a;
  const parts =
    ref && ref.timing
      ? Object.entries(ref.parts)
          .map(([k, t]) => `${k} ${fmt.s(t.wallS)} s`)
          .join(' + ')
      : PENDING;
  return [
    `Reference split (a): ${parts}`,
    `Extra time of 5 layered packages on an upgrade (b5 − b0): ${r.ratios.bExtraS === null ? PENDING : `${fmt.s(r.ratios.bExtraS)} s`} wall, ${cpuExtra(r)} CPU (steadier than wall on a shared machine)`,
    ...(r.problems.length > 0 ? [`PROBLEMS: ${r.problems.join('; ')}`] : []),
    `Raw results: ${resultsFile}`,
  ];
}

const SECTION_INTRO = `## Layering: arbor install and upgrade vs dnf + ostree

Package layering on the reference OS (examples/os, composed from the RPMs its build-rpms.ts makes). Setup, untimed:
v1 composed and deployed into a sysroot, v2 composed onto the same ref (the next base); a second sysroot is a copy
with five packages layered on v1 (\`arbor install\`). The layered packages are built by the suite with rpmbuild into a
local yum repository: \`${TOOL}\` requires \`${LIBS.join('`, `')}\` and has a %post; \`${EXTRAS.join('`, `')}\`
stand alone (2 MB, 1.5 MB and 0.8 MB files of incompressible bytes). Every package is read from local disk by both
tools (the warm package cache of a host: nothing downloaded). Each timed step runs on a fresh \`cp -a\` copy:

- **a. install** of \`${TOOL}\` (so 4 packages) with \`arbor install --repo-dir EXTRAS\`, which resolves against the
  base's rpm database, imports the packages, runs the %post and deploys the derived tree, against the reference
  rpm-ostree replaces: \`dnf --installroot\` into a copy of the deployed v1 root (\`/var/lib/rpm\` and the host
  rpm's database path linked to its \`/usr/share/rpm\`), then \`ostree commit\` of that root into a repository holding the base commit;
- **b0. upgrade** of the plain sysroot to v2 (\`arbor upgrade\`), and **b5.** the same of the layered sysroot, which
  re-applies the five requests (8 packages) onto v2 from the kept package files.

Targets: a ≤ 0.5× the reference's wall time, and b5 − b0 ≤ 2 s. Each command runs under GNU time after a page-cache
drop (the reference's \`ostree commit\` right after its dnf, as rpm-ostree would); the reference's time is dnf's plus
ostree's. Checks, listed as problems: the new deployment's (or root's) \`rpm -qa\` counts the base plus what the step
adds. Arbor's install deploys (a checkout, the /etc merge, boot entries) besides committing; the reference stops at
the commit. Run it as root: \`npm run bench -- --suite layering --write-doc\`.

`;

function renderText(r: LayeringResult, resultsFile: string): string {
  return `${[...contextLines(r), '', textTable(tableRows(r)), '', ...findingLines(r, resultsFile)].join('\n')}\n`;
}

function writeLayeringDoc(docPath: string, r: LayeringResult, resultsFile: string): void {
  const bullets = (ls: readonly string[]): string => ls.map((l) => `- ${l}`).join('\n');
  const body = [bullets(contextLines(r)), markdownTable(tableRows(r)), bullets(findingLines(r, resultsFile))].join(
    '\n\n',
  );
  writeSuiteSection(docPath, 'layering', body, SECTION_INTRO);
}

// ---------------------------------------------------------------------------------------------

/** Runs the layering suite, prints its table, writes the JSON (and the docs section with writeDoc). */
export async function runLayeringSuite(o: LayeringOptions): Promise<LayeringResult> {
  const dir = join(o.work, 'layering');
  await run(['rm', '-rf', dir]);
  mkdirSync(dir, { recursive: true });
  const machine = await describeMachine(dir);
  const date = new Date().toISOString();
  const setup = await setUp(o, dir);
  const basePackages = (await rpmNames(setup.referenceRoot)).length;
  const cli = arborCli(o);
  const passes: Record<ToolName, LayeringPass[]> = { ostree: [], arbor: [] };
  for (let runNo = 1; runNo <= o.runs; runNo++) {
    const order: ToolName[] = runNo % 2 === 1 ? ['ostree', 'arbor'] : ['arbor', 'ostree'];
    for (const tool of order.filter((t) => o.tools.includes(t))) {
      if (tool === 'ostree') {
        passes.ostree.push({ run: runNo, steps: { a: await referenceStep(o, `run ${runNo} dnf+ostree a`, setup) } });
        continue;
      }
      const label = (id: StepId): string => `run ${runNo} arbor ${id}`;
      const a = await arborStep(o, label('a'), setup.plain, ['install', '--repo-dir', setup.extras, TOOL]);
      const b0 = await arborStep(o, label('b0'), setup.plain, ['upgrade']);
      const b5 = await arborStep(o, label('b5'), setup.layered, ['upgrade']);
      passes.arbor.push({ run: runNo, steps: { a, b0, b5 } });
    }
  }
  const version = async (tool: ToolName): Promise<string> =>
    tool === 'ostree'
      ? `${await ostree.version()}, dnf ${(await run(['dnf', '--version'])).split('\n')[0]!.trim()}`
      : await arbor(o.arborBin, o.repoRoot).version();
  const tools: LayeringResult['tools'] = {};
  for (const tool of (['ostree', 'arbor'] as const).filter((t) => o.tools.includes(t))) {
    const ps = passes[tool];
    const ids = tool === 'ostree' ? (['a'] as const) : (['a', 'b0', 'b5'] as const);
    tools[tool] = {
      version: await version(tool),
      commands:
        tool === 'ostree'
          ? {
              a: [
                'cp -a BASE_ROOT ROOT (untimed)',
                shellQuote(dnfInstallArgv('ROOT', 'DNF_CONF', 'EXTRAS', [TOOL])),
                shellQuote(['ostree', 'commit', '--repo', 'O', '-b', 'bench/layered', '--tree=dir=ROOT']),
              ],
            }
          : {
              a: [shellQuote(cli('install', '--repo-dir', 'EXTRAS', TOOL, '--sysroot', 'SYSROOT'))],
              b0: [shellQuote(cli('upgrade', '--sysroot', 'SYSROOT'))],
              b5: [shellQuote(cli('upgrade', '--sysroot', 'LAYERED_SYSROOT'))],
            },
      passes: ps,
      summary: Object.fromEntries(ids.map((id) => [id, summarizeStep(ps.flatMap((p) => p.steps[id] ?? []))])),
    };
  }
  const ratios = ratiosOf(tools);
  const result: LayeringResult = {
    benchmark: 'layering',
    date,
    machine,
    os: { releases: ['v1', 'v2'], basePackages, layeredRpmBytes: setup.layeredRpmBytes },
    runs: o.runs,
    cachesDropped: allCachesDropped(tools),
    tools,
    ratios,
    targets: targetsOf({ ratios }),
    problems: problemsOf(tools, basePackages),
  };
  const resultsFile = relative(o.repoRoot, writeJsonResults(join(o.repoRoot, 'bench/results'), 'layering', result));
  process.stdout.write(renderText(result, resultsFile));
  if (o.writeDoc) writeLayeringDoc(join(o.repoRoot, 'docs/benchmarks.md'), result, resultsFile);
  rmSync(dir, { recursive: true, force: true });
  return result;
}
