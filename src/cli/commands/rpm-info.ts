// `arbor rpm info FILE...`: a package's metadata, dependencies and scriptlets (like `rpm -qpi`).
import { Command, Option } from 'clipanion';
import { describeForJson, formatInfo, readRpmHead } from '../../rpm-compose/index.js';
import { ArborCommand } from '../repo-command.js';

export class RpmInfoCommand extends ArborCommand {
  static override paths = [['rpm', 'info']];
  static override usage = Command.Usage({
    description: 'Show the metadata of RPM package files: name, version, sizes, dependencies, scriptlets',
    examples: [['As JSON', '$0 rpm info --json foo-1.0-1.x86_64.rpm']],
  });
  files = Option.Rest({ required: 1, name: 'FILE' });
  json = Option.Boolean('--json', false, { description: 'Print a JSON array, one object per package' });

  protected async run(): Promise<number> {
    const heads = [];
    for (const file of this.files) heads.push(await readRpmHead(file));
    if (this.json) {
      this.printJson(heads.map((h) => describeForJson(h.pkg, { path: h.path, headerSha256: h.headerSha256 })));
    } else {
      this.context.stdout.write(heads.map((h) => formatInfo(h.pkg)).join('\n'));
    }
    return 0;
  }
}
