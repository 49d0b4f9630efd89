// `arbor status`: the value the command gathers from the sysroot, and its text and JSON forms.
import type { Deployment, EtcConflict, Role, TrialFailure } from '../../deploy/index.js';
import { quoteText } from '../../common/errors.js';
import type { FirstbootResult } from '../../firstboot/index.js';
import type { LayeringStatus } from '../../layering/index.js';
import { joinLines } from './deploy.js';

/** One deployment as status shows it; `failed-trial`: first in the entries, but no bootloader picks it any more. */
interface StatusEntry {
  readonly role: Role | 'failed-trial';
  readonly deployment: Deployment;
  /** Its commit's time in seconds; null when the commit object is not in the repository. */
  readonly timestamp: number | null;
  readonly etcConflicts: readonly Pick<EtcConflict, 'path' | 'admin' | 'defaults'>[];
  /** Its package layering; null or absent when it runs its base commit as composed. */
  readonly layering?: LayeringStatus | null;
}

/** Everything `arbor status` reports, read before anything is printed. */
export interface StatusView {
  readonly bootversion: number | null;
  /** In boot order: the index is the position. */
  readonly deployments: readonly StatusEntry[];
  readonly staged: Deployment | null;
  readonly trialFailed: TrialFailure | null;
  readonly trialFailures: readonly TrialFailure[];
  /** The first-boot configuration's outcome on this machine; null when it has none. */
  readonly firstboot: FirstbootResult | null;
}

/** A deployment as `status --json` and `upgrade --json` show it. */
export function deploymentJson(d: Deployment): Record<string, unknown> {
  return {
    stateroot: d.stateroot,
    checksum: d.checksum,
    serial: d.serial,
    version: d.version,
    origin: d.origin.refspec,
    pinned: d.origin.pinned,
    kargs: d.kargs,
    bootcsum: d.bootcsum,
    ...(d.trial ? { trial: d.trial } : {}),
    ...(d.origin.allowDowngrade ? { allowDowngrade: true } : {}),
  };
}

/** The `status --json` document. */
export function statusJson(view: StatusView): Record<string, unknown> {
  return {
    bootversion: view.bootversion,
    deployments: view.deployments.map((e, index) => ({
      index,
      role: e.role,
      ...deploymentJson(e.deployment),
      timestamp: e.timestamp,
      etcConflicts: e.etcConflicts,
      layering: e.layering ?? null,
    })),
    staged: view.staged ? deploymentJson(view.staged) : null,
    trialFailed: view.trialFailed,
    trialFailures: view.trialFailures,
    firstboot: view.firstboot,
  };
}

/** The `status` text: a staged deployment, a failed trial, then each deployment with its details. */
export function renderStatus(view: StatusView): string {
  const lines: string[] = [];
  const { staged, trialFailed: failure } = view;
  if (staged)
    lines.push(
      `  staged    ${staged.stateroot} ${staged.checksum}.${staged.serial}${staged.version ? `  version ${staged.version}` : ''} (becomes the default at shutdown)`,
    );
  if (failure) lines.push(...renderTrialFailure(failure));
  if (view.firstboot) lines.push(...renderFirstboot(view.firstboot));
  if (view.deployments.length === 0) lines.push('no deployments');
  for (const [i, entry] of view.deployments.entries()) lines.push(...renderEntry(i, entry));
  return joinLines(lines);
}

function renderFirstboot(r: FirstbootResult): string[] {
  if (r.state === 'pending') return ['First boot: configuration pending (applied at the next boot)'];
  if (r.state === 'applied') return [`First boot: applied ${r.time ?? '(time unknown)'} (${r.steps ?? '?'} steps)`];
  return [
    `FIRST BOOT FAILED at step ${quoteText(r.failedStep ?? '?')} (exit ${r.exit ?? '?'}) ${r.time ?? ''}; it runs again at the next boot`.trimEnd(),
    ...(r.output ? [`  its output:\n${indentOutput(r.output)}`] : []),
  ];
}

/** A recorded output as status shows it: each line behind `    | `, control characters escaped. */
function indentOutput(output: string): string {
  return (
    output
      .trimEnd()
      .split('\n')
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal control characters are what this escapes
      .map(
        (l) =>
          `    | ${l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`,
      )
      .join('\n')
  );
}

function renderTrialFailure(failure: TrialFailure): string[] {
  const why =
    failure.reason === 'health-check'
      ? `its health check ${failure.check ?? '?'} failed`
      : `its ${failure.triesUsed} tries ran out before a health check passed (a crash, panic or hang)`;
  return [
    `TRIAL FAILED: ${failure.stateroot} ${failure.checksum}.${failure.serial}${failure.version ? ` (version ${failure.version})` : ''}: ${why}; ${failure.triesUsed} tries used; noticed ${new Date(failure.when * 1000).toISOString()}`,
    ...(failure.output ? [`  its output:\n${indentOutput(failure.output)}`] : []),
    '  the machine is back on the previous deployment; `arbor upgrade` will not deploy that commit again without --force',
  ];
}

function renderEntry(index: number, { role, deployment: d, timestamp, etcConflicts, layering }: StatusEntry): string[] {
  const lines = [
    `${role === 'booted' ? '●' : ' '} ${index} ${role === 'other' ? '' : role} ${d.stateroot} ${d.checksum}.${d.serial}`.replace(
      / +/g,
      ' ',
    ),
  ];
  if (d.version)
    lines.push(
      `      Version: ${d.version}${timestamp !== null ? ` (${new Date(timestamp * 1000).toISOString()})` : ''}`,
    );
  if (d.origin.refspec) lines.push(`      Origin: ${d.origin.refspec}`);
  if (layering) lines.push(...renderLayering(layering));
  if (d.origin.pinned) lines.push('      Pinned: yes');
  if (d.origin.allowDowngrade) lines.push('      Downgrade: deployed with --allow-downgrade');
  if (d.trial)
    lines.push(
      d.trial.left > 0
        ? `      Trial: ${d.trial.left} tries left (${d.trial.done} used), not yet blessed`
        : `      Trial: failed (${d.trial.done} tries used)`,
    );
  if (d.kargs.length > 0) lines.push(`      Kargs: ${d.kargs.join(' ')}`);
  if (etcConflicts.length > 0) {
    lines.push(`      /etc conflicts (the admin's version was kept; the new defaults changed these too):`);
    for (const c of etcConflicts) lines.push(`        /etc/${c.path}: admin ${c.admin}; defaults ${c.defaults}`);
  }
  return lines;
}

/** rpm-ostree's names for a layered deployment's parts; empty lists are left out. */
function renderLayering(l: LayeringStatus): string[] {
  const lines = [`      BaseCommit: ${l.baseCommit}`];
  const list = (name: string, values: readonly string[]): void => {
    if (values.length > 0) lines.push(`      ${name}: ${values.join(' ')}`);
  };
  list('LayeredPackages', l.layeredPackages);
  list('LocalPackages', l.localPackages);
  list('RemovedBasePackages', l.removedBasePackages);
  if (l.replacedBasePackages.length > 0) lines.push(`      ReplacedBasePackages: ${l.replacedBasePackages.join(', ')}`);
  return lines;
}
