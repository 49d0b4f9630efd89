// `arbor refs`: list, create and delete refs.
import { Command, Option } from 'clipanion';
import { ArborError, UsageError } from '../../common/errors.js';
import { type Repo, assertRefName, resolveRev, writeRefs } from '../../repo/index.js';
import { RepoCommand } from '../repo-command.js';

export class RefsCommand extends RepoCommand {
  static override paths = [['refs']];
  static override usage = Command.Usage({
    description: 'List refs, or create or delete one',
    details: "Remote refs are listed as REMOTE:REF. --verify checks that each listed ref's commit is present.",
    examples: [
      ['List refs with their commits', '$0 refs --repo repo --list'],
      ['Create a ref', '$0 refs --repo repo --create release/1 os/main'],
    ],
  });
  prefix = Option.String({ required: false, name: 'PREFIX' });
  list = Option.Boolean('--list', false, { description: 'Show the commit each ref points to' });
  create = Option.String('--create', { description: 'Create ref NAME pointing at REV (give REV as the argument)' });
  del = Option.String('--delete', { description: 'Delete ref NAME' });
  verify = Option.Boolean('--verify', false, { description: 'Fail (exit 3) when a ref points at a missing commit' });
  json = Option.Boolean('--json', false, { description: 'Print as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    if (this.create !== undefined && this.del !== undefined)
      throw new UsageError('E_USAGE', '--create and --delete exclude each other');
    if (this.create !== undefined) {
      assertRefName(this.create);
      if (this.prefix === undefined) throw new UsageError('E_USAGE', '--create NAME needs a REV argument');
      if (repo.db.getRef(this.create))
        throw new ArborError('E_REF_EXISTS', `ref '${this.create}' already exists`, {
          hint: 'move it with `arbor reset`',
        });
      writeRefs(
        repo,
        [{ name: this.create, checksum: resolveRev(repo, this.prefix), expected: null }],
        Math.floor(Date.now() / 1000),
      );
      return 0;
    }
    if (this.del !== undefined) {
      if (!repo.db.getRef(this.del)) throw new ArborError('E_REF_NOT_FOUND', `ref '${this.del}' does not exist`);
      repo.db.updateRefs([{ name: this.del, checksum: null }], Math.floor(Date.now() / 1000));
      return 0;
    }
    const refs = repo.db.listRefs().filter((r) => this.prefix === undefined || r.name.startsWith(this.prefix));
    if (this.verify) {
      for (const r of refs) if (!repo.hasObject(r.checksum, 'commit')) repo.readCommit(r.checksum);
    }
    if (this.json) this.printJson(refs);
    else if (refs.length > 0) this.print(refs.map((r) => (this.list ? `${r.name} ${r.checksum}` : r.name)).join('\n'));
    return 0;
  }
}
