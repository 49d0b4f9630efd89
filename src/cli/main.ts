// Entry point: parse the command line, run one command, exit with its status.
import { readFileSync } from 'node:fs';
import { Builtins, Cli } from 'clipanion';
import { Exit, errnoCode, present } from '../common/errors.js';
import type { CommandClass } from 'clipanion';

// Commands come in groups, each loaded only when its command is run: loading every module (SQLite,
// codecs, the compose stack...) costs about 0.3 s that `arbor status` or `arbor rollback` should not pay.
type Group = () => Promise<CommandClass[]>;
const GROUPS: Record<string, Group> = {
  store: async () => {
    const m = await Promise.all([
      import('./commands/init.js'),
      import('./commands/commit.js'),
      import('./commands/checkout.js'),
      import('./commands/log.js'),
      import('./commands/show.js'),
      import('./commands/ls.js'),
      import('./commands/cat.js'),
      import('./commands/diff.js'),
      import('./commands/refs.js'),
      import('./commands/rev-parse.js'),
      import('./commands/reset.js'),
      import('./commands/fsck.js'),
      import('./commands/prune.js'),
    ]);
    return [
      m[0].InitCommand,
      m[1].CommitCommand,
      m[2].CheckoutCommand,
      m[3].LogCommand,
      m[4].ShowCommand,
      m[5].LsCommand,
      m[6].CatCommand,
      m[7].DiffCommand,
      m[8].RefsCommand,
      m[9].RevParseCommand,
      m[10].ResetCommand,
      m[11].FsckCommand,
      m[12].PruneCommand,
    ];
  },
  host: async () => {
    const m = await Promise.all([
      import('./commands/admin-init-fs.js'),
      import('./commands/admin-os-init.js'),
      import('./commands/admin-deploy.js'),
      import('./commands/status.js'),
      import('./commands/upgrade.js'),
      import('./commands/rebase.js'),
      import('./commands/rollback.js'),
      import('./commands/cleanup.js'),
      import('./commands/admin-undeploy.js'),
      import('./commands/admin-pin.js'),
      import('./commands/kargs.js'),
      import('./commands/admin-config-diff.js'),
      import('./commands/admin-finalize-staged.js'),
      import('./commands/admin-firstboot.js'),
    ]);
    return [
      m[0].AdminInitFsCommand,
      m[1].AdminOsInitCommand,
      m[2].AdminDeployCommand,
      m[3].StatusCommand,
      m[4].UpgradeCommand,
      m[5].RebaseCommand,
      m[6].RollbackCommand,
      m[7].CleanupCommand,
      m[8].AdminUndeployCommand,
      m[9].AdminPinCommand,
      m[10].KargsCommand,
      m[11].AdminConfigDiffCommand,
      m[12].AdminFinalizeStagedCommand,
      m[13].AdminFirstbootCommand,
    ];
  },
  compose: async () => {
    const m = await Promise.all([
      import('./commands/rpm-info.js'),
      import('./commands/rpm-ls.js'),
      import('./commands/rpm-check.js'),
      import('./commands/rpm-import.js'),
      import('./commands/db.js'),
      import('./commands/compose-tree.js'),
      import('./commands/refresh-md.js'),
    ]);
    return [
      m[0].RpmInfoCommand,
      m[1].RpmLsCommand,
      m[2].RpmCheckCommand,
      m[3].RpmImportCommand,
      m[4].DbListCommand,
      m[4].DbDiffCommand,
      m[5].ComposeTreeCommand,
      m[6].RefreshMdCommand,
    ];
  },
  fleet: async () => {
    const m = await import('./commands/fleetlock.js');
    return [m.FleetLockServeCommand, m.FleetLockStatusCommand, m.FleetLockReleaseCommand];
  },
  release: async () => {
    const m = await import('./commands/release.js');
    return [
      m.ReleaseAddCommand,
      m.ReleaseListCommand,
      m.ReleasePauseCommand,
      m.ReleaseResumeCommand,
      m.ReleaseDeadendCommand,
    ];
  },
  agent: async () => {
    const m = await import('./commands/agent.js');
    return [m.AgentRunCommand, m.AgentRunOnceCommand, m.AgentStatusCommand];
  },
  transfer: async () => {
    const [summary, sign, pull, remote, delta] = await Promise.all([
      import('./commands/summary.js'),
      import('./commands/sign.js'),
      import('./commands/pull.js'),
      import('./commands/remote.js'),
      import('./commands/static-delta.js'),
    ]);
    return [
      summary.SummaryCommand,
      sign.KeygenCommand,
      sign.SignCommand,
      sign.VerifyCommand,
      pull.PullCommand,
      pull.PullLocalCommand,
      remote.RemoteAddCommand,
      remote.RemoteListCommand,
      remote.RemoteShowCommand,
      remote.RemoteDeleteCommand,
      remote.RemoteRefsCommand,
      remote.RemoteResetFreshnessCommand,
      delta.StaticDeltaGenerateCommand,
      delta.StaticDeltaListCommand,
      delta.StaticDeltaShowCommand,
      delta.StaticDeltaApplyCommand,
      delta.StaticDeltaDeleteCommand,
    ];
  },
  image: async () => [(await import('./commands/image-build.js')).ImageBuildCommand],
  // `install PKG...` layers packages; `install to-disk|to-filesystem` installs the OS: one first word.
  layering: async () => {
    const m = await Promise.all([
      import('./commands/install.js'),
      import('./commands/uninstall.js'),
      import('./commands/override-remove.js'),
      import('./commands/override-replace.js'),
      import('./commands/override-reset.js'),
      import('./commands/install-to-disk.js'),
      import('./commands/install-to-filesystem.js'),
    ]);
    return [
      m[0].InstallCommand,
      m[1].UninstallCommand,
      m[2].OverrideRemoveCommand,
      m[3].OverrideReplaceCommand,
      m[4].OverrideResetCommand,
      m[5].InstallToDiskCommand,
      m[6].InstallToFilesystemCommand,
    ];
  },
};
/** The group of each command's first word; anything else (help, a typo) loads every group. */
const GROUP_OF: Record<string, string> = {
  init: 'store',
  commit: 'store',
  checkout: 'store',
  log: 'store',
  show: 'store',
  ls: 'store',
  cat: 'store',
  diff: 'store',
  refs: 'store',
  'rev-parse': 'store',
  reset: 'store',
  fsck: 'store',
  prune: 'store',
  admin: 'host',
  fleetlock: 'fleet',
  agent: 'agent',
  release: 'release',
  status: 'host',
  upgrade: 'host',
  rebase: 'host',
  rollback: 'host',
  cleanup: 'host',
  kargs: 'host',
  deploy: 'host',
  install: 'layering',
  uninstall: 'layering',
  override: 'layering',
  rpm: 'compose',
  db: 'compose',
  compose: 'compose',
  'refresh-md': 'compose',
  summary: 'transfer',
  keygen: 'transfer',
  sign: 'transfer',
  verify: 'transfer',
  pull: 'transfer',
  'pull-local': 'transfer',
  remote: 'transfer',
  'static-delta': 'transfer',
  image: 'image',
};

/** The version package.json gives (one place to bump): two levels up from src/cli/, three from dist/src/cli/. */
function packageVersion(): string {
  for (const candidate of ['../../package.json', '../../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { version: string }).version;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  }
  throw new Error(`internal error: no package.json above ${import.meta.url}`);
}

const cli = new Cli({
  binaryLabel: 'arbor',
  binaryName: 'arbor',
  binaryVersion: packageVersion(),
  enableColors: false,
});
cli.register(Builtins.HelpCommand);
cli.register(Builtins.VersionCommand);
const first = process.argv[2];
const only = first !== undefined ? GROUP_OF[first] : undefined;
const needed = first === '--version' || first === '-v' ? [] : only !== undefined ? [only] : Object.keys(GROUPS);
for (const name of needed) {
  for (const command of await present(GROUPS[name], `command group ${name}`)()) cli.register(command);
}

// A reader that stops early (`arbor ls --json | head`) closes the pipe: that ends the command quietly, as in other tools.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const args = process.argv.slice(2);
let command;
try {
  command = cli.process(args);
} catch (error) {
  // Alone, clipanion prints usage errors to stdout and exits 1; ours go to stderr with exit 2.
  process.stderr.write(cli.error(error as Error, { colored: false }));
  process.exit(Exit.Usage);
}
process.exitCode = await cli.run(command, Cli.defaultContext);
