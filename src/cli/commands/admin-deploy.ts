// `arbor admin deploy REV` (also `arbor deploy`): a commit becomes the new default boot entry.
import { Command, Option } from 'clipanion';
import { type Sysroot, deploy } from '../../deploy/index.js';
import { deployFlag, deployOptionsOf } from '../deploy-flags.js';
import { renderDeploy } from '../render/deploy.js';
import { SysrootCommand } from '../sysroot-command.js';

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
  kargProcCmdline = Option.Boolean('--karg-proc-cmdline', false, {
    description: 'Use the running kernel command line',
  });
  originRef = Option.String('--origin-ref', { description: 'Refspec to upgrade from (REMOTE:REF)' });
  stage = deployFlag.stage('Finalize at shutdown instead of now');
  retain = Option.Boolean('--retain', false, { description: 'Keep every existing deployment' });
  trialTries = deployFlag.trialTries();
  acceptEtcConflicts = deployFlag.acceptEtcConflicts();
  preflight = deployFlag.preflight();
  allowDowngrade = deployFlag.allowDowngrade();
  repoDir = deployFlag.repoDir();
  json = deployFlag.json('Print the result as JSON');
  rev = Option.String({ name: 'REV' });
  protected async runWith(sysroot: Sysroot): Promise<number> {
    const result = await deploy(sysroot, {
      rev: this.rev,
      ...(this.stateroot !== undefined ? { stateroot: this.stateroot } : {}),
      ...(this.karg !== undefined ? { kargs: this.karg } : {}),
      kargsProcCmdline: this.kargProcCmdline,
      ...(this.originRef !== undefined ? { originRef: this.originRef } : {}),
      retain: this.retain,
      ...deployOptionsOf(this, sysroot, (text) => this.context.stderr.write(text)),
    });
    if (this.json) this.printJson(result);
    else this.emit(renderDeploy(result));
    return 0;
  }
}
