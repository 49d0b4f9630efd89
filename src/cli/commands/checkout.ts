// `arbor checkout`: materialise a commit as a directory tree.
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { type Repo, checkoutCommit, resolveRev } from '../../repo/index.js';
import { ProgressLine } from '../progress.js';
import { RepoCommand } from '../repo-command.js';

export class CheckoutCommand extends RepoCommand {
  static override paths = [['checkout']];
  static override usage = Command.Usage({
    description: 'Check a commit out into a directory',
    details: `
      By default files are hardlinked to the repository's objects when the repository and filesystem allow it (a bare repository,
      as root, on the same filesystem), and copied otherwise. Hardlinked files share their inode with the repository: do not modify
      them in place. Copies verify every file's checksum as they go.
    `,
    examples: [['Hardlink checkout of a branch', '$0 checkout --repo repo os/main /srv/deploy/main']],
  });
  rev = Option.String({ required: true, name: 'REV' });
  dest = Option.String({ required: true, name: 'DEST' });
  hardlink = Option.Boolean('-H,--hardlink', false, { description: 'Hardlink every file; fail if that is impossible' });
  copy = Option.Boolean('--copy', false, { description: 'Copy every file (independent of the repository)' });
  subpath = Option.String('--subpath', { description: 'Check out only this path of the commit' });
  union = Option.Boolean('--union', false, {
    description: 'Write into an existing directory, replacing files in the way',
  });
  userMode = Option.Boolean('-U,--user-mode', false, { description: 'Ignore owners and xattrs, drop setuid/setgid' });
  json = Option.Boolean('--json', false, { description: 'Print statistics as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    if (this.hardlink && this.copy) throw new UsageError('E_USAGE', '--hardlink and --copy exclude each other');
    const commit = resolveRev(repo, this.rev);
    const progress = new ProgressLine(this.context.stderr);
    const stats = await checkoutCommit(repo, commit, this.dest, {
      mode: this.hardlink ? 'hardlink' : this.copy ? 'copy' : 'auto',
      ...(this.subpath !== undefined && { subpath: this.subpath }),
      union: this.union,
      userMode: this.userMode,
      onProgress: (s) => progress.update(`checking out: ${s.files} files, ${s.dirs} directories`, s.copiedBytes),
    });
    progress.done();
    if (this.json) this.printJson({ commit, ...stats });
    return 0;
  }
}
