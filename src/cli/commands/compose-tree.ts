// `arbor compose tree --repo R TREEFILE`: packages from RPM repositories composed into one commit.
import { Command, Option } from 'clipanion';
import type { Repo } from '../../repo/index.js';
import { type ComposeResult, composeTree, loadTreefile } from '../../rpm-compose/index.js';
import { ProgressLine, formatBytes } from '../progress.js';
import { RepoCommand } from '../repo-command.js';
import { assertTmpDir } from '../tmpdir-flag.js';

export class ComposeTreeCommand extends RepoCommand {
  static override paths = [['compose', 'tree']];
  static override usage = Command.Usage({
    description: 'Compose an OS tree from a treefile and RPM repositories, and commit it',
    details: `
      Reads the treefile (YAML or JSON: ref, repos, packages, exclude-packages, install-weak-deps, remove-files,
      units, initramfs, ...; docs/compose.md), resolves the packages against the repositories (yum repositories or
      directories of .rpm files on disk; http(s) yum repositories named by URL or by the id of a .repo file next to
      the treefile, their metadata and packages cached in --cachedir), imports the chosen packages (each once: later
      composes reuse it), assembles their files, runs their scriptlets in a bubblewrap sandbox, writes the rpm
      database to /usr/share/rpm, moves /etc to /usr/etc and /var content to tmpfiles.d, and commits to the
      treefile's ref.

      The commit records the version, every package (NEVRA and header SHA-256) and the input hash (treefile and
      resolved packages). With --unless-changed no commit is made when the input hash equals the parent's.
      --dry-run prints the resolved set and what importing would read, and changes nothing (but the cache: the
      packages of remote repositories are fetched, since their headers make the input hash).
      A failure changes no ref except the package cache (pkg/...).
    `,
    examples: [
      ['Compose', '$0 compose tree --repo repo os.yaml'],
      ['Show what would be installed', '$0 compose tree --repo repo --dry-run os.yaml'],
      ['Recompose only when something changed', '$0 compose tree --repo repo --unless-changed os.yaml'],
    ],
  });
  dryRun = Option.Boolean('--dry-run', false, { description: 'Resolve and report; import and commit nothing' });
  unlessChanged = Option.Boolean('--unless-changed', false, {
    description: "Make no commit when the inputs equal the parent commit's",
  });
  noScripts = Option.Boolean('--no-scripts', false, {
    description: 'Run no scriptlets (the commit records which were skipped)',
  });
  passwd = Option.String('--passwd', { description: 'passwd(5) file for owners the tree itself does not define' });
  group = Option.String('--group', { description: 'group(5) file for groups the tree itself does not define' });
  tmpDir = Option.String('--tmpdir', { description: 'Directory for scratch space (default: the system temp dir)' });
  cacheDir = Option.String('--cachedir', {
    description: "Cache of remote repositories' metadata and packages (default: arbor-yum-cache in --tmpdir)",
  });
  refresh = Option.Boolean('--refresh', false, {
    description: 'Fetch remote repository metadata even when younger than metadata_expire',
  });
  json = Option.Boolean('--json', false, { description: 'Print the result as JSON' });
  treefile = Option.String({ name: 'TREEFILE' });

  protected async runWith(repo: Repo): Promise<number> {
    const treefile = loadTreefile(this.treefile);
    assertTmpDir(this.tmpDir);
    const progress = new ProgressLine(this.context.stderr);
    let result: ComposeResult;
    try {
      result = await composeTree(repo, treefile, {
        dryRun: this.dryRun,
        unlessChanged: this.unlessChanged,
        noScripts: this.noScripts,
        ...(this.passwd !== undefined ? { passwd: this.passwd } : {}),
        ...(this.group !== undefined ? { group: this.group } : {}),
        ...(this.tmpDir !== undefined ? { tmpDir: this.tmpDir } : {}),
        ...(this.cacheDir !== undefined ? { cacheDir: this.cacheDir } : {}),
        refresh: this.refresh,
        onProgress: (p) => progress.update(`${p.phase} ${p.total > 1 ? `${p.done}/${p.total} ` : ''}${p.detail ?? ''}`),
      });
    } finally {
      progress.done();
    }
    if (this.json) {
      this.printJson({
        ref: result.ref,
        commit: result.commit,
        parent: result.parent,
        changed: result.changed,
        version: result.version,
        inputHash: result.inputHash,
        packages: result.packages.length,
        imported: result.packages.filter((p) => p.imported).length,
        cached: result.packages.filter((p) => !p.imported).length,
        importBytes: result.importBytes,
        scripts: result.scripts,
        kernel: result.kernel,
        removedFiles: result.removedFiles,
        droppedVarFiles: result.droppedVarFiles,
        phaseMs: result.phaseMs,
        resolved: result.packages,
      });
      return 0;
    }
    if (this.dryRun) {
      for (const p of result.packages) this.print(`${p.imported ? 'import' : 'cached'} ${p.nevra}  (${p.why})`);
      this.print(
        `${result.packages.length} packages; to import: ${result.packages.filter((p) => p.imported).length} (${formatBytes(result.importBytes.download)} to read, ${formatBytes(result.importBytes.installed)} installed)`,
      );
      this.print(
        result.changed
          ? `inputs changed since the current commit (input hash ${result.inputHash.slice(0, 16)})`
          : 'inputs unchanged since the current commit',
      );
      return 0;
    }
    if (!result.changed) {
      this.print(`${result.ref} unchanged: ${result.commit} (input hash ${result.inputHash.slice(0, 16)})`);
      return 0;
    }
    const imported = result.packages.filter((p) => p.imported).length;
    this.print(
      `${result.packages.length} packages (${imported} imported, ${result.packages.length - imported} cached)`,
    );
    if (result.scripts.ran.length > 0) this.print(`ran ${result.scripts.ran.length} scriptlets`);
    if (result.scripts.skipped.length > 0)
      this.print(`skipped ${result.scripts.skipped.length} scriptlets (--no-scripts)`);
    if (result.kernel) this.print(`kernel ${result.kernel.version}${result.kernel.initramfs ? ' with initramfs' : ''}`);
    for (const path of result.droppedVarFiles)
      this.context.stderr.write(
        `warning: dropped ${path}: files under /var cannot be shipped in an image (only directories and symlinks become tmpfiles.d entries)\n`,
      );
    this.print(`${result.ref} => ${result.commit}${result.version !== null ? ` (version ${result.version})` : ''}`);
    return 0;
  }
}
