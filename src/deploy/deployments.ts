// The boot set as an ordered list of deployments (index 0 boots by default) and every change made
// to it: deploy, rollback, undeploy, pin, cleanup. Pure: the caller reads the list from the
// current boot entries and writes the result as a new boot set (state.ts).
import { UsageError, present, quoteText } from '../common/errors.js';
import type { Checksum } from '../common/hash.js';
import type { Origin } from './origin.js';

export interface Deployment {
  readonly stateroot: string;
  readonly checksum: Checksum;
  readonly serial: number;
  /** BLAKE3 of kernel + initramfs: the `/boot/arbor/STATEROOT-BOOTCSUM` directory. */
  readonly bootcsum: string;
  /** Kernel arguments, the deployment argument excluded. */
  readonly kargs: readonly string[];
  readonly origin: Origin;
  /** The commit's `version` metadata, when it has one. */
  readonly version: string | null;
  /** Boot counting: present while the deployment is on trial. */
  readonly trial?: { readonly left: number; readonly done: number } | undefined;
}

export const deploymentName = (d: Pick<Deployment, 'checksum' | 'serial'>): string => `${d.checksum}.${d.serial}`;

export const sameDeployment = (
  a: Pick<Deployment, 'stateroot' | 'checksum' | 'serial'>,
  b: Pick<Deployment, 'stateroot' | 'checksum' | 'serial'>,
): boolean => a.stateroot === b.stateroot && a.checksum === b.checksum && a.serial === b.serial;

export type Role = 'booted' | 'pending' | 'rollback' | 'default' | 'other';

/**
 * What each deployment is to the user, as rpm-ostree names them: the booted one; pending = the
 * default when it is not the booted one (it boots next); rollback = the first one after the
 * booted one (or, on a sysroot that is not booted, the first after the default); on a sysroot
 * that is not booted the first one is just the default.
 */
export function rolesOf(list: readonly Deployment[], booted: Deployment | null): Role[] {
  const bootedIndex = booted === null ? -1 : list.findIndex((d) => sameDeployment(d, booted));
  const anchor = bootedIndex >= 0 ? bootedIndex : 0;
  return list.map((_, i) => {
    if (i === bootedIndex) return 'booted';
    if (i === 0 && bootedIndex !== 0) return bootedIndex < 0 ? 'default' : 'pending';
    if (i === anchor + 1) return 'rollback';
    return 'other';
  });
}

/**
 * The list after deploying `added`: it goes first; kept are the booted deployment, the previous
 * default (the rollback target), every pinned one, and with `retain` all. Deployments of other
 * stateroots are kept as they are.
 */
export function planDeploy(
  list: readonly Deployment[],
  added: Deployment,
  booted: Deployment | null,
  options: { retain?: boolean } = {},
): { list: Deployment[]; removed: Deployment[] } {
  const kept: Deployment[] = [];
  const removed: Deployment[] = [];
  for (const [i, d] of list.entries()) {
    const keep =
      options.retain === true ||
      d.origin.pinned ||
      (booted !== null && sameDeployment(d, booted)) ||
      i === 0 ||
      d.stateroot !== added.stateroot;
    (keep ? kept : removed).push(d);
  }
  return { list: [added, ...kept], removed };
}

/**
 * Rollback only reorders: when the booted deployment is the default, the rollback deployment (the
 * next one) becomes the default; when another one is pending, the booted one goes back to the
 * front. On a sysroot that is not booted, the first two swap.
 */
export function planRollback(
  list: readonly Deployment[],
  booted: Deployment | null,
): { list: Deployment[]; from: Deployment; to: Deployment } {
  if (list.length < 2) throw new UsageError('E_ROLLBACK_NONE', 'there is no deployment to roll back to');
  const bootedIndex = booted === null ? -1 : list.findIndex((d) => sameDeployment(d, booted));
  const target = bootedIndex > 0 ? bootedIndex : 1;
  const out = [...list];
  const moved = present(out.splice(target, 1)[0], `deployment ${target}`);
  out.unshift(moved);
  return { list: out, from: present(list[0], 'the default deployment'), to: moved };
}

/** Removes one deployment by index; the booted one cannot be removed. */
export function planUndeploy(
  list: readonly Deployment[],
  index: number,
  booted: Deployment | null,
): { list: Deployment[]; removed: Deployment } {
  const d = list[index];
  if (d === undefined)
    throw new UsageError('E_DEPLOYMENT_INDEX', `there is no deployment ${index} (there are ${list.length})`);
  if (booted !== null && sameDeployment(d, booted))
    throw new UsageError('E_DEPLOYMENT_BOOTED', `deployment ${index} is the booted one and cannot be removed`);
  return { list: list.filter((_, i) => i !== index), removed: d };
}

/**
 * `cleanup --pending` drops the pending deployment (the default when it is not booted);
 * `--rollback` drops every deployment after the booted one (or after the default) that is not pinned.
 */
export function planCleanup(
  list: readonly Deployment[],
  booted: Deployment | null,
  options: { pending?: boolean; rollback?: boolean },
): { list: Deployment[]; removed: Deployment[] } {
  const roles = rolesOf(list, booted);
  const bootedIndex = roles.indexOf('booted');
  const anchor = bootedIndex >= 0 ? bootedIndex : 0;
  const removed: Deployment[] = [];
  const out: Deployment[] = [];
  for (const [i, d] of list.entries()) {
    const drop =
      (options.pending === true && roles[i] === 'pending') ||
      (options.rollback === true && i > anchor && !d.origin.pinned);
    (drop ? removed : out).push(d);
  }
  return { list: out, removed };
}

/** The next free serial for a commit in a stateroot, given the deployment directory names there. */
export function nextSerial(existingNames: readonly string[], checksum: Checksum): number {
  let max = -1;
  for (const name of existingNames) {
    const m = /^([0-9a-f]{64})\.(\d+)$/.exec(name);
    if (m && m[1] === checksum) max = Math.max(max, Number(m[2]));
  }
  return max + 1;
}

/**
 * Kernel argument edits in order: append K=V, replace K=V (every K=... becomes K=V; K must be
 * present), delete K or K=V (the matching ones; K must be present).
 */
export function editKargs(
  kargs: readonly string[],
  edits: { append?: readonly string[]; replace?: readonly string[]; delete?: readonly string[] },
): string[] {
  const keyOf = (arg: string): string => (arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg);
  let out = [...kargs];
  for (const del of edits.delete ?? []) {
    const matches = out.filter((a) => (del.includes('=') ? a === del : keyOf(a) === del));
    if (matches.length === 0) throw new UsageError('E_KARG_MISSING', `kernel argument '${del}' is not set`);
    out = out.filter((a) => !matches.includes(a));
  }
  for (const rep of edits.replace ?? []) {
    const key = keyOf(rep);
    if (!out.some((a) => keyOf(a) === key))
      throw new UsageError('E_KARG_MISSING', `kernel argument '${key}' is not set, so it cannot be replaced`);
    const first = out.findIndex((a) => keyOf(a) === key);
    out = out.filter((a, i) => i === first || keyOf(a) !== key);
    out[first] = rep;
  }
  for (const add of edits.append ?? []) out.push(add);
  assertKargs(out);
  return out;
}

/**
 * Why `arg` cannot be one kernel argument of a BLS `options` line, or undefined. The kernel splits
 * the line at whitespace outside double quotes (and reads bytes 0x80-0xff of some UTF-8 characters
 * as spaces), so an argument is plain printable ASCII without whitespace or `"`, or
 * `KEY="VALUE"` where only VALUE may hold spaces (no `"`, tab or line break): `a b` would become two
 * arguments, and an unbalanced `"` would swallow the ones after it (`arbor=` included).
 */
export function kargProblem(arg: string): string | undefined {
  if (arg === '') return 'it is empty';
  if (/[^\x20-\x7e]/.test(arg)) return 'it contains a control or non-ASCII character';
  if (arg.startsWith('arbor=') || arg === 'arbor') return "'arbor=' is managed by arbor";
  if (!/[ "]/.test(arg)) return undefined;
  if (/^[^ "=]+="[^"]*"$/.test(arg)) return undefined;
  return arg.includes('"')
    ? 'its double quotes are not KEY="VALUE"'
    : 'it contains whitespace (quote the value: KEY="A B")';
}

/** E_KARG_INVALID (exit 2) for the first argument kargProblem refuses, named with what is wrong. */
export function assertKargs(kargs: readonly string[]): void {
  for (const arg of kargs) {
    const problem = kargProblem(arg);
    if (problem === undefined) continue;
    throw new UsageError('E_KARG_INVALID', `kernel argument ${quoteText(arg)} cannot be used: ${problem}`, {
      hint: 'one argument per --karg; a value with spaces is written KEY="VALUE WITH SPACES"',
    });
  }
}

/** A commit as the downgrade check sees it: `timestamp` in seconds since the epoch. */
export interface CommitPoint {
  readonly checksum: Checksum;
  readonly version: string | null;
  readonly timestamp: number;
}

/** A deploy of an older commit than the current deployment's: both commits. */
export interface Downgrade {
  readonly from: CommitPoint;
  readonly to: CommitPoint;
}

/**
 * The downgrade `next` would be from `current` (the booted or merge deployment's commit), or null:
 * only a strictly older commit timestamp counts (the same commit, or one made in the same second,
 * is not a downgrade). Rollback never asks: it returns to a deployment that is still listed.
 */
export function planDowngrade(current: CommitPoint | null, next: CommitPoint): Downgrade | null {
  if (current === null || next.timestamp >= current.timestamp) return null;
  return { from: current, to: next };
}

/** `2.0 (2026-01-02T03:04:05Z)`, or the checksum's first 12 digits for a commit without a version. */
export function describeCommitPoint(p: CommitPoint): string {
  const when = new Date(p.timestamp * 1000).toISOString().replace('.000Z', 'Z');
  return `${p.version ?? p.checksum.slice(0, 12)} (${when})`;
}
