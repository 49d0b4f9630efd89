// `arbor rpm ls FILE`: a package's file list with the columns of `rpm -qp --dump`.
import { Command, Option } from 'clipanion';
import { formatDump, listFile, readRpmHead } from '../../rpm-compose/index.js';
import { ArborCommand } from '../repo-command.js';

export class RpmLsCommand extends ArborCommand {
  static override paths = [['rpm', 'ls']];
  static override usage = Command.Usage({
    description:
      'List the files of an RPM package: path size mtime digest mode owner group isconfig isdoc rdev symlink (as `rpm -qp --dump`)',
    examples: [['As JSON', '$0 rpm ls --json foo-1.0-1.x86_64.rpm']],
  });
  file = Option.String({ required: true, name: 'FILE' });
  json = Option.Boolean('--json', false, { description: 'Print a JSON array, one object per file' });

  protected async run(): Promise<number> {
    const { pkg } = await readRpmHead(this.file);
    if (this.json) this.printJson(pkg.files.map(listFile));
    else this.context.stdout.write(formatDump(pkg));
    return 0;
  }
}
