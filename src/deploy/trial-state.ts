// Trial outcomes on disk: the failure records data/health/arbor-health writes under the
// stateroot's /var/lib/arbor/trial-failures (CHECKSUM.SERIAL: key=value lines; .output: the end
// of the failing check's output), and the failure a fallback boot implies when no record exists
// (the trial never reached its health check: a panic, a hang).
import { join } from 'node:path';
import { readdirOrEmpty } from '../common/readdir-or-empty.js';
import type { Deployment } from './deployments.js';
import { TRIAL_RECORD_FILE, readStateFile } from './state-file.js';
import type { Sysroot } from './sysroot.js';
import { type TrialFailure, planFallback } from './trial.js';

const failuresDir = (sysroot: Sysroot, stateroot: string): string =>
  join(sysroot.staterootDir(stateroot), 'var', 'lib', 'arbor', 'trial-failures');

// The records live in the stateroot's /var, which the booted system writes: never follow a link there.
const readText = (path: string): string | null => readStateFile(path, TRIAL_RECORD_FILE);

/** Every recorded trial failure of a stateroot. */
export function readTrialFailures(sysroot: Sysroot, stateroot: string): TrialFailure[] {
  const dir = failuresDir(sysroot, stateroot);
  const out: TrialFailure[] = [];
  for (const name of readdirOrEmpty(dir)) {
    const [, checksum, serial] = /^([0-9a-f]{64})\.(\d+)$/.exec(name) ?? [];
    if (checksum === undefined) continue;
    const fields = new Map<string, string>();
    for (const line of (readText(join(dir, name)) ?? '').split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
    }
    const reason = fields.get('reason') === 'health-check' ? 'health-check' : 'tries-exhausted';
    const check = fields.get('check');
    const output = readText(join(dir, `${name}.output`));
    out.push({
      stateroot,
      checksum,
      serial: Number(serial),
      version: null,
      when: Number(fields.get('when') ?? 0),
      reason,
      ...(check ? { check } : {}),
      ...(output !== null ? { output } : {}),
      triesUsed: Number(fields.get('tries-used') ?? 0),
    });
  }
  return out.sort((a, b) => b.when - a.when);
}

/**
 * The trial that failed on this boot, if the machine fell back: the default entry is an
 * exhausted trial and another deployment is booted. Its record when the health check wrote one,
 * else a failure by exhausted tries (it never got as far as its checks).
 */
export function currentTrialFailure(
  sysroot: Sysroot,
  list: readonly Deployment[],
  booted: Deployment | null,
  now: number,
): TrialFailure | null {
  const fallback = planFallback(list, booted);
  if (fallback === null) return null;
  const d = fallback.failed;
  const record = readTrialFailures(sysroot, d.stateroot).find(
    (f) => f.checksum === d.checksum && f.serial === d.serial,
  );
  if (record) return { ...record, version: d.version, triesUsed: Math.max(record.triesUsed, d.trial?.done ?? 0) };
  return {
    stateroot: d.stateroot,
    checksum: d.checksum,
    serial: d.serial,
    version: d.version,
    when: now,
    reason: 'tries-exhausted',
    triesUsed: d.trial?.done ?? 0,
  };
}
