// `arbor log`: a commit and its ancestors.
import { Command, Option } from 'clipanion';
import { type Repo, logCommits, resolveRev } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

export class LogCommand extends RepoCommand {
  static override paths = [['log']];
  static override usage = Command.Usage({
    description: 'Show the history of a commit',
    examples: [['History of a branch', '$0 log --repo repo os/main']],
  });
  rev = Option.String({ required: true, name: 'REV' });
  max = Option.String('-n,--max-count', { description: 'Show at most N commits' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    const { entries, truncatedAt } = logCommits(
      repo,
      resolveRev(repo, this.rev),
      this.max === undefined ? Infinity : Number(this.max),
    );
    if (this.json) {
      this.printJson({ commits: entries, truncatedAt });
      return 0;
    }
    const out: string[] = [];
    for (const e of entries) {
      out.push(`commit ${e.checksum}`);
      if (e.parent) out.push(`Parent:  ${e.parent}`);
      out.push(`Date:    ${new Date(e.timestamp * 1000).toISOString()}`);
      if (e.version) out.push(`Version: ${e.version}`);
      out.push('', `    ${e.subject}`);
      if (e.body) out.push('', ...e.body.split('\n').map((l) => `    ${l}`));
      out.push('');
    }
    if (truncatedAt) out.push(`<< history beyond this point is not in the repository (${truncatedAt}) >>`);
    this.print(out.join('\n'));
    return 0;
  }
}
