// Trial boots (boot assessment): a new deployment boots on trial with a counter of tries; the
// bootloader counts attempts (systemd-boot renames `NAME+LEFT-DONE.conf`; the generated grub.cfg
// counts in grubenv) and falls back to the next entry when none are left; a passing health check
// blesses the trial (drops the counter), a failing one exhausts it and reboots. Pure: every
// transition of that state machine, on the ordered deployment list; the shell side that runs at
// boot (data/health/arbor-health) does the same renames, and `arbor status` reads the outcome.
import { UsageError } from '../common/errors.js';
import { type Deployment, planRollback, sameDeployment } from './deployments.js';

export const DEFAULT_TRIAL_TRIES = 3;

export interface Tries {
  readonly left: number;
  readonly done: number;
}

/** A trial that did not end in a blessing: recorded on the stateroot, reported by status. */
export interface TrialFailure {
  readonly stateroot: string;
  readonly checksum: string;
  readonly serial: number;
  readonly version: string | null;
  /** Seconds since the epoch (when the failure was noticed). */
  readonly when: number;
  readonly reason: 'health-check' | 'tries-exhausted';
  /** health-check: the check that failed and the end of its output. */
  readonly check?: string;
  readonly output?: string;
  readonly triesUsed: number;
}

const isTrial = (d: Deployment): boolean => d.trial !== undefined;
/** Exhausted: the bootloader will not pick it any more (systemd-boot sorts `+0` entries last). */
const isExhausted = (d: Deployment): boolean => d.trial !== undefined && d.trial.left === 0;

/**
 * The list after deploying `added` on trial with `tries`: it goes first; second comes the last
 * known-good deployment, the one the bootloader falls back to: the booted one unless it is itself
 * an unblessed trial, else the first deployment that is not on trial. Other trials lose their
 * counters (only the default can be on trial). Deployments not kept by `keep` are removed.
 */
export function planTrialDeploy(
  list: readonly Deployment[],
  added: Deployment,
  booted: Deployment | null,
  tries: number,
  keep: (d: Deployment, i: number) => boolean,
): { list: Deployment[]; removed: Deployment[] } {
  if (!Number.isInteger(tries) || tries < 1)
    throw new UsageError('E_TRIAL_TRIES', `trial tries must be a whole number ≥ 1, got ${tries}`);
  const good =
    (booted !== null && !isTrial(booted) ? list.find((d) => sameDeployment(d, booted)) : undefined) ??
    list.find((d) => !isTrial(d));
  const rest: Deployment[] = [];
  const removed: Deployment[] = [];
  for (const [i, d] of list.entries()) {
    if (good !== undefined && sameDeployment(d, good)) continue;
    if (keep(d, i)) rest.push(clearTrial(d));
    else removed.push(d);
  }
  const head = { ...added, trial: { left: tries, done: 0 } };
  return { list: good !== undefined ? [head, clearTrial(good), ...rest] : [head, ...rest], removed };
}

const clearTrial = (d: Deployment): Deployment => (d.trial === undefined ? d : { ...d, trial: undefined });

/** What the bootloader does when it starts the entry on trial: one attempt counted. */
export function countAttempt(tries: Tries): { tries: Tries; boots: boolean } {
  if (tries.left === 0) return { tries, boots: false };
  return { tries: { left: tries.left - 1, done: tries.done + 1 }, boots: true };
}

/** The bootloader's choice: the first entry, unless it is on trial with no tries left. */
export function bootChoice(list: readonly Deployment[]): number {
  const first = list[0];
  if (first === undefined) throw new UsageError('E_DEPLOYMENT_NONE', 'there is no deployment to boot');
  return first.trial !== undefined && first.trial.left === 0 && list.length > 1 ? 1 : 0;
}

/**
 * Bless: the booted deployment passed its checks while on trial; its counter goes and it stays the
 * default for good. A no-op when it is not on trial.
 */
export function planBless(list: readonly Deployment[], booted: Deployment): Deployment[] {
  return list.map((d) => (sameDeployment(d, booted) ? clearTrial(d) : d));
}

/** A failed health check on the booted trial: its tries are used up, so the next boot falls back. */
export function planHealthFailure(list: readonly Deployment[], booted: Deployment): Deployment[] {
  return list.map((d) => (sameDeployment(d, booted) && d.trial ? { ...d, trial: { left: 0, done: d.trial.done } } : d));
}

/**
 * After a fallback: the machine booted another deployment while the default is an exhausted
 * trial. The booted one becomes the default and the failed trial goes right behind it, without
 * its counter, so no later boot picks it. Null when nothing failed.
 */
export function planFallback(
  list: readonly Deployment[],
  booted: Deployment | null,
): { list: Deployment[]; failed: Deployment } | null {
  const first = list[0];
  if (booted === null || first === undefined || !isExhausted(first) || sameDeployment(first, booted)) return null;
  const rest = list.filter((d) => !sameDeployment(d, booted) && !sameDeployment(d, first));
  const good = list.find((d) => sameDeployment(d, booted));
  if (good === undefined) return null;
  return { list: [clearTrial(good), clearTrial(first), ...rest], failed: first };
}

/**
 * `arbor rollback` (planRollback), except that after a fallback the failed trial, which still
 * leads the list, is no target (its commit failed its checks): the rollback is planned among the
 * others and the failed trial goes last, without its counter.
 */
export function planRollbackPastFailure(
  list: readonly Deployment[],
  booted: Deployment | null,
): { list: Deployment[]; from: Deployment; to: Deployment } {
  const fallback = planFallback(list, booted);
  if (fallback === null) return planRollback(list, booted);
  const planned = planRollback(
    fallback.list.filter((d) => !sameDeployment(d, fallback.failed)),
    booted,
  );
  return { ...planned, list: [...planned.list, clearTrial(fallback.failed)] };
}

/** A manual rollback during a trial abandons it: the counter goes with the reorder. */
export function abandonTrials(list: readonly Deployment[]): Deployment[] {
  return list.map(clearTrial);
}

/** Whether a commit failed a trial before (upgrade refuses it unless forced). */
export function failedBefore(failures: readonly TrialFailure[], checksum: string): TrialFailure | undefined {
  return failures.find((f) => f.checksum === checksum);
}
