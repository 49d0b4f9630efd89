// bench/deploy.ts — the deploy benchmark (`node dist/bench/run.js --suite deploy`): `ostree admin
// deploy` and `arbor admin deploy` side by side on the bench trees, each sysroot on its own
// loop-mounted ext4 image (ostree freezes the filesystem holding /boot: never the machine's root),
// then an upgrade (pull of v2 from a remote served by nginx on 127.0.0.1, and deploy), then
// arbor's rollback on a sysroot with 5 deployments, with Node's startup share measured apart.
// Owns the steps, their medians, the checks, the tables, the JSON results and the docs section.
// Arbor failures become "failed: …" cells; ostree failures stop the run.
// Also runnable as `node dist/bench/deploy.js --rollback-probe SYSROOT N`: imports the deploy layer
// of this repository's dist/ and times N in-process rollbacks (the suite runs it; prints JSON).
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeMachine, mountsBelow, type Machine } from './lib/host.js';
import { allCachesDropped, median, medianTiming, noisiestOutcome } from './lib/model.js';
import {
  CommandError,
  StepFailed,
  attempt,
  run,
  settlePageCache,
  shellQuote,
  timeProcess,
  timeStep,
  type Sample,
  type Timing,
} from './lib/proc.js';
import { PENDING, backgroundLoadLine, fmt, stepCells, timingHeader } from './lib/format.js';
import { writeJsonResults, writeSuiteSection } from './lib/report.js';
import { arbor, ostree, type SuiteOptions, type ToolName } from './lib/tools.js';
import { countTree, describeTree, type TreeCount, type TreeInfo } from './lib/trees.js';
import { markdownTable, textTable } from './lib/table.js';
import { startNginx } from '../test/support/nginx.js';

/** The suite works in WORK/deploy/<tool>, emptied at the start and the end. */
export interface DeployBenchOptions extends SuiteOptions {
  v1: string;
  v2: string;
}

type DeployStepId = 'a' | 'b' | 'u';
const DEPLOY_STEPS: readonly { id: DeployStepId; title: string }[] = [
  { id: 'a', title: 'first deploy (v1) into a fresh stateroot' },
  { id: 'b', title: 'deploy of v2 over it (/etc merge, new kernel)' },
  { id: 'u', title: 'upgrade v1 → v2: pull from a remote on 127.0.0.1 (objects) + deploy' },
];

/** The small measurements, in ms. Which tool has which is in PROBES. */
type ProbeId =
  | 'rollbackWarm'
  | 'rollbackCold'
  | 'rollbackInProcess'
  | 'importDeploy'
  | 'versionWarm'
  | 'versionCold'
  | 'nodeBare'
  | 'statusWarm';
const PROBES: readonly { id: ProbeId; title: string; tools: readonly ToolName[] }[] = [
  { id: 'rollbackWarm', title: 'r. `rollback`, 5 deployments, warm (whole process)', tools: ['arbor'] },
  { id: 'rollbackCold', title: 'r0. `rollback`, page cache dropped (whole process)', tools: ['arbor'] },
  {
    id: 'rollbackInProcess',
    title: 'ri. rollback in process: `Sysroot.open` + `rollback()` + `close()`, deploy layer loaded',
    tools: ['arbor'],
  },
  {
    id: 'importDeploy',
    title: 'im. loading the deploy layer (`import dist/src/deploy/index.js`) in a fresh Node',
    tools: ['arbor'],
  },
  { id: 'versionWarm', title: 'v. `--version`, warm (process start, nothing done)', tools: ['ostree', 'arbor'] },
  { id: 'versionCold', title: 'v0. `--version`, page cache dropped', tools: ['ostree', 'arbor'] },
  { id: 'nodeBare', title: 'n. `node -e 0`, warm (Node alone)', tools: ['arbor'] },
  {
    id: 'statusWarm',
    title: 's. `status` of the 5 deployments, warm (`ostree admin status` / `arbor status --json`)',
    tools: ['ostree', 'arbor'],
  },
];

const STATEROOT = 'os';
const REF_V1 = 'bench/v1';
const REF_V2 = 'bench/v2';
/** Sparse; holds the repo (≈ 2.3 GB with v2), 5 deployments' directories and /etc copies, two kernels. */
const IMAGE_GIB = 8;
const IMAGE_SIZE = `${IMAGE_GIB}G`;
/** Warm repetitions of each small measurement per run (after one untimed warm-up). Odd: with the cold one, rollbacks come in pairs. */
const WARM_REPEATS = 5;
/** In-process rollbacks per run: even, so the sysroot ends in its first order. */
const IN_PROCESS_REPEATS = 6;
const TARGET_DEPLOY_RATIO = 1;
const TARGET_ROLLBACK_MS = 100;
/** Peak RSS of every host-side operation (deploy, upgrade, rollback, status), arbor's. */
const TARGET_HOST_RSS_MIB = 128;
/** The remote the upgrade step follows, and its branch on the server (which holds v2 only). */
const REMOTE = 'origin';
const SERVER_BRANCH = 'bench';

const NOISE_MIN_WALL_S = 1;

/** What the admin does to /etc of the v1 deployment before b (untimed), so b has a real 3-way merge. */
const ADMIN_HOSTS_LINE = '10.0.0.1 arbor-bench-admin';
const ADMIN_FILE = 'arbor-bench-admin.conf';
/** Changed by v2's defaults too: a conflict, where both tools keep the admin's version. */
const ADMIN_CONFLICT_FILE = 'locale.alias';
const ADMIN_CONFLICT_LINE = '# arbor-bench admin edit';

interface StepOutcome {
  timing: Timing | null;
  cachesDropped: boolean;
  failure: string | null;
}

type ProbeOutcome = { samples: Sample[]; failure: null } | { samples: []; failure: string };

interface DeployPass {
  run: number;
  steps: Record<DeployStepId, StepOutcome>;
  probes: Partial<Record<ProbeId, ProbeOutcome>>;
  /** Correctness checks that failed in this pass. */
  problems: string[];
  /** Untimed setup (caches warm): seconds per command. */
  setupWallS: Record<string, number>;
}

interface StepSummary {
  timing: Timing | null;
  failure: string | null;
}

interface ProbeSummary {
  /** Median over every sample of every run. */
  wallMs: number | null;
  cpuMs: number | null;
  rssMiB: number | null;
  samples: number;
  failure: string | null;
}

interface DeployToolResult {
  version: string;
  commands: Record<string, string[]>;
  /** Untimed: building the tool's template image once per suite (init-fs, os-init, commit v1). */
  templateSetupWallS: Record<string, number>;
  passes: DeployPass[];
  summary: { steps: Record<DeployStepId, StepSummary>; probes: Partial<Record<ProbeId, ProbeSummary>> };
}

interface DeployTarget {
  /** A step (`a`, `a rss`, ...) or a probe (`rollbackWarm`, `statusWarm rss`, ...). */
  key: string;
  text: string;
  value: string;
  met: boolean | null;
}

export interface DeployResult {
  benchmark: 'deploy';
  date: string;
  machine: Machine;
  sysroots: string;
  trees: { v1: TreeInfo & { usr: TreeCount }; v2: TreeInfo & { usr: TreeCount } };
  runs: number;
  cachesDropped: boolean;
  /** The harness's own cost in every whole-process ms figure: spawning `/usr/bin/time true`, median. */
  spawnOverheadMs: number;
  tools: Partial<Record<ToolName, DeployToolResult>>;
  ratios: Partial<Record<DeployStepId, number | null>>;
  targets: DeployTarget[];
  problems: string[];
}

function log(message: string): void {
  process.stderr.write(`[bench deploy] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Loop-mounted images

/** The loop devices backed by image (`losetup -j`). */
async function loopsOf(image: string): Promise<string[]> {
  if (!existsSync(image)) return [];
  return (await run(['losetup', '-j', image]))
    .split('\n')
    .map((l) => l.split(':')[0]!.trim())
    .filter((d) => d !== '');
}

async function attach(image: string, mnt: string): Promise<void> {
  // Direct I/O: the image's blocks are not cached a second time in the host's page cache.
  const dev = (await run(['losetup', '--find', '--show', '--direct-io=on', image])).trim();
  mkdirSync(mnt, { recursive: true });
  try {
    await run(['mount', dev, mnt]);
  } catch (error) {
    await run(['losetup', '-d', dev]);
    throw error;
  }
}

/** Unmounts everything below dir and detaches the loop devices of its images (ours only: found by backing file). */
async function releaseAll(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const m of mountsBelow(dir)) await run(['umount', m]);
  const images = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.img'))
    .map((e) => join(e.parentPath, e.name));
  for (const image of images) for (const dev of await loopsOf(image)) await run(['losetup', '-d', dev]);
}

async function makeImage(image: string): Promise<void> {
  rmSync(image, { force: true });
  await run(['truncate', '-s', IMAGE_SIZE, image]);
  // Inode tables and journal written now: no ext4lazyinit thread writing during the timed steps.
  await run(['mkfs.ext4', '-q', '-F', '-L', 'arbor-bench', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
}

// ---------------------------------------------------------------------------------------------
// The tools

interface Listed {
  checksum: string;
  serial: number;
}

interface DeployTool {
  readonly name: ToolName;
  initFs(sysroot: string): string[];
  osInit(sysroot: string): string[];
  commit(sysroot: string, ref: string, tree: string): string[];
  revParse(sysroot: string, ref: string): string[];
  deploy(sysroot: string, ref: string, retain: boolean): string[];
  /** Server side of the upgrade step: an archive repository. */
  initServer(repo: string): string[];
  commitServer(repo: string, ref: string, tree: string): string[];
  revParseServer(repo: string, ref: string): string[];
  summaryUpdate(repo: string): string[];
  remoteAdd(sysroot: string, url: string): string[];
  /** Deploys commit v1 (on REF_V1) so that its origin follows REMOTE:SERVER_BRANCH. */
  deployFollowing(sysroot: string, v1: string): string[][];
  upgrade(sysroot: string): string[];
  status(sysroot: string): string[];
  /** Deployments in boot order, from the status output. */
  parseStatus(out: string): Listed[];
  version(): string[];
  rollback(sysroot: string): string[] | null;
  deploymentDir(sysroot: string, d: Listed): string;
  versionText(): Promise<string>;
}

const ostreeDeploy: DeployTool = {
  name: 'ostree',
  initFs: (s) => ['ostree', 'admin', 'init-fs', s],
  osInit: (s) => ['ostree', 'admin', 'os-init', `--sysroot=${s}`, STATEROOT],
  commit: (s, ref, tree) => ['ostree', `--repo=${s}/ostree/repo`, 'commit', '-b', ref, `--tree=dir=${tree}`],
  revParse: (s, ref) => ['ostree', `--repo=${s}/ostree/repo`, 'rev-parse', ref],
  deploy: (s, ref, retain) => [
    'ostree',
    'admin',
    'deploy',
    `--sysroot=${s}`,
    `--os=${STATEROOT}`,
    ...(retain ? ['--retain'] : []),
    ref,
  ],
  initServer: (r) => ['ostree', 'init', `--repo=${r}`, '--mode=archive'],
  commitServer: (r, ref, tree) => ['ostree', `--repo=${r}`, 'commit', '-b', ref, `--tree=dir=${tree}`],
  revParseServer: (r, ref) => ['ostree', `--repo=${r}`, 'rev-parse', ref],
  summaryUpdate: (r) => ['ostree', 'summary', `--repo=${r}`, '-u'],
  remoteAdd: (s, url) => ['ostree', 'remote', 'add', `--repo=${s}/ostree/repo`, '--no-gpg-verify', REMOTE, url],
  deployFollowing: (s, v1) => [
    ['ostree', `--repo=${s}/ostree/repo`, 'refs', `--create=${REMOTE}:${SERVER_BRANCH}`, v1],
    ['ostree', 'admin', 'deploy', `--sysroot=${s}`, `--os=${STATEROOT}`, `${REMOTE}:${SERVER_BRANCH}`],
  ],
  upgrade: (s) => ['ostree', 'admin', 'upgrade', `--sysroot=${s}`, `--os=${STATEROOT}`],
  status: (s) => ['ostree', 'admin', 'status', `--sysroot=${s}`],
  parseStatus: (out) =>
    out.split('\n').flatMap((l) => {
      const m = /^[*\s]*\S+ ([0-9a-f]{64})\.(\d+)/.exec(l);
      return m ? [{ checksum: m[1]!, serial: Number(m[2]) }] : [];
    }),
  version: () => ['ostree', '--version'],
  rollback: () => null,
  deploymentDir: (s, d) => join(s, 'ostree', 'deploy', STATEROOT, 'deploy', `${d.checksum}.${d.serial}`),
  versionText: () => ostree.version(),
};

function arborDeploy(o: DeployBenchOptions): DeployTool {
  const cli = (...args: string[]): string[] => [process.execPath, o.arborBin, ...args];
  const repo = (s: string): string => join(s, 'arbor', 'repo');
  const adminDeploy = (s: string, ...rest: string[]): string[] =>
    cli('admin', 'deploy', '--sysroot', s, '--stateroot', STATEROOT, ...rest);
  return {
    name: 'arbor',
    initFs: (s) => cli('admin', 'init-fs', s),
    osInit: (s) => cli('admin', 'os-init', '--sysroot', s, STATEROOT),
    commit: (s, ref, tree) => cli('commit', '--repo', repo(s), '-b', ref, '--tree', `dir=${tree}`),
    revParse: (s, ref) => cli('rev-parse', '--repo', repo(s), ref),
    // The admin's conflicting /etc edit (ADMIN_CONFLICT_FILE) is kept, as ostree keeps it; without the flag
    // arbor's preflight refuses the deploy and asks the admin to look first.
    // The --retain deploys (v1, v2, v1) go back to an older commit every other time: arbor refuses a
    // downgrade unless asked, ostree does not look.
    deploy: (s, ref, retain) =>
      adminDeploy(s, '--accept-etc-conflicts', ...(retain ? ['--retain', '--allow-downgrade'] : []), ref),
    initServer: (r) => cli('init', '--repo', r, '--mode', 'archive'),
    commitServer: (r, ref, tree) => cli('commit', '--repo', r, '-b', ref, '--tree', `dir=${tree}`),
    revParseServer: (r, ref) => cli('rev-parse', '--repo', r, ref),
    summaryUpdate: (r) => cli('summary', '--repo', r, '--update'),
    remoteAdd: (s, url) => cli('remote', 'add', '--repo', repo(s), REMOTE, url, '--no-sign-verify'),
    deployFollowing: (s) => [adminDeploy(s, '--origin-ref', `${REMOTE}:${SERVER_BRANCH}`, REF_V1)],
    upgrade: (s) => cli('upgrade', '--sysroot', s, '--accept-etc-conflicts'),
    status: (s) => cli('status', '--sysroot', s, '--json'),
    parseStatus: (out) => {
      const parsed = JSON.parse(out) as { deployments?: { checksum: string; serial: number }[] };
      return (parsed.deployments ?? []).map((d) => ({ checksum: d.checksum, serial: d.serial }));
    },
    version: () => cli('--version'),
    rollback: (s) => cli('rollback', '--sysroot', s),
    deploymentDir: (s, d) => join(s, 'arbor', 'deploy', STATEROOT, 'deploy', `${d.checksum}.${d.serial}`),
    versionText: () => arbor(o.arborBin, o.repoRoot).version(),
  };
}

function commandsOf(tool: DeployTool): Record<string, string[]> {
  const S = 'SYSROOT';
  return {
    image: [
      `truncate -s ${IMAGE_SIZE} IMG`,
      'mkfs.ext4 -q -F -L arbor-bench -E lazy_itable_init=0,lazy_journal_init=0 IMG',
      'losetup --find --show --direct-io=on IMG',
      'mount LOOPDEV MNT',
    ],
    setup: [shellQuote(tool.initFs(S)), shellQuote(tool.osInit(S)), shellQuote(tool.commit(S, REF_V1, 'V1'))],
    a: [shellQuote(tool.deploy(S, REF_V1, false))],
    'setup b': [
      `edit SYSROOT/…/DEPLOYMENT_V1/etc (append to hosts and ${ADMIN_CONFLICT_FILE}, add ${ADMIN_FILE})`,
      shellQuote(tool.commit(S, REF_V2, 'V2')),
    ],
    b: [shellQuote(tool.deploy(S, REF_V2, false))],
    'setup rollback': [REF_V1, REF_V2, REF_V1].map((r) => shellQuote(tool.deploy(S, r, true))),
    'setup u': [
      `once per suite: ${shellQuote(tool.initServer('SERVER'))}`,
      shellQuote(tool.commitServer('SERVER', SERVER_BRANCH, 'V2')),
      shellQuote(tool.summaryUpdate('SERVER')),
      'per run, on a new copy of the template: nginx serving SERVER on 127.0.0.1',
      shellQuote(tool.remoteAdd(S, 'URL')),
      ...tool.deployFollowing(S, 'V1').map(shellQuote),
      `edit SYSROOT/…/DEPLOYMENT_V1/etc (as for b)`,
    ],
    u: [shellQuote(tool.upgrade(S))],
    ...(tool.rollback(S) ? { r: [shellQuote(tool.rollback(S)!)] } : {}),
    v: [shellQuote(tool.version())],
    s: [shellQuote(tool.status(S))],
  };
}

// ---------------------------------------------------------------------------------------------
// Running

async function warmSamples(label: string, argv: readonly string[], n = WARM_REPEATS): Promise<Sample[]> {
  await run(argv); // warm-up, untimed
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) samples.push(await timeProcess(argv));
  log(`${label}: ${samples.map((s) => s.wallMs.toFixed(1)).join(', ')} ms (warm)`);
  return samples;
}

async function coldSample(label: string, argv: readonly string[]): Promise<Sample> {
  await settlePageCache();
  const s = await timeProcess(argv);
  log(`${label}: ${s.wallMs.toFixed(1)} ms (page cache dropped)`);
  return s;
}

interface Template {
  image: string;
  v1: string;
  /** The upgrade step's archive repository (on the machine's disk) holding v2 on SERVER_BRANCH, and that commit. */
  server: string;
  serverV2: string;
  setupWallS: Record<string, number>;
}

interface PassContext {
  tool: DeployTool;
  label: (what: string) => string;
  sysroot: string;
  setupWallS: Record<string, number>;
  problems: string[];
}

async function setupStep(
  c: PassContext,
  name: string,
  argv: string[],
  wall: Record<string, number> = c.setupWallS,
): Promise<string> {
  log(`${c.label('setup')} ${name}: ${shellQuote(argv)}`);
  const started = performance.now();
  const out = await attempt(c.tool, () => run(argv));
  wall[name] = (performance.now() - started) / 1000;
  return out.trim();
}

/** Builds the tool's template image once per suite: a sysroot, its stateroot, v1 committed on REF_V1. */
async function buildTemplate(tool: DeployTool, o: DeployBenchOptions, dir: string): Promise<Template> {
  const image = join(dir, 'template.img');
  const mnt = join(dir, 'mnt');
  const sysroot = join(mnt, 'sysroot');
  const wall: Record<string, number> = {};
  const c: PassContext = { tool, label: (w) => `template ${tool.name} ${w}`, sysroot, setupWallS: wall, problems: [] };
  await makeImage(image);
  await attach(image, mnt);
  try {
    mkdirSync(sysroot);
    await setupStep(c, 'init-fs', tool.initFs(sysroot), wall);
    await setupStep(c, 'os-init', tool.osInit(sysroot), wall);
    await setupStep(c, 'commit v1', tool.commit(sysroot, REF_V1, o.v1), wall);
    const v1 = (await setupStep(c, 'rev-parse v1', tool.revParse(sysroot, REF_V1), wall)).split('\n').at(-1)!.trim();
    const server = join(dir, 'server', 'repo');
    mkdirSync(join(dir, 'server'), { recursive: true });
    await setupStep(c, 'server init', tool.initServer(server), wall);
    await setupStep(c, 'server commit v2', tool.commitServer(server, SERVER_BRANCH, o.v2), wall);
    await setupStep(c, 'server summary', tool.summaryUpdate(server), wall);
    const serverV2 = (await setupStep(c, 'server rev-parse v2', tool.revParseServer(server, SERVER_BRANCH), wall))
      .split('\n')
      .at(-1)!
      .trim();
    return { image, v1, server, serverV2, setupWallS: wall };
  } finally {
    await releaseAll(dir);
  }
}

async function listDeployments(c: PassContext): Promise<Listed[]> {
  return c.tool.parseStatus(await attempt(c.tool, () => run(c.tool.status(c.sysroot))));
}

const nameOf = (d: Listed): string => `${d.checksum.slice(0, 12)}.${d.serial}`;

/** The boot order must be `expected`, with as many BLS entries; the first deployment's /usr must count like the tree's. */
async function checkDeployments(
  c: PassContext,
  when: string,
  expected: readonly Listed[],
  usr: { tree: string; count: TreeCount } | null,
): Promise<void> {
  const listed = await listDeployments(c);
  const got = listed.map(nameOf).join(' ');
  const want = expected.map(nameOf).join(' ');
  if (got !== want) c.problems.push(`${c.label(when)}: deployments ${got || 'none'}, expected ${want}`);
  const entries = join(c.sysroot, 'boot', 'loader', 'entries');
  const n = existsSync(entries) ? readdirSync(entries).filter((f) => f.endsWith('.conf')).length : 0;
  if (n !== expected.length)
    c.problems.push(`${c.label(when)}: ${n} boot entries in boot/loader/entries, expected ${expected.length}`);
  if (usr !== null && expected[0] !== undefined) {
    const dir = join(c.tool.deploymentDir(c.sysroot, expected[0]), 'usr');
    if (!existsSync(dir)) {
      c.problems.push(`${c.label(when)}: no ${relative(c.sysroot, dir)}`);
      return;
    }
    const count = countTree(dir);
    const fmt = (x: TreeCount): string => `${x.files} files, ${x.dirs} dirs, ${x.symlinks} symlinks, ${x.other} other`;
    if (fmt(count) !== fmt(usr.count))
      c.problems.push(`${c.label(when)}: deployment /usr has ${fmt(count)}; ${usr.tree}/usr has ${fmt(usr.count)}`);
  }
}

/** The admin's edits to the v1 deployment's /etc before b. */
function adminEdits(etc: string): void {
  appendFileSync(join(etc, 'hosts'), `${ADMIN_HOSTS_LINE}\n`);
  appendFileSync(join(etc, ADMIN_CONFLICT_FILE), `${ADMIN_CONFLICT_LINE}\n`);
  writeFileSync(join(etc, ADMIN_FILE), 'admin=1\n', { mode: 0o644 });
}

/** What b's /etc must hold: the admin's edits, v2's new and removed defaults (from the trees). */
function checkEtcMerge(c: PassContext, step: 'b' | 'u', etc: string, o: DeployBenchOptions): void {
  const where = c.label(`${step} /etc merge`);
  const read = (p: string): string | null => (existsSync(join(etc, p)) ? readFileSync(join(etc, p), 'utf8') : null);
  if (!read('hosts')?.includes(ADMIN_HOSTS_LINE)) c.problems.push(`${where}: the admin's line in /etc/hosts was lost`);
  if (!read(ADMIN_CONFLICT_FILE)?.includes(ADMIN_CONFLICT_LINE))
    c.problems.push(`${where}: the admin's /etc/${ADMIN_CONFLICT_FILE} was not kept`);
  if (read(ADMIN_FILE) === null) c.problems.push(`${where}: the admin's /etc/${ADMIN_FILE} is missing`);
  const names = (tree: string): Set<string> => new Set(readdirSync(join(tree, 'usr', 'etc')));
  const [old, next] = [names(o.v1), names(o.v2)];
  for (const name of next)
    if (!old.has(name) && !existsSync(join(etc, name)))
      c.problems.push(`${where}: /etc/${name}, new in v2, is missing`);
  for (const name of old)
    if (!next.has(name) && existsSync(join(etc, name)))
      c.problems.push(`${where}: /etc/${name}, removed in v2, is still there`);
}

/** Runs a step; a StepFailed becomes its outcome. */
async function outcome(step: () => Promise<{ timing: Timing; dropped: boolean }>): Promise<StepOutcome> {
  try {
    const { timing, dropped } = await step();
    return { timing, cachesDropped: dropped, failure: null };
  } catch (error) {
    if (error instanceof StepFailed) return { timing: null, cachesDropped: true, failure: error.message };
    throw error;
  }
}

const notRun = (why: string): StepOutcome => ({ timing: null, cachesDropped: true, failure: `not run: ${why}` });

async function probe(c: PassContext, what: () => Promise<Sample[]>): Promise<ProbeOutcome> {
  try {
    return { samples: await attempt(c.tool, what), failure: null };
  } catch (error) {
    if (error instanceof StepFailed) return { samples: [], failure: error.message };
    throw error;
  }
}

/** The in-process rollbacks, in a fresh Node running this file's --rollback-probe. */
async function inProcessProbe(sysroot: string): Promise<{ importMs: number; callsMs: number[] }> {
  const out = await run([
    process.execPath,
    fileURLToPath(import.meta.url),
    '--rollback-probe',
    sysroot,
    String(IN_PROCESS_REPEATS),
  ]);
  return JSON.parse(out.trim().split('\n').at(-1)!) as { importMs: number; callsMs: number[] };
}

/** The small measurements on the 5-deployment sysroot. */
async function runProbes(c: PassContext, pass: DeployPass, before: readonly Listed[]): Promise<void> {
  const t = c.tool;
  const S = c.sysroot;
  pass.probes.statusWarm = await probe(c, () => warmSamples(c.label('s'), t.status(S)));
  pass.probes.versionWarm = await probe(c, () => warmSamples(c.label('v'), t.version()));
  pass.probes.versionCold = await probe(c, async () => [await coldSample(c.label('v0'), t.version())]);
  const rollback = t.rollback(S);
  if (rollback === null) return;
  pass.probes.nodeBare = await probe(c, () => warmSamples(c.label('n'), [process.execPath, '-e', '0']));
  // Cold first (it warms what the warm ones then find), then the warm ones: an even number in all.
  pass.probes.rollbackCold = await probe(c, async () => [await coldSample(c.label('r0'), rollback)]);
  pass.probes.rollbackWarm = await probe(c, async () => {
    const samples: Sample[] = [];
    for (let i = 0; i < WARM_REPEATS; i++) samples.push(await timeProcess(rollback));
    log(`${c.label('r')}: ${samples.map((s) => s.wallMs.toFixed(1)).join(', ')} ms (warm)`);
    return samples;
  });
  const afterCli = await listDeployments(c);
  if (pass.probes.rollbackWarm.failure === null && afterCli.map(nameOf).join(' ') !== before.map(nameOf).join(' ')) {
    c.problems.push(
      `${c.label('r')}: after ${WARM_REPEATS + 1} rollbacks the order is ${afterCli.map(nameOf).join(' ')}, expected ${before.map(nameOf).join(' ')}`,
    );
  }
  try {
    const { importMs, callsMs } = await attempt(t, () => inProcessProbe(S));
    log(
      `${c.label('ri')}: import ${importMs.toFixed(1)} ms; rollback ${callsMs.map((x) => x.toFixed(1)).join(', ')} ms`,
    );
    pass.probes.importDeploy = { samples: [{ wallMs: importMs, cpuMs: null, rssMiB: null }], failure: null };
    pass.probes.rollbackInProcess = {
      samples: callsMs.map((wallMs) => ({ wallMs, cpuMs: null, rssMiB: null })),
      failure: null,
    };
    const after = await listDeployments(c);
    if (after.map(nameOf).join(' ') !== before.map(nameOf).join(' ')) {
      c.problems.push(
        `${c.label('ri')}: after ${IN_PROCESS_REPEATS} in-process rollbacks the order is ${after.map(nameOf).join(' ')}`,
      );
    }
  } catch (error) {
    if (!(error instanceof StepFailed)) throw error;
    pass.probes.importDeploy = { samples: [], failure: error.message };
    pass.probes.rollbackInProcess = { samples: [], failure: error.message };
  }
}

/**
 * Copies the template image to DIR/NAME.img (the copy's wall time is setup of the pass) and mounts it
 * at DIR/mnt-NAME; returns the pass's context on that sysroot.
 */
async function mountCopy(
  tool: DeployTool,
  tpl: Template,
  dir: string,
  pass: DeployPass,
  name: string,
): Promise<{ c: PassContext; image: string }> {
  const image = join(dir, `${name}.img`);
  const mnt = join(dir, `mnt-${name}`);
  const started = performance.now();
  await run(['cp', '--sparse=always', tpl.image, image]);
  pass.setupWallS[`copy template (${name})`] = (performance.now() - started) / 1000;
  await attach(image, mnt);
  const c: PassContext = {
    tool,
    label: (w) => `run ${pass.run} ${tool.name} ${w}`,
    sysroot: join(mnt, 'sysroot'),
    setupWallS: pass.setupWallS,
    problems: pass.problems,
  };
  return { c, image };
}

/**
 * One pass for one tool on a copy of its template: a (deploy v1), the admin's /etc edits and the v2
 * commit (untimed), b (deploy v2), three more deploys with --retain (5 deployments), the probes.
 */
async function runPass(
  tool: DeployTool,
  o: DeployBenchOptions,
  tpl: Template,
  dir: string,
  runNo: number,
  usr: Record<'v1' | 'v2', TreeCount>,
): Promise<DeployPass> {
  const pass: DeployPass = {
    run: runNo,
    steps: { a: notRun(''), b: notRun(''), u: notRun('') },
    probes: {},
    problems: [],
    setupWallS: {},
  };
  const { c, image } = await mountCopy(tool, tpl, dir, pass, 'run');
  try {
    const S = c.sysroot;
    pass.steps.a = await outcome(() => attempt(tool, () => timeStep(log, c.label('a'), tool.deploy(S, REF_V1, false))));
    if (pass.steps.a.failure !== null) {
      pass.steps.b = notRun('a failed');
      return pass;
    }
    const v1: Listed = { checksum: tpl.v1, serial: 0 };
    await checkDeployments(c, 'a', [v1], { tree: o.v1, count: usr.v1 });
    const v2Commit = await (async () => {
      try {
        adminEdits(join(tool.deploymentDir(S, v1), 'etc'));
        await setupStep(c, 'commit v2', tool.commit(S, REF_V2, o.v2));
        return (await setupStep(c, 'rev-parse v2', tool.revParse(S, REF_V2))).split('\n').at(-1)!.trim();
      } catch (error) {
        if (error instanceof StepFailed) return error;
        throw error;
      }
    })();
    if (v2Commit instanceof StepFailed) {
      pass.steps.b = notRun(`setup ${v2Commit.message}`);
      return pass;
    }
    pass.steps.b = await outcome(() => attempt(tool, () => timeStep(log, c.label('b'), tool.deploy(S, REF_V2, false))));
    if (pass.steps.b.failure !== null) return pass;
    const v2: Listed = { checksum: v2Commit, serial: 0 };
    await checkDeployments(c, 'b', [v2, v1], { tree: o.v2, count: usr.v2 });
    checkEtcMerge(c, 'b', join(tool.deploymentDir(S, v2), 'etc'), o);
    try {
      for (const [i, ref] of [REF_V1, REF_V2, REF_V1].entries())
        await setupStep(c, `deploy --retain ${i + 1}`, tool.deploy(S, ref, true));
    } catch (error) {
      if (!(error instanceof StepFailed)) throw error;
      for (const p of PROBES)
        if (p.tools.includes(tool.name))
          pass.probes[p.id] = { samples: [], failure: `not run: setup ${error.message}` };
      return pass;
    }
    const five: Listed[] = [{ ...v1, serial: 2 }, { ...v2, serial: 1 }, { ...v1, serial: 1 }, v2, v1];
    await checkDeployments(c, 'setup rollback', five, null);
    await runProbes(c, pass, five);
    return pass;
  } finally {
    await releaseAll(dir);
    rmSync(image, { force: true });
  }
}

/**
 * The upgrade step, on a new copy of the template: untimed, the remote added (nginx on 127.0.0.1
 * serving the tool's server repository, which holds v2), v1 deployed following it and the admin's
 * /etc edits of b; timed, the tool's upgrade: pull of v2's new objects, then its deploy.
 */
async function runUpgrade(
  tool: DeployTool,
  o: DeployBenchOptions,
  tpl: Template,
  dir: string,
  pass: DeployPass,
  usr: Record<'v1' | 'v2', TreeCount>,
): Promise<StepOutcome> {
  const { c, image } = await mountCopy(tool, tpl, dir, pass, 'upgrade');
  const nginx = await startNginx(join(tpl.server, '..'));
  try {
    const S = c.sysroot;
    const v1: Listed = { checksum: tpl.v1, serial: 0 };
    try {
      await setupStep(c, 'remote add', tool.remoteAdd(S, `${nginx.url}/repo`));
      for (const [i, argv] of tool.deployFollowing(S, tpl.v1).entries())
        await setupStep(c, `deploy following ${REMOTE} ${i + 1}`, argv);
      adminEdits(join(tool.deploymentDir(S, v1), 'etc'));
    } catch (error) {
      if (error instanceof StepFailed) return notRun(`setup ${error.message}`);
      throw error;
    }
    const u = await outcome(() => attempt(tool, () => timeStep(log, c.label('u'), tool.upgrade(S))));
    if (u.failure === null) {
      const v2: Listed = { checksum: tpl.serverV2, serial: 0 };
      await checkDeployments(c, 'u', [v2, v1], { tree: o.v2, count: usr.v2 });
      checkEtcMerge(c, 'u', join(tool.deploymentDir(S, v2), 'etc'), o);
    }
    return u;
  } finally {
    await nginx.stop();
    await releaseAll(dir);
    rmSync(image, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Summaries, ratios, targets

function summarizeStep(outcomes: readonly StepOutcome[]): StepSummary {
  const firstFailure = outcomes.find((x) => x.failure !== null)?.failure ?? null;
  const ok = outcomes.filter((x) => x.timing !== null);
  if (ok.length === 0) return { timing: null, failure: firstFailure ?? 'not run' };
  return {
    timing: medianTiming(ok.map((x) => x.timing!)),
    failure: ok.length === outcomes.length ? null : firstFailure,
  };
}

function summarizeProbe(outcomes: readonly ProbeOutcome[]): ProbeSummary {
  const samples = outcomes.flatMap((x) => x.samples);
  const firstFailure = outcomes.find((x) => x.failure !== null)?.failure ?? null;
  const mid = (pick: (s: Sample) => number | null): number | null => {
    const xs = samples.map(pick).filter((x): x is number => x !== null);
    return xs.length === 0 ? null : median(xs);
  };
  return {
    wallMs: mid((s) => s.wallMs),
    cpuMs: mid((s) => s.cpuMs),
    rssMiB: mid((s) => s.rssMiB),
    samples: samples.length,
    failure: samples.length === 0 ? (firstFailure ?? 'not run') : firstFailure,
  };
}

function summarize(passes: readonly DeployPass[]): DeployToolResult['summary'] {
  const probes: Partial<Record<ProbeId, ProbeSummary>> = {};
  for (const p of PROBES) {
    const outs = passes.flatMap((x) => (x.probes[p.id] ? [x.probes[p.id]!] : []));
    if (outs.length > 0) probes[p.id] = summarizeProbe(outs);
  }
  return {
    steps: {
      a: summarizeStep(passes.map((x) => x.steps.a)),
      b: summarizeStep(passes.map((x) => x.steps.b)),
      u: summarizeStep(passes.map((x) => x.steps.u)),
    },
    probes,
  };
}

function ratiosOf(tools: DeployResult['tools']): DeployResult['ratios'] {
  const wall = (name: ToolName, id: DeployStepId): number | null => {
    const s = tools[name]?.summary.steps[id];
    return s && s.failure === null && s.timing ? s.timing.wallS : null;
  };
  const over = (x: number | null, y: number | null): number | null => (x === null || y === null ? null : x / y);
  return Object.fromEntries(DEPLOY_STEPS.map((s) => [s.id, over(wall('arbor', s.id), wall('ostree', s.id))]));
}

function targetsOf(r: Pick<DeployResult, 'ratios' | 'tools'>): DeployTarget[] {
  const ratio = (id: DeployStepId): DeployTarget => {
    const x = r.ratios[id] ?? null;
    return {
      key: id,
      text: `${id}: arbor/ostree wall ≤ ${TARGET_DEPLOY_RATIO}×`,
      value: fmt.ratio(x),
      met: x === null ? null : x <= TARGET_DEPLOY_RATIO,
    };
  };
  const rss = (key: string, what: string, mib: number | null | undefined): DeployTarget => ({
    key: `${key} rss`,
    text: `${what}: arbor peak RSS < ${TARGET_HOST_RSS_MIB} MiB`,
    value: mib === null || mib === undefined ? PENDING : `${fmt.mib(mib)} MiB`,
    met: mib === null || mib === undefined ? null : mib < TARGET_HOST_RSS_MIB,
  });
  const arbor = r.tools.arbor?.summary;
  const stepRss = (id: DeployStepId): DeployTarget => {
    const s = arbor?.steps[id];
    return rss(id, id, s && s.failure === null ? s.timing?.maxRssMiB : null);
  };
  const rb = arbor?.probes.rollbackWarm?.wallMs ?? null;
  return [
    ...DEPLOY_STEPS.flatMap((s) => [ratio(s.id), stepRss(s.id)]),
    {
      key: 'rollbackWarm',
      text: `rollback: < ${TARGET_ROLLBACK_MS} ms on 5 deployments (whole \`arbor rollback\` process, warm)`,
      value: rb === null ? PENDING : `${rb.toFixed(0)} ms`,
      met: rb === null ? null : rb < TARGET_ROLLBACK_MS,
    },
    rss('rollbackWarm', 'rollback', arbor?.probes.rollbackWarm?.rssMiB),
    rss('statusWarm', 'status', arbor?.probes.statusWarm?.rssMiB),
  ];
}

/** The target cell of a row: its targets' texts (without the row's own label), values and marks. */
function targetCell(targets: readonly DeployTarget[], keys: readonly string[]): string {
  return targets
    .filter((t) => keys.includes(t.key))
    .map((t) => `${t.text.replace(/^[^:]*: /, '')}: ${t.value}${fmt.mark(t.met)}`)
    .join('; ');
}

// ---------------------------------------------------------------------------------------------
// Presentation

function deployRows(r: DeployResult): string[][] {
  const header = ['step', ...timingHeader('ostree'), ...timingHeader('arbor'), 'arbor/ostree wall', 'target'];
  const targets = targetsOf(r);
  return [
    header,
    ...DEPLOY_STEPS.map((s) => [
      `${s.id}. ${s.title}`,
      ...stepCells(r.tools.ostree?.summary.steps[s.id]),
      ...stepCells(r.tools.arbor?.summary.steps[s.id]),
      fmt.ratio(r.ratios[s.id]),
      targetCell(targets, [s.id, `${s.id} rss`]),
    ]),
  ];
}

function probeCells(r: DeployResult, tool: ToolName, id: ProbeId, withCpu: boolean): string[] {
  const width = withCpu ? 3 : 2;
  const p = PROBES.find((x) => x.id === id)!;
  if (!p.tools.includes(tool))
    return [
      tool === 'ostree' && id.startsWith('rollback') ? 'no equivalent' : '—',
      ...Array<string>(width - 1).fill(''),
    ];
  const t = r.tools[tool];
  if (t === undefined) return [PENDING, ...Array<string>(width - 1).fill('')];
  const s = t.summary.probes[id];
  if (s === undefined || s.wallMs === null) return [s?.failure ?? 'not run', ...Array<string>(width - 1).fill('')];
  const opt = (x: number | null, f: (y: number) => string): string => (x === null ? '—' : f(x));
  return [fmt.ms(s.wallMs), ...(withCpu ? [opt(s.cpuMs, fmt.ms)] : []), opt(s.rssMiB, fmt.mib)];
}

function probeRows(r: DeployResult): string[][] {
  const header = ['measure', 'ostree ms', 'ostree RSS MiB', 'arbor ms', 'arbor cpu ms', 'arbor RSS MiB', 'target'];
  const targets = targetsOf(r);
  return [
    header,
    ...PROBES.map((p) => [
      p.title,
      ...probeCells(r, 'ostree', p.id, false),
      ...probeCells(r, 'arbor', p.id, true),
      targetCell(targets, [p.id, `${p.id} rss`]),
    ]),
  ];
}

function noiseLine(r: DeployResult): string {
  const worst = noisiestOutcome(r.tools, r.machine.nproc, NOISE_MIN_WALL_S);
  return backgroundLoadLine(worst, { step: 'a deploy step', none: `no timed step of ${NOISE_MIN_WALL_S} s or more` });
}

function contextLines(r: DeployResult): string[] {
  const m = r.machine;
  const tree = (t: DeployResult['trees']['v1']): string =>
    `${fmt.int(t.entries)} entries (/usr: ${fmt.int(t.usr.files)} files, ${fmt.int(t.usr.dirs)} dirs, ${fmt.int(t.usr.symlinks)} symlinks), ${fmt.gb(t.apparentBytes)} apparent`;
  return [
    `Date: ${r.date}`,
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memTotalGiB} GiB RAM (free -g), Linux ${m.kernel}; ${r.sysroots}`,
    `Tools: ${(['ostree', 'arbor'] as const).map((n) => r.tools[n]?.version ?? `${n} not run`).join('; ')}`,
    `Trees: v1 ${tree(r.trees.v1)}; v2 ${tree(r.trees.v2)}`,
    `Median of ${r.runs} run(s) (small measurements: median of every sample); page cache dropped before each timed step: ${r.cachesDropped ? 'yes' : 'NO (not permitted)'}`,
    noiseLine(r),
  ];
}

function findingLines(r: DeployResult, resultsFile: string): string[] {
  const arb = r.tools.arbor?.summary.probes;
  const w = (id: ProbeId): number | null => arb?.[id]?.wallMs ?? null;
  const [rb, ver, node, inProc, imp] = [
    w('rollbackWarm'),
    w('versionWarm'),
    w('nodeBare'),
    w('rollbackInProcess'),
    w('importDeploy'),
  ];
  const startup =
    rb !== null && ver !== null && node !== null && inProc !== null
      ? `Where arbor's warm rollback goes: ${fmt.ms(rb)} ms = Node's own start ${fmt.ms(node)} ms + loading the CLI's modules ${fmt.ms(ver - node)} ms ` +
        `(\`--version\` − \`node -e 0\`) + the rest ${fmt.ms(rb - ver)} ms (parsing, the deploy work, exit); in process the rollback itself takes ${fmt.ms(inProc)} ms` +
        `${imp !== null ? ` once the deploy layer is loaded (loading it alone: ${fmt.ms(imp)} ms)` : ''}`
      : `Where arbor's warm rollback goes: ${PENDING}`;
  const peak = (t: DeployToolResult | undefined): string => {
    const rss =
      t?.passes.flatMap((p) => Object.values(p.steps).flatMap((s) => (s.timing ? [s.timing.maxRssMiB] : []))) ?? [];
    return rss.length > 0 ? `${fmt.mib(Math.max(...rss))} MiB` : PENDING;
  };
  const setup = (Object.entries(r.tools) as [ToolName, DeployToolResult][]).map(([name, t]) => {
    const all = { ...t.templateSetupWallS, ...t.passes[0]?.setupWallS };
    return `${name} ${Object.entries(all)
      .map(([k, v]) => `${k} ${v.toFixed(2)} s`)
      .join(', ')}`;
  });
  return [
    startup,
    `Peak RSS of a, b and u: ostree ${peak(r.tools.ostree)}, arbor ${peak(r.tools.arbor)}`,
    `Harness overhead in each whole-process ms figure (spawning \`/usr/bin/time true\`): ${fmt.ms(r.spawnOverheadMs)} ms`,
    `Untimed setup (template once per suite, then run 1): ${setup.join('; ') || PENDING}`,
    r.problems.length > 0
      ? `PROBLEMS: ${r.problems.join('; ')}`
      : "Checks: after a and b the deployments, their boot order and boot entries are as expected and the new deployment's /usr counts like the tree's; after b, /etc has the admin's edits and v2's added and removed defaults; 5 deployments before the rollbacks, in the same order after an even number of them",
    `Raw results: ${resultsFile}`,
  ];
}

function renderDeployText(r: DeployResult, resultsFile: string): string {
  return `${[...contextLines(r), '', textTable(deployRows(r)), '', textTable(probeRows(r)), '', ...findingLines(r, resultsFile)].join('\n')}\n`;
}

const SECTION_INTRO = `## Deploy and rollback: arbor vs ostree

Deploying a commit on a sysroot, \`arbor admin deploy\` and the real \`ostree admin deploy\` side by side.
ostree freezes and thaws the filesystem holding /boot (FIFREEZE; ostree 2022.7 has no switch to skip it), so each
tool's sysroot lives on its own 8 GiB ext4 image, loop-mounted (\`losetup --direct-io=on\`), never on the machine's
root. Per tool, a template image is made once per suite (untimed): \`admin init-fs\`, \`admin os-init os\`, v1
committed on \`bench/v1\` into the sysroot's bare repo (\`SYSROOT/ostree/repo\`, \`SYSROOT/arbor/repo\`). Each run
starts from a copy of it:

- **a. first deploy**: \`ostree admin deploy --sysroot=S --os=os bench/v1\` / \`arbor admin deploy --sysroot S
  --stateroot os bench/v1\` (checkout of 66k entries by hardlinks, /etc from /usr/etc, kernel and initramfs to /boot,
  boot entries);
- then, untimed, the admin edits the deployment's /etc (a line appended to \`hosts\` and to \`locale.alias\`, which v2
  also changes, and a new file) and v2 is committed on \`bench/v2\`;
- **b. deploy of v2**, the upgrade-like case: 3-way /etc merge with the v1 deployment, a new kernel, the old deployment
  kept as rollback;
- then, untimed, three more deploys with \`--retain\` (v1, v2, v1; arbor's with \`--allow-downgrade\`, as going
  back to v1 is a downgrade): 5 deployments;
- **u. upgrade**, pull and deploy in one command, on a new copy of the template: untimed, the tool's archive server
  repository (made once per suite, on the machine's disk: v2 committed on \`bench\`, summary updated) is served by
  nginx on 127.0.0.1, the sysroot gets it as remote \`origin\`, v1 is deployed following \`origin:bench\` (ostree:
  \`refs --create=origin:bench V1\`, then \`admin deploy origin:bench\`; arbor: \`admin deploy --origin-ref origin:bench
  bench/v1\`) and the admin makes b's /etc edits; timed, \`ostree admin upgrade --sysroot=S --os=os\` / \`arbor upgrade
  --sysroot S\`: an object pull of what v2 adds (no static delta: the transfer suite measures those), the /etc merge,
  the new kernel, the boot switch.

On the sysroot with 5 deployments, the small measurements: \`arbor rollback\` as a whole process, warm and with
the page cache dropped; the same rollback in process (a Node script importing the deploy layer from \`dist/\` and timing \`Sysroot.open\` +
\`rollback()\` + \`close()\`); and, to tell Node's and the CLI's start-up share from the work, \`--version\` of each tool,
\`node -e 0\`, and \`status\`; each with its peak RSS. ostree 2022.7 has no rollback command (no \`admin
set-default\`; rpm-ostree, whose \`rollback\` reorders the deployments as arbor's does, is not in Debian), so that row
has arbor alone.

Both tools run at their defaults: ostree's deploy also prunes its repo and calls \`sync()\` (arbor prunes only in
\`cleanup\`). ostree keeps the admin's version of a file whose defaults changed too and says nothing; arbor's
preflight refuses such a deploy unless told to keep it, so arbor's deploys and upgrade pass \`--accept-etc-conflicts\`.
Each deploy runs under GNU time (wall, user+sys CPU, peak RSS) after \`sync\` and a page-cache drop; the small
measurements take their wall time from the harness's clock (ms) and are medians of 5 warm samples per run
after one untimed warm-up. Checks, listed as problems: after a and b the deployments (\`status\`), their order and the
boot entries are as expected and the new deployment's /usr counts like the tree's; after b, /etc holds the admin's
edits (also the conflicting one: both tools keep the admin's version) and v2's added and removed defaults; the
rollbacks leave 5 deployments; after u, as after b. Targets: deploy and upgrade no slower than ostree; rollback under
100 ms with 5 deployments; arbor's peak RSS under 128 MiB for every step (deploy, upgrade, rollback, status).
Run it as root: \`npm run bench -- --suite deploy --runs 3 --write-doc\`.

`;

function renderSection(r: DeployResult, resultsFile: string): string {
  const bullets = (ls: readonly string[]): string => ls.map((l) => `- ${l}`).join('\n');
  return [
    bullets(contextLines(r)),
    markdownTable(deployRows(r)),
    markdownTable(probeRows(r)),
    bullets(findingLines(r, resultsFile)),
  ].join('\n\n');
}

function writeDeployDoc(docPath: string, r: DeployResult, resultsFile: string): void {
  writeSuiteSection(docPath, 'deploy', renderSection(r, resultsFile), SECTION_INTRO);
}

// ---------------------------------------------------------------------------------------------

/** Runs the deploy suite, prints its tables, writes the JSON (and the docs section with writeDoc). */
export async function runDeploySuite(o: DeployBenchOptions): Promise<DeployResult> {
  for (const cmd of ['losetup', 'mkfs.ext4', 'mount', 'umount', 'truncate']) {
    if (
      !(await run(['sh', '-c', `command -v ${cmd}`]).then(
        () => true,
        () => false,
      ))
    )
      throw new CommandError(`${cmd} not found (needed for the loop-mounted sysroots)`);
  }
  const all = [ostreeDeploy, arborDeploy(o)].filter((t) => o.tools.includes(t.name));
  const base = join(o.work, 'deploy');
  await releaseAll(base);
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const [v1, v2, machine] = await Promise.all([describeTree(o.v1), describeTree(o.v2), describeMachine(base)]);
  const usr = { v1: countTree(join(o.v1, 'usr')), v2: countTree(join(o.v2, 'usr')) };
  const date = new Date().toISOString();
  const versions = await Promise.all(all.map((t) => t.versionText()));
  const overhead: number[] = [];
  for (let i = 0; i < WARM_REPEATS; i++) overhead.push((await timeProcess(['true'])).wallMs);
  const passes = new Map<ToolName, DeployPass[]>(all.map((t) => [t.name, []]));
  const templates = new Map<ToolName, Template | StepFailed>();
  try {
    for (const tool of all) {
      const dir = join(base, tool.name);
      mkdirSync(dir, { recursive: true });
      templates.set(
        tool.name,
        await buildTemplate(tool, o, dir).catch((e: unknown) => {
          if (e instanceof StepFailed) return e;
          throw e;
        }),
      );
    }
    for (let runNo = 1; runNo <= o.runs; runNo++) {
      const order = runNo % 2 === 1 ? all : [...all].reverse(); // neither tool always goes first
      for (const tool of order) {
        const tpl = templates.get(tool.name)!;
        if (tpl instanceof StepFailed) {
          const why = `not run: template ${tpl.message}`;
          passes.get(tool.name)!.push({
            run: runNo,
            steps: {
              a: { ...notRun(''), failure: why },
              b: { ...notRun(''), failure: why },
              u: { ...notRun(''), failure: why },
            },
            probes: Object.fromEntries(
              PROBES.filter((p) => p.tools.includes(tool.name)).map((p) => [p.id, { samples: [], failure: why }]),
            ),
            problems: [],
            setupWallS: {},
          });
          continue;
        }
        const pass = await runPass(tool, o, tpl, join(base, tool.name), runNo, usr);
        pass.steps.u = await runUpgrade(tool, o, tpl, join(base, tool.name), pass, usr);
        passes.get(tool.name)!.push(pass);
      }
    }
  } finally {
    await releaseAll(base);
    rmSync(base, { recursive: true, force: true });
  }
  const tools: DeployResult['tools'] = {};
  all.forEach((tool, i) => {
    const ps = passes.get(tool.name)!;
    const tpl = templates.get(tool.name);
    tools[tool.name] = {
      version: versions[i]!,
      commands: commandsOf(tool),
      templateSetupWallS: tpl instanceof StepFailed || tpl === undefined ? {} : tpl.setupWallS,
      passes: ps,
      summary: summarize(ps),
    };
  });
  const ratios = ratiosOf(tools);
  const result: DeployResult = {
    benchmark: 'deploy',
    date,
    machine,
    sysroots: `each sysroot on its own ${IMAGE_GIB} GiB ext4 image, loop-mounted with direct I/O, backing files on ${machine.scratchFs}`,
    trees: { v1: { ...v1, usr: usr.v1 }, v2: { ...v2, usr: usr.v2 } },
    runs: o.runs,
    cachesDropped: allCachesDropped(tools),
    spawnOverheadMs: median(overhead),
    tools,
    ratios,
    targets: targetsOf({ ratios, tools }),
    problems: Object.values(tools).flatMap((t) => t.passes.flatMap((p) => p.problems)),
  };
  const resultsFile = relative(o.repoRoot, writeJsonResults(join(o.repoRoot, 'bench/results'), 'deploy', result));
  process.stdout.write(renderDeployText(result, resultsFile));
  if (o.writeDoc) writeDeployDoc(join(o.repoRoot, 'docs/benchmarks.md'), result, resultsFile);
  return result;
}

// ---------------------------------------------------------------------------------------------
// --rollback-probe: in-process rollbacks, timed here (run by the suite in a fresh Node).

interface DeployLayer {
  Sysroot: { open(path: string): { close(): void } };
  rollback(sysroot: unknown): unknown;
}

async function rollbackProbe(sysroot: string, n: number): Promise<void> {
  const started = performance.now();
  const layer = (await import(new URL('../src/deploy/index.js', import.meta.url).href)) as DeployLayer;
  const importMs = performance.now() - started;
  const callsMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const s = layer.Sysroot.open(sysroot);
    try {
      layer.rollback(s);
    } finally {
      s.close();
    }
    callsMs.push(performance.now() - t0);
  }
  process.stdout.write(`${JSON.stringify({ importMs, callsMs })}\n`);
}

if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href &&
  process.argv[2] === '--rollback-probe'
) {
  const [sysroot, n] = process.argv.slice(3);
  if (sysroot === undefined) {
    process.stderr.write('usage: node dist/bench/deploy.js --rollback-probe SYSROOT [N]\n');
    process.exitCode = 2;
  } else {
    rollbackProbe(sysroot, Number(n ?? '1')).catch((e: unknown) => {
      process.stderr.write(`rollback probe: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    });
  }
}
