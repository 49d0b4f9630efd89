// The package changes between two commits, as `db diff` and `upgrade --preview` both print them.
import type { PackageDiff } from '../../rpm-compose/index.js';
import { joinLines } from './deploy.js';

/** `Upgraded:`, `Downgraded:`, `Removed:`, `Added:` blocks (name.arch keys), or `no package changes`. */
export function renderPackageDiff(diff: PackageDiff): string {
  const lines: string[] = [];
  if (diff.upgraded.length > 0)
    lines.push('Upgraded:', ...diff.upgraded.map((c) => `  ${c.name}.${c.arch} ${c.from} -> ${c.to}`));
  if (diff.downgraded.length > 0)
    lines.push('Downgraded:', ...diff.downgraded.map((c) => `  ${c.name}.${c.arch} ${c.from} -> ${c.to}`));
  if (diff.removed.length > 0) lines.push('Removed:', ...diff.removed.map((p) => `  ${p.nevra}`));
  if (diff.added.length > 0) lines.push('Added:', ...diff.added.map((p) => `  ${p.nevra}`));
  return joinLines(lines.length > 0 ? lines : ['no package changes']);
}
