// `arbor refresh-md`: fetch the metadata of remote RPM repositories into the cache compose reads,
// or on a host (`--sysroot`) the cache layering reads.
import { statSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import { ArborError, UsageError } from '../../common/errors.js';
import { Sysroot, mergeDeploymentOf, readBootState } from '../../deploy/index.js';
import { type HostRepos, readHostRepos } from '../../layering/index.js';
import { loadTreefile, refreshMetadata } from '../../rpm-compose/index.js';
import { ArborCommand } from '../repo-command.js';
import { assertTmpDir } from '../tmpdir-flag.js';

export class RefreshMdCommand extends ArborCommand {
  static override paths = [['refresh-md']];
  static override usage = Command.Usage({
    description: 'Refresh the cached metadata of remote RPM repositories',
    details: `
      Fetches repomd.xml of each remote repository a treefile names (--treefile), of each enabled repository
      of the .repo files in a directory (--reposdir), or of each one package layering on a host uses
      (--sysroot: the /etc/yum.repos.d of its booted or default deployment), from the first mirror that
      answers, and the metadata files it lists, each checked against its checksum (and repomd.xml.asc with
      repo_gpgcheck=1). Repositories fetched less than metadata_expire ago are left alone unless --force. A
      .repo repository with skip_if_unavailable=1 that fails is skipped with a warning (not a treefile's).
      The cache is the one \`arbor compose tree\` uses with the same --cachedir or --tmpdir; with --sysroot, the
      host's /var/cache/arbor/yum. With none of the three, it is --sysroot / on an Arbor host, else
      --reposdir /etc/yum.repos.d.
    `,
    examples: [
      ['Refresh what a treefile uses', '$0 refresh-md --treefile os.yaml --cachedir /var/cache/arbor/yum'],
      ['Refresh every enabled repository', '$0 refresh-md --reposdir /etc/yum.repos.d --force'],
      ['Refresh what layering uses on this host', '$0 refresh-md --sysroot /'],
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
  sysrootPath = Option.String('--sysroot', {
    description: 'Refresh the repositories package layering uses on this sysroot, in its cache',
  });
  os = Option.String('--os', { description: 'Stateroot, with --sysroot (default: the booted or current one)' });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });

  protected async run(): Promise<number> {
    const sources = [this.treefile, this.reposDir, this.sysrootPath].filter((s) => s !== undefined);
    if (sources.length > 1)
      throw new UsageError('E_USAGE', '--treefile, --reposdir and --sysroot cannot be used together');
    if (this.treefile !== undefined && (this.releasever !== undefined || this.arch !== undefined))
      throw new UsageError('E_USAGE', '--releasever and --arch go with --reposdir; a treefile states its own');
    if (this.sysrootPath !== undefined && (this.releasever !== undefined || this.cacheDir !== undefined))
      throw new UsageError('E_USAGE', "--releasever and --cachedir go with --reposdir; a host's are its own");
    if (this.os !== undefined && this.sysrootPath === undefined)
      throw new UsageError('E_USAGE', '--os goes with --sysroot');
    assertTmpDir(this.tmpDir);
    if (this.reposDir !== undefined && !statSync(this.reposDir, { throwIfNoEntry: false })?.isDirectory())
      throw new UsageError('E_USAGE', `--reposdir: '${this.reposDir}' is not a directory`);
    // Nothing named: an Arbor host refreshes what its layering uses; --releasever and --cachedir name a plain directory's.
    const auto = sources.length === 0 && this.releasever === undefined && this.cacheDir === undefined;
    const host = auto ? await this.#hostRepos('/', true) : undefined;
    const hostRepos = this.sysrootPath !== undefined ? await this.#hostRepos(this.sysrootPath, false) : host;
    const source =
      this.treefile !== undefined
        ? { treefile: loadTreefile(this.treefile) }
        : hostRepos !== undefined
          ? { host: hostRepos, fileRoot: hostRepos.fileRoot }
          : {
              reposDir: this.reposDir ?? '/etc/yum.repos.d',
              arch: this.arch ?? null,
              releasever: this.releasever ?? null,
            };
    const cacheDir = hostRepos?.cacheDir ?? this.cacheDir;
    const result = await refreshMetadata(source, {
      force: this.force,
      ...(cacheDir !== undefined ? { cacheDir } : {}),
      ...(this.tmpDir !== undefined ? { tmpDir: this.tmpDir } : {}),
    });
    if (this.json) {
      this.printJson(result);
      return 0;
    }
    for (const r of result.repos) {
      if (r.skipped !== undefined)
        this.context.stderr.write(
          `warning: repository '${r.id}' skipped (skip_if_unavailable=1): error[${r.skipped.code}]: ${r.skipped.message}\n`,
        );
      else
        this.print(
          r.fetched
            ? `${r.id}: fetched revision ${r.revision ?? '(none)'} from ${r.mirror}`
            : `${r.id}: fresh (revision ${r.revision ?? '(none)'})`,
        );
    }
    if (result.repos.length === 0) this.print('no remote repositories');
    return 0;
  }

  /**
   * The repositories layering uses on the sysroot at `path`: of the stateroot's merge deployment
   * (the booted one, else its default). With `ifHost`, undefined when `path` is no Arbor sysroot.
   */
  async #hostRepos(path: string, ifHost: boolean): Promise<HostRepos | undefined> {
    let sysroot: Sysroot;
    try {
      sysroot = Sysroot.open(path);
    } catch (error) {
      if (ifHost && error instanceof ArborError && error.code === 'E_SYSROOT_INVALID') return undefined;
      throw error;
    }
    try {
      const state = readBootState(sysroot);
      const stateroot = this.os ?? state.booted?.stateroot ?? state.deployments[0]?.stateroot;
      if (stateroot === undefined)
        throw new UsageError(
          'E_DEPLOYMENT_NONE',
          `sysroot '${sysroot.path}' has no deployment to read repositories from`,
          {
            hint: 'deploy one first with `arbor admin deploy`',
          },
        );
      sysroot.assertStateroot(stateroot);
      return await readHostRepos(sysroot, stateroot, mergeDeploymentOf(state, stateroot), this.arch ?? null);
    } finally {
      sysroot.close();
    }
  }
}
