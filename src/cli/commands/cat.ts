// `arbor cat`: write a file of a commit to stdout.
import { Command, Option } from 'clipanion';
import { ArborError } from '../../common/errors.js';
import { type Repo, isRegular, lookupPath, resolveRev } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

export class CatCommand extends RepoCommand {
  static override paths = [['cat']];
  static override usage = Command.Usage({
    description: 'Print the content of a file in a commit (verified against its checksum)',
  });
  rev = Option.String({ required: true, name: 'REV' });
  filePath = Option.String({ required: true, name: 'PATH' });

  protected async runWith(repo: Repo): Promise<number> {
    const entry = lookupPath(repo, resolveRev(repo, this.rev), this.filePath);
    if (entry.kind !== 'file') throw new ArborError('E_NOT_A_FILE', `'${this.filePath}' is a directory`);
    const { header, content } = repo.loadFile(entry.checksum);
    if (!isRegular(header.mode))
      throw new ArborError(
        'E_NOT_A_FILE',
        `'${this.filePath}' is not a regular file${header.symlinkTarget ? ` (symlink to '${header.symlinkTarget}')` : ''}`,
      );
    await new Promise<void>((resolve, reject) =>
      this.context.stdout.write(content, (e) => (e ? reject(e) : resolve())),
    );
    return 0;
  }
}
