// `arbor diff`: paths added, modified and deleted between two commits.
import { Command, Option } from 'clipanion';
import { type Repo, diffCommits, resolveRev, summarizeDiff } from '../../repo/index.js';
import { formatBytes } from '../progress.js';
import { RepoCommand } from '../repo-command.js';

export class DiffCommand extends RepoCommand {
  static override paths = [['diff']];
  static override usage = Command.Usage({
    description: 'List paths that differ between two commits (A added, M modified, D deleted)',
    details: 'A path whose type changed (file to directory or back) is listed as D then A.',
    examples: [['What an update changes', '$0 diff --repo repo os/main^ os/main']],
  });
  revA = Option.String({ required: true, name: 'REV_A' });
  revB = Option.String({ required: true, name: 'REV_B' });
  stat = Option.Boolean('--stat', false, { description: 'Print totals instead of paths' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    const entries = diffCommits(repo, resolveRev(repo, this.revA), resolveRev(repo, this.revB));
    const stats = summarizeDiff(entries);
    if (this.json) this.printJson(this.stat ? stats : { entries, stats });
    else if (this.stat)
      this.print(
        `${stats.added} added, ${stats.modified} modified, ${stats.deleted} deleted; ${formatBytes(stats.bytesAdded)} in, ${formatBytes(stats.bytesRemoved)} out`,
      );
    else if (entries.length > 0) this.print(entries.map((e) => `${e.status}    ${e.path}`).join('\n'));
    return 0;
  }
}
