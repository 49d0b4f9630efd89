// The host-side commands: `arbor admin ...`, `status`, `upgrade`, `rollback`, `rebase`, `deploy`,
// `cleanup`, `kargs`. Every one takes --sysroot (default /), so all of it runs on a directory.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import {
  type DeployResult, type Deployment, type Downgrade, Sysroot, cleanup, deploy, deploymentConfigDiff, describeCommitPoint, editKargs, finalizeStaged, initStateroot, initSysroot,
  currentTrialFailure, pin, readBootState, readEtcConflicts, readStagedDeployment, readTrialFailures, rolesOf, rollback, setKargs, undeploy, upgrade,
} from '../../deploy/index.js';
import { ProgressLine, formatBytes } from '../progress.js';
import { ArborCommand } from '../repo-command.js';

abstract class SysrootCommand extends ArborCommand {
  sysrootPath = Option.String('--sysroot', '/', { description: 'The sysroot to act on (default: /)' });
  protected abstract runWith(sysroot: Sysroot): Promise<number>;
  protected async run(): Promise<number> {
    const sysroot = Sysroot.open(this.sysrootPath);
    try {
      return await this.runWith(sysroot);
    } finally {
      sysroot.close();
    }
  }
  protected reportDeploy(r: DeployResult): void {
    const d = r.deployment;
    for (const c of r.etcConflicts) {
      this.context.stderr.write(`warning: /etc/${c.path}: changed by the admin and by the new defaults; kept the admin's version (${c.admin}; new defaults: ${c.defaults})\n`);
    }
    this.print(`${r.staged ? 'staged' : 'deployed'} ${d.stateroot} ${d.checksum}.${d.serial}${d.version ? ` (version ${d.version})` : ''}`);
    if (r.downgrade) this.print(downgradeLine(r.downgrade, 'allowed by --allow-downgrade'));
    reportOutcome(this, r);
    for (const removed of r.removed) this.print(`removed ${removed.stateroot} ${removed.checksum}.${removed.serial}`);
  }
}

/**
 * The trial's part of a deploy report: its tries on stdout; a warning when a trial was asked for
 * that nothing in the tree will bless. (Why a deployment is not on trial, and the preflight's
 * skipped checks, are in --json.)
 */
function reportOutcome(cmd: ArborCommand & { context: Command['context'] }, r: DeployResult): void {
  if (r.trialTries === null) return;
  cmd.context.stdout.write(`on trial: ${r.trialTries} tries; arbor-health blesses it when its checks pass, else the machine falls back\n`);
  if (r.trialNote !== null) cmd.context.stderr.write(`warning: ${r.trialNote}\n`);
}

/**
 * Trial tries for a new deployment: the flag, else the sysroot's `[sysroot] trial-tries` setting
 * (in arbor/repo/config), else undefined (deploy's default: DEFAULT_TRIAL_TRIES when the tree
 * can bless itself). 0 turns trials off.
 */
function trialTriesOf(sysroot: Sysroot, flag: string | undefined): number | undefined {
  const text = flag ?? sysroot.repo.config.get('sysroot')?.get('trial-tries');
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError('E_USAGE', `trial tries must be a whole number, got '${text}'`);
  return Number(text);
}

/** `downgrade: 2.0 (…) → 1.0 (…)`, and what was done about it. */
const downgradeLine = (d: Downgrade, what: string): string => `downgrade: ${describeCommitPoint(d.from)} → ${describeCommitPoint(d.to)}; ${what}`;

const TRIAL_TRIES_HELP = 'Boot it on trial with N tries (0: not on trial; default 3 when the tree ships arbor-health)';
const ACCEPT_HELP = 'Deploy even when the /etc merge has conflicts (your versions are kept)';
const PREFLIGHT_HELP = 'Check the new tree before it becomes the default (--no-preflight: skip)';
const DOWNGRADE_HELP = "Deploy a commit older than the current deployment's (recorded in its origin)";

function parseIndex(text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError('E_USAGE', `expected a deployment index (0, 1, ...), got '${text}'`);
  return Number(text);
}

export class AdminInitFsCommand extends ArborCommand {
  static override paths = [['admin', 'init-fs']];
  static override usage = Command.Usage({
    description: 'Create a sysroot: top-level directories and an empty repository at arbor/repo',
    examples: [['Make a sysroot in a directory', '$0 admin init-fs /mnt/root']],
  });
  target = Option.String({ name: "PATH" });
  protected async run(): Promise<number> {
    initSysroot(this.target).close();
    this.print(`initialised sysroot ${this.target}`);
    return 0;
  }
}

export class AdminOsInitCommand extends SysrootCommand {
  static override paths = [['admin', 'os-init']];
  static override usage = Command.Usage({
    description: 'Create a stateroot: its deployment directory and persistent /var',
    examples: [['Create stateroot "fedora"', '$0 admin os-init --sysroot /mnt/root fedora']],
  });
  stateroot = Option.String({ name: 'STATEROOT' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    initStateroot(sysroot, this.stateroot);
    this.print(`stateroot ${this.stateroot} ready`);
    return 0;
  }
}

export class AdminDeployCommand extends SysrootCommand {
  static override paths = [['admin', 'deploy'], ['deploy']];
  static override usage = Command.Usage({
    description: 'Deploy a commit (ref, commit or prefix) as the new default boot entry',
    details: `
      Checks out the commit into the stateroot (hardlinks), merges /etc (old defaults, your /etc, new defaults: files you
      changed keep your version; when the new defaults changed them too, see Preflight), copies kernel and initramfs to
      /boot, and switches the boot entries atomically. Keeps the booted deployment, the previous default and pinned ones
      (--retain: all). Kernel arguments come from the current default unless --karg or --karg-proc-cmdline is given.
      --stage prepares everything now and makes it the default at shutdown (arbor-finalize-staged.service).

      Trial boot: when the new tree ships /usr/lib/arbor/arbor-health and an earlier deployment exists, the new one
      boots on trial with 3 tries (--trial-tries N or [sysroot] trial-tries=N; 0: off): arbor-health blesses it when
      its health checks pass, else the machine falls back to the previous deployment by itself.

      Preflight: before it becomes the default, the prepared tree is checked (kernel and initramfs, /sbin/init or
      init= and systemd, kernel modules loaded now when the kernel version stays, /etc merge conflicts) and the
      deploy is refused with every problem listed (E_PREFLIGHT_FAILED). --accept-etc-conflicts lets conflicts
      through (your versions are kept); --no-preflight skips the checks.
    `,
    examples: [['Deploy a ref', '$0 admin deploy --sysroot /mnt/root --stateroot os os/x86_64/stable']],
  });
  stateroot = Option.String('--stateroot', { description: 'Stateroot (default: the booted or current one)' });
  karg = Option.Array('--karg', { description: 'Kernel argument K or K=V (repeatable; replaces the inherited ones)' });
  kargProcCmdline = Option.Boolean('--karg-proc-cmdline', false, { description: 'Use the running kernel command line' });
  originRef = Option.String('--origin-ref', { description: 'Refspec to upgrade from (REMOTE:REF)' });
  stage = Option.Boolean('--stage', false, { description: 'Finalize at shutdown instead of now' });
  retain = Option.Boolean('--retain', false, { description: 'Keep every existing deployment' });
  trialTries = Option.String('--trial-tries', { description: TRIAL_TRIES_HELP });
  acceptEtcConflicts = Option.Boolean('--accept-etc-conflicts', false, { description: ACCEPT_HELP });
  preflight = Option.Boolean('--preflight', true, { description: PREFLIGHT_HELP });
  allowDowngrade = Option.Boolean('--allow-downgrade', false, { description: DOWNGRADE_HELP });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  rev = Option.String({ name: 'REV' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const trialTries = trialTriesOf(sysroot, this.trialTries);
    const result = await deploy(sysroot, {
      rev: this.rev,
      ...(this.stateroot !== undefined ? { stateroot: this.stateroot } : {}),
      ...(this.karg !== undefined ? { kargs: this.karg } : {}),
      kargsProcCmdline: this.kargProcCmdline,
      ...(this.originRef !== undefined ? { originRef: this.originRef } : {}),
      stage: this.stage,
      retain: this.retain,
      ...(trialTries !== undefined ? { trialTries } : {}),
      acceptEtcConflicts: this.acceptEtcConflicts,
      preflight: this.preflight,
      allowDowngrade: this.allowDowngrade,
    });
    if (this.json) this.printJson(result);
    else this.reportDeploy(result);
    return 0;
  }
}

function describe(d: Deployment): Record<string, unknown> {
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

export class StatusCommand extends SysrootCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: 'List deployments in boot order: booted, pending, rollback, pinned, staged',
    examples: [['Show the deployments', '$0 status'], ['For scripts', '$0 status --json']],
  });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const state = readBootState(sysroot);
    const roles = rolesOf(state.deployments, state.booted);
    const staged = readStagedDeployment(sysroot);
    const failure = currentTrialFailure(sysroot, state.deployments, state.booted, Math.floor(Date.now() / 1000));
    const failures = [...new Set(state.deployments.map((d) => d.stateroot))].flatMap((s) => readTrialFailures(sysroot, s));
    const timestampOf = (d: Deployment): number | null => (sysroot.repo.hasObject(d.checksum, 'commit') ? sysroot.repo.readCommit(d.checksum).timestamp : null);
    if (this.json) {
      this.printJson({
        bootversion: state.bootversion,
        deployments: state.deployments.map((d, i) => ({ index: i, role: failure && i === 0 ? 'failed-trial' : roles[i], ...describe(d), timestamp: timestampOf(d), etcConflicts: readEtcConflicts(sysroot, d) })),
        staged: staged ? describe(staged) : null,
        trialFailed: failure,
        trialFailures: failures,
      });
      return 0;
    }
    // Rendered whole before printing: a damaged file found halfway must leave stdout empty.
    const lines: string[] = [];
    const out = (line: string): void => void lines.push(line);
    if (staged) out(`  staged    ${staged.stateroot} ${staged.checksum}.${staged.serial}${staged.version ? `  version ${staged.version}` : ''} (becomes the default at shutdown)`);
    if (failure) {
      const why = failure.reason === 'health-check' ? `its health check ${failure.check ?? '?'} failed` : `its ${failure.triesUsed} tries ran out before a health check passed (a crash, panic or hang)`;
      out(`TRIAL FAILED: ${failure.stateroot} ${failure.checksum}.${failure.serial}${failure.version ? ` (version ${failure.version})` : ''}: ${why}; ${failure.triesUsed} tries used; noticed ${new Date(failure.when * 1000).toISOString()}`);
      if (failure.output) out(`  its output:\n${failure.output.trimEnd().split('\n').map((l) => `    | ${l}`).join('\n')}`);
      out('  the machine is back on the previous deployment; `arbor upgrade` will not deploy that commit again without --force');
    }
    if (state.deployments.length === 0) out('no deployments');
    for (const [i, d] of state.deployments.entries()) {
      // A failed trial still comes first in the entries, but no bootloader picks it any more.
      const role = failure && i === 0 ? 'failed-trial' : (roles[i] as string);
      const mark = role === 'booted' ? '●' : ' ';
      const ts = timestampOf(d);
      out(`${mark} ${i} ${role === 'other' ? '' : role} ${d.stateroot} ${d.checksum}.${d.serial}`.replace(/ +/g, ' '));
      if (d.version) out(`      Version: ${d.version}${ts !== null ? ` (${new Date(ts * 1000).toISOString()})` : ''}`);
      if (d.origin.refspec) out(`      Origin: ${d.origin.refspec}`);
      if (d.origin.pinned) out('      Pinned: yes');
      if (d.origin.allowDowngrade) out('      Downgrade: deployed with --allow-downgrade');
      if (d.trial) out(d.trial.left > 0 ? `      Trial: ${d.trial.left} tries left (${d.trial.done} used), not yet blessed` : `      Trial: failed (${d.trial.done} tries used)`);
      if (d.kargs.length > 0) out(`      Kargs: ${d.kargs.join(' ')}`);
      const conflicts = readEtcConflicts(sysroot, d);
      if (conflicts.length > 0) {
        out(`      /etc conflicts (the admin's version was kept; the new defaults changed these too):`);
        for (const c of conflicts) out(`        /etc/${c.path}: admin ${c.admin}; defaults ${c.defaults}`);
      }
    }
    for (const line of lines) this.print(line);
    return 0;
  }
}

export class UpgradeCommand extends SysrootCommand {
  static override paths = [['upgrade']];
  static override usage = Command.Usage({
    description: "Pull the origin's ref and deploy it",
    details: `
      --check only says whether a newer commit exists and how much a pull would fetch; --preview also fetches the new
      commit's metadata and lists package changes (when commits carry package lists). --reboot reboots after deploying.
      The new deployment boots on trial and passes the preflight first, as with \`arbor deploy\` (see its --help).
    `,
    examples: [['Upgrade', '$0 upgrade'], ['Is there an upgrade?', '$0 upgrade --check']],
  });
  check = Option.Boolean('--check', false, { description: 'Only check for an upgrade' });
  preview = Option.Boolean('--preview', false, { description: 'Check and list package changes' });
  reboot = Option.Boolean('--reboot', false, { description: 'Reboot into the new deployment' });
  stage = Option.Boolean('--stage', false, { description: 'Make it the default at shutdown (arbor-finalize-staged.service)' });
  trialTries = Option.String('--trial-tries', { description: TRIAL_TRIES_HELP });
  force = Option.Boolean('--force', false, { description: 'Deploy even a commit that failed a trial here before' });
  acceptEtcConflicts = Option.Boolean('--accept-etc-conflicts', false, { description: ACCEPT_HELP });
  preflight = Option.Boolean('--preflight', true, { description: PREFLIGHT_HELP });
  allowDowngrade = Option.Boolean('--allow-downgrade', false, { description: DOWNGRADE_HELP });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const trialTries = trialTriesOf(sysroot, this.trialTries);
    const extra = { force: this.force, stage: this.stage, acceptEtcConflicts: this.acceptEtcConflicts, preflight: this.preflight, allowDowngrade: this.allowDowngrade, ...(trialTries !== undefined ? { trialTries } : {}) };
    return runUpgrade(this, sysroot, extra, { check: this.check, preview: this.preview, reboot: this.reboot, json: this.json });
  }
}

export class RebaseCommand extends SysrootCommand {
  static override paths = [['rebase']];
  static override usage = Command.Usage({
    description: 'Switch the origin to REMOTE:REF, pull it and deploy it',
    examples: [['Rebase', '$0 rebase origin:os/x86_64/testing']],
  });
  reboot = Option.Boolean('--reboot', false, { description: 'Reboot into the new deployment' });
  stage = Option.Boolean('--stage', false, { description: 'Make it the default at shutdown (arbor-finalize-staged.service)' });
  trialTries = Option.String('--trial-tries', { description: TRIAL_TRIES_HELP });
  force = Option.Boolean('--force', false, { description: 'Deploy even a commit that failed a trial here before' });
  acceptEtcConflicts = Option.Boolean('--accept-etc-conflicts', false, { description: ACCEPT_HELP });
  preflight = Option.Boolean('--preflight', true, { description: PREFLIGHT_HELP });
  allowDowngrade = Option.Boolean('--allow-downgrade', false, { description: DOWNGRADE_HELP });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  refspec = Option.String({ name: 'REMOTE:REF' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const trialTries = trialTriesOf(sysroot, this.trialTries);
    const extra = {
      refspec: this.refspec, force: this.force, stage: this.stage, acceptEtcConflicts: this.acceptEtcConflicts, preflight: this.preflight,
      allowDowngrade: this.allowDowngrade, ...(trialTries !== undefined ? { trialTries } : {}),
    };
    return runUpgrade(this, sysroot, extra, { check: false, preview: false, reboot: this.reboot, json: this.json });
  }
}

async function runUpgrade(
  cmd: SysrootCommand & { context: Command['context'] },
  sysroot: Sysroot,
  extra: { refspec?: string; force?: boolean; stage?: boolean; trialTries?: number; acceptEtcConflicts?: boolean; preflight?: boolean; allowDowngrade?: boolean },
  flags: { check: boolean; preview: boolean; reboot: boolean; json: boolean },
): Promise<number> {
  const out = (text: string): void => void cmd.context.stdout.write(`${text}\n`);
  const progress = new ProgressLine(cmd.context.stderr);
  let result;
  try {
    result = await upgrade(sysroot, {
      ...extra,
      check: flags.check,
      preview: flags.preview,
      onProgress: (p) => progress.update(`pulling: ${p.objects}/${p.objectsNeeded} objects, ${formatBytes(p.bytes)}`, p.bytes),
    });
  } finally {
    progress.done();
  }
  if (flags.json) {
    cmd.context.stdout.write(`${JSON.stringify({ ...result, from: describe(result.from) }, null, 2)}\n`);
  } else {
    if (!result.newer && result.deployed === null) out(`no upgrade available: ${result.refspec} is at the deployed commit ${result.from.checksum.slice(0, 12)}`);
    else if (result.deployed === null && result.downgrade !== null) {
      out(`${downgradeLine(result.downgrade, `${result.refspec} is at an older commit ${result.available}`)}; \`arbor upgrade\` deploys it only with --allow-downgrade`);
      if (result.downloadBytes !== null) out(`  download: ${formatBytes(result.downloadBytes)}`);
    } else if (result.deployed === null) {
      out(`upgrade available: ${result.refspec} ${result.available}${result.version ? ` (version ${result.version})` : ''}`);
      if (result.downloadBytes !== null) out(`  download: ${formatBytes(result.downloadBytes)}`);
    }
    for (const p of result.packages ?? []) out(`  ${p.from === null ? 'added' : p.to === null ? 'removed' : 'changed'} ${p.name} ${p.from ?? ''}${p.from && p.to ? ' -> ' : ''}${p.to ?? ''}`);
    if (result.deployed) {
      for (const c of result.deployed.etcConflicts) {
        cmd.context.stderr.write(`warning: /etc/${c.path}: changed by the admin and by the new defaults; kept the admin's version (${c.admin}; new defaults: ${c.defaults})\n`);
      }
      const d = result.deployed;
      out(`${d.staged ? 'staged' : 'deployed'} ${d.deployment.checksum}.${d.deployment.serial}${result.version ? ` (version ${result.version})` : ''}; ${d.staged ? 'it becomes the default at shutdown' : 'reboot to use it'}`);
      if (d.downgrade) out(downgradeLine(d.downgrade, 'allowed by --allow-downgrade'));
      reportOutcome(cmd, result.deployed);
    }
  }
  if (flags.reboot && result.deployed) {
    if (sysroot.path !== '/') throw new UsageError('E_USAGE', '--reboot only applies to the running system (--sysroot /)');
    spawnSync('systemctl', ['reboot'], { stdio: 'inherit' });
  }
  return 0;
}

export class RollbackCommand extends SysrootCommand {
  static override paths = [['rollback']];
  static override usage = Command.Usage({
    description: 'Make the previous deployment the default again (reorders boot entries; copies nothing)',
    examples: [['Roll back', '$0 rollback']],
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const { to } = rollback(sysroot);
    this.print(`default is now ${to.stateroot} ${to.checksum}.${to.serial}${to.version ? ` (version ${to.version})` : ''}; reboot to use it`);
    return 0;
  }
}

export class CleanupCommand extends SysrootCommand {
  static override paths = [['cleanup']];
  static override usage = Command.Usage({
    description: 'Remove the pending and/or rollback deployments, leftovers, and unreachable objects',
    examples: [['Drop the rollback deployment', '$0 cleanup --rollback']],
  });
  pending = Option.Boolean('--pending,-p', false, { description: 'Remove the pending deployment (and a staged one)' });
  rollbackFlag = Option.Boolean('--rollback,-r', false, { description: 'Remove rollback deployments (not pinned ones)' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const report = cleanup(sysroot, { pending: this.pending, rollback: this.rollbackFlag });
    for (const d of report.removed) this.print(`removed ${d.stateroot} ${d.checksum}.${d.serial}`);
    if (report.stagedDiscarded) this.print('discarded the staged deployment');
    this.print(`pruned ${report.pruned.objects} objects (${formatBytes(report.pruned.bytes)})`);
    return 0;
  }
}

export class AdminUndeployCommand extends SysrootCommand {
  static override paths = [['admin', 'undeploy']];
  static override usage = Command.Usage({ description: 'Remove the deployment at INDEX (see `arbor status`)', examples: [['Remove deployment 2', '$0 admin undeploy 2']] });
  index = Option.String({ name: 'INDEX' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const d = undeploy(sysroot, parseIndex(this.index));
    this.print(`removed ${d.stateroot} ${d.checksum}.${d.serial}`);
    return 0;
  }
}

export class AdminPinCommand extends SysrootCommand {
  static override paths = [['admin', 'pin']];
  static override usage = Command.Usage({ description: 'Pin the deployment at INDEX so cleanup never removes it (--unpin: undo)', examples: [['Pin deployment 1', '$0 admin pin 1']] });
  unpin = Option.Boolean('--unpin', false, { description: 'Unpin instead' });
  index = Option.String({ name: 'INDEX' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const d = pin(sysroot, parseIndex(this.index), this.unpin);
    this.print(`${this.unpin ? 'unpinned' : 'pinned'} ${d.stateroot} ${d.checksum}.${d.serial}`);
    return 0;
  }
}

export class KargsCommand extends SysrootCommand {
  static override paths = [['kargs']];
  static override usage = Command.Usage({
    description: "Show or edit the default deployment's kernel arguments",
    details: 'Edits write a new boot set (atomic swap); nothing is checked out. Order: --delete, --replace, --append.',
    examples: [['Add an argument', '$0 kargs --append console=ttyS0'], ['Edit in $EDITOR', '$0 kargs --editor']],
  });
  append = Option.Array('--append', { description: 'Append K=V' });
  delete = Option.Array('--delete', { description: 'Delete K (every value) or K=V' });
  replace = Option.Array('--replace', { description: 'Replace K=... by K=V' });
  editor = Option.Boolean('--editor', false, { description: 'Edit in $EDITOR' });
  index = Option.String('--deploy-index', '0', { description: 'Deployment to edit (default 0, the default one)' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const editing = this.append || this.delete || this.replace || this.editor;
    if (this.editor && (this.append || this.delete || this.replace)) throw new UsageError('E_USAGE', '--editor cannot be combined with --append, --delete or --replace');
    if (!editing) {
      const d = readBootState(sysroot).deployments[parseIndex(this.index)];
      if (!d) throw new UsageError('E_DEPLOYMENT_INDEX', `there is no deployment ${this.index}`);
      this.print(d.kargs.join(' '));
      return 0;
    }
    const { after } = setKargs(sysroot, parseIndex(this.index), (kargs) => {
      if (!this.editor) return editKargs(kargs, { append: this.append ?? [], delete: this.delete ?? [], replace: this.replace ?? [] });
      const dir = mkdtempSync(join(tmpdir(), 'arbor-kargs-'));
      try {
        const file = join(dir, 'kargs');
        writeFileSync(file, `${kargs.join(' ')}\n# One line of kernel arguments; lines starting with # are ignored.\n`);
        const editor = process.env.VISUAL ?? process.env.EDITOR ?? 'vi';
        const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit' });
        if (r.status !== 0) throw new UsageError('E_USAGE', `the editor (${editor}) exited with ${r.status}; nothing changed`);
        const text = readFileSync(file, 'utf8').split('\n').filter((l) => !l.startsWith('#')).join(' ');
        return editKargs(text.split(/\s+/).filter((a) => a !== ''), {});
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    this.print(after.join(' '));
    return 0;
  }
}

export class AdminConfigDiffCommand extends SysrootCommand {
  static override paths = [['admin', 'config-diff']];
  static override usage = Command.Usage({
    description: "Show the admin's changes in /etc against the deployment's defaults (/usr/etc)",
    details: 'Lines are `M path` (modified), `A path` (added) and `D path` (deleted).',
    examples: [['Changes of the booted (or default) deployment', '$0 admin config-diff']],
  });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const state = readBootState(sysroot);
    const d = state.booted ?? state.deployments[0];
    if (!d) throw new UsageError('E_DEPLOYMENT_NONE', 'there is no deployment');
    const changes = deploymentConfigDiff(sysroot, d);
    if (this.json) this.printJson(changes);
    else for (const c of changes) this.print(`${c.change === 'added' ? 'A' : c.change === 'deleted' ? 'D' : 'M'} ${c.path}`);
    return 0;
  }
}

export class AdminFinalizeStagedCommand extends SysrootCommand {
  static override paths = [['admin', 'finalize-staged']];
  static override usage = Command.Usage({
    description: 'Make a staged deployment the default (run at shutdown by arbor-finalize-staged.service)',
    examples: [['Finalize', '$0 admin finalize-staged']],
  });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const result = await finalizeStaged(sysroot);
    if (result === null) this.print('no staged deployment');
    else this.reportDeploy(result);
    return 0;
  }
}

export const ADMIN_COMMANDS = [
  AdminInitFsCommand, AdminOsInitCommand, AdminDeployCommand, StatusCommand, UpgradeCommand, RebaseCommand, RollbackCommand,
  CleanupCommand, AdminUndeployCommand, AdminPinCommand, KargsCommand, AdminConfigDiffCommand, AdminFinalizeStagedCommand,
];
