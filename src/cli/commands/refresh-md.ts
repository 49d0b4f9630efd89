// `arbor refresh-md`: fetch the metadata of remote RPM repositories into the cache compose reads.
import { statSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import { UsageError } from '../../common/errors.js';
import { loadTreefile, refreshMetadata } from '../../rpm-compose/index.js';
import { ArborCommand } from '../repo-command.js';
import { assertTmpDir } from '../tmpdir-flag.js';

export class RefreshMdCommand extends ArborCommand {
  static override paths = [['refresh-md']];
  static override usage = Command.Usage({
    description: 'Refresh the cached metadata of remote RPM repositories',
    details: `
      Fetches repomd.xml of each remote repository a treefile names (--treefile), or of each enabled repository
      of the .repo files in a directory (--reposdir, default /etc/yum.repos.d), from the first mirror that
      answers, and the metadata files it lists, each checked against its checksum (and repomd.xml.asc with
      repo_gpgcheck=1). Repositories fetched less than metadata_expire ago are left alone unless --force.
      The cache is the one \`arbor compose tree\` uses with the same --cachedir or --tmpdir.
    `,
    examples: [
      ['Refresh what a treefile uses', '$0 refresh-md --treefile os.yaml --cachedir /var/cache/arbor/yum'],
      ['Refresh every enabled repository', '$0 refresh-md --reposdir /etc/yum.repos.d --force'],
    ],
  });
  treefile = Option.String('--treefile', { description: 'Refresh the remote repositories this treefile names' });
  reposDir = Option.String('--reposdir', { description: 'Directory of .repo files (default /etc/yum.repos.d)' });
  releasever = Option.String('--releasever', { description: 'What $releasever stands for (with --reposdir)' });
  arch = Option.String('--arch', { description: "Architecture for $basearch (default: the host's)" });
  cacheDir = Option.String('--cachedir', { description: 'The cache (default: arbor-yum-cache in --tmpdir)' });
  tmpDir = Option.String('--tmpdir', {
    description: 'Scratch directory holding the default cache (default: the system temp dir)',
  });
  force = Option.Boolean('--force', false, { description: 'Fetch even metadata younger than metadata_expire' });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });

  protected async run(): Promise<number> {
    if (this.treefile !== undefined && this.reposDir !== undefined)
      throw new UsageError('E_USAGE', '--treefile and --reposdir cannot be used together');
    if (this.treefile !== undefined && (this.releasever !== undefined || this.arch !== undefined))
      throw new UsageError('E_USAGE', '--releasever and --arch go with --reposdir; a treefile states its own');
    assertTmpDir(this.tmpDir);
    if (this.reposDir !== undefined && !statSync(this.reposDir, { throwIfNoEntry: false })?.isDirectory())
      throw new UsageError('E_USAGE', `--reposdir: '${this.reposDir}' is not a directory`);
    const source =
      this.treefile !== undefined
        ? { treefile: loadTreefile(this.treefile) }
        : {
            reposDir: this.reposDir ?? '/etc/yum.repos.d',
            arch: this.arch ?? null,
            releasever: this.releasever ?? null,
          };
    const result = await refreshMetadata(source, {
      force: this.force,
      ...(this.cacheDir !== undefined ? { cacheDir: this.cacheDir } : {}),
      ...(this.tmpDir !== undefined ? { tmpDir: this.tmpDir } : {}),
    });
    if (this.json) {
      this.printJson(result);
      return 0;
    }
    for (const r of result.repos)
      this.print(
        r.fetched
          ? `${r.id}: fetched revision ${r.revision ?? '(none)'} from ${r.mirror}`
          : `${r.id}: fresh (revision ${r.revision ?? '(none)'})`,
      );
    if (result.repos.length === 0) this.print('no remote repositories');
    return 0;
  }
}
