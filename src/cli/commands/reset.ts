// `arbor reset`: point a ref at another commit.
import { Command, Option } from 'clipanion';
import { type Repo, assertRefName, resolveRev, writeRefs } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

export class ResetCommand extends RepoCommand {
  static override paths = [['reset']];
  static override usage = Command.Usage({
    description: 'Point REF at REV (for example back to an older commit)',
    examples: [['Undo the last commit on a branch', '$0 reset --repo repo os/main os/main^']],
  });
  ref = Option.String({ required: true, name: 'REF' });
  rev = Option.String({ required: true, name: 'REV' });

  protected async runWith(repo: Repo): Promise<number> {
    assertRefName(this.ref);
    writeRefs(repo, [{ name: this.ref, checksum: resolveRev(repo, this.rev) }], Math.floor(Date.now() / 1000));
    return 0;
  }
}
