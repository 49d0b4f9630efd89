// `arbor upgrade` and `rebase`: text and JSON for what was found (--check, --preview) or deployed.
import type { UpgradeResult } from '../../deploy/index.js';
import type { PackageDiff } from '../../rpm-compose/index.js';
import { formatBytes } from '../progress.js';
import { type Rendered, joinLines, renderDowngrade, renderEtcConflictWarnings, renderTrialOutcome } from './deploy.js';
import { renderPackageDiff } from './package-diff.js';
import { deploymentJson } from './status.js';

/** The text of an upgrade; `packages` (--preview) is printed as `db diff` prints it, when known. */
export function renderUpgrade(result: UpgradeResult, packages: PackageDiff | null): Rendered {
  const lines: string[] = [];
  const download = result.downloadBytes !== null ? [`  download: ${formatBytes(result.downloadBytes)}`] : [];
  if (!result.newer && result.deployed === null)
    lines.push(
      `no upgrade available: ${result.refspec} is at the deployed commit ${result.from.checksum.slice(0, 12)}`,
    );
  else if (result.deployed === null && result.downgrade !== null) {
    lines.push(
      `${renderDowngrade(result.downgrade, `${result.refspec} is at an older commit ${result.available}`)}; \`arbor upgrade\` deploys it only with --allow-downgrade`,
      ...download,
    );
  } else if (result.deployed === null) {
    lines.push(
      `upgrade available: ${result.refspec} ${result.available}${result.version ? ` (version ${result.version})` : ''}`,
      ...download,
    );
  }
  const head = joinLines(lines) + (packages !== null ? renderPackageDiff(packages) : '');
  const d = result.deployed;
  if (d === null) return { stdout: head, stderr: '' };
  const trial = renderTrialOutcome(d);
  const deployed = joinLines([
    `${d.staged ? 'staged' : 'deployed'} ${d.deployment.checksum}.${d.deployment.serial}${result.version ? ` (version ${result.version})` : ''}; ${d.staged ? 'it becomes the default at shutdown' : 'reboot to use it'}`,
    ...(d.downgrade ? [renderDowngrade(d.downgrade, 'allowed by --allow-downgrade')] : []),
  ]);
  return { stdout: head + deployed + trial.stdout, stderr: renderEtcConflictWarnings(d.etcConflicts) + trial.stderr };
}

/** The `upgrade --json` document: the result with its deployment shown as `status --json` shows one. */
export function upgradeJson(result: UpgradeResult, packages: PackageDiff | null): Record<string, unknown> {
  const { refspec, from, available, version, newer, downloadBytes, downgrade, deployed } = result;
  return {
    refspec,
    from: deploymentJson(from),
    available,
    version,
    newer,
    downloadBytes,
    packages,
    downgrade,
    deployed,
  };
}
