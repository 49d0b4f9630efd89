// Text for a layering transaction (`install`, `uninstall`, `override ...`): what is added, removed
// and replaced and why, and the download size; then the deploy's report when one was made.
import type { LayerResult } from '../../rpm-compose/index.js';
import { type Rendered, joinLines } from './deploy.js';

/** The transaction, one line per package; `dryRun` says nothing was deployed. */
export function renderLayer(r: Omit<LayerResult, 'commit'>, dryRun: boolean): Rendered {
  const lines = [
    ...r.added.map((p) => `  add ${p.nevra} (${p.why}${p.repo ? `; from ${p.repo}` : ''})`),
    ...r.removed.map((p) => `  remove ${p.nevra} (${p.why})`),
    ...r.replaced.map((p) => `  replace ${p.from} with ${p.to}`),
  ];
  const head =
    lines.length === 0 ? 'no package changes: the deployment is the base commit' : `${dryRun ? 'would ' : ''}change:`;
  return {
    stdout: joinLines([
      head,
      ...lines,
      ...(lines.length > 0 ? [`download: ${r.downloadBytes} bytes`] : []),
      ...r.scripts.map((s) => `ran ${s}`),
    ]),
    stderr: renderLayerWarnings(r),
  };
}

/** What layering warns about: skipped repositories, replacements the base caught up with, files under /var it dropped. */
export function renderLayerWarnings(r: Pick<LayerResult, 'notes' | 'droppedVarFiles' | 'skippedRepos'>): string {
  return joinLines([
    ...r.skippedRepos.map(
      (s) => `warning: repository '${s.id}' skipped (skip_if_unavailable=1): error[${s.code}]: ${s.message}`,
    ),
    ...r.notes.map((n) => `note: ${n}`),
    ...r.droppedVarFiles.map((f) => `warning: ${f}: a file under /var was dropped (/var belongs to the machine)`),
  ]);
}
