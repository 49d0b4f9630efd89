// Text for a deploy's result (`deploy`, `admin deploy`, `admin finalize-staged`) and the pieces
// `upgrade` shares with it: the /etc conflict warning, the trial outcome, the downgrade line.
import { type DeployResult, type Downgrade, type EtcConflict, describeCommitPoint } from '../../deploy/index.js';

/** What a command prints: data for stdout, warnings for stderr; each is whole lines or empty. */
export interface Rendered {
  readonly stdout: string;
  readonly stderr: string;
}

/** Each line ended by one newline (one it already has counts); empty for none. */
export const joinLines = (lines: readonly string[]): string =>
  lines.map((line) => (line.endsWith('\n') ? line : `${line}\n`)).join('');

/** One warning per /etc file both the admin and the new defaults changed (the admin's version is kept). */
export function renderEtcConflictWarnings(conflicts: readonly EtcConflict[]): string {
  return joinLines(
    conflicts.map(
      (c) =>
        `warning: /etc/${c.path}: changed by the admin and by the new defaults; kept the admin's version (${c.admin}; new defaults: ${c.defaults})`,
    ),
  );
}

/** `downgrade: 2.0 (…) → 1.0 (…); WHAT`: the two commits and what was done about it. */
export const renderDowngrade = (d: Downgrade, what: string): string =>
  `downgrade: ${describeCommitPoint(d.from)} → ${describeCommitPoint(d.to)}; ${what}`;

/**
 * The trial's part of a deploy report: its tries on stdout; a warning when a trial was asked for
 * that nothing in the tree will bless. (Why a deployment is not on trial, and the preflight's
 * skipped checks, are in --json.)
 */
export function renderTrialOutcome(r: Pick<DeployResult, 'trialTries' | 'trialNote'>): Rendered {
  if (r.trialTries === null) return { stdout: '', stderr: '' };
  return {
    stdout: `on trial: ${r.trialTries} tries; arbor-health blesses it when its checks pass, else the machine falls back\n`,
    stderr: r.trialNote !== null ? `warning: ${r.trialNote}\n` : '',
  };
}

/** A deploy's (or finalization's) result: the new deployment, a downgrade, the trial, what was removed. */
export function renderDeploy(r: DeployResult): Rendered {
  const d = r.deployment;
  const trial = renderTrialOutcome(r);
  const stdout = [
    joinLines([
      `${r.staged ? 'staged' : 'deployed'} ${d.stateroot} ${d.checksum}.${d.serial}${d.version ? ` (version ${d.version})` : ''}`,
    ]),
    r.downgrade ? joinLines([renderDowngrade(r.downgrade, 'allowed by --allow-downgrade')]) : '',
    trial.stdout,
    joinLines(r.removed.map((removed) => `removed ${removed.stateroot} ${removed.checksum}.${removed.serial}`)),
  ];
  return { stdout: stdout.join(''), stderr: renderEtcConflictWarnings(r.etcConflicts) + trial.stderr };
}
