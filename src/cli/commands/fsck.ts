// `arbor fsck`: verify every object and every ref's completeness.
import { Command, Option } from 'clipanion';
import { Exit } from '../../common/errors.js';
import { type Repo, fsckRepo } from '../../repo/index.js';
import { ProgressLine } from '../progress.js';
import { RepoCommand } from '../repo-command.js';

export class FsckCommand extends RepoCommand {
  static override paths = [['fsck']];
  static override usage = Command.Usage({
    description: "Verify every object against its checksum and every ref's commit for completeness",
    details:
      'Exits 0 when clean and 3 when anything is corrupt or missing. --repair deletes corrupt objects (so a later commit or pull can restore them) and rebuilds the index.',
  });
  repair = Option.Boolean('--repair', false, { description: 'Delete corrupt objects and rebuild repo.db caches' });
  json = Option.Boolean('--json', false, { description: 'Print the report as JSON' });

  protected async runWith(repo: Repo): Promise<number> {
    const progress = new ProgressLine(this.context.stderr);
    const report = fsckRepo(repo, {
      repair: this.repair,
      onProgress: (n) => progress.update(`checking: ${n} objects`),
    });
    progress.done();
    const clean = report.corrupt.length === 0 && report.missing.length === 0;
    if (this.json) this.printJson({ clean, ...report });
    else {
      const lines = report.corrupt.map(
        (c) => `corrupt ${c.kind} ${c.checksum}: ${c.problem}${this.repair ? ' (removed)' : ''}`,
      );
      lines.push(
        ...report.missing.map(
          (m) => `missing ${m.kind} ${m.checksum} at '${m.path}' of commit ${m.commit} (ref '${m.ref}'): ${m.problem}`,
        ),
      );
      lines.push(
        `${report.objectsChecked} objects checked: ${clean ? 'clean' : `${report.corrupt.length} corrupt, ${report.missing.length} missing`}`,
      );
      this.print(lines.join('\n'));
    }
    // After a repair, what remains missing is still damage the user must restore.
    return report.missing.length > 0 || (report.corrupt.length > 0 && !this.repair) ? Exit.Corrupt : Exit.Ok;
  }
}
