// `arbor prune`: delete objects no commit (or no ref) needs.
import { Command, Option } from 'clipanion';
import { type Repo, pruneRepo } from '../../repo/index.js';
import { parseDuration } from '../../common/duration.js';
import { formatBytes } from '../progress.js';
import { RepoCommand } from '../repo-command.js';

export class PruneCommand extends RepoCommand {
  static override paths = [['prune']];
  static override usage = Command.Usage({
    description: 'Delete unreachable objects and report what was freed',
    details: `
      By default every commit in the repository is kept with everything it reaches; --refs-only keeps only what refs reach
      (their whole history), plus commits younger than --keep-younger-than.
    `,
    examples: [
      ['Drop everything no ref needs', '$0 prune --repo repo --refs-only'],
      ['Keep a week of unreferenced commits', '$0 prune --repo repo --refs-only --keep-younger-than "7 days"'],
    ],
  });
  refsOnly = Option.Boolean('--refs-only', false, { description: 'Only refs (and young commits) keep objects alive' });
  keepYoungerThan = Option.String('--keep-younger-than', {
    description: 'DURATION like "3 days", "12h", "30m" (with --refs-only)',
  });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Report what would be deleted without deleting' });
  json = Option.Boolean('--json', false, { description: 'Print the report as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    const report = pruneRepo(repo, {
      refsOnly: this.refsOnly,
      ...(this.keepYoungerThan !== undefined && { keepYoungerThanSeconds: parseDuration(this.keepYoungerThan) }),
      dryRun: this.dryRun,
      now: Math.floor(Date.now() / 1000),
    });
    if (this.json) this.printJson({ dryRun: this.dryRun, ...report });
    else
      this.print(
        `${this.dryRun ? 'would delete' : 'deleted'} ${report.objectsDeleted} of ${report.objectsTotal} objects (${report.commitsDeleted} commits), ${formatBytes(report.bytesFreed)} ${this.dryRun ? 'would be ' : ''}freed`,
      );
    return 0;
  }
}
