// Rollouts that halt themselves: agents report each trial's outcome to the fleet server, which keeps the
// reports in etcd and, when a release's failures exceed the failure budget, pauses it in the release graph
// and publishes the graph again, signed, so no further host starts it. Hosts already on it are unaffected.
import { UsageError } from '../common/errors.js';
import { Repo, type SigningKey } from '../repo/index.js';
import type { TrialReport } from './protocol.js';
import { loadReleaseGraph, saveReleaseGraph } from './release-file.js';
import { editRelease } from './releases.js';
import type { SemaphoreStore } from './store.js';

/** Failed trials a release may have before it is paused: a count, a share of the hosts that tried it, or both. */
export interface FailureBudget {
  readonly failures: number | null;
  /** Percent (0–100) of the hosts that reported on the release. */
  readonly percent: number | null;
}

/** `2` (failed trials) or `10%` (of the hosts that reported), repeatable; both may be given. */
export function parseFailureBudget(specs: readonly string[]): FailureBudget {
  let failures: number | null = null;
  let percent: number | null = null;
  for (const spec of specs) {
    const m = /^(\d{1,6})(%?)$/.exec(spec);
    if (!m || (m[2] === '%' && Number(m[1]) > 100) || Number(m[1]) < 1)
      throw new UsageError('E_USAGE', `--failure-budget: expected N failed trials or P% of hosts, got '${spec}'`);
    if (m[2] === '%') percent = Number(m[1]);
    else failures = Number(m[1]);
  }
  return { failures, percent };
}

/** Whether `failed` of `total` reporting hosts exceed the budget (either limit). */
export function budgetExceeded(budget: FailureBudget, failed: number, total: number): boolean {
  if (failed === 0) return false;
  if (budget.failures !== null && failed >= budget.failures) return true;
  return budget.percent !== null && total > 0 && (failed * 100) / total > budget.percent;
}

export interface BudgetOptions {
  readonly store: SemaphoreStore;
  /** The compose server's repository, whose release graph is paused and published. */
  readonly repoPath: string;
  readonly keys: readonly SigningKey[];
  readonly expiresInSeconds?: number;
  readonly budget: FailureBudget;
  readonly log: (event: Record<string, unknown>) => void;
}

/** Records one report; pauses the release when its failures exceed the budget. Returns what happened. */
export async function recordReport(
  options: BudgetOptions,
  id: string,
  group: string,
  report: TrialReport,
  now: number,
): Promise<string> {
  await options.store.putReport(report.commit, id, { ...report, id, group, when: now });
  if (report.outcome !== 'failed') return 'recorded';
  const reports = await options.store.reports(report.commit);
  const failed = reports.filter((r) => r.outcome === 'failed');
  if (!budgetExceeded(options.budget, failed.length, reports.length)) return 'recorded';
  const checks = [...new Set(failed.map((r) => r.check).filter((c): c is string => typeof c === 'string'))];
  const reason = `failure budget exceeded: ${failed.length} of ${reports.length} hosts failed their trial${checks.length ? ` (checks: ${checks.join(', ')})` : ''}`;
  const repo = Repo.open(options.repoPath);
  try {
    const graph = loadReleaseGraph(repo);
    const release = graph.releases.find((r) => r.commit === report.commit);
    if (release === undefined || release.paused !== null) return 'recorded';
    saveReleaseGraph(
      repo,
      editRelease(graph, release.version, (r) => ({ ...r, paused: { reason, when: Math.floor(now) } })),
      {
        keys: options.keys,
        ...(options.expiresInSeconds !== undefined ? { expiresInSeconds: options.expiresInSeconds } : {}),
      },
    );
    options.log({ paused: release.version, reason });
    return 'paused';
  } finally {
    repo.close();
  }
}
