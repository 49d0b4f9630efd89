// `arbor init`: create a repository.
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { REPO_MODES, Repo, isRepoMode } from '../../repo/index.js';
import { ArborCommand, DEFAULT_REPO } from '../repo-command.js';

export class InitCommand extends ArborCommand {
  static override paths = [['init']];
  static override usage = Command.Usage({
    description: 'Create an empty repository',
    details: `
      Modes: \`bare\` stores files as real files with their owners, modes and xattrs (hardlink checkouts; needs root to store other owners);
      \`bare-user\` stores them as files owned by the caller with the true metadata in an xattr (works unprivileged);
      \`archive\` stores compressed objects meant to be served over HTTP.
    `,
    examples: [['Create a bare-user repository', '$0 init --repo ./repo --mode bare-user']],
  });
  repoPath = Option.String('--repo', DEFAULT_REPO, { description: 'Where to create the repository' });
  mode = Option.String('--mode', 'bare', { description: `One of ${REPO_MODES.join(', ')} (default bare)` });

  protected async run(): Promise<number> {
    if (!isRepoMode(this.mode))
      throw new UsageError('E_USAGE', `unknown mode '${this.mode}'`, { hint: `use one of ${REPO_MODES.join(', ')}` });
    Repo.init(this.repoPath, this.mode).close();
    return 0;
  }
}
