// bench/fleetlock.ts — the FleetLock benchmark (`node dist/bench/run.js --suite fleetlock`): the real
// `arbor fleetlock serve` on a 3-member etcd cluster, hammered by 1,000 clients that loop pre-reboot →
// steady-state for 60 s. Reports requests/s, p50/p99 latency per operation, the server's CPU and RSS, and
// slot violations seen by an observer watching the semaphores in etcd (not the server's word).
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { Etcd3, type Watcher } from 'etcd3';
import { HAVE_ETCD, startEtcdCluster } from '../test/support/etcd.js';
import { spawnFleetLock, stopFleetLock } from '../test/support/fleetlock.js';
import { describeMachine } from './lib/host.js';
import { run } from './lib/proc.js';
import { writeJsonResults, writeSuiteSection } from './lib/report.js';
import { markdownTable } from './lib/table.js';

export interface FleetLockBenchOptions {
  /** The suite works in WORK/fleetlock, emptied at the start and the end. */
  work: string;
  repoRoot: string;
  arborBin: string;
  writeDoc: boolean;
}

const CLIENTS = Number(process.env.ARBOR_BENCH_FLEETLOCK_CLIENTS ?? 1000);
const SECONDS = Number(process.env.ARBOR_BENCH_FLEETLOCK_SECONDS ?? 60);
/** The clients are spread over this many groups of SLOTS slots (racks, say). */
const GROUPS = 10;
const SLOTS = 3;
const PREFIX = '/bench';
const REQUEST_TIMEOUT_MS = 30_000;
/** How long a client holds its slot before steady-state: its "reboot". */
const HOLD_MS = 10;

type Op = 'pre-reboot' | 'steady-state';

interface OpStats {
  readonly latenciesMs: number[];
  /** HTTP status (0: no answer) → count. */
  readonly statuses: Record<string, number>;
}

function log(message: string): void {
  process.stderr.write(`[bench fleetlock] ${message}\n`);
}

/** POSTs one FleetLock request on a fresh connection (the server closes each one); resolves with the status. */
function post(base: URL, op: Op, id: string, group: string): Promise<number> {
  const body = JSON.stringify({ client_params: { id, group } });
  return new Promise((resolve) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        path: `/v1/${op}`,
        method: 'POST',
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
        headers: {
          'fleet-lock-protocol': 'true',
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** The q-quantile (0…1) of `xs`, nearest rank. */
function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

/** CPU seconds (user + system) of process `pid` so far, from /proc/PID/stat. */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /, '')
    .split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident set of process `pid`, MiB (VmHWM). */
function peakRssMiBOf(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** `arbor fleetlock serve` on a free port; resolves once it listens. Its request log is counted, not kept. */
async function serve(
  arborBin: string,
  endpoints: readonly string[],
): Promise<{ child: ChildProcess; url: URL; logged: () => number }> {
  const groups = Array.from({ length: GROUPS }, (_, g) => ['--group', `g${g}=${SLOTS}`]).flat();
  let lines = 0;
  const { url, child } = await spawnFleetLock(arborBin, endpoints, PREFIX, groups, () => lines++);
  return { child, url: new URL(url), logged: () => lines };
}

/** Runs the suite once; prints the figures, writes bench/results/fleetlock-DATE.json and, asked to, the docs. */
export async function runFleetLockSuite(o: FleetLockBenchOptions): Promise<{ problems: string[] }> {
  if (!HAVE_ETCD) {
    log('skipped: no etcd (Debian package etcd-server)');
    return { problems: [] };
  }
  const base = join(o.work, 'fleetlock');
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const machine = await describeMachine(base);
  const etcdVersion = (await run(['etcd', '--version'])).split('\n')[0]?.trim() ?? 'etcd';
  const cluster = await startEtcdCluster(join(base, 'etcd'), 3);
  let server: Awaited<ReturnType<typeof serve>> | null = null;
  const watcher = new Etcd3({ hosts: [...cluster.endpoints] });
  let watch: Watcher | null = null;
  try {
    server = await serve(o.arborBin, cluster.endpoints);
    const pid = server.child.pid as number;
    // The observer: every change of every group's semaphore, as etcd holds it.
    let changes = 0;
    let observedMax = 0;
    const violations: string[] = [];
    watch = await watcher.watch().prefix(`${PREFIX}/groups/`).create();
    watch.on('put', (kv) => {
      changes++;
      const sem = JSON.parse(kv.value.toString()) as { slots: number; holders: unknown[] };
      observedMax = Math.max(observedMax, sem.holders.length);
      if (sem.holders.length > SLOTS && violations.length < 10)
        violations.push(`${kv.key.toString()}: ${kv.value.toString()}`);
    });
    // The clients' own view: a client holds a slot from its 200 to pre-reboot until it sends steady-state.
    const holding: number[] = Array.from({ length: GROUPS }, () => 0);
    let clientMax = 0;
    const stats: Record<Op, OpStats> = {
      'pre-reboot': { latenciesMs: [], statuses: {} },
      'steady-state': { latenciesMs: [], statuses: {} },
    };
    const timed = async (op: Op, id: string, group: string): Promise<number> => {
      const t0 = performance.now();
      const status = await post(server!.url, op, id, group);
      stats[op].latenciesMs.push(performance.now() - t0);
      stats[op].statuses[status] = (stats[op].statuses[status] ?? 0) + 1;
      return status;
    };
    let stopping = false;
    const client = async (i: number): Promise<void> => {
      const g = i % GROUPS;
      const id = `bench-${i}`;
      // A pre-reboot left unanswered may still have taken the slot: give it back before leaving, as the
      // agent does with a slot it asked for and never heard about.
      let unanswered = false;
      while (!stopping) {
        const status = await timed('pre-reboot', id, `g${g}`);
        unanswered = status !== 200 && status !== 409;
        if (status !== 200) continue;
        holding[g] = (holding[g] as number) + 1;
        clientMax = Math.max(clientMax, holding[g] as number);
        await new Promise((r) => setTimeout(r, HOLD_MS)); // the "reboot"
        holding[g] = (holding[g] as number) - 1;
        // Until the server answers, the slot is held: ask again on a failed answer, as the agent does.
        while ((await timed('steady-state', id, `g${g}`)) !== 200) if (stopping) break;
      }
      for (let tries = 0; unanswered && tries < 5; tries++)
        unanswered = (await post(server!.url, 'steady-state', id, `g${g}`)) !== 200;
    };
    const load = [loadavg()[0] as number];
    const cpu0 = cpuSecondsOf(pid);
    const t0 = performance.now();
    log(`${CLIENTS} clients, ${GROUPS} groups of ${SLOTS} slots, ${SECONDS} s against ${server.url.href}`);
    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    stopping = true;
    await Promise.all(clients);
    const elapsedS = (performance.now() - t0) / 1000;
    const serverCpuS = cpuSecondsOf(pid) - cpu0;
    const serverRssMiB = peakRssMiBOf(pid);
    load.push(loadavg()[0] as number);
    // Every slot must be free again, as etcd sees it.
    const leftover: string[] = [];
    for (const [key, value] of Object.entries(await watcher.getAll().prefix(`${PREFIX}/groups/`).strings())) {
      const sem = JSON.parse(value) as { holders: { id: string }[] };
      if (sem.holders.length > 0) leftover.push(`${key}: ${sem.holders.map((h) => h.id).join(', ')}`);
    }
    const total = stats['pre-reboot'].latenciesMs.length + stats['steady-state'].latenciesMs.length;
    const failed = (s: OpStats): number =>
      Object.entries(s.statuses)
        .filter(([k]) => k !== '200' && k !== '409')
        .reduce((n, [, v]) => n + v, 0);
    const row = (op: Op) => {
      const s = stats[op];
      return {
        requests: s.latenciesMs.length,
        perSecond: s.latenciesMs.length / elapsedS,
        p50Ms: quantile(s.latenciesMs, 0.5),
        p99Ms: quantile(s.latenciesMs, 0.99),
        maxMs: quantile(s.latenciesMs, 1),
        statuses: s.statuses,
        failed: failed(s),
      };
    };
    const result = {
      date: new Date().toISOString(),
      machine,
      loadAverage1m: { before: load[0], after: load[1] },
      etcd: `${etcdVersion}, 3 members on 127.0.0.1`,
      clients: CLIENTS,
      groups: GROUPS,
      slotsPerGroup: SLOTS,
      seconds: elapsedS,
      requests: total,
      requestsPerSecond: total / elapsedS,
      ops: { 'pre-reboot': row('pre-reboot'), 'steady-state': row('steady-state') },
      slotsTaken: stats['pre-reboot'].statuses['200'] ?? 0,
      server: { cpuS: serverCpuS, cpuShare: serverCpuS / elapsedS, peakRssMiB: serverRssMiB, logged: server.logged() },
      observer: { changes, maxHolders: observedMax, violations },
      clientsMaxHolding: clientMax,
      leftover,
      reference: 'none: airlock (the FleetLock server of Fedora CoreOS) is not packaged for Debian',
    };
    const problems = [
      ...violations.map((v) => `slot violation: ${v}`),
      ...leftover.map((l) => `slot left held: ${l}`),
      ...(clientMax > SLOTS ? [`clients saw ${clientMax} holders of one group at once`] : []),
    ];
    const file = relative(o.repoRoot, writeJsonResults(join(o.repoRoot, 'bench/results'), 'fleetlock', result));
    const table = [
      ['operation', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'answers'],
      ...(['pre-reboot', 'steady-state'] as const).map((op) => {
        const r = result.ops[op];
        return [
          op,
          String(r.requests),
          r.perSecond.toFixed(0),
          r.p50Ms.toFixed(1),
          r.p99Ms.toFixed(1),
          r.maxMs.toFixed(0),
          Object.entries(r.statuses)
            .map(([k, v]) => `${v} × ${k === '0' ? 'no answer' : k}`)
            .join(', '),
        ];
      }),
    ];
    const summary = [
      `- Date: ${result.date}; load average (1 min) ${load[0]?.toFixed(2)} before, ${load[1]?.toFixed(2)} after (other agents share the machine)`,
      `- Machine: ${machine.nproc} × ${machine.cpuModel}, ${machine.memTotalGiB} GiB RAM, Linux ${machine.kernel}; ${result.etcd}; server and clients on the same machine`,
      `- Load: ${CLIENTS} clients (one Node process, a new connection per request) in ${GROUPS} groups of ${SLOTS} slots, each looping pre-reboot → (holding the slot ${HOLD_MS} ms) steady-state with no other pause, for ${elapsedS.toFixed(1)} s`,
      `- Throughput: ${result.requestsPerSecond.toFixed(0)} requests/s in all; ${result.slotsTaken} slots taken and given back (${(result.slotsTaken / elapsedS).toFixed(1)}/s)`,
      `- Server (\`arbor fleetlock serve\`, one process): ${serverCpuS.toFixed(1)} s CPU (${((100 * serverCpuS) / elapsedS).toFixed(0)} % of one core), peak RSS ${serverRssMiB.toFixed(0)} MiB`,
      `- Observer (etcd watch on the semaphores): ${changes} changes, at most ${observedMax} holders of a group (slots: ${SLOTS}), ${violations.length} violations; clients' own view: at most ${clientMax}; held after the run: ${leftover.length}`,
      `- Reference: ${result.reference}; absolute figures only`,
      `- Raw results: ${file}`,
    ];
    const text = `${markdownTable(table)}\n\n${summary.join('\n')}`;
    process.stdout.write(`${text}\n`);
    if (o.writeDoc) writeFleetLockDoc(join(o.repoRoot, 'docs/benchmarks.md'), text);
    log(`results: ${file}`);
    return { problems };
  } finally {
    await watch?.cancel();
    watcher.close();
    if (server !== null) await stopFleetLock(server);
    await cluster.close();
    rmSync(base, { recursive: true, force: true });
  }
}

function writeFleetLockDoc(docPath: string, body: string): void {
  writeSuiteSection(docPath, 'fleetlock', body);
}
