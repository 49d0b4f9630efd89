// `arbor db list` and `arbor db diff`: packages of composed commits, from the rpm database in their trees.
import { Command, Option } from 'clipanion';
import { type Repo, resolveRev } from '../../repo/index.js';
import { diffPackages, listPackages } from '../../rpm-compose/index.js';
import { renderPackageDiff } from '../render/package-diff.js';
import { RepoCommand } from '../repo-command.js';

export class DbListCommand extends RepoCommand {
  static override paths = [['db', 'list']];
  static override usage = Command.Usage({
    description: 'List the packages of a commit (from the rpm database in its tree)',
    examples: [['Packages of a branch head', '$0 db list --repo repo os/x86_64/main']],
  });
  rev = Option.String({ required: true, name: 'REV' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const packages = listPackages(repo, resolveRev(repo, this.rev));
    if (this.json) this.printJson(packages);
    else if (packages.length > 0) this.print(packages.map((p) => p.nevra).join('\n'));
    return 0;
  }
}

export class DbDiffCommand extends RepoCommand {
  static override paths = [['db', 'diff']];
  static override usage = Command.Usage({
    description: 'Show the packages added, removed, upgraded and downgraded between two commits',
    details:
      'Versions are compared as rpm compares them (epoch, then version and release with rpmvercmp, `~` and `^` included).',
    examples: [['What an upgrade changes', '$0 db diff --repo repo os/x86_64/main^ os/x86_64/main']],
  });
  from = Option.String({ required: true, name: 'REV_A' });
  to = Option.String({ required: true, name: 'REV_B' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });
  protected async runWith(repo: Repo): Promise<number> {
    const diff = diffPackages(
      listPackages(repo, resolveRev(repo, this.from)),
      listPackages(repo, resolveRev(repo, this.to)),
    );
    if (this.json) this.printJson(diff);
    else this.context.stdout.write(renderPackageDiff(diff));
    return 0;
  }
}
