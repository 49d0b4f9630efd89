// `arbor rpm import --repo R FILE...`: one commit per package on pkg/NAME/EVR.ARCH.
import { Command, Option } from 'clipanion';
import type { Repo } from '../../repo/index.js';
import { importRpm, loadOwnerMap } from '../../rpm-compose/index.js';
import { RepoCommand } from '../repo-command.js';

export class RpmImportCommand extends RepoCommand {
  static override paths = [['rpm', 'import']];
  static override usage = Command.Usage({
    description: 'Import RPM package files: one commit per package on pkg/NAME/EVR.ARCH',
    details: `
      Each package's payload streams into file objects (every digest checked) and its tree is committed with the
      header kept as metadata (rpm.nevra, rpm.header-sha256, rpm.header). A package whose ref already holds a commit
      with the same header SHA-256 is not read again. Owners are mapped by name through --passwd and --group
      (root is always 0); an unknown name is an error.
      Prints "REF COMMIT" per package.
    `,
    examples: [['Import two packages', '$0 rpm import --repo repo foo-1.0-1.x86_64.rpm bar-2.0-1.noarch.rpm']],
  });
  passwd = Option.String('--passwd', { description: 'passwd(5) file mapping user names to ids' });
  group = Option.String('--group', { description: 'group(5) file mapping group names to ids' });
  json = Option.Boolean('--json', false, { description: 'Print a JSON array of {ref, commit, cached}' });
  files = Option.Rest({ required: 1, name: 'FILE' });

  protected async runWith(repo: Repo): Promise<number> {
    const owners = loadOwnerMap(this.passwd, this.group);
    const results = [];
    for (const file of this.files) {
      const result = await importRpm(repo, file, { owners });
      results.push(result);
      if (!this.json) this.print(`${result.ref} ${result.commit}`);
    }
    if (this.json) this.printJson(results);
    return 0;
  }
}
