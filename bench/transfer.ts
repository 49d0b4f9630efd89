// bench/transfer.ts — the transfer benchmark (`node dist/bench/run.js --suite transfer`): for each
// run and tool, an archive server repo served by a real nginx, a static delta v1→v2, and HTTP pulls
// into a bare client. Arbor failures become "failed: …" cells; ostree failures stop the run.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startNginx, readAccessLog, type AccessLogEntry, type NginxServer } from '../test/support/nginx.js';
import { describeMachine } from './lib/host.js';
import { allCachesDropped } from './lib/model.js';
import { StepFailed, attempt, run, shellQuote, timeStep } from './lib/proc.js';
import { arbor, ostree, type SuiteOptions, type ToolName } from './lib/tools.js';
import { apparentBytes, describeTree } from './lib/trees.js';
import {
  evaluateTransferTargets,
  notRun,
  summarizeTransfer,
  transferProblems,
  type Served,
  type StepOutcome,
  type TransferPass,
  type TransferResult,
  type TransferStepId,
  type TransferToolResults,
} from './lib/transfer-model.js';
import { renderTransferText, writeTransferDoc, writeTransferResults } from './lib/transfer-report.js';
import {
  BRANCH,
  REMOTE,
  arborTransfer,
  ostreeTransfer,
  parseFallbackBytes,
  type TransferTool,
} from './lib/transfer-tools.js';

/** The suite works in WORK/transfer/<tool>, emptied before and after each pass. */
export interface TransferOptions extends SuiteOptions {
  v1: string;
  v2: string;
}

/** How long the access log must stay unchanged after a pull: nginx logs a request after its last write. */
const LOG_SETTLE_MS = 100;

function log(message: string): void {
  process.stderr.write(`[bench transfer] ${message}\n`);
}

/** An arbor command failed: the pass goes on, the step shows this text. */

/** Access log entries once the file has stopped growing. */
async function settledLog(path: string): Promise<AccessLogEntry[]> {
  let size = -1;
  for (;;) {
    const now = existsSync(path) ? statSync(path).size : 0;
    if (now === size) return readAccessLog(path);
    size = now;
    await new Promise((r) => setTimeout(r, LOG_SETTLE_MS));
  }
}

function served(entries: readonly AccessLogEntry[]): Served {
  const sum = (pick: (e: AccessLogEntry) => number, of = entries): number => of.reduce((n, e) => n + pick(e), 0);
  const deltas = entries.filter((e) => e.path.startsWith('/deltas/'));
  const objects = entries.filter((e) => e.path.startsWith('/objects/'));
  return {
    requests: entries.length,
    bodyBytes: sum((e) => e.bodyBytes),
    bytes: sum((e) => e.bytes),
    deltaRequests: deltas.length,
    deltaBodyBytes: sum((e) => e.bodyBytes, deltas),
    objectRequests: objects.length,
    objectBodyBytes: sum((e) => e.bodyBytes, objects),
    errorResponses: entries.filter((e) => e.status >= 400).length,
  };
}

function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

interface PassContext {
  tool: TransferTool;
  label: (step: string) => string;
  server: string;
  client: string;
  accessLog: string;
  setupWallS: Record<string, number>;
}

/** An untimed setup command (caches left warm); its wall time is kept for the notes. */
async function setupStep(c: PassContext, name: string, argv: string[]): Promise<string> {
  log(`${c.label('setup')} ${name}: ${shellQuote(argv)}`);
  const started = performance.now();
  const out = await attempt(c.tool, () => run(argv));
  c.setupWallS[name] = (performance.now() - started) / 1000;
  return out.trim();
}

/** A timed pull into the client; bytes from the access log lines it added; then the tool's fsck. */
async function pullStep(c: PassContext, step: TransferStepId, staticDeltas: boolean): Promise<StepOutcome> {
  const before = (await settledLog(c.accessLog)).length;
  const { timing, dropped } = await attempt(c.tool, () =>
    timeStep(log, c.label(step), c.tool.pull(c.client, REMOTE, BRANCH, { staticDeltas })),
  );
  const fetched = served((await settledLog(c.accessLog)).slice(before));
  const fsck = c.tool.fsck(c.client);
  if (fsck !== null) {
    log(`${c.label(step)} check: ${shellQuote(fsck)}`);
    await attempt(c.tool, () => run(fsck)).catch((e: unknown) => {
      throw e instanceof StepFailed ? new StepFailed(e.message.replace(/^failed: /, 'failed: fsck after pull: ')) : e;
    });
  }
  return { timing, cachesDropped: dropped, failure: null, bytes: fetched.bodyBytes, served: fetched };
}

async function deltaStep(c: PassContext, from: string, to: string): Promise<StepOutcome> {
  const { timing, dropped } = await attempt(c.tool, () =>
    timeStep(log, c.label('e'), c.tool.deltaGenerate(c.server, from, to)),
  );
  const dir = c.tool.deltasDir(c.server);
  if (!existsSync(dir))
    throw new StepFailed(`failed: no ${relative(c.server, dir)}/ in the server repo after generate`);
  const parts = filesBelow(dir).filter((name) => name !== 'superblock').length;
  const show = c.tool.deltaShow(c.server, from, to);
  const fallbackBytes = show === null ? null : parseFallbackBytes(await attempt(c.tool, () => run(show)));
  return {
    timing,
    cachesDropped: dropped,
    failure: null,
    bytes: await apparentBytes(dir),
    deltaParts: parts,
    ...(fallbackBytes === null ? {} : { fallbackBytes }),
  };
}

async function summaryStep(c: PassContext): Promise<StepOutcome> {
  const { timing, dropped } = await attempt(c.tool, () => timeStep(log, c.label('e2'), c.tool.summaryUpdate(c.server)));
  const summary = join(c.server, 'summary');
  return { timing, cachesDropped: dropped, failure: null, bytes: existsSync(summary) ? statSync(summary).size : null };
}

/** Runs a step; a StepFailed becomes its outcome. */
async function outcome(step: () => Promise<StepOutcome>): Promise<StepOutcome> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof StepFailed) return { timing: null, cachesDropped: true, failure: error.message, bytes: null };
    throw error;
  }
}

/** The server repository of a tool, built once per suite (its commits take minutes for ostree). */
interface ServerCache {
  readonly server: string;
  readonly v1: string;
  readonly v2: string;
}
const servers = new Map<ToolName, ServerCache>();

/** Builds the tool's archive server with v1 then v2 on BRANCH (untimed), once per suite. */
async function ensureServer(c: PassContext, o: TransferOptions, dir: string): Promise<ServerCache> {
  const cached = servers.get(c.tool.name);
  if (cached) return cached;
  await run(['rm', '-rf', c.server]);
  await setupStep(c, 'init server', c.tool.init(c.server, 'archive'));
  await setupStep(c, 'commit v1', c.tool.commit(c.server, BRANCH, o.v1));
  const v1 = await setupStep(c, 'rev-parse v1', c.tool.revParse(c.server, BRANCH));
  await setupStep(c, 'commit v2', c.tool.commit(c.server, BRANCH, o.v2));
  const v2 = await setupStep(c, 'rev-parse v2', c.tool.revParse(c.server, BRANCH));
  const built = { server: join(dir, 'server'), v1, v2 };
  servers.set(c.tool.name, built);
  return built;
}

/**
 * One pass for one tool: server with BRANCH at v1 and no delta → f (pull v1 object by object) →
 * BRANCH moved to v2 → e (delta) → e2 (summary) → g (pull v2 with the delta into f's client).
 * The server's commits are made once per suite; each pass starts from a fresh client and no delta.
 * Steps after a failure are "not run".
 */
async function runTransferPass(tool: TransferTool, o: TransferOptions, runNo: number): Promise<TransferPass> {
  const dir = join(o.work, 'transfer', tool.name);
  const c: PassContext = {
    tool,
    label: (step) => `run ${runNo} ${tool.name} ${step}`,
    server: join(dir, 'server'),
    client: join(dir, 'client'),
    accessLog: join(dir, 'access.log'),
    setupWallS: {},
  };
  const steps: Partial<Record<TransferStepId, StepOutcome>> = {};
  const finish = (why: string): TransferPass => ({
    run: runNo,
    steps: {
      e: steps.e ?? notRun(why),
      e2: steps.e2 ?? notRun(why),
      f: steps.f ?? notRun(why),
      g: steps.g ?? notRun(why),
    },
    setupWallS: c.setupWallS,
  });
  mkdirSync(dir, { recursive: true });
  await run(['rm', '-rf', c.client, c.accessLog]);
  let nginx: NginxServer | undefined;
  try {
    let cache: ServerCache;
    try {
      cache = await ensureServer(c, o, dir);
      for (const argv of tool.setRef(c.server, BRANCH, cache.v1)) await setupStep(c, 'ref to v1', argv);
      await run(['rm', '-rf', ...tool.deltaDirs(c.server)]);
      await setupStep(c, 'summary v1', tool.summaryUpdate(c.server));
      nginx = await startNginx(c.server, { accessLog: c.accessLog, workerProcesses: 'auto' });
      await setupStep(c, 'init client', tool.init(c.client, 'bare'));
      await setupStep(c, 'remote add', tool.remoteAdd(c.client, REMOTE, nginx.url));
    } catch (error) {
      if (error instanceof StepFailed) {
        servers.delete(tool.name);
        return finish(`server setup ${error.message}`);
      }
      throw error;
    }
    steps.f = await outcome(() => pullStep(c, 'f', false));
    try {
      for (const argv of tool.setRef(c.server, BRANCH, cache.v2)) await setupStep(c, 'ref to v2', argv);
    } catch (error) {
      if (error instanceof StepFailed) return finish(`v2 setup ${error.message}`);
      throw error;
    }
    steps.e = await outcome(() => deltaStep(c, cache.v1, cache.v2));
    steps.e2 = steps.e.failure === null ? await outcome(() => summaryStep(c)) : notRun('e failed');
    const blocker =
      steps.f.failure !== null ? 'f' : steps.e.failure !== null ? 'e' : steps.e2.failure !== null ? 'e2' : null;
    steps.g = blocker === null ? await outcome(() => pullStep(c, 'g', true)) : notRun(`${blocker} failed`);
    return finish('');
  } finally {
    await nginx?.stop();
    await run(['rm', '-rf', c.client]);
    if (runNo === o.runs) await run(['rm', '-rf', dir]);
  }
}

function commandsOf(tool: TransferTool): Record<TransferStepId, string[]> {
  return {
    e: [shellQuote(tool.deltaGenerate('SERVER', 'V1', 'V2'))],
    e2: [shellQuote(tool.summaryUpdate('SERVER'))],
    f: [
      shellQuote(tool.init('CLIENT', 'bare')),
      shellQuote(tool.remoteAdd('CLIENT', REMOTE, 'URL')),
      shellQuote(tool.pull('CLIENT', REMOTE, BRANCH, { staticDeltas: false })),
      ...(tool.fsck('CLIENT') ? [shellQuote(tool.fsck('CLIENT')!)] : []),
    ],
    g: [
      shellQuote(tool.pull('CLIENT', REMOTE, BRANCH, { staticDeltas: true })),
      ...(tool.fsck('CLIENT') ? [shellQuote(tool.fsck('CLIENT')!)] : []),
    ],
  };
}

/** Runs the transfer suite, prints its table, writes the JSON (and the docs section with writeDoc). */
export async function runTransferSuite(o: TransferOptions): Promise<TransferResult> {
  const all = [
    { tool: ostreeTransfer, version: () => ostree.version() },
    { tool: arborTransfer(o.arborBin), version: () => arbor(o.arborBin, o.repoRoot).version() },
  ].filter((t) => o.tools.includes(t.tool.name));
  mkdirSync(join(o.work, 'transfer'), { recursive: true });
  const [v1, v2, machine] = await Promise.all([describeTree(o.v1), describeTree(o.v2), describeMachine(o.work)]);
  const date = new Date().toISOString();
  const versions = await Promise.all(all.map((t) => t.version()));
  const passes = new Map<ToolName, TransferPass[]>(all.map((t) => [t.tool.name, []]));
  for (let runNo = 1; runNo <= o.runs; runNo++) {
    const order = runNo % 2 === 1 ? all : [...all].reverse(); // neither tool always goes first
    for (const { tool } of order) passes.get(tool.name)!.push(await runTransferPass(tool, o, runNo));
  }
  const tools: TransferToolResults = {};
  all.forEach(({ tool }, i) => {
    const ps = passes.get(tool.name)!;
    tools[tool.name] = {
      version: versions[i]!,
      commands: commandsOf(tool),
      passes: ps,
      summary: summarizeTransfer(ps),
    };
  });
  const result: TransferResult = {
    benchmark: 'transfer',
    date,
    machine,
    trees: { v1, v2 },
    runs: o.runs,
    cachesDropped: allCachesDropped(tools),
    tools,
    targets: evaluateTransferTargets(tools),
    problems: transferProblems(tools),
  };
  const resultsFile = relative(o.repoRoot, writeTransferResults(join(o.repoRoot, 'bench/results'), result));
  process.stdout.write(renderTransferText(result, resultsFile));
  if (o.writeDoc) writeTransferDoc(join(o.repoRoot, 'docs/benchmarks.md'), result, resultsFile);
  return result;
}
