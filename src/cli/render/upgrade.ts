// `arbor upgrade` and `rebase`: text and JSON for what was found (--check, --preview) or deployed.
import type { UpgradeResult } from '../../deploy/index.js';
import { formatBytes } from '../progress.js';
import { type Rendered, joinLines, renderDowngrade, renderEtcConflictWarnings, renderTrialOutcome } from './deploy.js';
import { deploymentJson } from './status.js';

/** The text of an upgrade: what was found (with --preview, the package changes) or deployed. */
export function renderUpgrade(result: UpgradeResult): Rendered {
  const lines: string[] = [];
  const download = result.downloadBytes !== null ? [`  download: ${formatBytes(result.downloadBytes)}`] : [];
  if (!result.newer && result.deployed === null) lines.push(`no upgrade available: ${result.refspec} is at the deployed commit ${result.from.checksum.slice(0, 12)}`);
  else if (result.deployed === null && result.downgrade !== null) {
    lines.push(`${renderDowngrade(result.downgrade, `${result.refspec} is at an older commit ${result.available}`)}; \`arbor upgrade\` deploys it only with --allow-downgrade`, ...download);
  } else if (result.deployed === null) {
    lines.push(`upgrade available: ${result.refspec} ${result.available}${result.version ? ` (version ${result.version})` : ''}`, ...download);
  }
  for (const p of result.packages ?? []) lines.push(`  ${p.from === null ? 'added' : p.to === null ? 'removed' : 'changed'} ${p.name} ${p.from ?? ''}${p.from && p.to ? ' -> ' : ''}${p.to ?? ''}`);
  const head = joinLines(lines);
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
export function upgradeJson(result: UpgradeResult): Record<string, unknown> {
  return { ...result, from: deploymentJson(result.from) };
}
