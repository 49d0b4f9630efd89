// `arbor rev-parse`: resolve a revision to a full commit id.
import { Command, Option } from 'clipanion';
import { type Repo, resolveRev } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

export class RevParseCommand extends RepoCommand {
  static override paths = [['rev-parse']];
  static override usage = Command.Usage({
    description: 'Print the full commit id of a revision',
    details:
      'A revision is a ref, REMOTE:REF, a full id or a unique prefix of at least 4 hex digits, each optionally followed by ^ (parent; repeatable) or ~N.',
    examples: [['Parent of a branch head', '$0 rev-parse --repo repo os/main^']],
  });
  rev = Option.String({ required: true, name: 'REV' });

  protected async runWith(repo: Repo): Promise<number> {
    this.print(resolveRev(repo, this.rev));
    return 0;
  }
}
